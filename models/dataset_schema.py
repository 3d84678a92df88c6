"""The registry's picture of relational data: datasets, their typed columns and links.

Shared contract of the condition language's backends (Python evaluator, SQL compiler), the
datasets API and audiences. `profiles` is built in; user datasets live in tables `ds_<name>`.

A link is many-to-one: `bookings.links.hotel = {"dataset": "hotels", "column": "hotel_id"}`
means `bookings.hotel_id` references the primary key of `hotels`. Conditions follow links
forward as attribute paths (`hotel.city` on bookings) and backward with `has` (profiles that
have bookings: through the bookings link whose dataset is `profiles`).
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ColumnType = Literal["text", "integer", "numeric", "boolean", "date", "timestamptz", "jsonb"]
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"


class Link(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    dataset: str = Field(pattern=NAME_PATTERN)
    column: str = Field(pattern=NAME_PATTERN)


class DatasetSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    primary_key: str = Field(pattern=NAME_PATTERN)
    columns: dict[str, ColumnType]
    links: dict[str, Link] = {}
    # Name of the jsonb column whose keys are addressable as `<column>.<key>` (profiles: attributes).
    json_attributes_column: str | None = None

    @property
    def table_name(self) -> str:
        return "profiles" if self.name == "profiles" else f"ds_{self.name}"


PROFILES = DatasetSchema(
    name="profiles",
    primary_key="id",
    columns={"id": "text", "email": "text", "phone": "text", "timezone": "text", "locale": "text",
             "attributes": "jsonb", "created_at": "timestamptz", "updated_at": "timestamptz"},
    json_attributes_column="attributes",
)


class Registry(BaseModel):
    """Every dataset known to the workspace, by name (always includes `profiles`)."""

    datasets: dict[str, DatasetSchema] = {"profiles": PROFILES}

    def get(self, name: str) -> DatasetSchema | None:
        return self.datasets.get(name)
