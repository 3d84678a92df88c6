"""The SQL backend of the condition language on real PostgreSQL: every operator, `has` with
counts, forward links, jsonb attributes, time, typed validation and hostile input.

The datasets here have unique names (the test database is shared by the session) and the
profiles rows a unique id prefix; every query is restricted to them.
"""

import uuid
from datetime import date, datetime, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from models.condition_sql import compile_condition, table_for
from models.condition_validation import validate_audience_condition
from models.conditions import ConditionError, evaluate, validate_condition
from models.dataset_schema import PROFILES, DatasetSchema, Link, Registry
from models.faults import DefinitionError
from models.settings import sqlalchemy_url

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=timezone.utc)
SUFFIX = uuid.uuid4().hex[:10]
BOOKINGS, HOTELS, REFERRALS = f"bookings_{SUFFIX}", f"hotels_{SUFFIX}", f"referrals_{SUFFIX}"
P = f"sqlt{SUFFIX}-"  # profile id prefix
EVIL = "x'; drop table profiles;--"

REGISTRY = Registry(datasets={
    "profiles": PROFILES,
    BOOKINGS: DatasetSchema(
        name=BOOKINGS, primary_key="booking_id",
        columns={"booking_id": "text", "profile_id": "text", "hotel_id": "text", "checkin": "date",
                 "amount": "numeric", "status": "text", "nights": "integer", "paid": "boolean",
                 "created_at": "timestamptz", "meta": "jsonb"},
        links={"profile": Link(dataset="profiles", column="profile_id"),
               "hotel": Link(dataset=HOTELS, column="hotel_id")}),
    HOTELS: DatasetSchema(name=HOTELS, primary_key="hotel_id",
                          columns={"hotel_id": "text", "city": "text", "stars": "integer"}),
    REFERRALS: DatasetSchema(
        name=REFERRALS, primary_key="id", columns={"id": "text", "referrer_id": "text", "referee_id": "text"},
        links={"referrer": Link(dataset="profiles", column="referrer_id"),
               "referee": Link(dataset="profiles", column="referee_id")}),
})

PROFILE_ROWS = [
    {"id": P + "1", "email": "ada@example.com",
     "attributes": {"country": "FR", "vip": True, "age": 30, "signup": "2024-05-20", "tags": ["a", "b"],
                    "name": "Ada", "address": {"city": "Paris"}}},
    {"id": P + "2", "email": "bob@example.org",
     "attributes": {"country": "DE", "vip": False, "age": 41.5, "signup": "2023-12-31T23:30:00-02:00",
                    "name": "O'Brien 100%_\\", "tags": []}},
    {"id": P + "3", "email": None, "attributes": {"country": "FR", "age": "30", "name": "Zoë", "vip": None}},
    {"id": P + "4", "email": "dee@example.com", "attributes": {}},
    {"id": P + "5", "email": "eve@example.com", "attributes": {EVIL: 1, "country": EVIL, "name": "_%"}},
]
HOTEL_ROWS = [{"hotel_id": "h1", "city": "Paris", "stars": 5}, {"hotel_id": "h2", "city": "Lyon", "stars": 3},
              {"hotel_id": "h3", "city": None, "stars": 4}]


def booking(key, profile, hotel, checkin, status, amount, nights=None, paid=None, created_at=None, meta=None):
    return {"booking_id": key, "profile_id": P + profile if profile else None, "hotel_id": hotel,
            "checkin": checkin, "status": status, "amount": amount, "nights": nights, "paid": paid,
            "created_at": created_at, "meta": meta}


