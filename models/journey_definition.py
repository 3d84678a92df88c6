"""Journey DSL v1: pydantic shapes plus whole-definition validation with JSON paths.

Shapes are validated node by node so that every fault carries a clean path such as
`$.nodes.remind.template`; graph rules (refs, reachability, cycles, templates) follow.
"""

import re
from datetime import timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models.conditions import validate_condition
from models.durations import parse_duration, parse_signed_duration
from models.faults import DefinitionError, Fault

MAX_NODES = 50
KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
NODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PROFILE_FIELDS = {"id", "email", "phone", "timezone", "locale"}
EVENT_FIELDS = {"name", "message_id", "timestamp"}
TIME_FIELDS = {"hour", "minute", "weekday", "date"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Duration = Annotated[str, Field(description="ISO 8601 duration, e.g. PT2H or P3D")]


def _check_duration(value: str | None) -> str | None:
    if value is not None:
        parse_duration(value)
    return value


class WaitUntilAttribute(Strict):
    """Wait until a date held by the profile, shifted by a signed offset (e.g. -P7D)."""

    attribute: str = Field(pattern=r"^profile\.attributes\.[A-Za-z0-9_]+$")
    offset: str = "PT0S"

    @field_validator("offset")
    @classmethod
    def _offset(cls, value: str) -> str:
        parse_signed_duration(value)
        return value


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class TimeWindow(Strict):
    """Allowed local times, e.g. 09:00-18:00 Monday to Friday, in the journey's time zone."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = list(WEEKDAYS)
    start: str = Field(pattern=CLOCK)
    end: str = Field(pattern=CLOCK)

    @model_validator(mode="after")
    def _ordered(self) -> "TimeWindow":
        if self.end <= self.start:
            raise ValueError("window end must be after its start (same day)")
        if not self.days:
            raise ValueError("window needs at least one day")
        return self


class WaitNode(Strict):
    """Wait a duration, until a moment (ISO datetime or profile date), or for a time window."""

    type: Literal["wait"]
    duration: Duration | None = None
    until: AwareDatetime | WaitUntilAttribute | None = None
    window: TimeWindow | None = None
    next: str

    _duration = field_validator("duration")(_check_duration)

    @model_validator(mode="after")
    def _exactly_one(self) -> "WaitNode":
        if sum(x is not None for x in (self.duration, self.until, self.window)) != 1:
            raise ValueError("a wait needs exactly one of duration, until, window")
        return self

    def references(self) -> list[tuple[str, str]]:
        return [("next", self.next)]


class WaitEventNode(Strict):
    type: Literal["wait_event"]
    event: str = Field(min_length=1)
    where: dict[str, Any] | None = None
    timeout: Duration
    on_event: str
    on_timeout: str

    _timeout = field_validator("timeout")(_check_duration)

    def references(self) -> list[tuple[str, str]]:
        return [("on_event", self.on_event), ("on_timeout", self.on_timeout)]


class Branch(Strict):
    when: dict[str, Any]
    next: str


class ConditionNode(Strict):
    type: Literal["condition"]
    branches: list[Branch] = Field(min_length=1)
    else_: str = Field(alias="else")

    def references(self) -> list[tuple[str, str]]:
        refs = [(f"branches[{i}].next", b.next) for i, b in enumerate(self.branches)]
        return refs + [("else", self.else_)]


class Variant(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    weight: int = Field(gt=0, le=10_000)
    next: str


class SplitNode(Strict):
    """Weighted A/B split with an optional holdout; assignment is stable per profile."""

    type: Literal["split"]
    variants: list[Variant] = Field(min_length=1, max_length=10)
    holdout: float = Field(default=0, ge=0, lt=100, description="percent of profiles held out (they end)")

    @model_validator(mode="after")
    def _unique(self) -> "SplitNode":
        if len({v.name for v in self.variants}) != len(self.variants):
            raise ValueError("variant names must be unique")
        return self

    def references(self) -> list[tuple[str, str]]:
        return [(f"variants[{i}].next", v.next) for i, v in enumerate(self.variants)]


Channel = Literal["email", "sms", "push", "webhook", "inapp"]
CHANNELS: tuple[str, ...] = Channel.__args__


class MessageNode(Strict):
    type: Literal["message"]
    channel: Channel
    template: str = Field(min_length=1)
    next: str

    def references(self) -> list[tuple[str, str]]:
        return [("next", self.next)]


class UpdateProfileNode(Strict):
    """Set profile attributes; string values may use Liquid (`{{ event.properties.plan }}`)."""

    type: Literal["update_profile"]
    set: dict[str, Any] = Field(min_length=1)
    next: str

    @field_validator("set")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not re.match(r"^[A-Za-z0-9_]{1,64}$", name):
                raise ValueError(f"attribute name {name!r}: letters, digits and '_' only")
        return value

    def references(self) -> list[tuple[str, str]]:
        return [("next", self.next)]


class WebhookNode(Strict):
    """A custom action: an HTTP call whose JSON response later conditions read as action.<node>.*"""

    type: Literal["webhook"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: str = Field(pattern=r"^https?://", max_length=2000)
    headers: dict[str, str] = {}
    body: str | None = Field(default=None, max_length=100_000)
    timeout: Duration = "PT10S"
    retries: int = Field(default=3, ge=0, le=10)
    next: str
    on_error: str | None = None

    _timeout = field_validator("timeout")(_check_duration)

    def references(self) -> list[tuple[str, str]]:
        return [("next", self.next)] + ([("on_error", self.on_error)] if self.on_error else [])


class JumpNode(Strict):
    """Enter the profile into another live journey; continue at `next` or end here."""

    type: Literal["jump"]
    journey: str = Field(pattern=KEY_PATTERN)
    next: str | None = None

    def references(self) -> list[tuple[str, str]]:
        return [("next", self.next)] if self.next else []


class EndNode(Strict):
    type: Literal["end"]

    def references(self) -> list[tuple[str, str]]:
        return []


Node = (WaitNode | WaitEventNode | ConditionNode | SplitNode | MessageNode | UpdateProfileNode
        | WebhookNode | JumpNode | EndNode)
NODE_TYPES: dict[str, type[Strict]] = {
    "wait": WaitNode,
    "wait_event": WaitEventNode,
    "condition": ConditionNode,
    "split": SplitNode,
    "message": MessageNode,
    "update_profile": UpdateProfileNode,
    "webhook": WebhookNode,
    "jump": JumpNode,
    "end": EndNode,
}


class EventEntry(Strict):
    type: Literal["event"]
    event: str = Field(min_length=1)
    where: dict[str, Any] | None = None
    # One instance per profile *and* value of this event path (e.g. properties.cart_id).
    key: str | None = Field(default=None, pattern=r"^properties\.[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")


class Schedule(Strict):
    """When an audience entry reads its audience again (Temporal Schedules)."""

    frequency: Literal["once", "daily", "weekly", "monthly", "cron"]
    at: str = Field(default="09:00", pattern=CLOCK)
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    day_of_month: int = Field(default=1, ge=1, le=28)
    cron: str | None = Field(default=None, pattern=r"^[0-9*/,\- ]{9,100}$")
    start_at: AwareDatetime | None = None
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _consistent(self) -> "Schedule":
        if self.frequency == "cron" and not self.cron:
            raise ValueError("frequency 'cron' needs a cron expression (5 fields)")
        if self.frequency == "once" and not self.start_at:
            raise ValueError("frequency 'once' needs start_at")
        return self


class AudienceEntry(Strict):
    type: Literal["audience"]
    audience: str = Field(pattern=KEY_PATTERN)
    rate: int = Field(default=500, ge=1, le=10_000, description="profiles entered per second")
    schedule: Schedule | None = None


class ApiEntry(Strict):
    type: Literal["api"]


Entry = Annotated[EventEntry | AudienceEntry | ApiEntry, Field(discriminator="type")]


class ExitCriterion(Strict):
    event: str = Field(min_length=1)
    where: dict[str, Any] | None = None


class Reentry(Strict):
    mode: Literal["never", "after_exit"] = "after_exit"
    wait: Duration = "PT5M"

    @field_validator("wait")
    @classmethod
    def _wait(cls, value: str) -> str:
        if parse_signed_duration(value) < timedelta(0):
            raise ValueError("must not be negative")
        return value


MAX_TIMEOUT = timedelta(days=91)


class JourneyHeader(Strict):
    """Everything but the nodes, which are validated one by one for precise paths."""

    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    entry: Entry
    exit: list[ExitCriterion] = []
    reentry: Reentry = Reentry()
    timeout: Duration = "P91D"
    timezone: str = Field(default="profile", description="'profile' or an IANA zone")
    start: str

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        if parse_duration(value) > MAX_TIMEOUT:
            raise ValueError("at most P91D")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if value != "profile":
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"'profile' or an IANA time zone, not {value!r}") from None
        return value


class JourneyDefinition(JourneyHeader):
    nodes: dict[str, Annotated[Node, Field(discriminator="type")]]

    def successors(self, node_id: str) -> list[str]:
        return [target for _, target in self.nodes[node_id].references()]

    def listened_events(self) -> set[str]:
        """Event names a running instance must receive as signals."""
        names = {criterion.event for criterion in self.exit}
        names |= self.waited_events()
        return names

    def waited_events(self) -> set[str]:
        return {n.event for n in self.nodes.values() if isinstance(n, WaitEventNode)}


def journey_attr_allowed(attr: str) -> str | None:
    """Journey conditions read the instance context: `profile.*`, `event.*` (the entry event or
    the last event waited for), `action.<node>.*` (webhook responses) and `time.*` (local time)."""
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
    if head == "action":
        node, _, field = rest.partition(".")
        if NODE_ID.match(node) and field:
            return None
        return "action paths are action.<webhook node>.<response field>"
    if head == "time":
        if rest in TIME_FIELDS:
            return None
        return f"time paths are time.{{{','.join(sorted(TIME_FIELDS))}}} (in the journey's time zone)"
    return "attribute paths in journeys start with 'profile.', 'event.', 'action.' or 'time.'"


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
        for field, target in node.references():
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
    entry_where = getattr(definition.entry, "where", None)
    if entry_where is not None:
        faults += validate_condition(entry_where, "$.entry.where", journey_attr_allowed)
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
