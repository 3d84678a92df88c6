"""The condition language (DESIGN.md "Condition language"): shapes, validation with JSON paths
and the pure Python evaluator used inside workflows. `models/condition_sql.py` compiles the same
language to SQL; `tests/test_condition_agreement.py` checks that the two agree.

A condition is plain JSON:
    {"all": [c, ...]} | {"any": [c, ...]} | {"not": c}
    | {"attr": "a.b", "op": OP, "value": v}
    | {"has": {"dataset": "bookings", "where": c, "count": {"op": "gte", "value": 2}, "via": "link"}}

Semantics (chosen so that SQL can agree exactly; see condition_sql.py for the SQL side):
- Every leaf is two-valued. A missing attribute (absent key, JSON null, SQL NULL, a link whose
  target row does not exist) makes every leaf false except `exists: false` / `not_exists`, and
  `not` is plain negation. So `ne`/`not_in` are false on a missing value, `eq null` is always
  false and `ne null` means "present" (audience validation refuses null on typed columns).
- Numbers (int, float, Decimal) compare as exact decimals: a float means its shortest repr
  (`0.1` is 0.1, as in JSON and jsonb), 1 == 1.0, -0.0 == 0. Booleans are never numbers.
  Non-finite numbers (NaN, infinities) are not numbers at all.
- Strings compare by code point (SQL: COLLATE "C"). `contains` is a substring test on strings
  and element membership (with `eq` semantics) on arrays; `starts_with` is for strings only.
- Ordering (`lt lte gt gte between`) needs number/number or string/string; anything else is
  false. Typed date/timestamptz values (the `date`/`datetime` objects psycopg returns) compare
  as time against ISO strings, also under `eq ne in not_in`. A string value stays a string
  for those operators, even when it looks like a date.
- Date operators `before`, `after`, `within_last` read the attribute as time: a date/datetime
  object, or a string in strict ISO 8601 (`YYYY-MM-DD`, or `YYYY-MM-DD[T ]HH:MM[:SS[.ffffff]]`
  with `Z`/`±HH:MM`, no offset meaning UTC). Anything else, including impossible dates such as
  2024-02-30, is not a time and the leaf is false. A calendar date against an instant compares
  at day granularity, taking the instant's UTC date. `within_last: P90D` means
  now - 90 days <= value <= now (dates: between the UTC dates of those two instants); durations
  are ISO 8601 without months or years, at most MAX_WITHIN. Condition values must be times
  of years 0001-9999 in UTC. Only `within_last` needs `now`: evaluate() raises ConditionError
  without it (whatever the data), so a workflow must pass `now=workflow.now()`.
- `has`: `count` compares the number of related rows matching `where` (default: at least one;
  `{"op": "lt", "value": 2}` includes rows with none); `via` names the link when the related
  dataset links to the dimension more than once.
- Values are JSON scalars PostgreSQL can store (no NaN/Infinity, no NUL); `in` lists hold at
  most MAX_LIST of them.
- `has` counts related rows in SQL; the Python evaluator refuses it (ConditionError), and
  journey validation (a `validate_condition` call with `attr_allowed`) reports it as a fault.

This module is pure (no I/O, clocks or randomness) so workflows may use it.
"""

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from models.durations import parse_duration
from models.faults import Fault

MISSING = None

COMPARISON_OPS = {"lt", "lte", "gt", "gte"}
DATE_OPS = {"before", "after", "within_last"}
LEAF_OPS = ({"eq", "ne", "in", "not_in", "contains", "starts_with", "exists", "not_exists", "between"}
            | COMPARISON_OPS | DATE_OPS)
COUNT_OPS = {"eq", "ne", "lt", "lte", "gt", "gte"}
HAS_KEYS = {"dataset", "where", "count", "via"}
MAX_DEPTH = 20
MAX_LIST = 10_000  # values of one `in`; longer lists belong in a dataset
MAX_WITHIN = timedelta(days=366_000)  # keeps now - duration inside Python's datetime range