BOOKING_ROWS = [
    booking("b1", "1", "h1", date(2024, 6, 5), "confirmed", "120.50", 2, True,
            datetime(2024, 6, 1, 10, tzinfo=timezone.utc), {"channel": "web"}),
    booking("b2", "1", "h2", date(2024, 5, 6), "confirmed", "80", 1, False,
            datetime(2024, 5, 1, 23, 59, tzinfo=timezone.utc)),
    booking("b3", "1", "h1", date(2023, 11, 28), "cancelled", "200", 7, None,
            datetime(2023, 11, 1, tzinfo=timezone.utc)),
    booking("b4", "2", "h1", date(2024, 6, 10), "confirmed", "300", 3, True,
            datetime(2024, 6, 15, 11, 59, tzinfo=timezone.utc), {"channel": "app"}),
    booking("b5", "2", "h9", date(2024, 6, 14), "pending", None, None, None, None, {"channel": None}),
    booking("b6", "3", None, date(2024, 3, 17), "confirmed", "99.99", 2, True,
            datetime(2024, 3, 1, tzinfo=timezone.utc), ["web", "app"]),
]
REFERRAL_ROWS = [{"id": "r1", "referrer_id": P + "1", "referee_id": P + "2"},
                 {"id": "r2", "referrer_id": P + "1", "referee_id": P + "3"}]


@pytest.fixture(scope="module")
def engine(database_url: str):
    engine = sa.create_engine(sqlalchemy_url(database_url))
    created = [table_for(REGISTRY, name) for name in (HOTELS, BOOKINGS, REFERRALS)]
    with engine.begin() as conn:
        for table in created:
            table.create(conn)
        conn.execute(table_for(REGISTRY, "profiles").insert(), PROFILE_ROWS)
        conn.execute(table_for(REGISTRY, HOTELS).insert(), HOTEL_ROWS)
        conn.execute(table_for(REGISTRY, BOOKINGS).insert(), BOOKING_ROWS)
        conn.execute(table_for(REGISTRY, REFERRALS).insert(), REFERRAL_ROWS)
    yield engine
    with engine.begin() as conn:
        for table in reversed(created):
            table.drop(conn)
        profiles = table_for(REGISTRY, "profiles")
        conn.execute(profiles.delete().where(profiles.c.id.startswith(P)))
    engine.dispose()


def members(engine, dimension: str, condition: Any, now: datetime = NOW) -> set[str]:
    """Keys matching `condition` (profile ids without the run prefix)."""
    assert validate_audience_condition(REGISTRY, dimension, condition) == []
    table = table_for(REGISTRY, dimension)
    key = table.c[REGISTRY.datasets[dimension].primary_key]
    query = sa.select(key).where(compile_condition(REGISTRY, dimension, condition, now))
    if dimension == "profiles":
        query = query.where(key.startswith(P))
    with engine.connect() as conn:
        return {k.removeprefix(P) for k in conn.execute(query).scalars()}


def leaf(attr: str, op: str, value: Any = ..., /) -> dict:
    return {"attr": attr, "op": op} | ({} if value is ... else {"value": value})


# --- tables ----------------------------------------------------------------------------------


def test_table_for_builds_typed_tables_from_the_registry_only():
    table = table_for(REGISTRY, BOOKINGS)
    assert table.name == f"ds_{BOOKINGS}"
    types = {c.name: type(c.type).__name__ for c in table.columns}
    assert types == {"booking_id": "Text", "profile_id": "Text", "hotel_id": "Text", "checkin": "Date",
                     "amount": "Numeric", "status": "Text", "nights": "BigInteger", "paid": "Boolean",
                     "created_at": "DateTime", "meta": "JSONB"}
    assert table.c.created_at.type.timezone is True
    assert [c.name for c in table.primary_key] == ["booking_id"]
    assert table_for(REGISTRY, BOOKINGS) is table  # memoised: compiled expressions refer to it
    assert table_for(REGISTRY, "profiles").name == "profiles"
    with pytest.raises(KeyError):
        table_for(REGISTRY, "nope")


# --- leaves ----------------------------------------------------------------------------------

A = "attributes."


