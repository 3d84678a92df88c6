"""Typology (fatigue / pressure) rules, applied to every marketing send at send time."""

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path, Response
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import insert

from api.deps import Engine
from models.delivery_policy import NAME_PATTERN, TypologyRuleIn, TypologyRuleOut
from models.delivery_tables import TypologyRule

router = APIRouter(prefix="/v1/typology-rules", tags=["typology rules"])
RuleName = Path(pattern=NAME_PATTERN)
COLUMNS = (TypologyRule.name, TypologyRule.channel, TypologyRule.category, TypologyRule.max_count,
           TypologyRule.window, TypologyRule.weights, TypologyRule.enabled, TypologyRule.updated_at)


class RuleList(BaseModel):
    items: list[TypologyRuleOut]


@router.put("/{name}", response_model=TypologyRuleOut)
async def put_rule(engine: Engine, body: TypologyRuleIn, name: str = RuleName) -> TypologyRuleOut:
    values = body.model_dump() | {"window_seconds": body.window_seconds()}
    statement = insert(TypologyRule).values(name=name, **values)
    async with engine.begin() as conn:
        await conn.execute(statement.on_conflict_do_update(
            index_elements=["name"],
            set_={**{key: statement.excluded[key] for key in values}, "updated_at": sa.func.now()}))
    return await get_rule(engine, name)


@router.get("", response_model=RuleList)
async def list_rules(engine: Engine) -> RuleList:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(*COLUMNS).order_by(TypologyRule.name))).mappings().all()
    return RuleList(items=[TypologyRuleOut(**row) for row in rows])


@router.get("/{name}", response_model=TypologyRuleOut)
async def get_rule(engine: Engine, name: str = RuleName) -> TypologyRuleOut:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(*COLUMNS).where(TypologyRule.name == name))).mappings().first()
    if row is None:
        raise HTTPException(404, f"typology rule {name!r} not found")
    return TypologyRuleOut(**row)


@router.delete("/{name}", status_code=204)
async def delete_rule(engine: Engine, name: str = RuleName) -> Response:
    async with engine.begin() as conn:
        await conn.execute(sa.delete(TypologyRule).where(TypologyRule.name == name))
    return Response(status_code=204)
