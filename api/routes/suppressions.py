"""Hard suppressions: addresses nothing is sent to, not even transactional messages."""

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import insert

from api.deps import Engine
from models.delivery_policy import Channel, SuppressionIn, SuppressionOut, normalize_address
from models.delivery_tables import Suppression

router = APIRouter(prefix="/v1/suppressions", tags=["consent"])


class SuppressionList(BaseModel):
    items: list[SuppressionOut]


@router.post("", response_model=SuppressionOut, status_code=201)
async def add_suppression(engine: Engine, body: SuppressionIn) -> SuppressionOut:
    async with engine.begin() as conn:
        await suppress(conn, body.channel, body.address, body.reason)
        row = (await conn.execute(sa.select(Suppression).where(
            Suppression.channel == body.channel,
            Suppression.address == normalize_address(body.address)))).mappings().one()
    return SuppressionOut(**row)


@router.get("", response_model=SuppressionList)
async def list_suppressions(engine: Engine, channel: Channel | None = None, address: str | None = None,
                            limit: int = Query(default=100, ge=1, le=1000)) -> SuppressionList:
    query = sa.select(Suppression).order_by(Suppression.created_at.desc()).limit(limit)
    if channel is not None:
        query = query.where(Suppression.channel == channel)
    if address is not None:
        query = query.where(Suppression.address == normalize_address(address))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return SuppressionList(items=[SuppressionOut(**row) for row in rows])


@router.delete("/{channel}/{address}", status_code=204)
async def delete_suppression(engine: Engine, channel: Channel, address: str = Path(max_length=320)) -> Response:
    async with engine.begin() as conn:
        await conn.execute(sa.delete(Suppression).where(
            Suppression.channel == channel, Suppression.address == normalize_address(address)))
    return Response(status_code=204)


async def suppress(conn, channel: str, address: str, reason: str) -> None:
    """Record (or keep) a suppression; also used by provider callbacks."""
    statement = insert(Suppression).values(channel=channel, address=normalize_address(address), reason=reason)
    await conn.execute(statement.on_conflict_do_nothing(index_elements=["channel", "address"]))
