"""The condition language: two-valued leaf semantics, groups, and validation with JSON paths."""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from models.conditions import (
    MAX_DEPTH,
    ConditionError,
    Moment,
    evaluate,
    parse_moment,
    resolve,
    validate_condition,
)
from models.journey_definition import journey_attr_allowed

CONTEXT = {
    "profile": {"email": "ada@example.com", "attributes": {
        "country": "FR", "age": 30, "score": 1.5, "vip": True, "zero": 0, "nothing": None,
        "tags": ["a", "b", 1]}},
    "event": {"name": "order_placed", "properties": {"total": 120}},
}
A = "profile.attributes."


@pytest.mark.parametrize("attr, op, value, expected", [
    (A + "country", "eq", "FR", True), (A + "country", "eq", "fr", False), (A + "age", "eq", "30", False),
    (A + "age", "eq", 30.0, True),  # int and float are both numbers
    (A + "vip", "eq", True, True), (A + "vip", "eq", 1, False), (A + "zero", "eq", False, False),  # bool != number
    (A + "country", "ne", "DE", True), (A + "country", "ne", "FR", False), (A + "vip", "ne", 1, True),
    (A + "age", "lt", 31, True), (A + "age", "lt", 30, False), (A + "age", "lte", 30, True),
    (A + "score", "gt", 1, True), (A + "age", "gte", 31, False), ("event.properties.total", "gte", 100, True),
    (A + "country", "gt", "EZ", True), (A + "country", "lte", "FA", False),  # strings compare lexically
    (A + "age", "gt", "1", False), (A + "country", "lt", 5, False), (A + "vip", "gte", 0, False),  # mixed types
    (A + "country", "in", ["DE", "FR"], True), (A + "country", "in", ["DE"], False),
    (A + "age", "in", [30.0], True), (A + "vip", "in", [1], False),
    (A + "country", "not_in", ["DE"], True), (A + "country", "not_in", ["FR", "DE"], False),
    (A + "vip", "not_in", [1, 0], True),
    ("profile.email", "contains", "@example", True), ("profile.email", "contains", "zz", False),
    ("profile.email", "contains", 1, False), (A + "age", "contains", 3, False),
    (A + "tags", "contains", "a", True), (A + "tags", "contains", 1, True),
    (A + "tags", "contains", True, False), (A + "tags", "contains", "c", False),
    (A + "country", "exists", True, True), (A + "country", "exists", False, False),
    (A + "missing", "exists", True, False), (A + "missing", "exists", False, True),
    (A + "nothing", "exists", True, False),  # JSON null counts as missing
])
def test_leaf(attr, op, value, expected):
    assert evaluate({"attr": attr, "op": op, "value": value}, CONTEXT) is expected


@pytest.mark.parametrize("attr", [A + "missing", A + "nothing", A + "country.deeper", "nowhere.at.all"])
@pytest.mark.parametrize("op, value", [
    ("eq", None), ("eq", "x"), ("ne", "x"), ("lt", 1), ("lte", "a"), ("gt", 1), ("gte", 1),
    ("in", ["x", None]), ("not_in", ["x"]), ("contains", "x"),
])
def test_missing_attribute_makes_every_leaf_false(attr, op, value):
    assert evaluate({"attr": attr, "op": op, "value": value}, CONTEXT) is False
    assert evaluate({"not": {"attr": attr, "op": op, "value": value}}, CONTEXT) is True


def test_exists_without_value_means_present():
    assert evaluate({"attr": A + "zero", "op": "exists"}, CONTEXT) is True
    assert evaluate({"attr": A + "missing", "op": "exists"}, CONTEXT) is False


YES = {"attr": A + "country", "op": "eq", "value": "FR"}
NO = {"attr": A + "country", "op": "eq", "value": "DE"}