class ConditionError(ValueError):
    """A condition cannot be evaluated here (`has` in Python, `within_last` without `now`)."""


# --- time ----------------------------------------------------------------------------------

# The same patterns run in Python (re.fullmatch) and in PostgreSQL (`~ '^…$'`), so both
# backends accept exactly the same strings. [0-9], not \d: Python's \d matches other scripts.
DATE_PATTERN = r"([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
DATETIME_PATTERN = (DATE_PATTERN + r"[T ]([01][0-9]|2[0-3]):([0-5][0-9])"
                    r"(?::([0-5][0-9])(?:\.([0-9]{1,6}))?)?(Z|[+-](?:0[0-9]|1[0-4]):[0-5][0-9])?")
_DATE_RE = re.compile(DATE_PATTERN)
_DATETIME_RE = re.compile(DATETIME_PATTERN)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class Moment:
    """A point in time as the language compares it: a calendar day or a UTC instant.

    Plain integers (day ordinal, microseconds since 1970 UTC) so that odd offsets near
    year 1 or 9999 never overflow Python's datetime.
    """

    is_date: bool
    value: int  # date.toordinal() when is_date, else microseconds since 1970-01-01T00:00Z

    def day(self) -> int:
        """The day ordinal (the UTC date of an instant)."""
        return self.value if self.is_date else _EPOCH_ORDINAL + self.value // _DAY_US

    def as_date(self) -> date:
        return date.fromordinal(self.day())

    def as_datetime(self) -> datetime:
        """The instant, or the start (UTC midnight) of the day."""
        micros = (self.value - _EPOCH_ORDINAL) * _DAY_US if self.is_date else self.value
        return _EPOCH + timedelta(microseconds=micros)


def compare_moments(a: Moment, b: Moment) -> int:
    """-1, 0 or 1; a day against an instant compares days."""
    x, y = (a.value, b.value) if a.is_date == b.is_date else (a.day(), b.day())
    return (x > y) - (x < y)


def parse_moment(text: Any) -> Moment | None:
    """A strict ISO 8601 date or datetime string as a Moment; None for anything else."""
    if not isinstance(text, str):
        return None
    match = _DATETIME_RE.fullmatch(text) or _DATE_RE.fullmatch(text)
    if match is None:
        return None
    year, month, day, *clock = match.groups() + (None,) * (8 - len(match.groups()))
    try:
        ordinal = date(int(year), int(month), int(day)).toordinal()
    except ValueError:  # year 0000, 2024-02-30
        return None
    if clock[0] is None:
        return Moment(True, ordinal)
    hour, minute, second, fraction, offset = clock
    seconds = (ordinal - _EPOCH_ORDINAL) * 86_400 + int(hour) * 3600 + int(minute) * 60 + int(second or 0)
    micros = seconds * 1_000_000 + int((fraction or "").ljust(6, "0"))
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        micros -= sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60) * 1_000_000
    return Moment(False, micros)


def moment_of(value: Any) -> Moment | None:
    """Read a value as time: date/datetime objects (naive = UTC) or strict ISO strings."""
    if isinstance(value, datetime):
        offset = value.utcoffset() or timedelta(0)
        # Naive arithmetic first: converting to UTC could leave datetime's range.
        return Moment(False, _micros(value.replace(tzinfo=None) - datetime(1970, 1, 1) - offset))
    if isinstance(value, date):
        return Moment(True, value.toordinal())
    return parse_moment(value)


def moment_of_now(now: datetime) -> Moment:
    moment = moment_of(now)
    assert moment is not None
    return moment


def within_bounds(duration: str, now: datetime) -> tuple[Moment, Moment]:
    """The inclusive instants [now - duration, now] of `within_last`."""
    until = moment_of_now(now)
    return Moment(False, until.value - _micros(parse_duration(duration))), until


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# --- numbers -------------------------------------------------------------------------------


