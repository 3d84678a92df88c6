"""Activities of the batch delivery engine: plan a work table, deliver slices of it.

A slice is a key range of the work table, delivered chunk by chunk: each chunk is one
transaction of activities/send_pipeline.record_chunk (locks, one policy statement, one COPY +
INSERT of ledger rows), then, for a real provider, the provider calls. After each chunk the
activity heartbeats its cursor (the chunk's last key); a retried attempt (worker killed,
heartbeat timeout) resumes from that cursor. A chunk committed but not yet heartbeated is
simply processed again: its ledger rows exist, so nothing is recorded or sent twice.
"""

import asyncio
import re
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from activities.delivery import deliver
from activities.policy import quiet_hours_rule
from activities.providers import OutgoingMessage, Provider, ProviderError
from activities.send_pipeline import Recipient, SendSpec, UnsubscribeLinks, load_template, record_chunk
from models.batch_delivery import (
    BatchDeliveryRequest,
    BatchPlan,
    DeferredRequest,
    DeferredSummary,
    SliceCursor,
    SliceRequest,
    SliceResult,
    batch_message_key,
)
from models.delivery_queues import batch_slice_size, batch_task_queue
from models.journey_runtime import SendResult
from models.settings import Settings

SAFE_TABLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}\.[a-z_][a-z0-9_]{0,62}$")
# Provider calls in flight per slice (real providers; the SMTP pool has its own cap).
SENDS_IN_FLIGHT = 16


def work_table(name: str) -> sa.TableClause:
    if not SAFE_TABLE.match(name):
        raise ValueError(f"work table must be schema.table in lower-case identifiers, got {name!r}")
    schema, table = name.split(".")
    return sa.table(table, sa.column("key", sa.Text), schema=schema)


def _in_range(table: sa.TableClause, after: str | None, upto: str | None) -> list:
    conditions = []
    if after is not None:
        conditions.append(table.c.key > after)
    if upto is not None:
        conditions.append(table.c.key <= upto)
    return conditions