@pytest.mark.parametrize("condition, expected", [
    ({"all": [YES, YES]}, True),
    ({"all": [YES, NO]}, False),
    ({"any": [NO, YES]}, True),
    ({"any": [NO, NO]}, False),
    ({"not": YES}, False),
    ({"not": {"not": YES}}, True),
    ({"all": [YES, {"any": [NO, {"not": NO}]}]}, True),
    ({"all": [  # the DESIGN.md example
        {"attr": A + "country", "op": "eq", "value": "FR"},
        {"any": [{"attr": "event.properties.total", "op": "gte", "value": 100},
                 {"not": {"attr": A + "vip", "op": "eq", "value": True}}]}]}, True),
    ({"any": [{"attr": "event.properties.total", "op": "gte", "value": 500},
              {"not": {"attr": A + "vip", "op": "eq", "value": True}}]}, False),
])
def test_groups(condition, expected):
    assert validate_condition(condition, "$") == []
    assert evaluate(condition, CONTEXT) is expected


@pytest.mark.parametrize("attr, expected", [
    (A + "country", "FR"), (A + "zero", 0), (A + "tags", ["a", "b", 1]),
    (A + "missing", None), (A + "tags.0", None), ("profile.email.x", None), ("", None),
])
def test_resolve(attr, expected):
    assert resolve(CONTEXT, attr) == expected


OK = {"attr": "a", "op": "eq", "value": 1}


@pytest.mark.parametrize("condition, paths", [
    ({"all": [OK, {"any": [OK, {"not": {"attr": "a", "op": "exists", "value": True}}]}]}, []),
    ({"all": [OK, {"attr": "a", "op": "like", "value": "x"}]}, ["$.where.all[1].op"]),
    pytest.param({"all": [OK, {"attr": "a", "op": ["eq"], "value": 1}]}, ["$.where.all[1].op"],
                 id="unhashable-op"),
    ({"all": []}, ["$.where.all"]),
    ({"any": {"attr": "a"}}, ["$.where.any"]),
    ({"all": [OK], "any": [OK]}, ["$.where"]),
    ({"not": OK, "attr": "a"}, ["$.where"]),
    ("a == 1", ["$.where"]),
    ({"attr": "a", "op": "eq", "value": 1, "extra": 2}, ["$.where"]),
    ({"not": {"attr": "", "op": "eq", "value": 1}}, ["$.where.not.attr"]),
    ({"attr": "a", "op": "eq"}, ["$.where.value"]),
    ({"attr": "a", "op": "eq", "value": [1]}, ["$.where.value"]),
    ({"attr": "a", "op": "in", "value": "FR"}, ["$.where.value"]),
    ({"attr": "a", "op": "not_in", "value": [{"x": 1}]}, ["$.where.value"]),
    ({"attr": "a", "op": "lt", "value": True}, ["$.where.value"]),
    ({"attr": "a", "op": "gte", "value": None}, ["$.where.value"]),
    ({"attr": "a", "op": "exists", "value": "yes"}, ["$.where.value"]),
    ({"any": [{"attr": 1, "op": "eq", "value": 1}, {"not": {"attr": "a", "op": "zz"}}]},
     ["$.where.any[0].attr", "$.where.any[1].not.op"]),
])
def test_validation_paths(condition, paths):
    assert [fault.path for fault in validate_condition(condition, "$.where")] == paths


def test_attr_allowed_callback_names_the_attr():
    def allowed(attr):
        return None if attr.startswith("profile.") else "unknown attribute"

    faults = validate_condition({"any": [{"attr": "profile.email", "op": "exists"},
                                         {"attr": "order.total", "op": "gt", "value": 1}]}, "$", allowed)
    assert [(f.path, f.message) for f in faults] == [("$.any[1].attr", "unknown attribute")]


def nested(levels: int) -> dict:
    condition: dict = OK
    for _ in range(levels):
        condition = {"not": condition}
    return condition


def test_nesting_depth_limit():
    assert validate_condition(nested(MAX_DEPTH), "$") == []
    faults = validate_condition(nested(MAX_DEPTH + 1), "$")
    assert [f.path for f in faults] == ["$" + ".not" * (MAX_DEPTH + 1)]
    assert "nest" in faults[0].message