@pytest.mark.parametrize("condition, expected", [
    (leaf(A + "country", "eq", "FR"), {"1", "3"}),
    (leaf(A + "age", "eq", 30), {"1"}),  # "30" (a string) is not the number 30
    (leaf(A + "age", "eq", 30.0), {"1"}),
    (leaf(A + "age", "eq", "30"), {"3"}),
    (leaf(A + "vip", "eq", True), {"1"}),
    (leaf(A + "vip", "eq", 1), set()),  # booleans are not numbers
    (leaf(A + "vip", "ne", True), {"2"}),  # p3's vip is JSON null: missing, so ne is false
    (leaf(A + "country", "ne", "FR"), {"2", "5"}),
    (leaf(A + "country", "in", ["DE", "FR", None]), {"1", "2", "3"}),
    (leaf(A + "country", "not_in", ["FR"]), {"2", "5"}),
    (leaf(A + "age", "gt", 30), {"2"}),
    (leaf(A + "age", "gte", 30), {"1", "2"}),
    (leaf(A + "age", "lt", 41.5), {"1"}),
    (leaf(A + "age", "between", [30, 41.5]), {"1", "2"}),
    (leaf(A + "age", "between", ["3", "4"]), {"3"}),  # strings compare as strings
    (leaf(A + "name", "gt", "Zo"), {"3", "5"}),  # code points: "_%" > "Zoë" > "Zo" > "O'Brien" > "Ada"
    (leaf(A + "name", "lt", "B"), {"1"}),
    (leaf(A + "name", "contains", "%_"), {"2"}),  # % and _ are plain characters
    (leaf(A + "name", "contains", "_"), {"2", "5"}),
    (leaf(A + "name", "starts_with", "_"), {"5"}),
    (leaf(A + "name", "starts_with", "O'"), {"2"}),
    (leaf(A + "name", "contains", "\\"), {"2"}),
    (leaf(A + "tags", "contains", "a"), {"1"}),  # array membership
    (leaf(A + "tags", "contains", "c"), set()),
    (leaf(A + "address.city", "eq", "Paris"), {"1"}),  # nested keys
    (leaf(A + "address", "exists"), {"1"}),
    (leaf(A + "vip", "exists"), {"1", "2"}),
    (leaf(A + "vip", "not_exists"), {"3", "4", "5"}),
    (leaf(A + "vip", "exists", False), {"3", "4", "5"}),
    (leaf("email", "contains", "@example.com"), {"1", "4", "5"}),
    (leaf("email", "not_exists"), {"3"}),
    (leaf("email", "ne", "ada@example.com"), {"2", "4", "5"}),  # NULL email: missing
    (leaf("email", "gte", "c"), {"4", "5"}),
    (leaf(A + "signup", "after", "2024-01-01"), {"1"}),
    # 2023-12-31T23:30-02:00 is 2024-01-01T01:30Z: its UTC date is 2024-01-01, not after it
    (leaf(A + "signup", "before", "2024-01-02"), {"2"}),
    (leaf(A + "signup", "after", "2024-01-01T01:00:00Z"), {"1", "2"}),
    (leaf(A + "signup", "within_last", "P30D"), {"1"}),
    (leaf(A + "signup", "eq", "2024-05-20"), {"1"}),
    (leaf(A + EVIL, "eq", 1), {"5"}),  # a hostile key is just a key
    (leaf(A + "country", "eq", EVIL), {"5"}),
])
def test_profile_leaves(engine, condition, expected):
    assert members(engine, "profiles", condition) == expected
    assert members(engine, "profiles", {"not": condition}) == {"1", "2", "3", "4", "5"} - expected


