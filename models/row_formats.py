"""Read a bulk-load body (JSON lines or CSV) into records: (line number, {column: value}).

Only the file format is checked here; column types are the schema's business (dataset_rows).
JSON lines give JSON values (floats as Decimal, exact); CSV gives strings, an empty field
meaning null. Line numbers are 1-based lines of the body (the CSV header is line 1), so a user
can find the row in the file they sent.
"""

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

NDJSON = "application/x-ndjson"
CSV = "text/csv"
CONTENT_TYPES = (NDJSON, "application/jsonl", "application/json-lines", CSV)
MAX_CSV_FIELD = 16 * 1024 * 1024
# The default (128 KiB) would refuse a long text or JSON field; the request size bounds it anyway.
csv.field_size_limit(max(csv.field_size_limit(), MAX_CSV_FIELD))


@dataclass(frozen=True)
class RowError:
    line: int | None  # None: the batch as a whole
    column: str | None
    reason: str

    def as_error(self) -> dict:
        """A 422 item: line/column/reason, plus the loc/path/msg/type every 422 item has."""
        # An unknown column is named as sent; escape what JSON output could not encode.
        column = self.column.encode("utf-8", "backslashreplace").decode() if self.column is not None else None
        loc = ["body", *(x for x in (self.line, column) if x is not None)]
        path = "$" + (f"[{self.line}]" if self.line is not None else "") + (f".{column}" if column else "")
        return {"line": self.line, "column": column, "reason": self.reason,
                "loc": loc, "path": path, "msg": self.reason, "type": "row_error"}


Record = tuple[int, dict[str, Any]]


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonFinite(f"{name} is not a valid JSON number")


def media_type(content_type: str | None) -> str | None:
    """The format of a Content-Type header, or None when it is not one we read."""
    base = (content_type or "").split(";")[0].strip().lower()
    if base == CSV:
        return CSV
    return NDJSON if base in CONTENT_TYPES else None


def read_records(body: bytes, kind: str, columns: set[str]) -> Iterator[Record | RowError]:
    """Records of the body, or errors for what cannot be read; `columns` are the known names."""
    if kind == CSV:
        yield from _read_csv(body, columns)
    else:
        yield from _read_ndjson(body, columns)


def _read_ndjson(body: bytes, columns: set[str]) -> Iterator[Record | RowError]:
    for number, raw in enumerate(body.split(b"\n"), start=1):
        if not raw.strip():
            continue  # blank lines (and the final newline) carry no row
        try:
            record = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
        except _NonFinite as error:
            yield RowError(number, None, str(error))
            continue
        except UnicodeDecodeError:
            yield RowError(number, None, "not valid UTF-8")
            continue
        except ValueError as error:
            yield RowError(number, None, f"not valid JSON: {error}")
            continue
        if not isinstance(record, dict):
            yield RowError(number, None, "each line must be a JSON object")
            continue
        unknown = [key for key in record if key not in columns]
        if unknown:
            for key in unknown:
                yield RowError(number, key, "unknown column")
            continue
        if b"\\u" in raw and (reason := unstorable_reason(record)):
            # Only \u escapes can smuggle NUL or lone surrogates past the JSON parser.
            yield RowError(number, None, reason)
            continue
        yield number, record


def unstorable_reason(value: Any) -> str | None:
    """Why PostgreSQL would refuse a string in this value (NUL, lone surrogate), if it would."""
    if isinstance(value, str):
        if "\x00" in value:
            return "NUL characters (\\u0000) are not allowed"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "lone surrogate: not valid unicode"
        return None
    if isinstance(value, dict):
        return next((r for k, v in value.items() if (r := unstorable_reason(k) or unstorable_reason(v))), None)
    if isinstance(value, list):
        return next((r for v in value if (r := unstorable_reason(v))), None)
    return None


def _read_csv(body: bytes, columns: set[str]) -> Iterator[Record | RowError]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        yield RowError(body[:error.start].count(b"\n") + 1, None, "not valid UTF-8")
        return
    if "\x00" in text:  # checked once here, so text values need no check of their own
        yield RowError(text[:text.index("\x00")].count("\n") + 1, None, "NUL characters are not allowed")
        return
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as error:
        yield RowError(1, None, f"malformed CSV header: {error}")
        return
    if not header:
        yield RowError(1, None, "the first line must be a header naming the columns")
        return
    header_errors = [RowError(1, name, "unknown column") for name in header if name not in columns]
    header_errors += [RowError(1, name, "column named twice") for name in set(header) if header.count(name) > 1]
    if header_errors:
        yield from header_errors
        return
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield RowError(reader.line_num, None, f"malformed CSV: {error}")
            return  # the reader cannot resynchronise after a quoting error
        if not fields:
            continue
        if len(fields) != len(header):
            yield RowError(reader.line_num, None, f"expected {len(header)} fields, got {len(fields)}")
            continue
        yield reader.line_num, {name: (value if value != "" else None) for name, value in zip(header, fields)}