def is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return False
    return value.is_finite() if isinstance(value, Decimal) else isinstance(value, int) or math.isfinite(value)


def as_decimal(value: int | float | Decimal) -> Decimal:
    """Exact decimal of a number; a float stands for its shortest repr, as in JSON."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def is_scalar(value: Any) -> bool:
    """A JSON scalar PostgreSQL can store: no NaN/Infinity, no NUL in strings."""
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, str):
        return "\x00" not in value
    return isinstance(value, (int, float)) and is_number(value)


# --- validation ----------------------------------------------------------------------------


def validate_condition(
    condition: Any, path: str, attr_allowed: Callable[[str], str | None] | None = None
) -> list[Fault]:
    """Return every fault in `condition`, each naming its JSON path.

    `attr_allowed(attr)` returns an error message when an attribute path is not addressable
    in the caller's context (e.g. a journey only knows `profile.*` and `event.*`). Giving it
    also means "evaluated in Python": `has` is then a fault.
    """
    validator = ContextValidator(attr_allowed) if attr_allowed else ConditionValidator()
    return validator.validate(condition, path)


class ConditionValidator:
    """Checks the shape of a condition. Subclasses add what a context knows (attributes, types)."""

    def validate(self, condition: Any, path: str, depth: int = 0) -> list[Fault]:
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
                    faults += self.validate(child, f"{path}.{group}[{i}]", depth + 1)
                return faults
        for key in ("not", "has"):
            if key in condition:
                if set(condition) != {key}:
                    return [Fault(path, f"'{key}' must be the only key of its object")]
                if key == "not":
                    return self.validate(condition["not"], f"{path}.not", depth + 1)
                return self.validate_has(condition["has"], f"{path}.has", depth + 1)
        return self.validate_leaf(condition, path)

    def validate_leaf(self, leaf: dict, path: str) -> list[Fault]:
        unknown = set(leaf) - {"attr", "op", "value"}
        if unknown:
            return [Fault(path, f"unknown key(s) {sorted(unknown)}; expected all/any/not/has "
                                "or attr/op/value")]
        faults: list[Fault] = []
        attr, op = leaf.get("attr"), leaf.get("op")
        attr_ok = isinstance(attr, str) and bool(attr) and all(attr.split("."))
        if not attr_ok:
            faults.append(Fault(f"{path}.attr", "required: a dotted attribute path without empty parts"))
        else:
            faults += self.attr_faults(attr, f"{path}.attr")
        if not isinstance(op, str) or op not in LEAF_OPS:
            faults.append(Fault(f"{path}.op", f"unknown operator {op!r}; expected one of {sorted(LEAF_OPS)}"))
            return faults
        value_faults = _value_faults(leaf, op, f"{path}.value")
        if not value_faults and attr_ok and not faults:
            value_faults = self.typed_faults(attr, op, leaf.get("value"), path)
        return faults + value_faults

    def validate_has(self, has: Any, path: str, depth: int) -> list[Fault]:
        if not isinstance(has, dict):
            return [Fault(path, "'has' takes an object: {dataset, where?, count?, via?}")]
        if unknown := set(has) - HAS_KEYS:
            return [Fault(path, f"unknown key(s) {sorted(unknown)}; expected {sorted(HAS_KEYS)}")]
        faults: list[Fault] = []
        if not isinstance(has.get("dataset"), str) or not has["dataset"]:
            faults.append(Fault(f"{path}.dataset", "required: the name of a dataset"))
        if "via" in has and (not isinstance(has["via"], str) or not has["via"]):
            faults.append(Fault(f"{path}.via", "must be the name of a link"))
        if "count" in has:
            faults += _count_faults(has["count"], f"{path}.count")
        if faults:
            return faults
        child, faults = self.for_has(has, path)
        if "where" in has:
            faults += child.validate(has["where"], f"{path}.where", depth + 1)
        return faults

    # Hooks for subclasses.
    def attr_faults(self, attr: str, path: str) -> list[Fault]:
        return []

    def typed_faults(self, attr: str, op: str, value: Any, path: str) -> list[Fault]:
        return []

    def for_has(self, has: dict, path: str) -> tuple["ConditionValidator", list[Fault]]:
        """The validator of `has.where` and the faults of the relation itself."""
        return ConditionValidator(), []


class ContextValidator(ConditionValidator):
    """Conditions evaluated in Python against a context (journeys): no `has`."""

    def __init__(self, attr_allowed: Callable[[str], str | None]):
        self.attr_allowed = attr_allowed

    def attr_faults(self, attr: str, path: str) -> list[Fault]:
        message = self.attr_allowed(attr)
        return [Fault(path, message)] if message else []

    def validate_has(self, has: Any, path: str, depth: int) -> list[Fault]:
        return [Fault(path, "'has' needs an audience (SQL) context: it counts related rows, "
                            "which conditions evaluated here (journeys) cannot do")]


def _value_faults(leaf: dict, op: str, path: str) -> list[Fault]:
    """Whether the value suits the operator, whatever the attribute's type."""
    value, present = leaf.get("value"), "value" in leaf
    if op == "exists":
        return [] if not present or isinstance(value, bool) else [Fault(path, "'exists' takes no value (or a boolean)")]
    if op == "not_exists":
        return [] if not present else [Fault(path, "'not_exists' takes no value")]
    if not present:
        return [Fault(path, f"required for operator {op!r}")]
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not all(is_scalar(v) for v in value):
            return [Fault(path, f"{op!r} needs a list of scalars")]
        if len(value) > MAX_LIST:
            return [Fault(path, f"{op!r} takes at most {MAX_LIST} values; load longer lists as a dataset")]
    elif op == "between":
        if not (isinstance(value, list) and len(value) == 2 and (
                all(is_number(v) and is_scalar(v) for v in value) or all(isinstance(v, str) for v in value))):
            return [Fault(path, "'between' needs [low, high]: two numbers or two strings")]
        if not all(is_scalar(v) for v in value):
            return [Fault(path, "'between' bounds must be JSON scalars")]
    elif op in COMPARISON_OPS:
        if not (is_number(value) or isinstance(value, str)) or not is_scalar(value):
            return [Fault(path, f"{op!r} needs a number or a string")]
    elif op == "starts_with":
        if not isinstance(value, str) or not is_scalar(value):
            return [Fault(path, "'starts_with' needs a string")]
    elif op in ("before", "after"):
        if (message := moment_value_problem(value)) is not None:
            return [Fault(path, message)]
    elif op == "within_last":
        if (message := duration_problem(value)) is not None:
            return [Fault(path, message)]
    elif not is_scalar(value):
        return [Fault(path, f"{op!r} needs a scalar value")]
    return []


