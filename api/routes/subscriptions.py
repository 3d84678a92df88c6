"""A profile's consent per channel and topic (`PUT` replaces the listed entries only)."""

import sqlalchemy as sa
from fastapi import APIRouter, Path
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import insert

from api.deps import Engine
from models.delivery_policy import SubscriptionOut, SubscriptionsIn
from models.delivery_tables import Subscription
from models.profile_schemas import PROFILE_ID_PATTERN

router = APIRouter(prefix="/v1/profiles", tags=["consent"])
ProfileId = Path(pattern=PROFILE_ID_PATTERN)


class SubscriptionList(BaseModel):
    profile_id: str
    subscriptions: list[SubscriptionOut]


@router.put("/{profile_id}/subscriptions", response_model=SubscriptionList)
async def put_subscriptions(engine: Engine, body: SubscriptionsIn, profile_id: str = ProfileId) -> SubscriptionList:
    # One row per (channel, topic): a later entry of the same request wins.
    rows = {(s.channel, s.topic): s for s in body.subscriptions}
    async with engine.begin() as conn:
        await record_subscriptions(conn, profile_id, [(c, t, s.status) for (c, t), s in rows.items()], "api")
    return await get_subscriptions(engine, profile_id)


@router.get("/{profile_id}/subscriptions", response_model=SubscriptionList)
async def get_subscriptions(engine: Engine, profile_id: str = ProfileId) -> SubscriptionList:
    async with engine.connect() as conn:
        rows = (await conn.execute(
            sa.select(Subscription.channel, Subscription.topic, Subscription.status, Subscription.source,
                      Subscription.updated_at)
            .where(Subscription.profile_id == profile_id)
            .order_by(Subscription.channel, Subscription.topic))).mappings().all()
    return SubscriptionList(profile_id=profile_id, subscriptions=[SubscriptionOut(**row) for row in rows])


async def record_subscriptions(conn, profile_id: str, entries: list[tuple[str, str, str]], source: str) -> None:
    """Upsert (channel, topic, status) entries; also used by unsubscribe links and callbacks."""
    statement = insert(Subscription).values([
        {"profile_id": profile_id, "channel": channel, "topic": topic, "status": status, "source": source}
        for channel, topic, status in entries])
    await conn.execute(statement.on_conflict_do_update(
        index_elements=["profile_id", "channel", "topic"],
        set_={"status": statement.excluded.status, "source": statement.excluded.source,
              "updated_at": sa.func.now()}))