@pytest.mark.parametrize("condition, expected", [
    (leaf("status", "eq", "confirmed"), {"b1", "b2", "b4", "b6"}),
    (leaf("status", "in", ["pending", "cancelled"]), {"b3", "b5"}),
    (leaf("status", "starts_with", "c"), {"b1", "b2", "b3", "b4", "b6"}),
    (leaf("amount", "gt", 100), {"b1", "b3", "b4"}),
    (leaf("amount", "eq", 120.5), {"b1"}),
    (leaf("amount", "lte", 99.99), {"b2", "b6"}),
    (leaf("amount", "ne", 80), {"b1", "b3", "b4", "b6"}),  # NULL amount is missing
    (leaf("amount", "between", [80, 120.5]), {"b1", "b2", "b6"}),
    (leaf("nights", "gte", 2), {"b1", "b3", "b4", "b6"}),
    (leaf("nights", "lt", 1.5), {"b2"}),
    (leaf("nights", "eq", 2.0), {"b1", "b6"}),
    (leaf("nights", "in", [1, 7, 2**70]), {"b2", "b3"}),
    (leaf("paid", "eq", True), {"b1", "b4", "b6"}),
    (leaf("paid", "ne", True), {"b2"}),
    (leaf("paid", "not_exists"), {"b3", "b5"}),
    (leaf("checkin", "before", "2024-05-06"), {"b3", "b6"}),
    (leaf("checkin", "after", "2024-06-10"), {"b5"}),
    (leaf("checkin", "eq", "2024-06-10"), {"b4"}),
    (leaf("checkin", "between", ["2024-05-06", "2024-06-10"]), {"b1", "b2", "b4"}),
    (leaf("checkin", "within_last", "P10D"), {"b1", "b4", "b5"}),  # since 2024-06-05 (UTC date), both ends in
    (leaf("checkin", "within_last", "P40D"), {"b1", "b2", "b4", "b5"}),
    (leaf("created_at", "within_last", "PT1H"), {"b4"}),
    (leaf("created_at", "after", "2024-06-01T09:59:59Z"), {"b1", "b4"}),
    (leaf("created_at", "eq", "2024-05-01"), {"b2"}),  # a date against a timestamp: its UTC day
    (leaf("created_at", "lte", "2024-05-01"), {"b2", "b3", "b6"}),
    (leaf("created_at", "gt", "2024-05-01"), {"b1", "b4"}),
    (leaf("meta.channel", "eq", "web"), {"b1"}),
    (leaf("meta.channel", "exists"), {"b1", "b4"}),
    (leaf("meta", "contains", "app"), {"b6"}),
    (leaf("hotel.city", "eq", "Paris"), {"b1", "b3", "b4"}),
    (leaf("hotel.city", "ne", "Paris"), {"b2"}),  # h3 has no city; b5's hotel h9 does not exist
    (leaf("hotel.city", "not_exists"), {"b5", "b6"}),
    (leaf("hotel.stars", "gte", 4), {"b1", "b3", "b4"}),
    (leaf("profile.attributes.vip", "eq", True), {"b1", "b2", "b3"}),
    (leaf("profile.attributes.country", "eq", "FR"), {"b1", "b2", "b3", "b6"}),
    (leaf("profile.email", "not_exists"), {"b6"}),
])
def test_booking_leaves(engine, condition, expected):
    everything = {row["booking_id"] for row in BOOKING_ROWS}
    assert members(engine, BOOKINGS, condition) == expected
    assert members(engine, BOOKINGS, {"not": condition}) == everything - expected


def test_groups(engine):
    french_vip = {"all": [leaf(A + "country", "eq", "FR"), leaf(A + "vip", "eq", True)]}
    assert members(engine, "profiles", french_vip) == {"1"}
    assert members(engine, "profiles", {"any": [french_vip, leaf(A + "age", "gt", 40)]}) == {"1", "2"}
    assert members(engine, "profiles", {"all": [leaf(A + "country", "eq", "FR"), {"not": french_vip}]}) == {"3"}


# --- has -------------------------------------------------------------------------------------

CONFIRMED = leaf("status", "eq", "confirmed")


@pytest.mark.parametrize("has, expected", [
    ({}, {"1", "2", "3"}),
    ({"where": CONFIRMED}, {"1", "2", "3"}),
    ({"where": leaf("status", "eq", "pending")}, {"2"}),
    ({"where": CONFIRMED, "count": {"op": "gte", "value": 2}}, {"1"}),
    ({"where": CONFIRMED, "count": {"op": "eq", "value": 1}}, {"2", "3"}),
    ({"where": CONFIRMED, "count": {"op": "lt", "value": 2}}, {"2", "3", "4", "5"}),  # zero counts
    ({"where": CONFIRMED, "count": {"op": "eq", "value": 0}}, {"4", "5"}),
    ({"where": CONFIRMED, "count": {"op": "ne", "value": 1}}, {"1", "4", "5"}),
    ({"count": {"op": "gt", "value": 2}}, {"1"}),
    ({"count": {"op": "lte", "value": 0}}, {"4", "5"}),
    ({"where": {"all": [CONFIRMED, leaf("checkin", "within_last", "P90D")]},
      "count": {"op": "gte", "value": 2}}, {"1"}),
    ({"where": leaf("hotel.city", "eq", "Paris")}, {"1", "2"}),  # a forward link inside has
    ({"where": {"not": leaf("hotel.city", "exists")}}, {"2", "3"}),
])
def test_has(engine, has, expected):
    condition = {"has": {"dataset": BOOKINGS, **has}}
    assert members(engine, "profiles", condition) == expected
    assert members(engine, "profiles", {"not": condition}) == {"1", "2", "3", "4", "5"} - expected


