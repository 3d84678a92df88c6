"""The durable inbox: events are committed before the request is answered."""

import json
from datetime import datetime, timezone

from fastapi import APIRouter, status
from sqlalchemy import text

from api.deps import Engine
from api.profile_store import ensure_profiles
from models.event_schemas import EventBatch, EventsAccepted

router = APIRouter(prefix="/v1/events", tags=["events"])

# A repeated message_id (in this batch or ever before) is skipped: it is never processed twice.
INSERT_EVENTS = text("""
    WITH inserted AS (
        INSERT INTO events (message_id, profile_id, name, properties, occurred_at)
        SELECT * FROM unnest(CAST(:message_ids AS text[]), CAST(:profile_ids AS text[]),
                             CAST(:names AS text[]), CAST(:properties AS jsonb[]),
                             CAST(:timestamps AS timestamptz[]))
        ON CONFLICT (message_id) DO NOTHING
        RETURNING 1
    )
    SELECT count(*) FROM inserted
""")


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=EventsAccepted)
async def ingest_events(engine: Engine, batch: EventBatch) -> EventsAccepted:
    received = datetime.now(timezone.utc)
    events = batch.events
    async with engine.begin() as conn:
        await ensure_profiles(conn, {e.profile_id for e in events})
        accepted = (await conn.execute(INSERT_EVENTS, {
            "message_ids": [e.message_id for e in events],
            "profile_ids": [e.profile_id for e in events],
            "names": [e.name for e in events],
            "properties": [json.dumps(e.properties) for e in events],
            "timestamps": [e.timestamp or received for e in events],
        })).scalar_one()
    return EventsAccepted(accepted=accepted, duplicates=len(events) - accepted)