class BatchDeliveryActivities:
    def __init__(self, engine: AsyncEngine, providers: dict[str, Provider], settings: Settings):
        self.engine, self.providers, self.settings = engine, providers, settings

    @activity.defn(name="plan_batch")
    async def plan_batch(self, request: BatchDeliveryRequest) -> BatchPlan:
        """Count the recipients and cut them into partitions (child workflows) or slices."""
        settings = self.settings
        table = work_table(request.work_table)
        in_range = _in_range(table, request.after, request.upto)
        async with self.engine.connect() as conn:
            total = await conn.scalar(sa.select(sa.func.count()).select_from(table).where(*in_range))
            partitioned = not request.partition and total > settings.batch_partition_size
            size = settings.batch_partition_size if partitioned else batch_slice_size(settings, request.channel)
            # Every size-th key closes a range: one ordered pass over the primary key.
            numbered = (sa.select(table.c.key, sa.func.row_number().over(order_by=table.c.key).label("n"))
                        .where(*in_range).subquery())
            bounds = (await conn.scalars(sa.select(numbered.c.key).where(numbered.c.n % size == 0)
                                         .order_by(numbered.c.key))).all()
        if bounds and total - (len(bounds) * size) == 0:
            bounds = bounds[:-1]  # the last key closes the last range anyway: no empty range
        return BatchPlan(
            total=total, partitioned=partitioned, bounds=[*bounds, request.upto],
            slice_size=batch_slice_size(settings, request.channel), chunk_size=settings.batch_chunk_size,
            parallel=settings.batch_parallel_slices, task_queue=batch_task_queue(request.channel),
            heartbeat_timeout_seconds=settings.batch_heartbeat_timeout_seconds,
        )

    @activity.defn(name="deliver_slice")
    async def deliver_slice(self, request: SliceRequest) -> SliceResult:
        batch = request.batch
        table = work_table(batch.work_table)
        progress = _resumed_cursor() or SliceCursor(cursor=request.after)
        spec = await self._spec(batch)
        while True:
            keys = await self._next_keys(table, progress.cursor, request.upto, request.chunk_size)
            if not keys:
                break
            statuses = await self._deliver_chunk(
                spec, [Recipient(batch_message_key(batch.batch_id, k), k) for k in keys], heartbeat=progress)
            progress = SliceCursor(cursor=keys[-1], recipients=progress.recipients + len(keys),
                                   statuses=dict(Counter(progress.statuses) + statuses))
            activity.heartbeat(progress)
        return SliceResult(recipients=progress.recipients, statuses=progress.statuses)

    async def _next_keys(self, table: sa.TableClause, after: str | None, upto: str | None, limit: int) -> list[str]:
        query = sa.select(table.c.key).where(*_in_range(table, after, upto)).order_by(table.c.key).limit(limit)
        compiled = query.compile(dialect=self.engine.dialect)
        async with self.engine.connect() as conn:
            # The driver's cursor: the ORM result layer costs µs per row at batch rates.
            driver = (await conn.get_raw_connection()).driver_connection
            cursor = await driver.execute(str(compiled), compiled.params)
            return [key for (key,) in await cursor.fetchall()]

    @activity.defn(name="deferred_summary")
    async def deferred_summary(self, batch: BatchDeliveryRequest) -> DeferredSummary:
        """Messages of the batch waiting out quiet hours, and when the first one may go."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.text("""
                SELECT count(*) AS count, min(retry_at) AS next_retry_at FROM messages
                WHERE source_kind = :kind AND source_key = :key AND status = 'deferred'
                  AND starts_with(idempotency_key, :prefix)
            """), _deferred_parameters(batch))).one()
        return DeferredSummary(count=row.count, next_retry_at=row.next_retry_at)

    @activity.defn(name="deliver_deferred")
    async def deliver_deferred(self, request: DeferredRequest) -> SliceResult:
        """Re-decide the batch's deferred messages that are due (quiet hours over)."""
        batch = request.batch
        spec = replace(await self._spec(batch), now=request.now)
        recipients = 0
        statuses: dict[str, int] = {}
        while True:
            async with self.engine.connect() as conn:
                due = (await conn.execute(sa.text("""
                    SELECT idempotency_key, profile_id FROM messages
                    WHERE source_kind = :kind AND source_key = :key AND status = 'deferred'
                      AND starts_with(idempotency_key, :prefix) AND retry_at <= :now
                    ORDER BY idempotency_key LIMIT :limit
                """), _deferred_parameters(batch) | {"now": request.now, "limit": request.chunk_size})).all()
            if not due:
                break
            chunk = await self._deliver_chunk(spec, [Recipient(r.idempotency_key, r.profile_id) for r in due],
                                              heartbeat=SliceCursor(cursor=None, recipients=recipients),
                                              refresh_now=False)
            recipients += len(due)
            statuses = dict(Counter(statuses) + chunk)
            # Rows decided again as deferred got a later retry_at, so the next query moves on.
            activity.heartbeat(SliceCursor(cursor=None, recipients=recipients))
        return SliceResult(recipients=recipients, statuses=statuses)

    async def _deliver_chunk(self, spec: SendSpec, recipients: list[Recipient], heartbeat: SliceCursor,
                             refresh_now: bool = True) -> Counter[str]:
        """Record one chunk, then hand its queued messages to the provider. Returns the
        chunk's final ledger statuses."""
        if refresh_now:  # quiet hours are judged when each chunk is recorded
            spec = replace(spec, now=datetime.now(timezone.utc))
        async with self.engine.begin() as conn:
            outcome = await record_chunk(conn, spec, recipients)
        statuses = Counter(row.status for row in outcome.stored.values())
        if outcome.to_send:
            for result in await self._send_all(spec.provider, outcome.to_send, heartbeat):
                statuses["queued"] -= 1
                statuses[result.status] += 1
        return +statuses  # drop zero counts

    async def _send_all(self, provider: Provider | None, messages: list[tuple[int, OutgoingMessage]],
                        heartbeat: SliceCursor) -> list[SendResult]:
        """Provider calls for a chunk's queued rows, a few in flight. A transient failure is
        re-raised after the others finish: the activity retries from its cursor and the rows
        still `queued` are sent again; `sent` ones never are."""
        gate = asyncio.Semaphore(SENDS_IN_FLIGHT)
        attempt = activity.info().attempt

        async def one(ledger_id: int, message: OutgoingMessage) -> SendResult:
            async with gate:
                result = await deliver(self.engine, provider, ledger_id, message, attempt)
                activity.heartbeat(heartbeat)  # long chunks keep the attempt alive
                return result

        results = await asyncio.gather(*(one(i, m) for i, m in messages), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            error = failures[0]
            if isinstance(error, ProviderError):
                raise ProviderError(f"{len(failures)} of {len(messages)} sends failed; first: {error.reason}")
            raise error
        return results  # type: ignore[return-value]

    async def _spec(self, batch: BatchDeliveryRequest) -> SendSpec:
        async with self.engine.connect() as conn:
            template = await load_template(conn, batch.template)
            quiet_hours = await quiet_hours_rule(conn, batch.channel)
        return SendSpec(
            channel=batch.channel, template_key=batch.template, template=template,
            provider=self.providers.get(batch.channel),
            source_kind=batch.source.kind, source_key=batch.source.key, source_version=batch.source.version,
            source_node=batch.source.node,
            kind=batch.kind or (template.kind if template else "marketing"),
            category=batch.category or (template.category if template else None),
            topic=batch.topic or (template.topic if template else None),
            now=datetime.now(timezone.utc), default_timezone=self.settings.default_timezone,
            links=UnsubscribeLinks(self.settings.public_base_url, self.settings.unsubscribe_secret),
            quiet_hours=quiet_hours,
        )


def _resumed_cursor() -> SliceCursor | None:
    """The cursor of the previous attempt's last heartbeat (details arrive as plain JSON)."""
    details = activity.info().heartbeat_details
    return SliceCursor.model_validate(details[0]) if details else None


def _deferred_parameters(batch: BatchDeliveryRequest) -> dict:
    return {"kind": batch.source.kind, "key": batch.source.key, "prefix": batch_message_key(batch.batch_id, "")}
