"""Delivers committed inbox events to Temporal, in order per profile.

Runs inside the worker process (it is I/O, so it lives with the activities, but it is a loop,
not an activity). One dispatcher is active at a time across all worker processes: it holds a
Postgres advisory lock, which keeps per-profile order simple and correct. If Temporal is
down, events stay undispatched in the inbox and go out when it is back.

Per event and live (not paused) journey:
- the event enters the journey (its entry event and `where` match, or it is an API entry for
  it) and the re-entry rule allows it -> signal-with-start the instance (starts it, or hands
  the event to the running one);
- otherwise, if the journey listens for the event (wait_event / exit) -> signal the running
  instance, if any.
"""

import asyncio
import logging
from datetime import datetime, timezone
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.journey_data import PROFILE_COLUMNS, profile_context
from activities.journey_entry import (
    LiveJourney, LiveJourneys, api_entry_event, enter, entry_key_of, reentry_blocked)
from models.conditions import evaluate
from models.journey_runtime import EventPayload
from models.settings import Settings
from models.tables import Event, Profile
from models.journey_runtime import workflow_id

log = logging.getLogger("sojourn.dispatcher")
LEADER_LOCK_ID = 0x50_4A_44  # "SJD": pg_advisory_lock key of the dispatcher leader
RETRY_SLEEP_SECONDS = 1.0

Entry = tuple[str, str, str]  # (journey key, profile id, entry key)


class EventDispatcher:
    def __init__(self, engine: AsyncEngine, client: Client, settings: Settings):
        self.engine, self.client, self.settings = engine, client, settings
        self.live = LiveJourneys()

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
            rows = (await conn.execute(
                sa.select(Event.seq, Event.message_id, Event.profile_id, Event.name,
                          Event.properties, Event.occurred_at)
                .where(Event.dispatched_at.is_(None)).order_by(Event.seq)
                .limit(self.settings.dispatch_batch_size))).all()
            if not rows:
                return 0, 0
            journeys = await self.live.all(conn)
            profiles = await self._profiles(conn, {r.profile_id for r in rows}) if journeys else {}
            events = [(row, _payload(row)) for row in rows]
            entries = await self._entries(conn, journeys, events, profiles)

        by_profile: dict[str, list[Any]] = defaultdict(list)
        for row, payload in events:
            by_profile[row.profile_id].append((row, payload))
        dispatched: list[int] = []
        limit = asyncio.Semaphore(self.settings.dispatch_concurrency)

        async def dispatch_profile(profile_events: list[Any]) -> None:
            async with limit:
                for row, payload in profile_events:
                    try:
                        await self._dispatch(row.profile_id, payload, journeys, entries)
                    except RPCError as error:
                        # Stop this profile here so its later events never overtake this one.
                        log.warning("could not dispatch %s: %s", payload.message_id, error)
                        return
                    dispatched.append(row.seq)

        await asyncio.gather(*(dispatch_profile(evs) for evs in by_profile.values()))
        if dispatched:
            async with self.engine.begin() as conn:
                await conn.execute(sa.update(Event).where(Event.seq.in_(dispatched))
                                   .values(dispatched_at=sa.func.now()))
        return len(rows), len(dispatched)

    async def _entries(self, conn: AsyncConnection, journeys: list[LiveJourney], events: list[Any],
                       profiles: dict[str, dict]) -> dict[tuple[str, str], str]:
        """Which (journey, event) pairs enter, with the instance's entry key."""
        entering: dict[tuple[str, str], str] = {}
        for journey in journeys:
            candidates: dict[str, tuple[str, str]] = {}
            for row, payload in events:
                key = self._entry_key(journey, row.profile_id, payload, profiles)
                if key is not None:
                    candidates[payload.message_id] = (row.profile_id, key)
            blocked = await reentry_blocked(conn, journey, set(candidates.values()))
            for message_id, pair in candidates.items():
                if pair not in blocked:
                    entering[(journey.key, message_id)] = pair[1]
        return entering

    def _entry_key(self, journey: LiveJourney, profile_id: str, payload: EventPayload,
                   profiles: dict[str, dict]) -> str | None:
        entry = journey.definition.entry
        if not journey.accepts_entries:
            return None
        if entry.type == "api":
            return "" if payload.name == api_entry_event(journey.key) else None
        if entry.type != "event" or entry.event != payload.name:
            return None
        if entry.where is not None:
            context = {"profile": profiles.get(profile_id) or {"id": profile_id, "attributes": {}},
                       "event": payload.as_context()}
            if not evaluate(entry.where, context, now=datetime.now(timezone.utc)):
                return None
        return entry_key_of(journey.definition, payload)

    async def _dispatch(self, profile_id: str, payload: EventPayload, journeys: list[LiveJourney],
                        entries: dict[tuple[str, str], str]) -> None:
        for journey in journeys:
            entry_key = entries.get((journey.key, payload.message_id))
            if entry_key is not None:
                await enter(self.client, self.settings.task_queue, journey, profile_id, payload, entry_key)
            elif payload.name in journey.listened:
                await self._signal_instances(journey, profile_id, payload)

    async def _signal_instances(self, journey: LiveJourney, profile_id: str, payload: EventPayload) -> None:
        instance_ids = [workflow_id(journey.key, profile_id)]
        keyed_by = getattr(journey.definition.entry, "key", None)
        if keyed_by:  # keyed journeys: the instance this event's key names (e.g. its cart)
            key = entry_key_of(journey.definition, payload)
            instance_ids = [workflow_id(journey.key, profile_id, key)] if key else []
        for instance_id in instance_ids:
            try:
                await self.client.get_workflow_handle(instance_id).signal("event", payload)
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:  # no running instance: fine
                    raise

    async def _profiles(self, conn, ids: set[str]) -> dict[str, dict]:
        rows = (await conn.execute(sa.select(*PROFILE_COLUMNS).where(Profile.id.in_(ids)))).all()
        return {row.id: profile_context(row._mapping) for row in rows}


def _payload(row: Any) -> EventPayload:
    return EventPayload(message_id=row.message_id, name=row.name, properties=row.properties,
                        timestamp=row.occurred_at)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass
