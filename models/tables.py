"""SQLModel tables: the Postgres data model of DESIGN.md.

These classes are for the API and activities only. Never pass them to or from Temporal:
workflows receive the pydantic models in models/ instead (see DESIGN.md pitfalls).
"""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

NOW = sa.text("now()")


def _created() -> Any:
    return Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False, server_default=NOW))


def _jsonb() -> Any:
    return Field(
        default_factory=dict,
        sa_column=sa.Column(JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )


class Profile(SQLModel, table=True):
    __tablename__ = "profiles"

    id: str = Field(primary_key=True)
    email: str | None = None
    phone: str | None = None
    timezone: str | None = None
    locale: str | None = None
    attributes: dict[str, Any] = _jsonb()
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Event(SQLModel, table=True):
    """The durable inbox. `seq` gives the per-profile dispatch order."""

    __tablename__ = "events"
    __table_args__ = (
        sa.Index("events_undispatched", "seq", postgresql_where=sa.text("dispatched_at IS NULL")),
        sa.Index("events_profile", "profile_id", "seq"),
    )

    message_id: str = Field(primary_key=True)
    seq: int = Field(sa_column=sa.Column(sa.BigInteger, sa.Identity(), nullable=False, unique=True))
    profile_id: str = Field(nullable=False)
    name: str = Field(nullable=False)
    properties: dict[str, Any] = _jsonb()
    occurred_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    received_at: datetime = _created()
    dispatched_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=True)
    )


class Template(SQLModel, table=True):
    __tablename__ = "templates"

    key: str = Field(primary_key=True)
    channel: str
    subject: str | None = None
    body: str  # the text part of an email; the whole message on other channels
    html: str | None = None  # email only: the HTML part
    # marketing messages obey consent, caps and quiet hours; transactional ones only
    # hard suppressions. `category` feeds typology rules, `topic` subscriptions.
    kind: str = Field(default="marketing", sa_column_kwargs={"server_default": "marketing"})
    category: str | None = None
    topic: str | None = None
    from_address: str | None = None  # email: overrides the SMTP default sender
    reply_to: str | None = None
    version: int = 1
    updated_at: datetime = _created()


class Journey(SQLModel, table=True):
    """A journey's editable draft plus its lifecycle status."""

    __tablename__ = "journeys"

    key: str = Field(primary_key=True)
    name: str
    definition: dict[str, Any] = _jsonb()
    status: str = "draft"  # draft | live | stopped
    live_version: int | None = None
    created_at: datetime = _created()
    updated_at: datetime = _created()


class JourneyVersion(SQLModel, table=True):
    """An immutable published definition; running instances pin one of these."""

    __tablename__ = "journey_versions"
    __table_args__ = (
        sa.Index("journey_versions_live", "status", postgresql_where=sa.text("status = 'live'")),
    )

    journey_key: str = Field(primary_key=True, foreign_key="journeys.key")
    version: int = Field(primary_key=True)
    definition: dict[str, Any] = _jsonb()
    status: str = "live"  # live | closed
    published_at: datetime = _created()


class Message(SQLModel, table=True):
    """The delivery ledger: one row per idempotency key, whatever retries happen."""

    __tablename__ = "messages"
    __table_args__ = (
        # Typology rules count a profile's recent messages; the inbox and the API list them.
        sa.Index("messages_profile_recent", "profile_id", "created_at"),
        # Provider callbacks find messages by the provider's id.
        sa.Index("messages_provider_id", "provider", "provider_message_id",
                 postgresql_where=sa.text("provider_message_id IS NOT NULL")),
        # Resumed and deferred batch work: the few rows not yet final.
        sa.Index("messages_pending", "source_kind", "source_key", "retry_at",
                 postgresql_where=sa.text("status IN ('queued', 'deferred')")),
    )

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True)
    )
    idempotency_key: str = Field(unique=True)
    profile_id: str
    channel: str
    template: str | None = None
    address: str | None = None
    subject: str | None = None
    body: str | None = None
    # queued | sent | failed | suppressed | skipped | deferred (quiet hours: retry at retry_at)
    status: str
    reason: str | None = None
    kind: str = Field(default="marketing", sa_column_kwargs={"server_default": "marketing"})
    category: str | None = None
    topic: str | None = None
    retry_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=True)
    )
    # What the provider reported later: delivered | bounced | complained (status stays `sent`).
    delivery_status: str | None = None
    delivery_updated_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=True)
    )
    read_at: datetime | None = Field(  # in-app messages: when the profile read it
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=True)
    )
    provider: str | None = None
    provider_message_id: str | None = None
    source_kind: str
    source_key: str | None = None
    source_version: int | None = None
    source_node: str | None = None
    created_at: datetime = _created()
    sent_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=True)
    )


metadata = SQLModel.metadata


class Dataset(SQLModel, table=True):
    """The registry row of a user dataset; its rows live in the real table `ds_<name>`.

    Written in the same transaction as the DDL of `ds_<name>`, so the two never disagree.
    """

    __tablename__ = "datasets"

    name: str = Field(primary_key=True)
    primary_key: str
    columns: dict[str, Any] = _jsonb()
    links: dict[str, Any] = _jsonb()
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Audience(SQLModel, table=True):
    """A saved audience: a condition over one dataset (its dimension), counted on demand."""

    __tablename__ = "audiences"

    key: str = Field(primary_key=True)
    dimension: str
    condition: dict[str, Any] = _jsonb()
    created_at: datetime = _created()
    updated_at: datetime = _created()


class JourneyInstance(SQLModel, table=True):
    """One row per journey instance (run): written when it starts and when it ends.

    Re-entry rules read it; reports count finished instances from it (running ones come from
    Temporal visibility), so no activity runs per node visit.
    """

    __tablename__ = "journey_instances"
    __table_args__ = (
        sa.Index("journey_instances_profile", "journey_key", "profile_id", "entry_key", "entered_at"),
        sa.Index("journey_instances_version", "journey_key", "version", "outcome"),
    )

    run_id: str = Field(primary_key=True)
    workflow_id: str
    journey_key: str
    version: int
    profile_id: str
    entry_key: str = ""
    entered_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True)))
    # completed | exited | timed_out | holdout | stopped | failed (null while running)
    outcome: str | None = None
    exit_reason: str | None = None
    path: list[str] = Field(default_factory=list, sa_column=sa.Column(JSONB, nullable=False,
                                                                      server_default=sa.text("'[]'::jsonb")))
