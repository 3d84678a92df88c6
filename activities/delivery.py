"""The send activity: render, check the address, record in the ledger exactly once, deliver.

Ledger protocol: the row is keyed by the idempotency key. With the sink provider the insert
is the delivery. With a real provider the row is written `queued` before the provider call
and moved to `sent`/`failed` after, so a retry after a crash re-uses the row and a `sent`
message is never sent again.
"""

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from activities.journey_data import PROFILE_COLUMNS, profile_context
from activities.providers import OutgoingMessage, Provider, ProviderError
from activities.rendering import render
from models.journey_runtime import SEND_MAX_ATTEMPTS, SendRequest, SendResult
from models.tables import Event, Message, Profile, Template

ADDRESS_FIELD = {"email": "email"}


class DeliveryActivities:
    def __init__(self, engine: AsyncEngine, providers: dict[str, Provider]):
        self.engine = engine
        self.providers = providers  # channel -> provider

    @activity.defn(name="send_message")
    async def send_message(self, request: SendRequest) -> SendResult:
        existing = await self._ledger_row(request.idempotency_key)
        if existing is not None and existing.status != "queued":
            return _result(existing)

        profile, template, event = await self._load(request)
        row: dict[str, Any] = {
            "idempotency_key": request.idempotency_key, "profile_id": request.profile_id,
            "channel": request.channel, "template": request.template,
            "source_kind": request.source.kind, "source_key": request.source.key,
            "source_version": request.source.version, "source_node": request.source.node,
        }
        provider = self.providers.get(request.channel)
        if template is None:
            return await self._record(row | {"status": "failed", "reason": f"template {request.template!r} not found"})
        if provider is None:
            return await self._record(row | {"status": "failed", "reason": f"no provider for channel {request.channel}"})
        address = profile.get(ADDRESS_FIELD.get(request.channel, ""))
        if not address:
            return await self._record(row | {"status": "skipped", "reason": f"profile has no {request.channel} address"})

        context = {"profile": profile, "event": event}
        row |= {"address": address, "subject": render(template.subject, context),
                "body": render(template.body, context), "provider": provider.name}
        outgoing = OutgoingMessage(request.idempotency_key, request.channel, address,
                                   row["subject"], row["body"])
        if provider.delivers_by_recording:
            provider_id = await provider.send(outgoing)
            return await self._record(row | {"status": "sent", "provider_message_id": provider_id,
                                             "sent_at": _now()})

        queued = existing or await self._ledger_insert(row | {"status": "queued"})
        try:
            provider_id = await provider.send(outgoing)
        except ProviderError as error:
            if error.permanent or activity.info().attempt >= SEND_MAX_ATTEMPTS:
                return await self._finish(queued.id, status="failed", reason=error.reason)
            raise
        return await self._finish(queued.id, status="sent", provider_message_id=provider_id, sent_at=_now())

    async def _load(self, request: SendRequest) -> tuple[dict, Any, dict]:
        async with self.engine.connect() as conn:
            profile_row = (await conn.execute(
                sa.select(*PROFILE_COLUMNS).where(Profile.id == request.profile_id))).first()
            template = (await conn.execute(
                sa.select(Template.subject, Template.body).where(Template.key == request.template))).first()
            event: dict = {}
            if request.event_message_id:
                event_row = (await conn.execute(
                    sa.select(Event.message_id, Event.name, Event.properties, Event.occurred_at)
                    .where(Event.message_id == request.event_message_id))).first()
                if event_row:
                    event = {"message_id": event_row.message_id, "name": event_row.name,
                             "properties": event_row.properties,
                             "timestamp": event_row.occurred_at.isoformat()}
        profile = profile_context(profile_row._mapping if profile_row else {"id": request.profile_id})
        return profile, template, event

    async def _ledger_row(self, key: str):
        async with self.engine.connect() as conn:
            return (await conn.execute(sa.select(Message).where(Message.idempotency_key == key))).first()

    async def _ledger_insert(self, row: dict):
        """Insert the row unless the key exists; either way return the stored row."""
        async with self.engine.begin() as conn:
            stored = (await conn.execute(
                insert(Message).values(**row).on_conflict_do_nothing(index_elements=["idempotency_key"])
                .returning(Message.id, Message.status, Message.reason))).first()
            if stored is None:
                stored = (await conn.execute(
                    sa.select(Message.id, Message.status, Message.reason)
                    .where(Message.idempotency_key == row["idempotency_key"]))).first()
        return stored

    async def _record(self, row: dict) -> SendResult:
        return _result(await self._ledger_insert(row))

    async def _finish(self, message_id: int, **values: Any) -> SendResult:
        async with self.engine.begin() as conn:
            stored = (await conn.execute(
                sa.update(Message).where(Message.id == message_id).values(**values)
                .returning(Message.id, Message.status, Message.reason))).first()
        return _result(stored)


def _result(row: Any) -> SendResult:
    return SendResult(message_id=row.id, status=row.status, reason=row.reason)


def _now() -> datetime:
    return datetime.now(timezone.utc)
