"""Subscription topics and their consent policy (opt_in: explicit opt-in needed; opt_out:
sent unless the profile opted out). Topics never declared behave as opt_out."""

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import insert

from api.deps import Engine
from models.delivery_policy import NAME_PATTERN, TopicIn
from models.delivery_tables import Topic

router = APIRouter(prefix="/v1/topics", tags=["consent"])
TopicKey = Path(pattern=NAME_PATTERN)


class TopicOut(TopicIn):
    key: str


@router.put("/{key}", response_model=TopicOut)
async def put_topic(engine: Engine, body: TopicIn, key: str = TopicKey) -> TopicOut:
    statement = insert(Topic).values(key=key, **body.model_dump())
    async with engine.begin() as conn:
        await conn.execute(statement.on_conflict_do_update(
            index_elements=["key"], set_={"policy": statement.excluded.policy,
                                          "description": statement.excluded.description,
                                          "updated_at": sa.func.now()}))
    return TopicOut(key=key, **body.model_dump())


@router.get("/{key}", response_model=TopicOut)
async def get_topic(engine: Engine, key: str = TopicKey) -> TopicOut:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(Topic.key, Topic.policy, Topic.description)
                                  .where(Topic.key == key))).mappings().first()
    if row is None:
        raise HTTPException(404, f"topic {key!r} not found")
    return TopicOut(**row)
