"""Journey DSL validation: every fault is reported, each with its exact JSON path."""

import copy

import pytest

from models.faults import DefinitionError
from models.journey_definition import MAX_NODES, WaitEventNode, parse_journey
from tests.journey_fixtures import CART_ABANDONMENT

TEMPLATES = {"cart-reminder", "thanks"}


def variant(nodes: dict | None = None, **top) -> dict:
    """CART_ABANDONMENT with top-level fields replaced and nodes merged (None deletes a node)."""
    raw = copy.deepcopy(CART_ABANDONMENT) | top
    for node_id, changes in (nodes or {}).items():
        if changes is None:
            del raw["nodes"][node_id]
        else:
            raw["nodes"][node_id] = raw["nodes"].get(node_id, {}) | changes
    return raw


def faults_of(raw, templates=TEMPLATES) -> list:
    with pytest.raises(DefinitionError) as error:
        parse_journey(raw, templates)
    return error.value.faults


def chain(length: int) -> dict:
    nodes = {f"n{i}": {"type": "wait", "duration": "PT1M", "next": f"n{i + 1}"} for i in range(length - 1)}
    return nodes | {f"n{length - 1}": {"type": "end"}}


def test_cart_abandonment_parses():
    definition = parse_journey(copy.deepcopy(CART_ABANDONMENT), TEMPLATES)
    assert definition.key == "cart-abandonment" and definition.start == "wait"
    assert list(definition.nodes) == ["wait", "remind", "bought", "thanks", "end"]
    assert isinstance(definition.nodes["bought"], WaitEventNode)
    assert definition.successors("bought") == ["thanks", "end"]
    assert definition.listened_events() == {"unsubscribed", "order_placed"}


def test_listened_events_without_exit_or_wait_event():
    raw = variant(exit=[], nodes={"remind": {"next": "end"}, "bought": None, "thanks": None})
    assert parse_journey(raw, TEMPLATES).listened_events() == set()


def test_templates_are_only_checked_when_known():
    parse_journey(variant(nodes={"remind": {"template": "nope"}}), None)


def test_max_nodes_is_inclusive():
    assert len(parse_journey(variant(start="n0") | {"nodes": chain(MAX_NODES)}).nodes) == MAX_NODES


BRANCHING = {"wait": {"next": "check"},
             "check": {"type": "condition", "else": "remind",
                       "branches": [{"when": {"attr": "profile.nickname", "op": "exists"}, "next": "end"}]}}


@pytest.mark.parametrize("raw, path, message", [
    (variant(nodes={"remind": {"next": "nowhere"}}), "$.nodes.remind.next", "unknown node 'nowhere'"),
    (variant(nodes={"bought": {"on_timeout": "gone"}}), "$.nodes.bought.on_timeout", "unknown node"),
    (variant(start="nope"), "$.start", "unknown node"),
    (variant(nodes={"orphan": {"type": "end"}}), "$.nodes.orphan", "unreachable"),
    (variant(nodes={"bought": {"on_timeout": "wait"}}), "$.nodes.wait", "cycle: wait -> remind -> bought -> wait"),
    (variant(nodes={"remind": {"template": "nope"}}), "$.nodes.remind.template", "unknown template 'nope'"),
    (variant(nodes={"wait": {"duration": "2 hours"}}), "$.nodes.wait.duration", "not an ISO 8601 duration"),
    (variant(nodes={"wait": {"duration": "P1M"}}), "$.nodes.wait.duration", "months and years"),
    (variant(nodes={"wait": {"duration": "PT0S"}}), "$.nodes.wait.duration", "positive"),
    (variant(nodes={"bought": {"timeout": "soon"}}), "$.nodes.bought.timeout", "ISO 8601"),
    (variant(nodes={"bought": {"timeout": 3}}), "$.nodes.bought.timeout", ""),
    (variant(nodes={"wait": {"type": "sleep"}}), "$.nodes.wait.type", "unknown node type"),
    pytest.param(variant(nodes={"wait": {"type": ["wait"]}}), "$.nodes.wait.type", "unknown node type",
                 id="unhashable-node-type"),
    (variant(nodes={"wait": {"colour": "red"}}), "$.nodes.wait.colour", "Extra inputs"),
    (variant(nodes={"remind": {"channel": "fax"}}), "$.nodes.remind.channel", ""),
    (variant(colour="red"), "$.colour", "Extra inputs"),
    (variant(key="Cart Abandonment"), "$.key", ""),
    (variant(nodes=None) | {"nodes": {}}, "$.nodes", "required"),
    (variant(start="n0") | {"nodes": chain(MAX_NODES + 1)}, "$.nodes", f"at most {MAX_NODES} nodes"),
    ([], "$", "must be an object"),
    (variant(exit=[{"event": "order_placed", "where": {"all": [
        {"attr": "event.name", "op": "eq", "value": "x"}, {"attr": "customer.vip", "op": "eq", "value": True}]}}]),
     "$.exit[0].where.all[1].attr", "attribute paths in journeys start with"),
    (variant(entry={"type": "event", "event": "cart_abandoned",
                    "where": {"attr": "profile.email.domain", "op": "exists"}}),
     "$.entry.where.attr", "profile paths"),
    (variant(nodes={"bought": {"where": {"attr": "event.properties", "op": "exists"}}}),
     "$.nodes.bought.where.attr", "event paths"),
    (variant(nodes=BRANCHING), "$.nodes.check.branches[0].when.attr", "profile paths"),
])
def test_each_fault_has_its_path(raw, path, message):
    faults = faults_of(raw)
    assert [f.path for f in faults] == [path]
    assert message in faults[0].message


def test_valid_condition_node_parses():
    raw = variant(nodes=BRANCHING | {"check": BRANCHING["check"] | {"branches": [
        {"when": {"attr": "profile.attributes.nickname", "op": "exists"}, "next": "end"}]}})
    assert parse_journey(raw, TEMPLATES).successors("check") == ["end", "remind"]


def test_shape_faults_are_reported_together():
    raw = variant(colour="red", nodes={"wait": {"duration": "x"}, "bought": {"timeout": "y"}})
    assert {f.path for f in faults_of(raw)} == {"$.nodes.wait.duration", "$.nodes.bought.timeout", "$.colour"}


def test_graph_template_and_condition_faults_are_reported_together():
    raw = variant(nodes={"remind": {"template": "nope"}, "orphan": {"type": "end"}},
                  exit=[{"event": "x", "where": {"attr": "order.id", "op": "exists"}}])
    with pytest.raises(DefinitionError) as error:
        parse_journey(raw, TEMPLATES)
    assert {f.path for f in error.value.faults} == {
        "$.nodes.orphan", "$.nodes.remind.template", "$.exit[0].where.attr"}
    assert "$.nodes.remind.template" in str(error.value)
