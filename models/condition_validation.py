"""Audience conditions checked against the dataset registry: attributes, links and types.

An audience condition is relative to a row of its dimension. An attribute path is, part by
part: forward links (`hotel.` on bookings, many-to-one), then a column, then — only if that
column is jsonb — keys inside it (`attributes.country`, `attributes.address.city`; any key is
allowed). `has` follows a link backwards: from the dimension D to a dataset X with a link
whose target is D (`via` names it when X has several).

`resolve_attribute` and `resolve_has` are shared with the SQL compiler, so what validation
accepts is exactly what the compiler can build, from registry identifiers only.
"""

from dataclasses import dataclass
from typing import Any

from models.conditions import (
    COMPARISON_OPS,
    DATE_OPS,
    ConditionValidator,
    is_number,
    moment_value_problem,
)
from models.dataset_schema import DatasetSchema, Link, Registry
from models.faults import Fault

MAX_LINK_HOPS = 4
MAX_ATTR_LENGTH = 500

# Operators each column type accepts, and the JSON value kind they take there.
_ANY_TYPE = {"exists", "not_exists"}
_ORDERED = {"eq", "ne", "in", "not_in", "between"} | COMPARISON_OPS
TYPE_OPS: dict[str, set[str]] = {
    "text": _ANY_TYPE | _ORDERED | {"contains", "starts_with"},
    "integer": _ANY_TYPE | _ORDERED,
    "numeric": _ANY_TYPE | _ORDERED,
    "boolean": _ANY_TYPE | {"eq", "ne", "in", "not_in"},
    "date": _ANY_TYPE | _ORDERED | DATE_OPS,
    "timestamptz": _ANY_TYPE | _ORDERED | DATE_OPS,
}
VALUE_KIND = {"text": "a string", "integer": "a number", "numeric": "a number", "boolean": "a boolean",
              "date": "an ISO date or datetime string", "timestamptz": "an ISO date or datetime string"}


@dataclass(frozen=True)
class Hop:
    """One forward link followed by an attribute path (`hotel` in `hotel.city`)."""

    name: str
    link: Link
    target: DatasetSchema


@dataclass(frozen=True)
class ResolvedAttribute:
    hops: tuple[Hop, ...]
    dataset: DatasetSchema  # the dataset holding the column (after the hops)
    column: str
    json_keys: tuple[str, ...]  # keys inside a jsonb column

    @property
    def kind(self) -> str:
        """The column type, or "json" for anything inside (or being) a jsonb column."""
        column_type = self.dataset.columns[self.column]
        return "json" if column_type == "jsonb" else column_type


@dataclass(frozen=True)
class ResolvedHas:
    dataset: DatasetSchema  # the related dataset X
    link_name: str
    link: Link  # X.link: X.<column> references the dimension's primary key


def validate_audience_condition(registry: Registry, dimension: str, condition: Any,
                                path: str = "$.where", *, check_types: bool = True) -> list[Fault]:
    """Every fault of an audience condition on `dimension`, each naming its JSON path.

    `check_types=False` keeps only what the SQL compiler needs (shape, attributes, links); the
    compiler gives ill-typed leaves the Python meaning (e.g. `gt "x"` on an integer: false).
    """
    schema = registry.get(dimension) if isinstance(dimension, str) else None
    if schema is None:
        known = sorted(registry.datasets)
        return [Fault(_sibling(path, "dimension"), f"unknown dataset {dimension!r}; known: {known}")]
    return AudienceValidator(registry, schema, check_types).validate(condition, path)


