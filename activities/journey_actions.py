"""Journey actions with side effects: profile updates, webhooks (custom actions), jumps."""

import json
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.journey_data import PROFILE_COLUMNS, profile_context
from activities.journey_entry import LiveJourneys, enter, reentry_blocked
from activities.rendering import render
from models.journey_runtime import EventPayload, JumpRequest, ProfileUpdateRequest, WebhookRequest
from models.settings import Settings
from models.tables import Profile

MAX_RESPONSE_BYTES = 256_000  # responses land in workflow history: keep them small


class JourneyActionActivities:
    def __init__(self, engine: AsyncEngine, client: Client, settings: Settings):
        self.engine, self.client, self.settings = engine, client, settings
        self.live = LiveJourneys()

    @activity.defn(name="update_profile")
    async def update_profile(self, request: ProfileUpdateRequest) -> dict[str, Any]:
        """Merge attributes (Liquid strings rendered against the instance context); return the
        fresh profile snapshot."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(sa.select(*PROFILE_COLUMNS).where(Profile.id == request.profile_id)
                                      .with_for_update())).first()
            profile = profile_context(row._mapping if row else {"id": request.profile_id})
            context = _context(profile, request.event, request.actions)
            values = {name: render(value, context) if isinstance(value, str) and "{" in value else value
                      for name, value in request.set.items()}
            stored = (await conn.execute(sa.text(
                "INSERT INTO profiles AS p (id, attributes) VALUES (:id, CAST(:attrs AS jsonb)) "
                "ON CONFLICT (id) DO UPDATE SET attributes = p.attributes || excluded.attributes, "
                "updated_at = now() RETURNING id, email, phone, timezone, locale, attributes"),
                {"id": request.profile_id, "attrs": json.dumps(values)})).one()
        return profile_context(stored._mapping)

    @activity.defn(name="call_webhook")
    async def call_webhook(self, request: WebhookRequest) -> dict[str, Any]:
        """Call the endpoint; 5xx and network errors are retried by Temporal, 4xx are final."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(*PROFILE_COLUMNS).where(Profile.id == request.profile_id))).first()
        context = _context(profile_context(row._mapping if row else {"id": request.profile_id}),
                           request.event, request.actions)
        url = render(request.url, context)
        headers = {name: render(value, context) for name, value in request.headers.items()}
        body = render(request.body, context) if request.body else None
        try:
            async with httpx.AsyncClient(timeout=request.timeout_seconds) as http:
                response = await http.request(request.method, url, headers=headers, content=body)
        except httpx.HTTPError as error:
            raise ApplicationError(f"webhook {request.node}: {type(error).__name__}: {error}") from None
        if response.status_code >= 500:
            raise ApplicationError(f"webhook {request.node}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise ApplicationError(f"webhook {request.node}: HTTP {response.status_code}", non_retryable=True)
        result: dict[str, Any] = {"status_code": response.status_code}
        if len(response.content) <= MAX_RESPONSE_BYTES:
            try:
                parsed = response.json()
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                result = {**parsed, "status_code": response.status_code}
        return result

    @activity.defn(name="jump")
    async def jump(self, request: JumpRequest) -> bool:
        """Enter the profile into another live journey; False when it is not live or re-entry
        rules keep the profile out."""
        async with self.engine.connect() as conn:
            targets = [j for j in await self.live.all(conn, key=request.journey_key) if j.accepts_entries]
            if not targets:
                return False
            target = targets[0]
            blocked = await reentry_blocked(conn, target, {(request.profile_id, "")})
        if blocked:
            return False
        await enter(self.client, self.settings.task_queue, target, request.profile_id, request.event)
        return True


def _context(profile: dict, event: EventPayload | None, actions: dict) -> dict[str, Any]:
    return {"profile": profile, "event": event.as_context() if event else {}, "action": actions}
