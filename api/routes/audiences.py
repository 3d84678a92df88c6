"""Audiences: saved conditions over a dataset, with exact counts and a sample on demand."""

from datetime import datetime, timezone

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path
from sqlalchemy.dialects.postgresql import insert

from activities.audiences import count_audience
from activities.dataset_registry import load_registry
from api.deps import Engine
from models.audience_schemas import AUDIENCE_KEY_PATTERN, AudienceCount, AudienceOut, AudienceQuery
from models.condition_validation import validate_audience_condition
from models.dataset_schema import Registry
from models.faults import DefinitionError, Fault
from models.tables import Audience

router = APIRouter(prefix="/v1/audiences", tags=["audiences"])
AudienceKey = Path(pattern=AUDIENCE_KEY_PATTERN)
COLUMNS = (Audience.key, Audience.dimension, Audience.condition.label("where"),
           Audience.created_at, Audience.updated_at)


def audience_faults(registry: Registry, query: AudienceQuery) -> list[Fault]:
    # An unknown dimension is reported at $.dimension.
    return validate_audience_condition(registry, query.dimension, query.where, path="$.where")


@router.put("/{key}", response_model=AudienceOut)
async def put_audience(engine: Engine, body: AudienceQuery, key: str = AudienceKey):
    async with engine.begin() as conn:
        faults = audience_faults(await load_registry(conn), body)
        if faults:
            raise DefinitionError(faults)
        statement = insert(Audience).values(key=key, dimension=body.dimension, condition=body.where)
        row = (await conn.execute(statement.on_conflict_do_update(
            index_elements=["key"],
            set_={"dimension": statement.excluded.dimension, "condition": statement.excluded.condition,
                  "updated_at": sa.func.now()},
        ).returning(*COLUMNS))).one()
    return AudienceOut.model_validate(dict(row._mapping))


@router.get("/{key}", response_model=AudienceOut)
async def get_audience(engine: Engine, key: str = AudienceKey):
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(*COLUMNS).where(Audience.key == key))).first()
    if row is None:
        raise HTTPException(404, f"audience {key!r} not found")
    return AudienceOut.model_validate(dict(row._mapping))


@router.post("/count", response_model=AudienceCount)
async def count_ad_hoc(engine: Engine, body: AudienceQuery):
    """Count any condition without saving it: the exact number and a sample of 10 members."""
    async with engine.connect() as conn:
        registry = await load_registry(conn)
    faults = audience_faults(registry, body)
    if faults:
        raise DefinitionError(faults)
    return await _count(engine, registry, body)


@router.post("/{key}/count", response_model=AudienceCount)
async def count_saved(engine: Engine, key: str = AudienceKey):
    audience = await get_audience(engine, key)
    async with engine.connect() as conn:
        registry = await load_registry(conn)
    query = AudienceQuery(dimension=audience.dimension, where=audience.where)
    faults = audience_faults(registry, query)
    if faults:
        # Valid when saved; a dataset has changed since (a column dropped, a link removed).
        raise HTTPException(409, [fault.as_error() | {"type": "conflict"} for fault in faults])
    return await _count(engine, registry, query)


async def _count(engine: Engine, registry: Registry, query: AudienceQuery) -> AudienceCount:
    count, sample = await count_audience(engine, registry, query.dimension, query.where,
                                         now=datetime.now(timezone.utc))
    return AudienceCount(count=count, sample=sample)
