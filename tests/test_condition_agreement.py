"""The two backends of the condition language agree (DESIGN.md): random conditions, random rows.

Rows go into real tables (built from DatasetSchemas by table_for) in the test database. For
every condition, every sub-condition of it (so a wrong leaf cannot hide inside an `any`) and
every row, the Python evaluator's answer equals the SQL compiler's, and the SQL value is never
NULL (so `not` is plain negation). Python evaluates both the values as generated (JSON forms,
aware datetimes in any offset) and the values psycopg reads back. `has` (SQL only) is checked
against a small Python oracle that counts related rows with the evaluator.

Condition values are drawn half from generic pools and half from the example's own rows
(the value itself, prefixes, wildcard variants, neighbours, the exact distance to `now`), so
that boundaries are actually hit rather than merely possible.
"""

import contextlib
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.condition_sql import compile_condition, table_for
from models.condition_validation import validate_audience_condition
from models.conditions import (
    COUNT_OPS,
    LEAF_OPS,
    MAX_WITHIN,
    count_holds,
    evaluate,
    parse_moment,
    resolve,
    validate_condition,
)
from models.dataset_schema import PROFILES, DatasetSchema, Link, Registry
from models.settings import sqlalchemy_url

NOW = datetime(2024, 6, 15, 12, 34, 56, 789000, tzinfo=timezone.utc)
SUFFIX = uuid.uuid4().hex[:10]
ITEMS, OWNERS = f"agree_items_{SUFFIX}", f"agree_owners_{SUFFIX}"
REGISTRY = Registry(datasets={
    "profiles": PROFILES,
    ITEMS: DatasetSchema(
        name=ITEMS, primary_key="id",
        columns={"id": "text", "t": "text", "i": "integer", "n": "numeric", "b": "boolean",
                 "d": "date", "ts": "timestamptz", "j": "jsonb", "owner_id": "text"},
        links={"owner": Link(dataset=OWNERS, column="owner_id")}, json_attributes_column="j"),
    OWNERS: DatasetSchema(name=OWNERS, primary_key="id", columns={"id": "text", "t": "text", "j": "jsonb"},
                          json_attributes_column="j"),
})
ITEM_ATTRS = ["t", "i", "n", "b", "d", "ts", "j", "j.a", "j.b", "j.c", "j.a.x", "j.zz",
              "owner_id", "owner.t", "owner.j.a", "owner.j.a.x"]
OWNER_ATTRS = ["t", "j", "j.a", "j.b", "j.a.x"]
OWNER_IDS = ["o1", "o2", "o3"]
STATS = {"examples": 0, "conditions": 0, "checks": 0, "true": 0}

# --- generic values --------------------------------------------------------------------------

# Strings that matter: quotes, LIKE wildcards, backslashes, combining marks, emoji, case,
# prefixes of each other, SQL, and near-dates (valid, impossible, odd forms).
STRING_POOL = ["", "a", "A", "ab", "abc", "b", "é", "e\u0301", "😀", "a😀", "'", "''", "\"", "%", "_",
               "a%", "a_c", "\\", "\\%", " ", "FR", "fr", "x'; drop table profiles;--",
               "2024-06-15", "2024-06-14", "2024-02-29", "2024-02-30", "2023-02-29", "0000-01-01",
               "2024-04-31", "2024-06-15T12:00:00Z", "2024-06-15 12:00", "2024-06-15T24:00:00Z", "2024-6-15",
               "2024-06-15T12:34:56.789+02:00", "2024-06-15T12:34:56+15:00", "２０２４-06-15",
               "2024-06-15\n", "0000-02-30T10:00Z", "10", "1.5", "true", "null"]
INT_POOL = [0, 1, -1, 2, 30, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**20]
FLOAT_POOL = [0.0, -0.0, 0.1, 1.5, 30.0, -2.5, 1e16, 1e-7, 2.0**63, 0.30000000000000004]
TEXT_ALPHABET = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")

strings = st.one_of(st.sampled_from(STRING_POOL), st.text(TEXT_ALPHABET, max_size=5),
                    st.text(alphabet="ab%_'\\é😀", max_size=4))
