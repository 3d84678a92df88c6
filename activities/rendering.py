"""Liquid rendering of templates (python-liquid). Missing variables render empty."""

from functools import lru_cache
from typing import Any, Callable

from liquid import Environment
from liquid.exceptions import LiquidError

from activities.liquid_fast_path import compile_fast

# Default Undefined renders as an empty string, so a missing variable never fails a send.
_environment = Environment()


class TemplateSyntaxError(ValueError):
    def __init__(self, field: str, message: str, line: int | None):
        super().__init__(message)
        self.field, self.line = field, line


def check_syntax(field: str, source: str) -> None:
    """Raise TemplateSyntaxError (with the line number) if `source` does not parse."""
    try:
        _environment.from_string(source)
    except LiquidError as error:
        line = _line_of(error, source)
        where = f" on line {line}" if line else ""
        raise TemplateSyntaxError(field, f"{field}: Liquid syntax error{where}: {error.message}", line) from None


@lru_cache(maxsize=1024)
def renderer(source: str) -> Callable[[dict[str, Any]], str]:
    """The compiled template as a function of the context (the fast path when it applies)."""
    template = _environment.from_string(source)
    return compile_fast(template) or (lambda context: template.render(**context))


def render(source: str | None, context: dict[str, Any]) -> str:
    if not source:
        return ""
    return renderer(source)(context)


def _line_of(error: LiquidError, source: str) -> int | None:
    token = getattr(error, "token", None)
    start = getattr(token, "start_index", None)
    if isinstance(start, int):
        return source.count("\n", 0, start) + 1
    return None
