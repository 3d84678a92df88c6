"""The condition language (DESIGN.md): validation with JSON paths and a pure Python evaluator.

A condition is plain JSON:
    {"all": [c, ...]} | {"any": [c, ...]} | {"not": c} | {"attr": "a.b", "op": "eq", "value": v}

Semantics chosen so that a SQL backend can agree exactly: every leaf is two-valued. A
missing attribute (or JSON null) makes every leaf false except `exists`; `not` is plain
negation of its child. Booleans never compare equal to numbers (unlike Python's True == 1).
This module is pure (no I/O, clocks or randomness) so workflows may use it.
"""

from collections.abc import Callable, Mapping
from typing import Any

from models.faults import Fault

MISSING = None

COMPARISON_OPS = {"lt", "lte", "gt", "gte"}
LEAF_OPS = {"eq", "ne", "in", "not_in", "contains", "exists"} | COMPARISON_OPS
MAX_DEPTH = 20


def validate_condition(
    condition: Any, path: str, attr_allowed: Callable[[str], str | None] | None = None
) -> list[Fault]:
    """Return every fault in `condition`, each naming its JSON path.

    `attr_allowed(attr)` returns an error message when an attribute path is not addressable
    in the caller's context (e.g. a journey only knows `profile.*` and `event.*`).
    """
    return _validate(condition, path, attr_allowed, depth=0)


def _validate(condition: Any, path: str, attr_allowed, depth: int) -> list[Fault]:
    if depth > MAX_DEPTH:
        return [Fault(path, f"conditions nest at most {MAX_DEPTH} levels")]
    if not isinstance(condition, dict):
        return [Fault(path, "a condition must be an object")]
    for group in ("all", "any"):
        if group in condition:
            if set(condition) != {group}:
                return [Fault(path, f"'{group}' must be the only key of its object")]
            children = condition[group]
            if not isinstance(children, list) or not children:
                return [Fault(f"{path}.{group}", "must be a non-empty list of conditions")]
            faults: list[Fault] = []
            for i, child in enumerate(children):
                faults += _validate(child, f"{path}.{group}[{i}]", attr_allowed, depth + 1)
            return faults
    if "not" in condition:
        if set(condition) != {"not"}:
            return [Fault(path, "'not' must be the only key of its object")]
        return _validate(condition["not"], f"{path}.not", attr_allowed, depth + 1)
    return _validate_leaf(condition, path, attr_allowed)


def _validate_leaf(leaf: dict, path: str, attr_allowed) -> list[Fault]:
    unknown = set(leaf) - {"attr", "op", "value"}
    if unknown:
        return [Fault(path, f"unknown key(s) {sorted(unknown)}; expected all/any/not or attr/op/value")]
    faults: list[Fault] = []
    attr, op = leaf.get("attr"), leaf.get("op")
    if not isinstance(attr, str) or not attr or not all(attr.split(".")):
        faults.append(Fault(f"{path}.attr", "required: a dotted attribute path without empty parts"))
    elif attr_allowed and (message := attr_allowed(attr)):
        faults.append(Fault(f"{path}.attr", message))
    if not isinstance(op, str) or op not in LEAF_OPS:
        faults.append(Fault(f"{path}.op", f"unknown operator {op!r}; expected one of {sorted(LEAF_OPS)}"))
        return faults
    value = leaf.get("value")
    if op == "exists":
        if "value" in leaf and not isinstance(value, bool):
            faults.append(Fault(f"{path}.value", "'exists' takes no value (or a boolean)"))
    elif "value" not in leaf:
        faults.append(Fault(f"{path}.value", f"required for operator {op!r}"))
    elif op in ("in", "not_in"):
        if not isinstance(value, list) or not all(_is_scalar(v) for v in value):
            faults.append(Fault(f"{path}.value", f"{op!r} needs a list of scalars"))
    elif op in COMPARISON_OPS:
        if not (_is_number(value) or isinstance(value, str)):
            faults.append(Fault(f"{path}.value", f"{op!r} needs a number or a string"))
    elif not _is_scalar(value):
        faults.append(Fault(f"{path}.value", f"{op!r} needs a scalar value"))
    return faults


def evaluate(condition: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    """Evaluate a validated condition against a nested dict context."""
    if "all" in condition:
        return all(evaluate(child, context) for child in condition["all"])
    if "any" in condition:
        return any(evaluate(child, context) for child in condition["any"])
    if "not" in condition:
        return not evaluate(condition["not"], context)
    actual = resolve(context, condition["attr"])
    return _leaf(condition["op"], actual, condition.get("value"))


def resolve(context: Mapping[str, Any], attr: str) -> Any:
    """Follow a dotted path through nested dicts; anything absent resolves to MISSING."""
    current: Any = context
    for part in attr.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return MISSING
        current = current[part]
    return current


def _leaf(op: str, actual: Any, expected: Any) -> bool:
    if op == "exists":
        return (actual is not MISSING) == (expected if isinstance(expected, bool) else True)
    if actual is MISSING:
        return False
    if op == "eq":
        return _equal(actual, expected)
    if op == "ne":
        return not _equal(actual, expected)
    if op == "in":
        return any(_equal(actual, v) for v in expected)
    if op == "not_in":
        return not any(_equal(actual, v) for v in expected)
    if op == "contains":
        if isinstance(actual, str):
            return isinstance(expected, str) and expected in actual
        if isinstance(actual, list):
            return any(_equal(item, expected) for item in actual)
        return False
    return _compare(op, actual, expected)


def _compare(op: str, actual: Any, expected: Any) -> bool:
    comparable = (_is_number(actual) and _is_number(expected)) or (
        isinstance(actual, str) and isinstance(expected, str)
    )
    if not comparable:
        return False
    if op == "lt":
        return actual < expected
    if op == "lte":
        return actual <= expected
    if op == "gt":
        return actual > expected
    return actual >= expected


def _equal(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is type(b) and a == b


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))
