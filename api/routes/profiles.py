from fastapi import APIRouter, HTTPException, Path
import sqlalchemy as sa

from api.deps import Engine
from api.profile_store import upsert_profiles
from models.profile_schemas import PROFILE_ID_PATTERN, BulkProfiles, ProfileFields, ProfileOut, ProfileUpsert
from models.tables import Profile

router = APIRouter(prefix="/v1/profiles", tags=["profiles"])
ProfileId = Path(pattern=PROFILE_ID_PATTERN)


@router.put("/{profile_id}", response_model=ProfileOut)
async def put_profile(engine: Engine, body: ProfileFields, profile_id: str = ProfileId) -> ProfileOut:
    async with engine.begin() as conn:
        await upsert_profiles(conn, [ProfileUpsert(id=profile_id, **body.model_dump())])
    return await get_profile(engine, profile_id)


@router.post("/bulk")
async def bulk_profiles(engine: Engine, body: BulkProfiles) -> dict:
    async with engine.begin() as conn:
        count = await upsert_profiles(conn, body.profiles)
    return {"upserted": count}


@router.get("/{profile_id}", response_model=ProfileOut)
async def get_profile(engine: Engine, profile_id: str = ProfileId) -> ProfileOut:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(Profile).where(Profile.id == profile_id))).first()
    if row is None:
        raise HTTPException(404, f"profile {profile_id!r} not found")
    return ProfileOut.model_validate(dict(row._mapping))
