"""Journey DSL v1: pydantic shapes plus whole-definition validation with JSON paths.

Shapes are validated node by node so that every fault carries a clean path such as
`$.nodes.remind.template`; graph rules (refs, reachability, cycles, templates) follow.
"""

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.conditions import validate_condition
from models.durations import parse_duration
from models.faults import DefinitionError, Fault

MAX_NODES = 50
KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
NODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PROFILE_FIELDS = {"id", "email", "phone", "timezone", "locale"}
EVENT_FIELDS = {"name", "message_id", "timestamp"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Duration = Annotated[str, Field(description="ISO 8601 duration, e.g. PT2H or P3D")]


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


class WaitNode(Strict):
    type: Literal["wait"]
    duration: Duration
    next: str

    _duration = field_validator("duration")(_check_duration)


class WaitEventNode(Strict):
    type: Literal["wait_event"]
    event: str = Field(min_length=1)
    where: dict[str, Any] | None = None
    timeout: Duration
    on_event: str
    on_timeout: str

    _timeout = field_validator("timeout")(_check_duration)


class Branch(Strict):
    when: dict[str, Any]
    next: str


class ConditionNode(Strict):
    type: Literal["condition"]
    branches: list[Branch] = Field(min_length=1)
    else_: str = Field(alias="else")


class MessageNode(Strict):
    type: Literal["message"]
    channel: Literal["email"]
    template: str = Field(min_length=1)
    next: str


class EndNode(Strict):
    type: Literal["end"]


Node = WaitNode | WaitEventNode | ConditionNode | MessageNode | EndNode
NODE_TYPES: dict[str, type[Strict]] = {
    "wait": WaitNode,
    "wait_event": WaitEventNode,
    "condition": ConditionNode,
    "message": MessageNode,
    "end": EndNode,
}


class EventEntry(Strict):
    type: Literal["event"]
    event: str = Field(min_length=1)
    where: dict[str, Any] | None = None


class ExitCriterion(Strict):
    event: str = Field(min_length=1)
    where: dict[str, Any] | None = None


class JourneyHeader(Strict):
    """Everything but the nodes, which are validated one by one for precise paths."""

    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    entry: EventEntry
    exit: list[ExitCriterion] = []
    start: str


class JourneyDefinition(JourneyHeader):
    nodes: dict[str, Node]

    def successors(self, node_id: str) -> list[str]:
        node = self.nodes[node_id]
        if isinstance(node, (WaitNode, MessageNode)):
            return [node.next]
        if isinstance(node, WaitEventNode):
            return [node.on_event, node.on_timeout]
        if isinstance(node, ConditionNode):
            return [b.next for b in node.branches] + [node.else_]
        return []

    def listened_events(self) -> set[str]:
        """Event names a running instance must receive as signals."""
        names = {criterion.event for criterion in self.exit}
        names |= {n.event for n in self.nodes.values() if isinstance(n, WaitEventNode)}
        return names


def journey_attr_allowed(attr: str) -> str | None:
    """Journey conditions read the instance context: `profile.*` and `event.*`."""
    head, _, rest = attr.partition(".")
    if head == "profile":
        field = rest.partition(".")[0]
        if field in PROFILE_FIELDS and "." not in rest or field == "attributes" and rest != "attributes":
            return None
        return "profile paths are profile.id/email/phone/timezone/locale or profile.attributes.<name>"
    if head == "event":
        field = rest.partition(".")[0]
        if field in EVENT_FIELDS and "." not in rest or field == "properties" and rest != "properties":
            return None
        return "event paths are event.name/message_id/timestamp or event.properties.<name>"
    return "attribute paths in journeys start with 'profile.' or 'event.'"


def parse_journey(raw: Any, known_templates: set[str] | None = None) -> JourneyDefinition:
    """Validate a raw definition completely; raise DefinitionError listing every fault."""
    if not isinstance(raw, dict):
        raise DefinitionError([Fault("$", "a journey definition must be an object")])
    faults: list[Fault] = []
    raw_nodes = raw.get("nodes")
    nodes: dict[str, Node] = {}
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        faults.append(Fault("$.nodes", "required: an object of node id -> node"))
    else:
        if len(raw_nodes) > MAX_NODES:
            faults.append(Fault("$.nodes", f"at most {MAX_NODES} nodes (got {len(raw_nodes)})"))
        for node_id, raw_node in raw_nodes.items():
            node = _parse_node(node_id, raw_node, faults)
            if node is not None:
                nodes[node_id] = node

    top = {k: v for k, v in raw.items() if k != "nodes"}
    try:
        shell = JourneyHeader.model_validate(top)
    except ValidationError as error:
        faults += _pydantic_faults(error, "$")
        raise DefinitionError(faults) from None
    if faults:
        raise DefinitionError(faults)

    definition = JourneyDefinition(**shell.model_dump(by_alias=True), nodes=nodes)
    faults += _graph_faults(definition)
    faults += _condition_faults(definition)
    if known_templates is not None:
        for node_id, node in definition.nodes.items():
            if isinstance(node, MessageNode) and node.template not in known_templates:
                faults.append(Fault(f"$.nodes.{node_id}.template", f"unknown template {node.template!r}"))
    if faults:
        raise DefinitionError(faults)
    return definition


def _parse_node(node_id: str, raw_node: Any, faults: list[Fault]) -> Node | None:
    path = f"$.nodes.{node_id}"
    if not isinstance(raw_node, dict):
        faults.append(Fault(path, "a node must be an object"))
        return None
    if not NODE_ID.match(node_id):
        faults.append(Fault(path, "node ids use letters, digits, '_' and '-' (at most 64)"))
        return None
    node_type = raw_node.get("type")
    model = NODE_TYPES.get(node_type) if isinstance(node_type, str) else None
    if model is None:
        faults.append(Fault(f"{path}.type", f"unknown node type; expected one of {sorted(NODE_TYPES)}"))
        return None
    try:
        return model.model_validate(raw_node)  # type: ignore[return-value]
    except ValidationError as error:
        faults += _pydantic_faults(error, path)
        return None


def _pydantic_faults(error: ValidationError, base: str) -> list[Fault]:
    faults = []
    for item in error.errors():
        path = base
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        message = item["msg"].removeprefix("Value error, ")
        faults.append(Fault(path, message))
    return faults


def _graph_faults(definition: JourneyDefinition) -> list[Fault]:
    faults: list[Fault] = []
    if definition.start not in definition.nodes:
        faults.append(Fault("$.start", f"unknown node {definition.start!r}"))
        return faults
    for node_id, node in definition.nodes.items():
        for field, target in _references(node):
            if target not in definition.nodes:
                faults.append(Fault(f"$.nodes.{node_id}.{field}", f"unknown node {target!r}"))
    if faults:
        return faults

    reachable: set[str] = set()
    stack = [definition.start]
    while stack:
        node_id = stack.pop()
        if node_id not in reachable:
            reachable.add(node_id)
            stack.extend(definition.successors(node_id))
    for node_id in definition.nodes:
        if node_id not in reachable:
            faults.append(Fault(f"$.nodes.{node_id}", f"unreachable from start {definition.start!r}"))

    cycle = _find_cycle(definition)
    if cycle:
        faults.append(Fault(f"$.nodes.{cycle[0]}", "cycle: " + " -> ".join(cycle)))
    return faults


def _references(node: Node) -> list[tuple[str, str]]:
    if isinstance(node, (WaitNode, MessageNode)):
        return [("next", node.next)]
    if isinstance(node, WaitEventNode):
        return [("on_event", node.on_event), ("on_timeout", node.on_timeout)]
    if isinstance(node, ConditionNode):
        refs = [(f"branches[{i}].next", b.next) for i, b in enumerate(node.branches)]
        return refs + [("else", node.else_)]
    return []


def _find_cycle(definition: JourneyDefinition) -> list[str] | None:
    """Depth-first search; returns the node ids of the first cycle found."""
    state: dict[str, str] = {}  # visiting | done
    trail: list[str] = []

    def visit(node_id: str) -> list[str] | None:
        state[node_id] = "visiting"
        trail.append(node_id)
        for successor in definition.successors(node_id):
            if state.get(successor) == "visiting":
                return trail[trail.index(successor):] + [successor]
            if successor not in state and (found := visit(successor)):
                return found
        trail.pop()
        state[node_id] = "done"
        return None

    return visit(definition.start)


def _condition_faults(definition: JourneyDefinition) -> list[Fault]:
    faults: list[Fault] = []
    if definition.entry.where is not None:
        faults += validate_condition(definition.entry.where, "$.entry.where", journey_attr_allowed)
    for i, criterion in enumerate(definition.exit):
        if criterion.where is not None:
            faults += validate_condition(criterion.where, f"$.exit[{i}].where", journey_attr_allowed)
    for node_id, node in definition.nodes.items():
        if isinstance(node, WaitEventNode) and node.where is not None:
            faults += validate_condition(node.where, f"$.nodes.{node_id}.where", journey_attr_allowed)
        if isinstance(node, ConditionNode):
            for i, branch in enumerate(node.branches):
                path = f"$.nodes.{node_id}.branches[{i}].when"
                faults += validate_condition(branch.when, path, journey_attr_allowed)
    return faults
