"""Event ingestion shapes of the HTTP API."""

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from models.profile_schemas import PROFILE_ID

EVENT_NAME = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: str = Field(min_length=1, max_length=200)
    profile_id: str = PROFILE_ID
    name: str = EVENT_NAME
    properties: dict[str, Any] = {}
    timestamp: AwareDatetime | None = Field(default=None, description="defaults to the time received")


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[EventIn] = Field(min_length=1, max_length=10_000)


class EventsAccepted(BaseModel):
    accepted: int
    duplicates: int


class EventOut(BaseModel):
    message_id: str
    profile_id: str
    name: str
    properties: dict[str, Any]
    timestamp: datetime
    dispatched: bool
