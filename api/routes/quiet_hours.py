"""Quiet hours per channel, in each profile's local time (workspace default otherwise)."""

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Response
from sqlalchemy.dialects.postgresql import insert

from api.deps import Engine
from models.delivery_policy import Channel, QuietHoursIn, QuietHoursOut
from models.delivery_tables import QuietHours

router = APIRouter(prefix="/v1/quiet-hours", tags=["quiet hours"])


@router.put("/{channel}", response_model=QuietHoursOut)
async def put_quiet_hours(engine: Engine, channel: Channel, body: QuietHoursIn) -> QuietHoursOut:
    statement = insert(QuietHours).values(channel=channel, **body.model_dump())
    async with engine.begin() as conn:
        await conn.execute(statement.on_conflict_do_update(
            index_elements=["channel"], set_={"start": statement.excluded.start, "end": statement.excluded.end,
                                              "mode": statement.excluded.mode, "updated_at": sa.func.now()}))
    return await get_quiet_hours(engine, channel)


@router.get("/{channel}", response_model=QuietHoursOut)
async def get_quiet_hours(engine: Engine, channel: Channel) -> QuietHoursOut:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(QuietHours).where(QuietHours.channel == channel))).mappings().first()
    if row is None:
        raise HTTPException(404, f"no quiet hours for {channel}")
    return QuietHoursOut(**row)


@router.delete("/{channel}", status_code=204)
async def delete_quiet_hours(engine: Engine, channel: Channel) -> Response:
    async with engine.begin() as conn:
        await conn.execute(sa.delete(QuietHours).where(QuietHours.channel == channel))
    return Response(status_code=204)