# --- the complete language (issue 4) ---------------------------------------------------------

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=timezone.utc)
ROW = {  # an audience row as psycopg returns it: Decimal, date, aware datetime, jsonb as dicts
    "amount": Decimal("0.1"), "nights": 2, "checkin": date(2024, 6, 10),
    "created_at": datetime(2024, 6, 15, 9, 0, tzinfo=timezone(timedelta(hours=-5))),  # 14:00Z
    "status": "confirmed", "paid": True, "note": None,
    "attributes": {"name": "O'Brien", "signup": "2024-06-01T23:30:00-02:00", "day": "2024-02-30",
                   "naive": "2024-06-15T11:30:00", "big": 2**63, "tags": ["a", 1.0, None]},
}


@pytest.mark.parametrize("attr, op, value, expected", [
    ("amount", "eq", 0.1, True),  # a float means its shortest repr, as in JSON and jsonb
    ("amount", "lt", 0.1, False), ("amount", "gt", 0.09999999999999999, True),
    ("nights", "eq", 2.0, True), ("nights", "eq", True, False), ("paid", "eq", 1, False),
    ("attributes.big", "gt", 2**63 - 1, True),
    ("attributes.big", "eq", float(2**63), False),  # the float reads 9.223372036854776e+18 (…6000)
    ("amount", "between", [0.1, 0.2], True), ("amount", "between", [0.2, 0.3], False),
    ("status", "between", ["a", "d"], True), ("status", "between", [0, 5], False),
    ("status", "starts_with", "conf", True), ("status", "starts_with", "Conf", False),
    ("status", "starts_with", "", True), ("nights", "starts_with", "2", False),
    ("attributes.name", "contains", "'B", True), ("attributes.name", "contains", "%", False),
    ("attributes.tags", "contains", 1, True), ("attributes.tags", "contains", None, True),
    ("note", "not_exists", None, True), ("status", "not_exists", None, False),
    ("attributes.tags", "not_exists", None, False), ("attributes.nope", "not_exists", None, True),
    # typed dates compare as time, also under eq/lt; a date against an instant compares UTC days
    ("checkin", "eq", "2024-06-10", True), ("checkin", "eq", "2024-06-10T23:00:00-05:00", False),
    ("checkin", "eq", "2024-06-10T23:00:00+02:00", True), ("checkin", "lt", "2024-06-11", True),
    ("checkin", "in", ["2024-06-09", "2024-06-10"], True), ("checkin", "eq", "10/06/2024", False),
    ("created_at", "eq", "2024-06-15", True), ("created_at", "after", "2024-06-15T13:59:59Z", True),
    ("created_at", "before", "2024-06-15", False), ("created_at", "after", "2024-06-14", True),
    # strings are times only under date operators
    ("attributes.signup", "after", "2024-06-01", True),  # 2024-06-02T01:30Z
    ("attributes.signup", "eq", "2024-06-02", False),
    ("attributes.day", "before", "2025-01-01", False),  # 2024-02-30 is no date
    ("attributes.naive", "after", "2024-06-15T11:29:59Z", True),  # no offset: UTC
    ("status", "after", "2024-01-01", False), ("nights", "before", "2024-01-01", False),
    ("checkin", "within_last", "P5D", True), ("checkin", "within_last", "P4D", False),
    ("created_at", "within_last", "PT1H", False),  # 14:00Z is after now: within_last ends at now
    ("attributes.naive", "within_last", "PT30M", True), ("attributes.naive", "within_last", "PT29M", False),
])
def test_complete_leaves(attr, op, value, expected):
    condition = {"attr": attr, "op": op} | ({} if op == "not_exists" else {"value": value})
    assert validate_condition(condition, "$") == []
    assert evaluate(condition, ROW, now=NOW) is expected


