"""Bulk-load rows of the built-in `profiles` dataset: the same checks as `/v1/profiles/bulk`.

Columns: id, email, phone, timezone, locale, attributes (a JSON object; in CSV, its JSON text).
Profiles merge like everywhere else: a null or absent field keeps the stored value and
attributes merge key by key.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from models.dataset_rows import MAX_ERRORS, json_text
from models.profile_schemas import ProfileUpsert
from models.row_formats import Record, RowError, unstorable_reason

PROFILE_COLUMNS = {"id", "email", "phone", "timezone", "locale", "attributes"}


@dataclass
class CheckedProfiles:
    profiles: list[ProfileUpsert] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    truncated: bool = False


def check_profiles(records: Iterable[Record | RowError], textual: bool) -> CheckedProfiles:
    checked = CheckedProfiles()
    for record in records:
        if isinstance(record, RowError):
            checked.errors.append(record)
        else:
            line, values = record
            try:
                checked.profiles.append(_profile(line, values, textual))
            except _RowFaults as faults:
                checked.errors.extend(faults.errors)
        if len(checked.errors) > MAX_ERRORS:
            return CheckedProfiles(errors=checked.errors[:MAX_ERRORS], truncated=True)
    if checked.errors:
        checked.profiles = []
    return checked


class _RowFaults(Exception):
    def __init__(self, errors: list[RowError]):
        self.errors = errors


def _profile(line: int, values: dict[str, Any], textual: bool) -> ProfileUpsert:
    values = {k: v for k, v in values.items() if v is not None}
    if "attributes" in values:
        values["attributes"] = _attributes(line, values["attributes"], textual)
    try:
        return ProfileUpsert.model_validate(values)
    except ValidationError as error:
        raise _RowFaults([RowError(line, str(e["loc"][0]) if e["loc"] else None, e["msg"].removeprefix("Value error, "))
                          for e in error.errors()]) from None


def _attributes(line: int, value: Any, textual: bool) -> dict:
    try:
        if textual:
            value = json.loads(value, parse_float=Decimal, parse_constant=_no_constant)
        if not isinstance(value, dict):
            raise ValueError("attributes must be a JSON object")
        if reason := unstorable_reason(value):
            raise ValueError(reason)
        # Through JSON text once more: Decimal numbers become floats, which must stay finite.
        attributes = json.loads(json_text(value))
        json.dumps(attributes, allow_nan=False)
        return attributes
    except ValueError as error:
        raise _RowFaults([RowError(line, "attributes", str(error))]) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")
