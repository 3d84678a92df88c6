"""Profile writes shared by the profile and event routes (set-based: one statement per batch)."""

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from models.profile_schemas import ProfileUpsert

UPSERT = text("""
    INSERT INTO profiles AS p (id, email, phone, timezone, locale, attributes)
    SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:emails AS text[]), CAST(:phones AS text[]),
                         CAST(:timezones AS text[]), CAST(:locales AS text[]), CAST(:attributes AS jsonb[]))
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
    return list(merged.values())


async def upsert_profiles(conn: AsyncConnection, profiles: list[ProfileUpsert]) -> int:
    rows = merge_duplicates(profiles)
    await conn.execute(UPSERT, {
        "ids": [p.id for p in rows], "emails": [p.email for p in rows],
        "phones": [p.phone for p in rows], "timezones": [p.timezone for p in rows],
        "locales": [p.locale for p in rows],
        "attributes": [json.dumps(p.attributes) for p in rows],
    })
    return len(rows)


async def ensure_profiles(conn: AsyncConnection, ids: set[str]) -> None:
    """Create bare profiles for ids never seen before."""
    await conn.execute(ENSURE, {"ids": sorted(ids)})
