"""Journey lifecycle after publishing: pause/resume new entries, stop everything, API entries."""

import asyncio
import json
import uuid
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from activities.journey_entry import api_entry_event
from api.audience_schedules import delete_schedule, pause_schedule
from api.deps import Engine, Temporal
from api.profile_store import ensure_profiles
from models.journey_definition import KEY_PATTERN
from models.profile_schemas import PROFILE_ID
from models.tables import Journey, JourneyVersion

router = APIRouter(tags=["journeys"])  # mounted under /v1/journeys by api/routes/journeys.py
JourneyKey = Path(pattern=KEY_PATTERN)
STOP_CONCURRENCY = 50


class StatusOut(BaseModel):
    key: str
    status: str
    instances_stopped: int | None = None


async def _set_status(conn: AsyncConnection, key: str, allowed_from: set[str], to: str) -> None:
    current = await conn.scalar(sa.select(Journey.status).where(Journey.key == key).with_for_update())
    if current is None:
        raise HTTPException(404, f"journey {key!r} not found")
    if current not in allowed_from:
        raise HTTPException(409, f"journey {key!r} is {current}; expected one of {sorted(allowed_from)}")
    await conn.execute(sa.update(Journey).where(Journey.key == key).values(status=to, updated_at=sa.func.now()))


@router.post("/{key}/pause", response_model=StatusOut)
async def pause(engine: Engine, temporal: Temporal, key: str = JourneyKey) -> StatusOut:
    """No new entries (an audience schedule pauses too); running instances go on."""
    async with engine.begin() as conn:
        await _set_status(conn, key, {"live"}, "paused")
        await pause_schedule(temporal, key, paused=True)
    return StatusOut(key=key, status="paused")


@router.post("/{key}/resume", response_model=StatusOut)
async def resume(engine: Engine, temporal: Temporal, key: str = JourneyKey) -> StatusOut:
    async with engine.begin() as conn:
        await _set_status(conn, key, {"paused"}, "live")
        await pause_schedule(temporal, key, paused=False)
    return StatusOut(key=key, status="live")


@router.post("/{key}/stop", response_model=StatusOut)
async def stop(engine: Engine, temporal: Temporal, key: str = JourneyKey) -> StatusOut:
    """No new entries, and every running instance (any version) exits at once."""
    async with engine.begin() as conn:
        await _set_status(conn, key, {"live", "paused"}, "stopped")
        await conn.execute(sa.update(JourneyVersion).where(
            JourneyVersion.journey_key == key, JourneyVersion.status == "live").values(status="closed"))
        await delete_schedule(temporal, key)
    limit = asyncio.Semaphore(STOP_CONCURRENCY)
    stopped = 0

    async def stop_one(workflow_id: str) -> None:
        nonlocal stopped
        async with limit:
            await temporal.get_workflow_handle(workflow_id).signal("stop")
            stopped += 1

    query = f"JourneyKey = '{key}' AND ExecutionStatus = 'Running'"  # key matched KEY_PATTERN
    tasks = [asyncio.create_task(stop_one(w.id)) async for w in temporal.list_workflows(query)]
    await asyncio.gather(*tasks, return_exceptions=True)
    return StatusOut(key=key, status="stopped", instances_stopped=stopped)


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    profile_id: str = PROFILE_ID
    context: dict[str, Any] = {}
    message_id: str | None = Field(default=None, min_length=1, max_length=200,
                                   description="idempotency key; a repeat is accepted once")


class EntryAccepted(BaseModel):
    message_id: str
    duplicate: bool


@router.post("/{key}/entries", status_code=status.HTTP_202_ACCEPTED, response_model=EntryAccepted)
async def enter_by_api(engine: Engine, body: EntryIn, key: str = JourneyKey) -> EntryAccepted:
    """Enter a profile into an `api`-entry journey. The entry is committed to the event inbox
    (durable, ordered with the profile's events) before the answer; `context` is the entry
    event's properties (`event.properties.*` in conditions and templates)."""
    message_id = body.message_id or str(uuid.uuid4())
    async with engine.begin() as conn:
        row = (await conn.execute(
            sa.select(Journey.status, JourneyVersion.definition)
            .join(JourneyVersion, sa.and_(JourneyVersion.journey_key == Journey.key,
                                          JourneyVersion.version == Journey.live_version))
            .where(Journey.key == key))).first()
        if row is None:
            raise HTTPException(404, f"journey {key!r} has no published version")
        if row.definition["entry"]["type"] != "api":
            raise HTTPException(409, f"journey {key!r} is entered by {row.definition['entry']['type']}, not by API")
        if row.status != "live":
            raise HTTPException(409, f"journey {key!r} is {row.status}: it takes no entries")
        await ensure_profiles(conn, {body.profile_id})
        inserted = (await conn.execute(sa.text(
            "INSERT INTO events (message_id, profile_id, name, properties, occurred_at) "
            "VALUES (:id, :profile, :name, CAST(:props AS jsonb), now()) ON CONFLICT (message_id) DO NOTHING "
            "RETURNING 1"), {"id": message_id, "profile": body.profile_id, "name": api_entry_event(key),
                             "props": json.dumps(body.context)})).first()
    return EntryAccepted(message_id=message_id, duplicate=inserted is None)
