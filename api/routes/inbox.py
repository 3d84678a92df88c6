"""The in-app channel's inbox: a profile's in-app messages, newest first, and read receipts."""

from datetime import datetime

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel

from api.deps import Engine
from models.profile_schemas import PROFILE_ID_PATTERN
from models.tables import Message

router = APIRouter(prefix="/v1/profiles", tags=["inbox"])
ProfileId = Path(pattern=PROFILE_ID_PATTERN)


class InboxMessage(BaseModel):
    id: int
    subject: str | None
    body: str | None
    template: str | None
    created_at: datetime
    read_at: datetime | None


class Inbox(BaseModel):
    profile_id: str
    unread: int
    items: list[InboxMessage]


def _inbox(profile_id: str):
    return (Message.profile_id == profile_id, Message.channel == "inapp", Message.status == "sent")


@router.get("/{profile_id}/inbox", response_model=Inbox)
async def get_inbox(engine: Engine, profile_id: str = ProfileId, unread_only: bool = False,
                    limit: int = Query(default=50, ge=1, le=500)) -> Inbox:
    query = (sa.select(Message.id, Message.subject, Message.body, Message.template, Message.created_at,
                       Message.read_at)
             .where(*_inbox(profile_id)).order_by(Message.created_at.desc(), Message.id.desc()).limit(limit))
    if unread_only:
        query = query.where(Message.read_at.is_(None))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
        unread = await conn.scalar(sa.select(sa.func.count()).select_from(Message)
                                   .where(*_inbox(profile_id), Message.read_at.is_(None)))
    return Inbox(profile_id=profile_id, unread=unread, items=[InboxMessage(**row) for row in rows])


@router.post("/{profile_id}/inbox/{message_id}/read", response_model=InboxMessage)
async def mark_read(engine: Engine, message_id: int, profile_id: str = ProfileId) -> InboxMessage:
    async with engine.begin() as conn:
        row = (await conn.execute(
            sa.update(Message).where(*_inbox(profile_id), Message.id == message_id)
            # Reading twice keeps the first read time.
            .values(read_at=sa.func.coalesce(Message.read_at, sa.func.now()))
            .returning(Message.id, Message.subject, Message.body, Message.template, Message.created_at,
                       Message.read_at))).mappings().first()
    if row is None:
        raise HTTPException(404, f"no in-app message {message_id} for profile {profile_id!r}")
    return InboxMessage(**row)
