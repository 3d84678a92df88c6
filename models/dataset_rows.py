"""Type-check the rows of a bulk load against a dataset schema, before anything is written.

Every value is checked in Python and turned into the text PostgreSQL reads back exactly (the
COPY text format), so the database never meets a value it would refuse: a bad batch is
reported row by row (line, column, reason) instead of failing at the first bad value.
"""

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from models.dataset_schema import DatasetSchema
from models.row_formats import Record, RowError

MAX_ERRORS = 100
INT8 = (-(2**63), 2**63 - 1)
INTEGER_TEXT = re.compile(r"^\s*[+-]?[0-9]{1,19}\s*$")  # ASCII digits only
TRUE_WORDS = {"true", "t", "yes", "y", "1"}
FALSE_WORDS = {"false", "f", "no", "n", "0"}
# PostgreSQL numeric: at most 131072 digits before the point and 16383 after it.
NUMERIC_MAX_ADJUSTED, NUMERIC_MIN_EXPONENT = 131_071, -16_383


@dataclass
class CheckedRows:
    columns: list[str]  # the columns this batch writes, primary key first
    rows: list[tuple[str | None, ...]] = field(default_factory=list)  # one per key, last line wins
    errors: list[RowError] = field(default_factory=list)
    truncated: bool = False  # more errors than reported


def _text(value: Any, textual: bool) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    if "\x00" in value:
        raise ValueError("NUL characters (\\u0000) are not allowed")
    return value


def _integer(value: Any, textual: bool) -> str:
    if isinstance(value, str) and textual:
        if not INTEGER_TEXT.match(value):
            raise ValueError(f"expected an integer, got {_clip(value)!r}")
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("expected an integer")
    if not INT8[0] <= value <= INT8[1]:
        raise ValueError("integer out of range (64-bit)")
    return str(value)


def _numeric(value: Any, textual: bool) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise ValueError("expected a number")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValueError(f"expected a number, got {_clip(value)!r}") from None
    if not number.is_finite():
        raise ValueError("numbers must be finite")
    if number.adjusted() > NUMERIC_MAX_ADJUSTED or number.as_tuple().exponent < NUMERIC_MIN_EXPONENT:  # type: ignore[operator]
        raise ValueError("number out of range")
    return str(number)


def _boolean(value: Any, textual: bool) -> str:
    if isinstance(value, str) and textual:
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return "t"
        if word in FALSE_WORDS:
            return "f"
        raise ValueError(f"expected true or false, got {_clip(value)!r}")
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return "t" if value else "f"


def _date(value: Any, textual: bool) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a date string YYYY-MM-DD")
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise ValueError(f"expected a date YYYY-MM-DD, got {_clip(value)!r}") from None


def _timestamptz(value: Any, textual: bool) -> str:
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 timestamp string")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"expected an ISO 8601 timestamp, got {_clip(value)!r}") from None
    if moment.tzinfo is None:
        # Without an offset the instant would depend on the server's time zone setting.
        raise ValueError("the timestamp needs a UTC offset (e.g. 2026-01-31T09:00:00Z)")
    return moment.isoformat()


def _jsonb(value: Any, textual: bool) -> str:
    if textual:
        try:
            value = json.loads(value, parse_float=Decimal, parse_constant=_no_constant)
        except ValueError as error:
            raise ValueError(f"not valid JSON: {error}") from None
    return json_text(value)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def json_text(value: Any) -> str:
    """JSON text keeping Decimal numbers exact (json.dumps cannot); refuses what jsonb refuses."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{_json_string(k)}:{json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, Decimal):
        return _numeric(value, False)
    if isinstance(value, float):
        return _numeric(Decimal(repr(value)), False)
    return json.dumps(value)  # bool, int, None


def _json_string(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL characters (\\u0000) are not allowed in JSON")
    return json.dumps(value, ensure_ascii=False)


CONVERTERS: dict[str, Callable[[Any, bool], str]] = {
    "text": _text, "integer": _integer, "numeric": _numeric, "boolean": _boolean,
    "date": _date, "timestamptz": _timestamptz, "jsonb": _jsonb,
}


def _clip(value: Any, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def check_rows(schema: DatasetSchema, records: Iterable[Record | RowError], textual: bool) -> CheckedRows:
    """Convert every record; `textual` says values are strings to parse (CSV), not JSON values."""
    converters = {column: _converter(type_, textual) for column, type_ in schema.columns.items()}
    errors: list[RowError] = []
    by_key: dict[str, dict[str, str | None]] = {}
    present: set[str] = set()
    pk = schema.primary_key
    for record in records:
        if isinstance(record, RowError):
            errors.append(record)
        else:
            converted = _convert(pk, converters, record, errors)
            if converted is not None:
                present.update(converted)
                by_key[converted[pk]] = converted  # type: ignore[index]
        if len(errors) > MAX_ERRORS:
            return CheckedRows([], errors=errors[:MAX_ERRORS], truncated=True)
    columns = [pk, *sorted(present - {pk})]
    if errors:
        return CheckedRows(columns, errors=errors)
    return CheckedRows(columns, rows=[tuple(row.get(c) for c in columns) for row in by_key.values()])


def _converter(type_: str, textual: bool) -> Callable[[Any], str] | None:
    """None: the value is stored as it is (CSV text: the reader already refused NUL)."""
    if type_ == "text" and textual:
        return None
    convert = CONVERTERS[type_]
    return lambda value: convert(value, textual)


def _convert(pk: str, converters: dict, record: Record, errors: list[RowError]) -> dict | None:
    line, values = record
    if values.get(pk) is not None:
        try:  # the common case, kept fast: every value converts
            return {column: value if value is None or (convert := converters[column]) is None else convert(value)
                    for column, value in values.items()}
        except ValueError:
            pass
    failed = []  # find every bad value of the row, to report them all
    for column, value in values.items():
        if value is not None and (convert := converters[column]) is not None:
            try:
                convert(value)
            except ValueError as error:
                failed.append(RowError(line, column, str(error)))
    if values.get(pk) is None:
        failed.append(RowError(line, pk, "the primary key is required"))
    errors.extend(failed)
    return None
