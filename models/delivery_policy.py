"""HTTP shapes of the delivery policies (consent, suppression, typology rules, quiet hours),
with validation: a bad value is a 422 naming its JSON path."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.delivery_tables import ALL_TOPICS
from models.durations import parse_duration
from models.quiet_hours import parse_clock

Channel = Literal["email", "sms", "push", "webhook", "inapp"]
RuleChannel = Literal["all", "email", "sms", "push", "webhook", "inapp"]
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
TOPIC_PATTERN = r"^(\*|[a-z0-9][a-z0-9_.-]{0,63})$"


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Channel
    topic: str = Field(default=ALL_TOPICS, pattern=TOPIC_PATTERN,
                       description="a topic key, or '*' for every topic of the channel")
    status: Literal["opted_in", "opted_out"]


class SubscriptionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subscriptions: list[SubscriptionIn] = Field(min_length=1, max_length=100)


class SubscriptionOut(SubscriptionIn):
    source: str | None
    updated_at: datetime


class TopicIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: Literal["opt_in", "opt_out"] = "opt_out"
    description: str | None = Field(default=None, max_length=500)


class TypologyRuleIn(BaseModel):
    """E.g. {"channel": "email", "max_count": 3, "window": "P7D"}: at most 3 marketing emails
    per profile per 7 days. Weights make some categories count more (or less) than 1."""

    model_config = ConfigDict(extra="forbid")
    channel: RuleChannel = "all"
    category: str = Field(default="all", pattern=NAME_PATTERN)
    max_count: float = Field(gt=0)
    window: str
    weights: dict[str, float] = {}
    enabled: bool = True

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        for category, weight in value.items():
            if weight < 0:
                raise ValueError(f"weight of {category!r} must not be negative")
        return value

    def window_seconds(self) -> int:
        return int(parse_duration(self.window).total_seconds())


class TypologyRuleOut(TypologyRuleIn):
    name: str
    updated_at: datetime


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Channel
    address: str = Field(min_length=1, max_length=320)
    reason: str = Field(default="manual", max_length=200)


class SuppressionOut(SuppressionIn):
    created_at: datetime


class QuietHoursIn(BaseModel):
    """Local time of the profile; `end` before `start` wraps midnight (21:00-08:00)."""

    model_config = ConfigDict(extra="forbid")
    start: str
    end: str
    mode: Literal["queue", "discard"] = "queue"

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        parse_clock(value)
        return value


class QuietHoursOut(QuietHoursIn):
    channel: str
    updated_at: datetime


def normalize_address(address: str) -> str:
    """Suppressions match addresses case-insensitively."""
    return address.strip().lower()