ints = st.one_of(st.sampled_from(INT_POOL), st.integers(-3, 40))
floats = st.one_of(st.sampled_from(FLOAT_POOL), st.floats(allow_nan=False, allow_infinity=False))
numbers = st.one_of(ints, floats)
scalars = st.one_of(st.none(), st.booleans(), numbers, strings)

offsets = st.sampled_from([timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5)),
                           timezone(timedelta(hours=14)), timezone(timedelta(hours=-12)),
                           timezone(timedelta(hours=5, minutes=30))])
near_dates = st.integers(-800, 800).map(lambda days: (NOW + timedelta(days=days)).date())
any_dates = st.one_of(near_dates, st.dates(date(1, 1, 2), date(9999, 12, 30)))
# UTC midnights (± 1 µs) are where a timestamp meets a calendar date.
midnights = st.builds(lambda day, micros, tz: (datetime.combine(day, time(), timezone.utc)
                                               + timedelta(microseconds=micros)).astimezone(tz),
                      near_dates, st.sampled_from([-1, 0, 1]), offsets)
near_datetimes = st.builds(lambda seconds, tz: (NOW + timedelta(seconds=seconds)).astimezone(tz),
                           st.integers(-60_000_000, 60_000_000), offsets)
any_datetimes = st.one_of(near_datetimes, midnights,
                          st.datetimes(datetime(2, 1, 1), datetime(9998, 12, 31), timezones=offsets))


def iso_forms(moment: date | datetime) -> list[str]:
    """Every accepted spelling of a date/datetime (Z, offsets, space, no seconds, naive)."""
    if not isinstance(moment, datetime):
        return [moment.isoformat()]
    utc = moment.astimezone(timezone.utc)
    return [moment.isoformat(), moment.isoformat(sep=" ", timespec="minutes"),
            utc.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            utc.replace(tzinfo=None).isoformat(), utc.date().isoformat()]


iso_strings = st.builds(lambda moment, i: iso_forms(moment)[i % len(iso_forms(moment))],
                        st.one_of(any_dates, any_datetimes), st.integers(0, 4))
json_scalars = st.sampled_from([False, False, True]).flatmap(lambda iso: iso_strings if iso else scalars)
json_values = st.one_of(
    json_scalars,
    st.lists(json_scalars | st.lists(json_scalars, max_size=2), max_size=4),
    st.dictionaries(st.sampled_from(["x", "y"]), json_scalars, max_size=2),
)
json_objects = st.dictionaries(st.sampled_from(["a", "b", "c"]), json_values, max_size=3)
durations = st.sampled_from(["PT1H", "PT36H", "P1D", "P7D", "P1DT12H", "P30D", "P90D", "P400D", "P3000D"])

# --- rows ------------------------------------------------------------------------------------

decimals = st.one_of(st.sampled_from([Decimal("0"), Decimal("-0"), Decimal("0.1"), Decimal("1.5"), Decimal("30"),
                                      Decimal("9223372036854775808"), Decimal("1E+16")]),
                     st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-10**6, max_value=10**6),
                     floats.map(lambda f: Decimal(repr(f))))
texts = st.booleans().flatmap(lambda iso: iso_strings if iso else strings)  # date ops read text as time


def maybe(strategy):
    return st.one_of(st.none(), strategy)


item_rows = st.fixed_dictionaries({
    "t": maybe(texts), "i": maybe(ints.filter(lambda v: -(2**63) <= v < 2**63)), "n": maybe(decimals),
    "b": maybe(st.booleans()), "d": maybe(any_dates), "ts": maybe(any_datetimes),
    "j": maybe(json_objects), "owner_id": st.sampled_from([None, "o1", "o2", "o3", "o9"]),
})
owner_rows = st.fixed_dictionaries({"t": maybe(texts), "j": maybe(json_objects)})

# --- values taken from the rows --------------------------------------------------------------


def scalars_in(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in scalars_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in scalars_in(v)]
    return [] if value is None else [value]


