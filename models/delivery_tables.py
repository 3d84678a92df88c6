"""SQLModel tables of the delivery policies: consent, suppression, fatigue rules, quiet hours.

The messages ledger itself is `Message` in models/tables.py. Like every table, these are for
the API and activities only, never Temporal payloads.
"""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.tables import _created, _jsonb

ALL_TOPICS = "*"  # a subscription row for topic '*' covers every topic of its channel


class Subscription(SQLModel, table=True):
    """A profile's explicit consent for a channel (topic '*') or one topic of it."""

    __tablename__ = "subscriptions"
    __table_args__ = (sa.CheckConstraint("status IN ('opted_in', 'opted_out')", name="subscriptions_status"),)

    profile_id: str = Field(primary_key=True)
    channel: str = Field(primary_key=True)
    topic: str = Field(primary_key=True)
    status: str
    source: str | None = None  # api | unsubscribe_link | one_click | complaint
    updated_at: datetime = _created()


class Topic(SQLModel, table=True):
    """A subscription topic. `opt_out` topics send unless the profile opted out; `opt_in`
    topics need an explicit opt-in. Unknown topics behave as `opt_out`."""

    __tablename__ = "topics"
    __table_args__ = (sa.CheckConstraint("policy IN ('opt_in', 'opt_out')", name="topics_policy"),)

    key: str = Field(primary_key=True)
    policy: str = "opt_out"
    description: str | None = None
    updated_at: datetime = _created()


class Suppression(SQLModel, table=True):
    """A hard block on an address (bounce, complaint, manual): nothing is sent to it, not even
    transactional messages. Addresses are stored lower-cased."""

    __tablename__ = "suppressions"

    channel: str = Field(primary_key=True)
    address: str = Field(primary_key=True)
    reason: str
    created_at: datetime = _created()


class TypologyRule(SQLModel, table=True):
    """A fatigue (pressure) rule: at most `max_count` weighted marketing messages per profile
    in a sliding `window`, on one channel or all, for one category or all."""

    __tablename__ = "typology_rules"

    name: str = Field(primary_key=True)
    channel: str = "all"
    category: str = "all"
    max_count: float
    window: str  # ISO 8601 duration, as given
    window_seconds: int  # the same, for SQL
    weights: dict[str, Any] = _jsonb()  # category -> weight; unlisted categories weigh 1
    enabled: bool = True
    updated_at: datetime = _created()


class QuietHours(SQLModel, table=True):
    """Per channel: no marketing sends between `start` and `end` (HH:MM, local time of the
    profile; may wrap midnight). `queue` defers them to `end`, `discard` suppresses them."""

    __tablename__ = "quiet_hours"
    __table_args__ = (sa.CheckConstraint("mode IN ('queue', 'discard')", name="quiet_hours_mode"),)

    channel: str = Field(primary_key=True)
    start: str
    end: str
    mode: str
    updated_at: datetime = _created()