def test_has_nests_and_combines(engine):
    # Hotels with a booking by a VIP; profiles who are French and have >= 2 confirmed bookings.
    by_vip = {"has": {"dataset": BOOKINGS, "where": leaf("profile.attributes.vip", "eq", True)}}
    assert members(engine, HOTELS, by_vip) == {"h1", "h2"}
    assert members(engine, HOTELS, {"not": by_vip}) == {"h3"}
    audience = {"all": [leaf(A + "country", "eq", "FR"), {"has": {
        "dataset": BOOKINGS, "where": CONFIRMED, "count": {"op": "gte", "value": 2}}}]}
    assert members(engine, "profiles", audience) == {"1"}
    # Profiles with a booking in a hotel that has some booking by a DE profile: has inside has.
    german_hotels = {"has": {"dataset": BOOKINGS, "where": leaf("profile.attributes.country", "eq", "DE")}}
    assert members(engine, HOTELS, german_hotels) == {"h1"}


def test_has_via_when_ambiguous(engine):
    referred = {"has": {"dataset": REFERRALS}}
    faults = validate_audience_condition(REGISTRY, "profiles", referred)
    assert [f.path for f in faults] == ["$.where.has.via"] and "ambiguous" in faults[0].message
    assert members(engine, "profiles", {"has": {"dataset": REFERRALS, "via": "referrer"}}) == {"1"}
    assert members(engine, "profiles", {"has": {"dataset": REFERRALS, "via": "referee"}}) == {"2", "3"}


# --- time ------------------------------------------------------------------------------------


