"""Request and response shapes of POST /v1/journeys/simulate."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.durations import parse_duration
from models.event_schemas import EVENT_NAME
from models.profile_schemas import ProfileFields


class TimelineEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: str = Field(description="ISO 8601 duration after entry, e.g. P2D")
    name: str = EVENT_NAME
    properties: dict[str, Any] = {}

    @field_validator("at")
    @classmethod
    def _at(cls, value: str) -> str:
        if value not in ("PT0S", "P0D"):
            parse_duration(value)
        return value


class SimulationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    definition: dict[str, Any]
    profile: ProfileFields = ProfileFields()
    profile_id: str = "simulated-profile"
    entry: TimelineEvent | None = Field(default=None, description="the entry event (event entries)")
    events: list[TimelineEvent] = Field(default=[], max_length=1000)
    webhook_responses: dict[str, dict[str, Any]] = Field(default={}, description="node id -> JSON response")


class SimulatedMessage(BaseModel):
    node: str
    channel: str
    template: str
    at: datetime
    after: str  # ISO 8601 duration since entry
    status: str
    reason: str | None
    subject: str
    body: str


class SimulationResult(BaseModel):
    status: str
    exit_reason: str | None
    path: list[str]
    assignments: dict[str, str]
    profile: dict[str, Any]
    messages: list[SimulatedMessage]
    actions: list[dict[str, Any]]
    simulated_duration: str
    wall_seconds: float
