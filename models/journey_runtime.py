"""Pydantic payloads that cross the Temporal boundary for journeys (never SQLModel tables)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from models.journey_definition import JourneyDefinition

# The send activity's retry budget; its last attempt records `failed` instead of raising.
SEND_MAX_ATTEMPTS = 8

InstanceStatus = Literal["running", "completed", "exited", "failed"]


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


class JourneyStart(BaseModel):
    journey_key: str
    version: int
    profile_id: str
    entry_event: EventPayload | None = None


class InstanceContextRequest(BaseModel):
    journey_key: str
    version: int
    profile_id: str


class InstanceContext(BaseModel):
    definition: JourneyDefinition
    profile: dict[str, Any]


class InstanceState(BaseModel):
    journey_key: str
    version: int
    profile_id: str
    status: InstanceStatus
    current_node: str | None
    path: list[str]
    exit_reason: str | None = None


class MessageSource(BaseModel):
    kind: Literal["journey"]
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


class SendResult(BaseModel):
    message_id: int
    status: str
    reason: str | None = None