def moment_value_problem(value: Any) -> str | None:
    """Why `value` is not a usable ISO date/datetime for a condition (None: it is)."""
    moment = parse_moment(value)
    if moment is None:
        return "needs an ISO 8601 date (2024-05-31) or datetime (2024-05-31T12:00:00Z)"
    try:
        moment.as_date(), moment.as_datetime()
    except (ValueError, OverflowError):
        return "date out of range (years 0001-9999 in UTC)"
    return None


def duration_problem(value: Any) -> str | None:
    try:
        duration = parse_duration(value)
    except ValueError as error:
        return str(error)
    return f"at most {MAX_WITHIN.days} days" if duration > MAX_WITHIN else None


def _count_faults(count: Any, path: str) -> list[Fault]:
    if not isinstance(count, dict) or set(count) != {"op", "value"}:
        return [Fault(path, "'count' takes {op, value}, e.g. {\"op\": \"gte\", \"value\": 2}")]
    faults = []
    op, value = count["op"], count["value"]
    if not isinstance(op, str) or op not in COUNT_OPS:
        faults.append(Fault(f"{path}.op", f"unknown count operator {op!r}; expected one of {sorted(COUNT_OPS)}"))
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        faults.append(Fault(f"{path}.value", "a count is a non-negative integer"))
    return faults