class AudienceValidator(ConditionValidator):
    def __init__(self, registry: Registry, dataset: DatasetSchema, check_types: bool = True):
        self.registry, self.dataset, self.check_types = registry, dataset, check_types

    def attr_faults(self, attr: str, path: str) -> list[Fault]:
        resolved = resolve_attribute(self.registry, self.dataset, attr)
        return [Fault(path, resolved)] if isinstance(resolved, str) else []

    def typed_faults(self, attr: str, op: str, value: Any, path: str) -> list[Fault]:
        resolved = resolve_attribute(self.registry, self.dataset, attr)
        if not self.check_types or isinstance(resolved, str) or resolved.kind == "json":
            return []  # jsonb values have no declared type: any operator, Python semantics
        column_type = resolved.kind
        if op not in TYPE_OPS[column_type]:
            return [Fault(f"{path}.op", f"{op!r} does not apply to {attr!r} ({column_type}); "
                                        f"use one of {sorted(TYPE_OPS[column_type])}")]
        if op in ("exists", "not_exists", "within_last", "before", "after"):
            return []  # the value was checked without the type (presence, duration, ISO date)
        values = value if isinstance(value, list) else [value]
        for i, item in enumerate(values):
            if (message := _type_problem(column_type, item)) is not None:
                where = f"{path}.value[{i}]" if isinstance(value, list) else f"{path}.value"
                return [Fault(where, f"{attr!r} is {column_type}: {message}")]
        return []

    def for_has(self, has: dict, path: str) -> tuple[ConditionValidator, list[Fault]]:
        resolved = resolve_has(self.registry, self.dataset, has)
        if isinstance(resolved, tuple):
            key, message = resolved
            # Unknown target: still check the shape of `where`, without attributes.
            return ConditionValidator(), [Fault(f"{path}.{key}", message)]
        return AudienceValidator(self.registry, resolved.dataset, self.check_types), []


def _type_problem(column_type: str, value: Any) -> str | None:
    if column_type == "text":
        ok = isinstance(value, str)
    elif column_type in ("integer", "numeric"):
        ok = is_number(value)
    elif column_type == "boolean":
        ok = isinstance(value, bool)
    else:  # date, timestamptz
        return moment_value_problem(value)
    return None if ok else f"the value must be {VALUE_KIND[column_type]}, not {value!r}"


def resolve_attribute(registry: Registry, dataset: DatasetSchema, attr: str) -> ResolvedAttribute | str:
    """Where an attribute path lives, or why it does not."""
    if len(attr) > MAX_ATTR_LENGTH or "\x00" in attr:
        return f"an attribute path has at most {MAX_ATTR_LENGTH} characters and no NUL"
    parts = attr.split(".")
    hops: list[Hop] = []
    current = dataset
    for i, part in enumerate(parts):
        if part in current.columns:
            keys = tuple(parts[i + 1:])
            if keys and current.columns[part] != "jsonb":
                return f"{part!r} is a {current.columns[part]} column of {current.name!r}: it has no keys"
            return ResolvedAttribute(tuple(hops), current, part, keys)
        if part in current.links:
            link = current.links[part]
            target = registry.get(link.dataset)
            if target is None:
                return f"link {part!r} of {current.name!r} points to unknown dataset {link.dataset!r}"
            if len(hops) == MAX_LINK_HOPS:
                return f"an attribute path follows at most {MAX_LINK_HOPS} links"
            hops.append(Hop(part, link, target))
            current = target
            continue
        return (f"unknown attribute {part!r} on {current.name!r}; columns: {sorted(current.columns)}"
                + (f", links: {sorted(current.links)}" if current.links else ""))
    return f"{parts[-1]!r} is a link of {dataset.name!r}: name a column of it, e.g. {attr}.<column>"


def resolve_has(registry: Registry, dimension: DatasetSchema, has: dict) -> ResolvedHas | tuple[str, str]:
    """The link behind a `has` clause, or (the key at fault, why)."""
    related = registry.get(has["dataset"])
    if related is None:
        return "dataset", f"unknown dataset {has['dataset']!r}; known: {sorted(registry.datasets)}"
    candidates = {name: link for name, link in related.links.items() if link.dataset == dimension.name}
    via = has.get("via")
    if via is not None:
        if via not in candidates:
            return "via", (f"{related.name!r} has no link {via!r} to {dimension.name!r}; "
                           f"links to it: {sorted(candidates)}")
        return ResolvedHas(related, via, candidates[via])
    if not candidates:
        return "dataset", f"{related.name!r} has no link to {dimension.name!r}"
    if len(candidates) > 1:
        return "via", (f"ambiguous: {related.name!r} links to {dimension.name!r} through "
                       f"{sorted(candidates)}; name one with 'via'")
    [(name, link)] = candidates.items()
    return ResolvedHas(related, name, link)


def _sibling(path: str, key: str) -> str:
    """`$.where` -> `$.dimension`: where the dimension sits next to the condition."""
    head, dot, _ = path.rpartition(".")
    return f"{head}.{key}" if dot else f"$.{key}"