def test_within_last_depends_only_on_the_given_now(engine):
    recent = leaf("checkin", "within_last", "P1D")
    assert members(engine, BOOKINGS, recent) == {"b5"}  # 2024-06-14 and 15
    assert members(engine, BOOKINGS, recent, now=datetime(2024, 6, 6, 1, tzinfo=timezone.utc)) == {"b1"}
    assert members(engine, BOOKINGS, recent, now=datetime(2024, 6, 6, 1, 0)) == {"b1"}  # naive = UTC
    with pytest.raises(ConditionError):
        compile_condition(REGISTRY, BOOKINGS, recent, None)


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("dimension, condition, faults", [
    ("profiles", leaf("nope", "eq", 1), [("$.where.attr", "unknown attribute 'nope'")]),
    ("profiles", leaf("email.domain", "eq", 1), [("$.where.attr", "has no keys")]),
    ("profiles", leaf(A + "x", "within_last", "P1M"), [("$.where.value", "months")]),
    (BOOKINGS, leaf("amount", "gt", "100"), [("$.where.value", "must be a number")]),
    (BOOKINGS, leaf("nights", "eq", True), [("$.where.value", "must be a number")]),
    (BOOKINGS, leaf("status", "within_last", "P1D"), [("$.where.op", "does not apply")]),
    (BOOKINGS, leaf("amount", "starts_with", "1"), [("$.where.op", "does not apply")]),
    (BOOKINGS, leaf("paid", "gt", 1), [("$.where.op", "does not apply")]),
    (BOOKINGS, leaf("checkin", "eq", "yesterday"), [("$.where.value", "ISO 8601")]),
    (BOOKINGS, leaf("checkin", "before", "2024-02-30"), [("$.where.value", "ISO 8601")]),
    (BOOKINGS, leaf("status", "in", ["a", 1]), [("$.where.value[1]", "must be a string")]),
    (BOOKINGS, leaf("status", "eq", None), [("$.where.value", "must be a string")]),
    (BOOKINGS, leaf("hotel", "eq", "h1"), [("$.where.attr", "is a link")]),
    (BOOKINGS, leaf("hotel.nope", "eq", "x"), [("$.where.attr", f"unknown attribute 'nope' on '{HOTELS}'")]),
    (BOOKINGS, leaf("hotel.city.x", "eq", "x"), [("$.where.attr", "has no keys")]),
    (BOOKINGS, leaf("meta.anything.deep", "gt", 1), []),  # jsonb: any key, any comparable value
    (BOOKINGS, leaf("status", "eq", float("nan")), [("$.where.value", "scalar")]),
    (BOOKINGS, leaf("status", "eq", {"$ne": 1}), [("$.where.value", "scalar")]),
    (BOOKINGS, leaf("status", "eq", "a\x00b"), [("$.where.value", "scalar")]),
    ("nope", leaf("x", "eq", 1), [("$.dimension", "unknown dataset 'nope'")]),
    ("profiles", {"all": [leaf(A + "country", "eq", "FR"), {"has": {
        "dataset": BOOKINGS, "where": {"any": [CONFIRMED, leaf("hotel.stars", "gt", "five")]},
        "count": {"op": "gte", "value": 2}}}]}, [("$.where.all[1].has.where.any[1].value", "must be a number")]),
    ("profiles", {"has": {"dataset": BOOKINGS, "where": leaf("nope", "eq", 1)}},
     [("$.where.has.where.attr", "unknown attribute")]),
    ("profiles", {"has": {"dataset": "nope"}}, [("$.where.has.dataset", "unknown dataset")]),
    ("profiles", {"has": {"dataset": HOTELS}}, [("$.where.has.dataset", "no link to 'profiles'")]),
    ("profiles", {"has": {"dataset": BOOKINGS, "via": "hotel"}}, [("$.where.has.via", "no link 'hotel'")]),
    ("profiles", {"has": {"dataset": BOOKINGS, "count": {"op": "gte", "value": -1}}},
     [("$.where.has.count.value", "non-negative")]),
    ("profiles", {"has": {"dataset": BOOKINGS, "count": {"op": "like", "value": True}}},
     [("$.where.has.count.op", "unknown count operator"), ("$.where.has.count.value", "non-negative")]),
    ("profiles", {"has": {"dataset": BOOKINGS, "count": 2}}, [("$.where.has.count", "takes {op, value}")]),
    ("profiles", {"has": {"dataset": BOOKINGS, "sql": "1=1"}}, [("$.where.has", "unknown key")]),
    ("profiles", {"has": {"dataset": BOOKINGS}, "attr": "x"}, [("$.where", "only key")]),
])
def test_typed_validation_names_the_path(dimension, condition, faults):
    got = validate_audience_condition(REGISTRY, dimension, condition)
    assert [f.path for f in got] == [path for path, _ in faults], got
    for fault, (_, fragment) in zip(got, faults, strict=True):
        assert fragment in fault.message, fault


def test_compile_refuses_what_the_registry_cannot_resolve():
    with pytest.raises(DefinitionError) as raised:
        compile_condition(REGISTRY, BOOKINGS, {"all": [CONFIRMED, leaf("nope", "eq", 1)]}, NOW)
    assert [f.path for f in raised.value.faults] == ["$.all[1].attr"]
    with pytest.raises(DefinitionError):
        compile_condition(REGISTRY, "nope", CONFIRMED, NOW)


def test_ill_typed_leaves_compile_to_the_python_meaning(engine):
    """validate_audience_condition refuses these; if they get through anyway, SQL says what Python says."""
    table = table_for(REGISTRY, BOOKINGS)
    for condition, expected in [
        (leaf("amount", "gt", "100"), set()), (leaf("amount", "ne", "100"), {"b1", "b2", "b3", "b4", "b6"}),
        (leaf("status", "gt", 1), set()), (leaf("paid", "eq", 1), set()),
        (leaf("checkin", "contains", "2024"), set()), (leaf("nights", "before", "2024-01-01"), set()),
    ]:
        query = sa.select(table.c.booking_id).where(compile_condition(REGISTRY, BOOKINGS, condition, NOW))
        with engine.connect() as conn:
            assert set(conn.execute(query).scalars()) == expected, condition