def count_holds(count: Mapping[str, Any], n: int) -> bool:
    """Whether `n` related rows satisfy a `has` count clause."""
    return _ordered(count["op"], (n > count["value"]) - (n < count["value"]))


# --- evaluation ----------------------------------------------------------------------------


def evaluate(condition: Mapping[str, Any], context: Mapping[str, Any], *, now: datetime | None = None) -> bool:
    """Evaluate a validated condition against a nested dict context (pure; `now` for within_last)."""
    if "all" in condition:
        return all(evaluate(child, context, now=now) for child in condition["all"])
    if "any" in condition:
        return any(evaluate(child, context, now=now) for child in condition["any"])
    if "not" in condition:
        return not evaluate(condition["not"], context, now=now)
    if "has" in condition:
        raise ConditionError("'has' counts related rows: only the SQL backend evaluates it")
    actual = resolve(context, condition["attr"])
    return _leaf(condition["op"], actual, condition.get("value"), now)


def resolve(context: Mapping[str, Any], attr: str) -> Any:
    """Follow a dotted path through nested dicts; anything absent resolves to MISSING."""
    current: Any = context
    for part in attr.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return MISSING
        current = current[part]
    return current


def _leaf(op: str, actual: Any, expected: Any, now: datetime | None) -> bool:
    if op == "within_last" and now is None:
        # Raised whatever the data, so a missing `now` fails every time, not now and then.
        raise ConditionError("'within_last' needs `now` (in a workflow: workflow.now())")
    if op == "exists":
        return (actual is not MISSING) == (expected if isinstance(expected, bool) else True)
    if op == "not_exists":
        return actual is MISSING
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
    if op == "starts_with":
        return isinstance(actual, str) and isinstance(expected, str) and actual.startswith(expected)
    if op == "between":
        return _compare("gte", actual, expected[0]) and _compare("lte", actual, expected[1])
    if op in DATE_OPS:
        return _date_op(op, actual, expected, now)
    return _compare(op, actual, expected)


def _date_op(op: str, actual: Any, expected: Any, now: datetime | None) -> bool:
    moment = moment_of(actual)
    if moment is None:
        return False
    if op == "within_last":
        assert now is not None
        since, until = within_bounds(expected, now)
        return compare_moments(moment, since) >= 0 and compare_moments(moment, until) <= 0
    bound = parse_moment(expected)
    if bound is None:
        return False
    return compare_moments(moment, bound) == (-1 if op == "before" else 1)


def _compare(op: str, actual: Any, expected: Any) -> bool:
    order = _order(actual, expected)
    return order is not None and _ordered(op, order)


def _ordered(op: str, order: int) -> bool:
    """Apply a comparison operator to the sign of (actual - expected)."""
    return {"eq": order == 0, "ne": order != 0, "lt": order < 0, "lte": order <= 0,
            "gt": order > 0, "gte": order >= 0}[op]


def _order(a: Any, b: Any) -> int | None:
    """The sign of a - b when the language orders the pair, else None."""
    if is_number(a) and is_number(b):
        x, y = as_decimal(a), as_decimal(b)
    elif isinstance(a, str) and isinstance(b, str):
        x, y = a, b
    elif isinstance(a, date) and (bound := parse_moment(b)) is not None:
        moment = moment_of(a)
        assert moment is not None
        return compare_moments(moment, bound)
    else:
        return None
    return (x > y) - (x < y)


def _equal(a: Any, b: Any) -> bool:
    order = _order(a, b)
    if order is not None:
        return order == 0
    return type(a) is type(b) and a == b  # booleans, null (inside arrays)
