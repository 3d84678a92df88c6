from datetime import datetime

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import Engine
from models.journey_definition import KEY_PATTERN
from models.profile_schemas import PROFILE_ID_PATTERN
from models.tables import Message

router = APIRouter(prefix="/v1/messages", tags=["messages"])


class Source(BaseModel):
    kind: str
    key: str | None
    version: int | None
    node: str | None


class MessageOut(BaseModel):
    id: int
    profile_id: str
    channel: str
    template: str | None
    subject: str | None
    body: str | None
    status: str
    reason: str | None
    kind: str
    category: str | None
    topic: str | None
    retry_at: datetime | None  # deferred by quiet hours until then
    delivery_status: str | None  # delivered | bounced | complained (provider callbacks)
    source: Source
    created_at: datetime
    sent_at: datetime | None


class MessagePage(BaseModel):
    items: list[MessageOut]


@router.get("", response_model=MessagePage)
async def list_messages(
    engine: Engine,
    profile_id: str | None = Query(default=None, pattern=PROFILE_ID_PATTERN),
    journey: str | None = Query(default=None, pattern=KEY_PATTERN),
    limit: int = Query(default=100, ge=1, le=1000),
) -> MessagePage:
    query = sa.select(Message).order_by(Message.id.desc()).limit(limit)
    if profile_id is not None:
        query = query.where(Message.profile_id == profile_id)
    if journey is not None:
        query = query.where(Message.source_kind == "journey", Message.source_key == journey)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return MessagePage(items=[
        MessageOut(id=r.id, profile_id=r.profile_id, channel=r.channel, template=r.template,
                   subject=r.subject, body=r.body, status=r.status, reason=r.reason, kind=r.kind,
                   category=r.category, topic=r.topic, retry_at=r.retry_at, delivery_status=r.delivery_status,
                   source=Source(kind=r.source_kind, key=r.source_key, version=r.source_version,
                                 node=r.source_node),
                   created_at=r.created_at, sent_at=r.sent_at)
        for r in rows
    ])
