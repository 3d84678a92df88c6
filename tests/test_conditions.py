"""The condition language: two-valued leaf semantics, groups, and validation with JSON paths."""

import pytest

from models.conditions import MAX_DEPTH, evaluate, resolve, validate_condition

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