def variants(value: Any) -> list[Any]:
    """JSON scalars equal to, next to, or confusable with a stored value."""
    if isinstance(value, bool):
        return [value, not value, int(value)]
    if isinstance(value, str):
        out = [value, value[:1], value[: len(value) // 2], value[1:], value.upper(), value + "x"]
        if value:
            out += ["_" + value[1:], "%" + value[1:], value[:-1] + "%"]
        moment = parse_moment(value)
        with contextlib.suppress(OverflowError, ValueError):  # near year 1 or 9999
            out += variants(moment.as_date() if moment.is_date else moment.as_datetime()) if moment else []
        return out
    if isinstance(value, int):
        return [value, value + 1, value - 1, float(value)]
    if isinstance(value, (float, Decimal)):
        as_float = float(value)
        out = [as_float, -as_float]
        if as_float == int(as_float):
            out.append(int(as_float))
        return out
    if isinstance(value, (date, datetime)):
        until_now = NOW - (value if isinstance(value, datetime) else datetime.combine(value, time(), timezone.utc))
        out = iso_forms(value)
        if isinstance(value, datetime):
            out += [(value + timedelta(microseconds=1)).isoformat(), (value - timedelta(microseconds=1)).isoformat()]
        else:
            out += [(value + timedelta(days=1)).isoformat()]
        day = value.astimezone(timezone.utc).date() if isinstance(value, datetime) else value
        out += [(day - timedelta(days=1)).isoformat(), (day + timedelta(days=1)).isoformat()]
        if timedelta(0) < until_now <= MAX_WITHIN:
            out.append(f"P{until_now.days}DT{until_now.seconds}.{until_now.microseconds:06d}S")
        return out
    return [value]


def pools(contexts: list[dict], attrs: list[str]) -> dict[str, tuple[list[Any], list[str]]]:
    """Per attribute: variants of the values the rows hold there, and exact durations to `now`."""
    out = {}
    for attr in attrs:
        values = [v for ctx in contexts for s in scalars_in(resolve(ctx, attr)) for v in variants(s)]
        durations = [v for v in values if isinstance(v, str) and v.startswith("P") and v[1:2].isdigit()]
        values = [v for v in values if v not in durations] or [0]
        out[attr] = (values, durations or ["P1D"])
    return out


# --- conditions ------------------------------------------------------------------------------


def half(from_rows, generic):
    """Pick from the rows half of the time (st.one_of would flatten nested one_ofs and weigh
    each generic branch like the rows)."""
    return st.booleans().flatmap(lambda rows: from_rows if rows else generic)


def value_for(op: str, seen: list[Any], seen_durations: list[str]):
    seen_strings = [v for v in seen if isinstance(v, str)] or ["a"]
    seen_numbers = [v for v in seen if isinstance(v, (int, float)) and not isinstance(v, bool)] or [0]
    scalar = half(st.sampled_from(seen), json_scalars)
    if op in ("eq", "ne", "contains"):
        return scalar
    if op in ("in", "not_in"):
        return st.lists(scalar, max_size=4)
    if op in ("lt", "lte", "gt", "gte"):
        return half(st.sampled_from(seen_numbers + seen_strings), st.one_of(numbers, strings, iso_strings))
    if op == "between":
        number = half(st.sampled_from(seen_numbers), numbers)
        text = half(st.sampled_from(seen_strings), st.one_of(strings, iso_strings))
        return st.one_of(st.lists(number, min_size=2, max_size=2), st.lists(text, min_size=2, max_size=2))
    if op == "starts_with":
        return half(st.sampled_from(seen_strings), strings)
    if op in ("before", "after"):
        return half(st.sampled_from(seen_strings), iso_strings).filter(
            lambda text: validate_condition({"attr": "x", "op": "before", "value": text}, "$") == [])
    if op == "within_last":
        return half(st.sampled_from(seen_durations), durations)
    raise AssertionError(op)


@st.composite
def leaves(draw, attrs: list[str], pool: dict[str, tuple[list[Any], list[str]]]) -> dict:
    attr, op = draw(st.sampled_from(attrs)), draw(st.sampled_from(sorted(LEAF_OPS)))
    seen, seen_durations = pool[attr]
    if op == "not_exists":
        return {"attr": attr, "op": op}
    if op == "exists":
        choice = draw(st.sampled_from([None, True, False]))
        return {"attr": attr, "op": op} if choice is None else {"attr": attr, "op": op, "value": choice}
    return {"attr": attr, "op": op, "value": draw(value_for(op, seen, seen_durations))}


def trees(leaf_strategy):
    return st.recursive(leaf_strategy, lambda children: st.one_of(
        st.builds(lambda c: {"all": c}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda c: {"any": c}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, children),
    ), max_leaves=5)


def has_clauses(item_conditions):
    @st.composite
    def build(draw) -> dict:
        has: dict[str, Any] = {"dataset": ITEMS}
        if draw(st.booleans()):
            has["where"] = draw(item_conditions)
        if draw(st.booleans()):
            has["count"] = {"op": draw(st.sampled_from(sorted(COUNT_OPS))), "value": draw(st.integers(0, 3))}
        return {"has": has}
    return build()


def subconditions(condition: dict) -> list[dict]:
    """The condition and every node below it (a `has` stays whole: its `where` is an item condition)."""
    children = condition.get("all") or condition.get("any") or ([condition["not"]] if "not" in condition else [])
    return [condition] + [node for child in children for node in subconditions(child)]


# --- harness ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(database_url: str):
    engine = sa.create_engine(sqlalchemy_url(database_url))
    with engine.begin() as conn:
        table_for(REGISTRY, OWNERS).create(conn)
        table_for(REGISTRY, ITEMS).create(conn)
    yield engine
    with engine.begin() as conn:
        table_for(REGISTRY, ITEMS).drop(conn)
        table_for(REGISTRY, OWNERS).drop(conn)
    engine.dispose()


def check(conn, dimension: str, conditions: list[dict], row_sets: list[list[dict]], python) -> None:
    """One SELECT computes every condition for every row; each must equal Python's answer for
    each representation of the rows (as generated, as read back)."""
    table = table_for(REGISTRY, dimension)
    for condition in conditions:
        assert validate_condition(condition, "$") == [], condition
        assert validate_audience_condition(REGISTRY, dimension, condition, "$", check_types=False) == []
    columns = [compile_condition(REGISTRY, dimension, c, NOW).label(f"c{n}") for n, c in enumerate(conditions)]
    results = {row[0]: row[1:] for row in conn.execute(sa.select(table.c.id, *columns))}
    for rows in row_sets:
        for row in rows:
            for condition, got in zip(conditions, results[row["id"]], strict=True):
                expected = python(condition, row)
                assert got is not None, ("SQL gave NULL", condition, row)
                assert got is expected, (condition, row, f"python={expected} sql={got}")
                STATS["checks"] += 1
                STATS["true"] += expected
    STATS["conditions"] += len(conditions)


def with_owners(items: list[dict], owners: list[dict]) -> list[dict]:
    """Item contexts as a forward link shows them: the owner row nested under `owner`, if any."""
    by_id = {owner["id"]: owner for owner in owners}
    return [{**item, "owner": by_id[item["owner_id"]]} if item["owner_id"] in by_id else item for item in items]


def store(conn, dataset: str, rows: list[dict], jsonb_null: bool) -> list[dict]:
    """Insert rows and read them back as psycopg returns them."""
    table = table_for(REGISTRY, dataset)
    # A missing jsonb value is SQL NULL in some examples, jsonb 'null' in others: both are missing.
    null = sa.JSON.NULL if jsonb_null else sa.null()
    if rows:
        conn.execute(table.insert(), [{**row, "j": null if row["j"] is None else row["j"]} for row in rows])
    return [dict(r._mapping) for r in conn.execute(sa.select(table))]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), owners=st.lists(owner_rows, min_size=3, max_size=3),
       items=st.lists(item_rows, min_size=1, max_size=8), jsonb_null=st.booleans())
