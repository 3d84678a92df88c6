"""Activities of a journey's audience entry: materialize the audience with SQL, then enter its
profiles at a throttled rate from the worker (never a workflow start per profile from the API
process), resuming from the heartbeat cursor after a crash."""

import asyncio
import time
from datetime import datetime, timezone

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from activities.audiences import drop_work_table, materialize, work_table
from activities.dataset_registry import load_registry
from activities.journey_entry import LiveJourneys, enter, reentry_blocked
from models.settings import Settings
from models.tables import Audience

ENTER_CONCURRENCY = 100
PAGE_SIZE = 200  # profiles per heartbeat: small enough to heartbeat well within its timeout


class AudienceRun(BaseModel):
    journey_key: str
    work_table: str = ""
    members: int = 0


class EnterSlice(BaseModel):
    journey_key: str
    work_table: str
    rate: int  # profiles per second


class AudienceEntryActivities:
    def __init__(self, engine: AsyncEngine, client: Client, settings: Settings):
        self.engine, self.client, self.settings = engine, client, settings
        self.live = LiveJourneys()

    @activity.defn(name="materialize_journey_audience")
    async def materialize_journey_audience(self, journey_key: str) -> AudienceRun:
        async with self.engine.connect() as conn:
            journey = await self._journey(conn, journey_key)
            if journey is None:
                # Retryable: the workflow is started inside the publishing transaction, which
                # may commit a moment after this first attempt runs.
                raise ApplicationError(f"journey {journey_key!r} is not an open audience journey")
            audience = (await conn.execute(sa.select(Audience.dimension, Audience.condition)
                                           .where(Audience.key == journey.definition.entry.audience))).first()
            if audience is None:
                raise ApplicationError(f"audience {journey.definition.entry.audience!r} not found", non_retryable=True)
            registry = await load_registry(conn)
        table, members = await materialize(self.engine, registry, audience.dimension, audience.condition,
                                           datetime.now(timezone.utc))
        return AudienceRun(journey_key=journey_key, work_table=table, members=members)

    @activity.defn(name="enter_audience")
    async def enter_audience(self, request: EnterSlice) -> int:
        """Enter every member at `rate` per second, in pages of key order; each page ends with
        a heartbeat carrying the last key entered, so a retried attempt resumes there."""
        details = activity.info().heartbeat_details
        cursor: str | None = details[0] if details else None
        entered = 0
        table = work_table(request.work_table)
        page_size = min(request.rate, PAGE_SIZE)
        started = time.monotonic()
        while True:
            async with self.engine.connect() as conn:
                journey = await self._journey(conn, request.journey_key)
                if journey is None or not journey.accepts_entries:  # paused or stopped meanwhile
                    return entered
                keys = [row.key for row in (await conn.execute(select_page(table, cursor, page_size))).all()]
                if not keys:
                    return entered
                blocked = await reentry_blocked(conn, journey, {(k, "") for k in keys})
            limit = asyncio.Semaphore(ENTER_CONCURRENCY)

            async def enter_one(profile_id: str) -> None:
                async with limit:
                    try:
                        await enter(self.client, self.settings.task_queue, journey, profile_id, None)
                    except WorkflowAlreadyStartedError:
                        pass  # already in the journey

            await asyncio.gather(*(enter_one(k) for k in keys if (k, "") not in blocked))
            entered += len(keys) - len(blocked)
            cursor = keys[-1]
            activity.heartbeat(cursor)
            # Hold the pace: the n-th profile enters no earlier than n / rate seconds in.
            ahead = entered / request.rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)

    @activity.defn(name="drop_audience_table")
    async def drop_audience_table(self, name: str) -> None:
        await drop_work_table(self.engine, name)

    async def _journey(self, conn, key: str):
        journeys = await self.live.all(conn, key=key)
        if not journeys or journeys[0].definition.entry.type != "audience":
            return None
        return journeys[0]


def select_page(table: sa.Table, after: str | None, size: int) -> sa.Select:
    query = sa.select(table.c.key).order_by(table.c.key).limit(size)
    return query.where(table.c.key > after) if after is not None else query