@pytest.mark.parametrize("text, moment", [
    ("2024-06-15", Moment(True, date(2024, 6, 15).toordinal())),
    ("2024-06-15T00:00:00Z", Moment(False, 1718409600 * 10**6)),
    ("2024-06-15 02:00+02:00", Moment(False, 1718409600 * 10**6)),
    ("2024-06-15T00:00:00.5", Moment(False, 1718409600 * 10**6 + 500_000)),
    ("0001-01-01T00:00:00+14:00", Moment(False, (date(1, 1, 1).toordinal() - date(1970, 1, 1).toordinal())
                                         * 86_400 * 10**6 - 14 * 3600 * 10**6)),
    ("2024-02-30", None), ("0000-01-01", None), ("2024-06-15T24:00:00Z", None), ("2024-6-15", None),
    ("２０２４-06-15", None), ("2024-06-15\n", None), ("2024-06-15T10:00:00+15:00", None),
    ("2024-06-15T10:00:00.1234567Z", None), ("20240615", None), (20240615, None),
])
def test_parse_moment_is_strict(text, moment):
    assert parse_moment(text) == moment


def test_within_last_needs_now_and_has_needs_sql():
    with pytest.raises(ConditionError, match="now"):
        evaluate({"attr": "a", "op": "within_last", "value": "P1D"}, {})  # even when `a` is missing
    with pytest.raises(ConditionError, match="SQL"):
        evaluate({"any": [{"has": {"dataset": "bookings"}}]}, {})
    # `now` is only read by within_last: the rest stays usable without it
    assert evaluate({"attr": "checkin", "op": "before", "value": "2025-01-01"}, ROW) is True


@pytest.mark.parametrize("condition, paths", [
    ({"attr": "a", "op": "not_exists", "value": True}, ["$.where.value"]),
    ({"attr": "a", "op": "starts_with", "value": 1}, ["$.where.value"]),
    ({"attr": "a", "op": "between", "value": [1]}, ["$.where.value"]),
    ({"attr": "a", "op": "between", "value": [1, "z"]}, ["$.where.value"]),
    ({"attr": "a", "op": "between", "value": [True, False]}, ["$.where.value"]),
    ({"attr": "a", "op": "before", "value": "yesterday"}, ["$.where.value"]),
    ({"attr": "a", "op": "after", "value": "0001-01-01T00:00:00+01:00"}, ["$.where.value"]),  # year 0 in UTC
    ({"attr": "a", "op": "within_last", "value": "P1Y"}, ["$.where.value"]),
    ({"attr": "a", "op": "within_last", "value": "P999999D"}, ["$.where.value"]),
    ({"attr": "a", "op": "within_last", "value": 3}, ["$.where.value"]),
    ({"attr": "a", "op": "eq", "value": float("inf")}, ["$.where.value"]),
    ({"attr": "a", "op": "in", "value": ["a\x00"]}, ["$.where.value"]),
    ({"attr": "a", "op": "eq", "value": Decimal("1")}, ["$.where.value"]),  # not JSON
    ({"has": {"dataset": "bookings", "where": {"attr": "a", "op": "zz"}}}, ["$.where.has.where.op"]),
    ({"has": {"dataset": "", "count": {"op": "gte"}}}, ["$.where.has.dataset", "$.where.has.count"]),
    ({"has": {"dataset": "b", "count": {"op": "gte", "value": 1.0}}}, ["$.where.has.count.value"]),
    ({"has": ["bookings"]}, ["$.where.has"]),
    ({"has": {"dataset": "b", "via": 3}}, ["$.where.has.via"]),
    ({"has": {"dataset": "b", "where": {"attr": "x", "op": "exists"}, "count": {"op": "lt", "value": 2},
              "via": "profile"}}, []),
])
def test_validation_paths_of_new_shapes(condition, paths):
    assert [fault.path for fault in validate_condition(condition, "$.where")] == paths


def test_journeys_report_has_at_its_path():
    condition = {"all": [{"attr": "profile.email", "op": "exists"}, {"has": {"dataset": "bookings"}}]}
    faults = validate_condition(condition, "$.nodes.check.branches[0].when", journey_attr_allowed)
    assert [f.path for f in faults] == ["$.nodes.check.branches[0].when.all[1].has"]
    assert "audience" in faults[0].message
    assert validate_condition(condition, "$") == []  # shape only: fine outside journeys