def test_python_and_sql_agree(engine, data, owners, items, jsonb_null):
    STATS["examples"] += 1
    owners = [{"id": key, **row} for key, row in zip(OWNER_IDS, owners, strict=True)]
    items = [{"id": f"i{n}", **row} for n, row in enumerate(items)]
    item_pools = pools(with_owners(items, owners), ITEM_ATTRS)
    item_conditions = trees(leaves(ITEM_ATTRS, item_pools))
    owner_leaves = leaves(OWNER_ATTRS, pools(owners, OWNER_ATTRS))
    owner_conditions = trees(st.one_of(owner_leaves, has_clauses(item_conditions)))
    item_conds = data.draw(st.lists(item_conditions, min_size=1, max_size=5), label="item conditions")
    owner_conds = data.draw(st.lists(owner_conditions, min_size=1, max_size=2), label="owner conditions")
    with engine.connect() as conn, conn.begin() as transaction:
        stored_owners = store(conn, OWNERS, owners, jsonb_null)
        stored_items = store(conn, ITEMS, items, jsonb_null)
        contexts = [with_owners(items, owners), with_owners(stored_items, stored_owners)]
        item_nodes = [node for c in item_conds for node in subconditions(c)]
        check(conn, ITEMS, item_nodes, contexts, lambda c, row: evaluate(c, row, now=NOW))
        owner_nodes = [node for c in owner_conds for node in subconditions(c)]
        for owner_rows_, item_rows_ in ((owners, contexts[0]), (stored_owners, contexts[1])):
            check(conn, OWNERS, owner_nodes, [owner_rows_], lambda c, row, items=item_rows_: oracle(c, row, items))
        transaction.rollback()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), attr=st.sampled_from(ITEM_ATTRS), owners=st.lists(owner_rows, min_size=3, max_size=3),
       items=st.lists(item_rows, min_size=4, max_size=10), jsonb_null=st.booleans())
