"""Audience shapes of the HTTP API. The condition itself is validated against the registry
(validate_audience_condition), so here `where` is any JSON: faults come back with paths."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

AUDIENCE_KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class AudienceQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dimension: str = Field(max_length=64, description="the dataset whose rows are counted: profiles, bookings, …")
    where: Any = Field(description="a condition over the dimension's row (DESIGN.md, Condition language)")


class AudienceOut(AudienceQuery):
    key: str
    created_at: datetime
    updated_at: datetime


class AudienceCount(BaseModel):
    count: int
    sample: list[dict[str, Any]]
