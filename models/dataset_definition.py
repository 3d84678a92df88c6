"""The body of `PUT /v1/datasets/{name}` and its validation against the registry.

The body is parsed loosely (plain dicts of strings) so that every fault, including a bad
column *name*, is reported with its JSON path in one 422 instead of pydantic's key errors.
Names end up as SQL identifiers (quoted, but still): only NAME_PATTERN names get through.
"""

import re
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field

from models.dataset_schema import NAME_PATTERN, ColumnType, DatasetSchema, Link, Registry
from models.faults import Fault

COLUMN_TYPES: tuple[str, ...] = get_args(ColumnType)
NAME = re.compile(NAME_PATTERN)
KEY_TYPES = ("text", "integer")  # what work tables, links and key lists handle everywhere
MAX_COLUMNS = 200
MAX_LINKS = 50
# PostgreSQL refuses user columns with these names ("conflicts with a system column name").
SYSTEM_COLUMNS = {"tableoid", "xmin", "cmin", "xmax", "cmax", "ctid", "oid"}


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str
    column: str


class DatasetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    primary_key: str
    columns: dict[str, str] = Field(min_length=1, max_length=MAX_COLUMNS)
    links: dict[str, LinkIn] = Field(default={}, max_length=MAX_LINKS)


def _name_fault(path: str, name: str, what: str) -> Fault | None:
    if not NAME.match(name):
        return Fault(path, f"invalid {what} name {name!r}: lowercase letters, digits and _, "
                           f"starting with a letter, at most 48 characters")
    return None


def validate_dataset(name: str, body: DatasetIn, registry: Registry) -> list[Fault]:
    """Every fault of the declaration, each with its JSON path (empty list: valid)."""
    faults: list[Fault] = []
    for column, type_ in body.columns.items():
        path = f"$.columns.{column}"
        if fault := _name_fault(path, column, "column"):
            faults.append(fault)
        elif column in SYSTEM_COLUMNS:
            faults.append(Fault(path, f"{column!r} is reserved by PostgreSQL"))
        if type_ not in COLUMN_TYPES:
            faults.append(Fault(path, f"unknown type {type_!r}; expected one of {list(COLUMN_TYPES)}"))
    if body.primary_key not in body.columns:
        faults.append(Fault("$.primary_key", f"{body.primary_key!r} is not a declared column"))
    elif body.columns[body.primary_key] not in KEY_TYPES:
        faults.append(Fault("$.primary_key", f"a primary key is {' or '.join(KEY_TYPES)}, "
                                             f"not {body.columns[body.primary_key]}"))
    for link_name, link in body.links.items():
        path = f"$.links.{link_name}"
        if fault := _name_fault(path, link_name, "link"):
            faults.append(fault)
        elif link_name in body.columns:
            # `hotel.city` must mean one thing: a link and a column may not share a name.
            faults.append(Fault(path, f"link {link_name!r} has the name of a column"))
        faults += _link_faults(name, body, link, path, registry)
    return faults


def _link_faults(name: str, body: DatasetIn, link: LinkIn, path: str, registry: Registry) -> list[Fault]:
    faults = []
    if link.column not in body.columns:
        faults.append(Fault(f"{path}.column", f"{link.column!r} is not a declared column"))
    if link.dataset == name:  # a self link (e.g. employees.manager) targets this very declaration
        target_key_type = body.columns.get(body.primary_key)
    elif (target := registry.get(link.dataset)) is not None:
        target_key_type = target.columns[target.primary_key]
    else:
        return faults + [Fault(f"{path}.dataset", f"unknown dataset {link.dataset!r}")]
    column_type = body.columns.get(link.column)
    if column_type is not None and target_key_type is not None and column_type != target_key_type:
        # A join across types would fail (or cast silently) at query time: refuse it here.
        faults.append(Fault(f"{path}.column", f"{link.column!r} is {column_type} but the primary key "
                                              f"of {link.dataset!r} is {target_key_type}"))
    return faults


def to_schema(name: str, body: DatasetIn) -> DatasetSchema:
    """The registry schema of a declaration that passed `validate_dataset`."""
    return DatasetSchema(
        name=name, primary_key=body.primary_key, columns=body.columns,  # type: ignore[arg-type]
        links={k: Link(dataset=v.dataset, column=v.column) for k, v in body.links.items()},
    )


def dataset_out(schema: DatasetSchema, **extra: Any) -> dict[str, Any]:
    """The API shape of a dataset (the same for PUT and GET)."""
    return {"name": schema.name, "primary_key": schema.primary_key, "columns": dict(schema.columns),
            "links": {k: v.model_dump() for k, v in schema.links.items()},
            "builtin": schema.name == "profiles", **extra}