def test_leaves_agree(engine, data, attr, owners, items, jsonb_null):
    """Many leaves on one attribute, valued from that attribute's rows: boundaries get hit."""
    STATS["examples"] += 1
    owners = [{"id": key, **row} for key, row in zip(OWNER_IDS, owners, strict=True)]
    items = [{"id": f"i{n}", **row} for n, row in enumerate(items)]
    pool = pools(with_owners(items, owners), [attr])
    conditions = data.draw(st.lists(leaves([attr], pool), min_size=8, max_size=20), label="leaves")
    with engine.connect() as conn, conn.begin() as transaction:
        stored_owners = store(conn, OWNERS, owners, jsonb_null)
        stored_items = store(conn, ITEMS, items, jsonb_null)
        contexts = [with_owners(items, owners), with_owners(stored_items, stored_owners)]
        check(conn, ITEMS, conditions, contexts, lambda c, row: evaluate(c, row, now=NOW))
        transaction.rollback()


def oracle(condition: dict, owner: dict, items: list[dict]) -> bool:
    """Python meaning of owner conditions with `has` (which the evaluator refuses)."""
    if "all" in condition:
        return all(oracle(c, owner, items) for c in condition["all"])
    if "any" in condition:
        return any(oracle(c, owner, items) for c in condition["any"])
    if "not" in condition:
        return not oracle(condition["not"], owner, items)
    if "has" in condition:
        has = condition["has"]
        related = [item for item in items if item["owner_id"] == owner["id"]]
        n = sum(1 for item in related if "where" not in has or evaluate(has["where"], item, now=NOW))
        return count_holds(has["count"], n) if "count" in has else n > 0
    return evaluate(condition, owner, now=NOW)


# --- grids: every operator x every edge value x every row, deterministically -------------------

GRID_NUMBERS = [0, -0.0, 0.1, 0.30000000000000004, 1, 1.0, 1.5, -1, 2**53, 2**53 + 1, 2**63 - 1, 2**63,
                -(2**63), -(2**63) - 1, 1e16, 10**20, 1e-7, True]
GRID_STRINGS = ["", "a", "A", "ab", "abc", "abd", "a_c", "a%c", "%", "_", "\\", "a\\", "'", "é", "e\u0301", "😀",
                "a😀", "b", "z", "2024-06-14", "2024-06-14T00:00:00Z"]
