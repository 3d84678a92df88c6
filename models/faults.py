"""A validation fault: what is wrong and where (a JSON path such as `$.nodes.remind.template`)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    path: str
    message: str

    def as_error(self) -> dict:
        """The shape of one item of a 422 `detail` list (mirrors FastAPI's own errors)."""
        loc = [p for p in self.path.lstrip("$").replace("[", ".").replace("]", "").split(".") if p]
        return {"loc": ["body", *loc], "path": self.path, "msg": self.message, "type": "value_error"}


class DefinitionError(Exception):
    """Raised with every fault of an invalid definition; the API turns it into a 422."""

    def __init__(self, faults: list[Fault]):
        super().__init__("; ".join(f"{f.path}: {f.message}" for f in faults))
        self.faults = faults
