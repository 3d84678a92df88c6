"""Delivers committed inbox events to Temporal, in order per profile.

Runs inside the worker process (it is I/O, so it lives with the activities, but it is a loop,
not an activity). One dispatcher is active at a time across all worker processes: it holds a
Postgres advisory lock, which keeps per-profile order simple and correct. If Temporal is
down, events stay undispatched in the inbox and go out when it is back.

Per event and live journey:
- the journey's entry event (and its `where`) matches -> signal-with-start the instance
  (starts it, or hands the event to the running one);
- the journey listens for the event (wait_event / exit) -> signal the running instance,
  if any.
"""

import asyncio
import logging
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from activities.journey_data import PROFILE_COLUMNS, profile_context
from models import search_attributes as sa_keys
from models.conditions import evaluate
from models.journey_definition import JourneyDefinition
from models.journey_runtime import EventPayload, JourneyStart
from models.settings import Settings
from models.tables import Event, JourneyVersion, Profile
from workflows.journey import JourneyWorkflow, workflow_id

log = logging.getLogger("sojourn.dispatcher")
LEADER_LOCK_ID = 0x50_4A_44  # "SJD": pg_advisory_lock key of the dispatcher leader
RETRY_SLEEP_SECONDS = 1.0


class LiveJourney:
    def __init__(self, key: str, version: int, definition: JourneyDefinition):
        self.key, self.version, self.definition = key, version, definition
        self.listened = definition.listened_events()


class EventDispatcher:
    def __init__(self, engine: AsyncEngine, client: Client, settings: Settings):
        self.engine, self.client, self.settings = engine, client, settings
        self._definitions: dict[tuple[str, int], JourneyDefinition] = {}

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with self.engine.connect() as lock_conn:
                    leader = await lock_conn.scalar(sa.select(sa.func.pg_try_advisory_lock(LEADER_LOCK_ID)))
                    if not leader:
                        await _sleep_or_stop(stop, RETRY_SLEEP_SECONDS)
                        continue
                    try:
                        await self._lead(stop)
                    finally:
                        await lock_conn.execute(sa.select(sa.func.pg_advisory_unlock(LEADER_LOCK_ID)))
            except Exception:
                log.exception("dispatcher error; retrying")
                await _sleep_or_stop(stop, RETRY_SLEEP_SECONDS)

    async def _lead(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            fetched, dispatched = await self.dispatch_once()
            if fetched == 0:
                await _sleep_or_stop(stop, self.settings.dispatch_idle_sleep_seconds)
            elif dispatched < fetched:  # Temporal unreachable: back off, keep the rest queued
                await _sleep_or_stop(stop, RETRY_SLEEP_SECONDS)

    async def dispatch_once(self) -> tuple[int, int]:
        """Dispatch one batch; return (events fetched, events dispatched)."""
        async with self.engine.connect() as conn:
            events = (await conn.execute(
                sa.select(Event.seq, Event.message_id, Event.profile_id, Event.name,
                          Event.properties, Event.occurred_at)
                .where(Event.dispatched_at.is_(None)).order_by(Event.seq)
                .limit(self.settings.dispatch_batch_size))).all()
            if not events:
                return 0, 0
            journeys = await self._live_journeys(conn)
            profiles = await self._profiles(conn, {e.profile_id for e in events}) if journeys else {}

        by_profile: dict[str, list[Any]] = defaultdict(list)
        for event in events:
            by_profile[event.profile_id].append(event)
        dispatched: list[int] = []
        limit = asyncio.Semaphore(self.settings.dispatch_concurrency)

        async def dispatch_profile(profile_id: str, profile_events: list[Any]) -> None:
            async with limit:
                for event in profile_events:
                    try:
                        await self._dispatch(event, journeys, profiles.get(profile_id))
                    except RPCError as error:
                        # Stop this profile here so its later events never overtake this one.
                        log.warning("could not dispatch %s: %s", event.message_id, error)
                        return
                    dispatched.append(event.seq)

        await asyncio.gather(*(dispatch_profile(p, evs) for p, evs in by_profile.items()))
        if dispatched:
            async with self.engine.begin() as conn:
                await conn.execute(sa.update(Event).where(Event.seq.in_(dispatched))
                                   .values(dispatched_at=sa.func.now()))
        return len(events), len(dispatched)

    async def _dispatch(self, event: Any, journeys: list[LiveJourney], profile: dict | None) -> None:
        payload = EventPayload(message_id=event.message_id, name=event.name,
                               properties=event.properties, timestamp=event.occurred_at)
        context = {"profile": profile or {"id": event.profile_id, "attributes": {}},
                   "event": payload.as_context()}
        for journey in journeys:
            entry = journey.definition.entry
            instance_id = workflow_id(journey.key, event.profile_id)
            if entry.event == event.name and (entry.where is None or evaluate(entry.where, context)):
                await self.client.start_workflow(
                    JourneyWorkflow.run,
                    JourneyStart(journey_key=journey.key, version=journey.version,
                                 profile_id=event.profile_id, entry_event=payload),
                    id=instance_id, task_queue=self.settings.task_queue,
                    start_signal="event", start_signal_args=[payload],
                    search_attributes=TypedSearchAttributes([
                        SearchAttributePair(sa_keys.SOJOURN_KIND, "journey"),
                        SearchAttributePair(sa_keys.JOURNEY_KEY, journey.key),
                        SearchAttributePair(sa_keys.JOURNEY_VERSION, journey.version),
                        SearchAttributePair(sa_keys.PROFILE_ID, event.profile_id),
                    ]),
                )
            elif event.name in journey.listened:
                try:
                    await self.client.get_workflow_handle(instance_id).signal("event", payload)
                except RPCError as error:
                    if error.status != RPCStatusCode.NOT_FOUND:  # no running instance: fine
                        raise

    async def _live_journeys(self, conn) -> list[LiveJourney]:
        rows = (await conn.execute(
            sa.select(JourneyVersion.journey_key, JourneyVersion.version)
            .where(JourneyVersion.status == "live"))).all()
        live = []
        for key, version in rows:
            definition = self._definitions.get((key, version))
            if definition is None:
                raw = (await conn.execute(sa.select(JourneyVersion.definition).where(
                    JourneyVersion.journey_key == key, JourneyVersion.version == version))).scalar_one()
                definition = self._definitions[(key, version)] = JourneyDefinition.model_validate(raw)
            live.append(LiveJourney(key, version, definition))
        return live

    async def _profiles(self, conn, ids: set[str]) -> dict[str, dict]:
        rows = (await conn.execute(sa.select(*PROFILE_COLUMNS).where(Profile.id.in_(ids)))).all()
        return {row.id: profile_context(row._mapping) for row in rows}


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass
