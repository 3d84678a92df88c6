"""The send activity of journeys: one message, policies checked, recorded exactly once.

Ledger protocol: the row is keyed by the idempotency key and written in the transaction that
locks the profile and checks suppression, consent, typology rules and quiet hours
(activities/send_pipeline.py). With a recording provider (sink, in-app) the insert is the
delivery. With a real provider the row is written `queued` before the provider call and moved
to `sent`/`failed` after, so a retry after a crash re-uses the row and a `sent` message is
never sent again. A `deferred` row (quiet hours, queue mode) is re-decided when the caller
comes back at `retry_at` with the same key (see SendResult).
"""

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from activities.policy import quiet_hours_rule
from activities.providers import OutgoingMessage, Provider, ProviderError
from activities.send_pipeline import Recipient, SendSpec, UnsubscribeLinks, load_template, record_chunk
from models.journey_runtime import SEND_MAX_ATTEMPTS, SendRequest, SendResult
from models.settings import Settings
from models.tables import Event, Message

NOT_FINAL = ("queued", "deferred")
RESULT_COLUMNS = (Message.id, Message.status, Message.reason, Message.retry_at)


class DeliveryActivities:
    def __init__(self, engine: AsyncEngine, providers: dict[str, Provider], settings: Settings | None = None):
        self.engine = engine
        self.providers = providers  # channel -> provider
        self.settings = settings or Settings()

    @activity.defn(name="send_message")
    async def send_message(self, request: SendRequest) -> SendResult:
        existing = await self._ledger_row(request.idempotency_key)
        if existing is not None and existing.status not in NOT_FINAL:
            return _result(existing)

        spec = await self._spec(request)
        async with self.engine.begin() as conn:
            outcome = await record_chunk(conn, spec, [Recipient(request.idempotency_key, request.profile_id)])
        if outcome.to_send:
            ledger_id, message = outcome.to_send[0]
            return await deliver(self.engine, spec.provider, ledger_id, message, activity.info().attempt)
        return _result(outcome.stored[request.idempotency_key])

    async def _spec(self, request: SendRequest) -> SendSpec:
        async with self.engine.connect() as conn:
            template = await load_template(conn, request.template)
            event = await _event(conn, request.event_message_id)
            quiet_hours = await quiet_hours_rule(conn, request.channel)
        return SendSpec(
            channel=request.channel, template_key=request.template, template=template,
            provider=self.providers.get(request.channel),
            source_kind=request.source.kind, source_key=request.source.key,
            source_version=request.source.version, source_node=request.source.node,
            kind=request.kind or (template.kind if template else "marketing"),
            category=request.category or (template.category if template else None),
            topic=request.topic or (template.topic if template else None),
            now=request.now or _now(), default_timezone=self.settings.default_timezone,
            links=UnsubscribeLinks(self.settings.public_base_url, self.settings.unsubscribe_secret),
            event=event, quiet_hours=quiet_hours,
        )

    async def _ledger_row(self, key: str):
        async with self.engine.connect() as conn:
            return (await conn.execute(sa.select(*RESULT_COLUMNS).where(Message.idempotency_key == key))).first()


async def deliver(engine: AsyncEngine, provider: Provider | None, ledger_id: int, message: OutgoingMessage,
                  attempt: int) -> SendResult:
    """Call the provider for a `queued` row and record the outcome. A transient failure
    raises (the activity retries with backoff) until the last attempt, which records
    `failed` with the provider's reason."""
    assert provider is not None
    try:
        provider_id = await provider.send(message)
    except ProviderError as error:
        if error.permanent or attempt >= SEND_MAX_ATTEMPTS:
            return await finish(engine, ledger_id, status="failed", reason=error.reason)
        raise
    return await finish(engine, ledger_id, status="sent", provider_message_id=provider_id, sent_at=_now())


async def finish(engine: AsyncEngine, ledger_id: int, **values: Any) -> SendResult:
    async with engine.begin() as conn:
        stored = (await conn.execute(
            sa.update(Message).where(Message.id == ledger_id, Message.status == "queued").values(**values)
            .returning(*RESULT_COLUMNS))).first()
        if stored is None:  # already finished by a concurrent attempt
            stored = (await conn.execute(sa.select(*RESULT_COLUMNS).where(Message.id == ledger_id))).first()
    return _result(stored)


async def _event(conn, message_id: str | None) -> dict:
    if not message_id:
        return {}
    row = (await conn.execute(
        sa.select(Event.message_id, Event.name, Event.properties, Event.occurred_at)
        .where(Event.message_id == message_id))).first()
    if row is None:
        return {}
    return {"message_id": row.message_id, "name": row.name, "properties": row.properties,
            "timestamp": row.occurred_at.isoformat()}


def _result(row: Any) -> SendResult:
    return SendResult(message_id=row.id, status=row.status, reason=row.reason, retry_at=row.retry_at)


def _now() -> datetime:
    return datetime.now(timezone.utc)