_P = datetime(2024, 6, 14, tzinfo=timezone.utc)  # a UTC midnight: where days meet instants
GRID_TIMES = ["2024-06-14", "2024-06-13", "2024-06-15", "2024-06-14T00:00:00Z", "2024-06-14T00:00:00.000001Z",
              "2024-06-13T23:59:59.999999Z", "2024-06-14T14:00:00+14:00", "2024-06-13T12:00:00-12:00",
              "2024-06-13T23:30:00-00:30", "2024-06-14T00:00:00", "2024-06-14 00:00", "2024-06-14T00:00Z",
              NOW.isoformat(), (NOW - timedelta(days=1)).isoformat(), (NOW - timedelta(days=1)).date().isoformat(),
              NOW.date().isoformat(), (NOW + timedelta(microseconds=1)).isoformat(), "2024-02-29", "2024-02-30",
              "0001-01-01T00:00:00-05:00", "9999-12-31", "9999-12-31T23:00:00Z", "2024-06-14T24:00:00Z"]
GRID_OPS = ["eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "between", "contains", "starts_with",
            "before", "after", "within_last", "exists", "not_exists"]


def _grid_row(n: int, value: Any) -> dict:
    """One row holding `value` in every column it fits, as the typed column would hold it."""
    row: dict[str, Any] = {"id": f"g{n}", "t": None, "i": None, "n": None, "b": None, "d": None, "ts": None,
                           "j": {"a": value, "b": [value, "x"]}, "owner_id": None}
    if isinstance(value, bool):
        row["b"] = value
    elif isinstance(value, (int, float)):
        row["n"] = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        if value == int(value) and -(2**63) <= int(value) < 2**63:
            row["i"] = int(value)
    else:
        row["t"] = value
        moment = parse_moment(value)
        with contextlib.suppress(OverflowError, ValueError):
            if moment is not None and moment.is_date:
                row["d"] = moment.as_date()
            elif moment is not None:
                row["ts"] = moment.as_datetime().astimezone(timezone(timedelta(hours=-3)))
    return row


def _grid_values(op: str, values: list[Any]) -> list[Any]:
    scalars = [v for v in values if validate_condition({"attr": "x", "op": op, "value": v}, "$") == []]
    if op in ("in", "not_in"):
        return [values[i:i + 2] for i in range(len(values))] + [[]]
    if op == "between":
        return [[low, high] for low in values[::2] for high in values[1::3]
                if validate_condition({"attr": "x", "op": op, "value": [low, high]}, "$") == []]
    if op == "within_last":
        since = [NOW - m.as_datetime() for v in values if (m := parse_moment(v)) is not None
                 if not m.is_date and timedelta(0) < NOW - m.as_datetime() <= MAX_WITHIN]
        spans = {d + delta for d in since for delta in (timedelta(0), timedelta(microseconds=1))}
        return [f"P{d.days}DT{d.seconds}.{d.microseconds:06d}S" for d in sorted(spans)] + ["P1D", "PT12H"]
    if op in ("exists", "not_exists"):
        return [None]
    return scalars


@pytest.mark.parametrize("values, attrs", [
    (GRID_NUMBERS, ["i", "n", "b", "j.a", "j.b", "t"]),
    (GRID_STRINGS, ["t", "j.a", "j.b", "i"]),
    (GRID_TIMES, ["d", "ts", "t", "j.a", "j.b"]),
], ids=["numbers", "strings", "times"])
def test_grid_agrees(engine, values, attrs):
    rows = [_grid_row(n, v) for n, v in enumerate(values)]
    conditions = [{"attr": attr, "op": op} | ({} if value is None else {"value": value})
                  for attr in attrs for op in GRID_OPS for value in _grid_values(op, values)]
    with engine.connect() as conn, conn.begin() as transaction:
        stored = store(conn, ITEMS, rows, jsonb_null=False)
        for start in range(0, len(conditions), 500):  # a SELECT has at most 1664 columns
            check(conn, ITEMS, conditions[start:start + 500], [rows, stored], lambda c, row: evaluate(c, row, now=NOW))
        transaction.rollback()


def test_report_volume():
    """Runs after the property test (file order): how much was checked, and that it was not vacuous."""
    print(f"\nagreement: {STATS}")
    if STATS["examples"]:
        assert 0.15 < STATS["true"] / STATS["checks"] < 0.85