# --- hostile input ---------------------------------------------------------------------------

HOSTILE = [EVIL, "attributes.a') or 1=1--", "a'b", 'a"b', "a\\'b", "%", "_", "%%", "\\", "ß'ẞ", "😀'--",
           "$1", "%(param_1)s", ":name", "'; select pg_sleep(10);--", "e\u0301'", "\u202e"]


def _counts(engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).select_from(table_for(REGISTRY, name))).scalar_one()
                     for name in ("profiles", BOOKINGS, HOTELS))


def _sql_text(dimension: str, condition: dict) -> str:
    statement = sa.select(table_for(REGISTRY, dimension)).where(compile_condition(REGISTRY, dimension, condition, NOW))
    return str(statement.compile(dialect=postgresql.dialect()))


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_values_are_bound_parameters(engine, hostile):
    before = _counts(engine)
    for op in ("eq", "ne", "in", "contains", "starts_with", "gt", "lte", "between"):
        value = [hostile, hostile] if op in ("in", "between") else hostile
        for attr, dimension in (("status", BOOKINGS), (A + "name", "profiles"), ("hotel.city", BOOKINGS),
                                (A + hostile, "profiles")):
            condition = leaf(attr, op, value)
            # The SQL text does not depend on the value (nor on the jsonb key): only parameters do.
            same_shape = A + ".".join("k" for _ in hostile.split(".")) if attr == A + hostile else attr
            benign = leaf(same_shape, op, ["zz", "zz"] if isinstance(value, list) else "zz")
            assert _sql_text(dimension, condition) == _sql_text(dimension, benign)
            members(engine, dimension, condition)
    names = {row["id"].removeprefix(P): row["attributes"].get("name", "") for row in PROFILE_ROWS}
    assert members(engine, "profiles", leaf(A + "name", "contains", hostile)) == {
        key for key, name in names.items() if hostile in name}
    assert members(engine, "profiles", leaf(A + "name", "eq", hostile)) == {
        key for key, name in names.items() if hostile == name}
    assert members(engine, "profiles", leaf(A + hostile, "exists")) == ({"5"} if hostile == EVIL else set())
    assert _counts(engine) == before


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_names_and_operators_are_faults(engine, hostile):
    before = _counts(engine)
    cases = [
        (leaf(hostile, "eq", 1), "$.where.attr"),  # not a column (json keys need a jsonb column)
        (leaf("status", hostile, 1), "$.where.op"),
        ({"has": {"dataset": hostile}}, "$.where.has.dataset"),
        ({"has": {"dataset": BOOKINGS, "via": hostile}}, "$.where.has.via"),
        (leaf(f"hotel.{hostile}", "eq", 1), "$.where.attr"),
        ({"has": {"dataset": BOOKINGS, "count": {"op": hostile, "value": 1}}}, "$.where.has.count.op"),
    ]
    for condition, path in cases:
        dimension = BOOKINGS if "attr" in condition else "profiles"
        faults = validate_audience_condition(REGISTRY, dimension, condition)
        assert path in [f.path for f in faults], (condition, faults)
        with pytest.raises(DefinitionError):
            compile_condition(REGISTRY, dimension, condition, NOW)
    assert validate_audience_condition(REGISTRY, hostile, CONFIRMED)[0].path == "$.dimension"
    with pytest.raises(KeyError):
        table_for(REGISTRY, hostile)
    assert _counts(engine) == before


# --- the Python side refuses what only SQL can do --------------------------------------------


def test_python_evaluator_refuses_has_and_within_last_without_now():
    with pytest.raises(ConditionError, match="SQL"):
        evaluate({"has": {"dataset": BOOKINGS}}, {})
    with pytest.raises(ConditionError, match="now"):
        evaluate(leaf("a", "within_last", "P1D"), {"a": "2024-01-01"})
    assert evaluate(leaf("a", "within_last", "P1D"), {"a": "2024-06-15"}, now=NOW) is True
    assert validate_condition({"has": {"dataset": BOOKINGS}}, "$") == []
