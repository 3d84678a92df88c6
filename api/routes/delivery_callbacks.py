"""Provider status callbacks: delivered / bounced / complained, in one normalised shape.

A provider-specific webhook (SES via SNS, SendGrid events, Twilio status callbacks) maps its
payload to this shape in front of the API. A hard bounce or a complaint suppresses the address,
so nothing, not even a transactional message, is sent to it again.
"""

from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import Engine
from api.routes.suppressions import suppress
from models.delivery_policy import NAME_PATTERN
from models.tables import Message

router = APIRouter(prefix="/v1/delivery/callbacks", tags=["delivery"])

# A later, weaker report never overwrites a stronger one (a complaint can follow a delivery).
RANK = {"delivered": 1, "bounced": 2, "complained": 3}


class DeliveryEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider_message_id: str | None = Field(default=None, max_length=500)
    message_id: int | None = Field(default=None, description="the ledger id, if the provider echoes it")
    status: Literal["delivered", "bounced", "complained"]
    bounce: Literal["hard", "soft"] = "hard"
    reason: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _identified(self) -> "DeliveryEvent":
        if self.provider_message_id is None and self.message_id is None:
            raise ValueError("give provider_message_id or message_id")
        return self


class Callback(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[DeliveryEvent] = Field(min_length=1, max_length=1000)


class CallbackResult(BaseModel):
    updated: int
    suppressed: int
    unknown: list[int | str]


@router.post("/{provider}", response_model=CallbackResult)
async def provider_callback(engine: Engine, body: Callback,
                            provider: str = Path(pattern=NAME_PATTERN)) -> CallbackResult:
    updated = suppressed = 0
    unknown: list[int | str] = []
    async with engine.begin() as conn:
        for event in body.events:
            row = (await conn.execute(_find(provider, event))).first()
            if row is None:
                unknown.append(event.message_id if event.message_id is not None else event.provider_message_id)
                continue
            reason = event.reason
            if event.status == "bounced":
                reason = f"{event.bounce} bounce" + (f": {event.reason}" if event.reason else "")
            if RANK[event.status] >= RANK.get(row.delivery_status or "", 0):
                await conn.execute(sa.update(Message).where(Message.id == row.id).values(
                    delivery_status=event.status, delivery_updated_at=sa.func.now(),
                    reason=reason if event.status != "delivered" else Message.reason))
                updated += 1
            hard = event.status == "complained" or (event.status == "bounced" and event.bounce == "hard")
            if hard and row.address:
                await suppress(conn, row.channel, row.address, "complaint" if event.status == "complained"
                               else "hard bounce")
                suppressed += 1
    return CallbackResult(updated=updated, suppressed=suppressed, unknown=unknown)


def _find(provider: str, event: DeliveryEvent):
    query = sa.select(Message.id, Message.channel, Message.address, Message.delivery_status)
    if event.message_id is not None:
        return query.where(Message.id == event.message_id)
    return query.where(Message.provider == provider, Message.provider_message_id == event.provider_message_id)
