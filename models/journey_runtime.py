"""Pydantic payloads that cross the Temporal boundary for journeys (never SQLModel tables)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from models.journey_definition import JourneyDefinition

# The send activity's retry budget; its last attempt records `failed` instead of raising.
SEND_MAX_ATTEMPTS = 8

JOURNEY_WORKFLOW = "journey"  # the workflow type name of journey instances


def workflow_id(journey_key: str, profile_id: str, entry_key: str = "") -> str:
    """`journey:{key}:{profile}` or, for keyed entries, `journey:{key}:{profile}:{entry key}`."""
    base = f"journey:{journey_key}:{profile_id}"
    return f"{base}:{entry_key}" if entry_key else base


InstanceStatus = Literal["running", "completed", "exited", "failed"]
Outcome = Literal["completed", "exited", "timed_out", "holdout", "stopped"]


class EventPayload(BaseModel):
    """A small copy of an inbox event: enough to evaluate conditions on `event.*`."""

    message_id: str
    name: str
    properties: dict[str, Any] = {}
    timestamp: datetime

    def as_context(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "name": self.name,
            "properties": self.properties,
            "timestamp": self.timestamp.isoformat(),
        }


class CarriedState(BaseModel):
    """What an instance carries across continue-as-new: where it is and what it knows."""

    node_id: str
    wake_at: datetime | None = None  # absolute end of the wait in progress at node_id
    deadline: datetime  # the journey's global timeout
    visits: dict[str, int] = {}
    path: list[str] = []
    event: EventPayload | None = None
    actions: dict[str, dict[str, Any]] = {}
    assignments: dict[str, str] = {}
    pending: list[EventPayload] = []
    seen_events: list[str] = []
    dropped_events: int = 0
    runs: int = 1


class JourneyStart(BaseModel):
    journey_key: str
    version: int
    profile_id: str
    entry_event: EventPayload | None = None
    entry_key: str = ""
    carried: CarriedState | None = None


class InstanceContextRequest(BaseModel):
    journey_key: str
    version: int
    profile_id: str
    # Set on an instance's first run: registers it in journey_instances.
    register_entry: bool = False
    workflow_id: str = ""
    run_id: str = ""
    entry_key: str = ""


class InstanceContext(BaseModel):
    definition: JourneyDefinition
    profile: dict[str, Any]


class InstanceFinish(BaseModel):
    run_id: str
    outcome: str
    exit_reason: str | None
    path: list[str]


class InstanceState(BaseModel):
    journey_key: str
    version: int
    profile_id: str
    status: InstanceStatus
    current_node: str | None
    path: list[str]
    exit_reason: str | None = None
    entry_key: str = ""
    assignments: dict[str, str] = {}
    dropped_events: int = 0
    runs: int = 1


class WebhookRequest(BaseModel):
    journey_key: str
    node: str
    profile_id: str
    method: str
    url: str
    headers: dict[str, str]
    body: str | None
    timeout_seconds: float
    event: EventPayload | None
    actions: dict[str, dict[str, Any]]


class ProfileUpdateRequest(BaseModel):
    profile_id: str
    set: dict[str, Any]
    event: EventPayload | None
    actions: dict[str, dict[str, Any]]


class JumpRequest(BaseModel):
    journey_key: str  # the journey to enter
    profile_id: str
    event: EventPayload | None


class MessageSource(BaseModel):
    """What sent a message: a journey node, or a batch (campaign/canvas run) and its step."""

    kind: Literal["journey", "campaign", "canvas", "batch", "api"]
    key: str
    version: int
    node: str


class SendRequest(BaseModel):
    idempotency_key: str
    profile_id: str
    channel: str
    template: str
    event_message_id: str | None = None
    source: MessageSource
    # Policy overrides; unset means the template's value (templates default to marketing).
    kind: Literal["marketing", "transactional"] | None = None
    category: str | None = None
    topic: str | None = None
    # The sender's notion of "now" for quiet hours (journeys pass workflow.now(), so a
    # deferred send re-checked after its durable timer sees the timer's time even on a
    # time-skipping test server). Unset: the wall clock.
    now: datetime | None = None


class SendResult(BaseModel):
    """The outcome recorded in the ledger for one idempotency key.

    status: sent | failed | suppressed | skipped | deferred.
    `deferred` (quiet hours in `queue` mode) means nothing was sent yet: the caller waits
    until `retry_at` with a durable timer, then calls send_message again with the SAME
    request (same idempotency key; `now` refreshed). The ledger row is re-evaluated in place,
    so the message is still recorded exactly once. Any other status is final.
    """

    message_id: int
    status: str
    reason: str | None = None
    retry_at: datetime | None = None
