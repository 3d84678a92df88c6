"""Profile writes shared by the profile and event routes (set-based: one statement per batch)."""

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from models.profile_schemas import ProfileUpsert

UPSERT = text("""
    INSERT INTO profiles AS p (id, email, phone, timezone, locale, attributes)
    SELECT r.id, r.email, r.phone, r.timezone, r.locale, r.attributes
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS r(id text, email text, phone text, timezone text, locale text, attributes jsonb)
    ON CONFLICT (id) DO UPDATE SET
        email = COALESCE(excluded.email, p.email),
        phone = COALESCE(excluded.phone, p.phone),
        timezone = COALESCE(excluded.timezone, p.timezone),
        locale = COALESCE(excluded.locale, p.locale),
        attributes = p.attributes || excluded.attributes,
        updated_at = now()
""")

ENSURE = text("""
    INSERT INTO profiles (id) SELECT unnest(CAST(:ids AS text[]))
    ON CONFLICT (id) DO NOTHING
""")


def merge_duplicates(profiles: list[ProfileUpsert]) -> list[ProfileUpsert]:
    """One row per id (a statement may not update a row twice); later values win."""
    merged: dict[str, ProfileUpsert] = {}
    for profile in profiles:
        earlier = merged.get(profile.id)
        if earlier is None:
            merged[profile.id] = profile
            continue
        fields = earlier.model_dump()
        fields.update({k: v for k, v in profile.model_dump().items() if v is not None and k != "attributes"})
        fields["attributes"] = {**earlier.attributes, **profile.attributes}
        merged[profile.id] = ProfileUpsert(**fields)
    # Id order: the same lock order as batch delivery, so the two never deadlock.
    return [merged[key] for key in sorted(merged)]


async def upsert_profiles(conn: AsyncConnection, profiles: list[ProfileUpsert]) -> int:
    rows = merge_duplicates(profiles)
    # One JSON document per batch: cheap to encode, unpacked by Postgres.
    await conn.execute(UPSERT, {"rows": json.dumps([p.model_dump() for p in rows])})
    return len(rows)


async def ensure_profiles(conn: AsyncConnection, ids: set[str]) -> None:
    """Create bare profiles for ids never seen before."""
    await conn.execute(ENSURE, {"ids": sorted(ids)})  # id order, as everywhere rows are locked
