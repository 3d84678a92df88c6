"""Activities that give journey instances their definition and profile snapshot, and record
when an instance starts and ends (journey_instances: re-entry rules and reports read it).

Times are the database's clock, like the re-entry checks that read them (workflow time may
run ahead under the time-skipping test server). They run as local activities: one Postgres statement or two, no extra round trip to the
Temporal server, and never one per node visit.
"""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.journey_definition import JourneyDefinition
from models.journey_runtime import InstanceContext, InstanceContextRequest, InstanceFinish
from models.tables import JourneyInstance, JourneyVersion, Profile

PROFILE_COLUMNS = [Profile.id, Profile.email, Profile.phone, Profile.timezone, Profile.locale,
                   Profile.attributes]


class JourneyDataActivities:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        # Published versions are immutable, so caching them forever is safe.
        self._definitions: dict[tuple[str, int], JourneyDefinition] = {}

    @activity.defn(name="load_instance_context")
    async def load_instance_context(self, request: InstanceContextRequest) -> InstanceContext:
        definition = await self._definition(request.journey_key, request.version)
        if request.register_entry:
            async with self.engine.begin() as conn:
                await conn.execute(insert(JourneyInstance).values(
                    run_id=request.run_id, workflow_id=request.workflow_id, journey_key=request.journey_key,
                    version=request.version, profile_id=request.profile_id, entry_key=request.entry_key,
                    entered_at=sa.func.now(),
                ).on_conflict_do_nothing(index_elements=["run_id"]))
        return InstanceContext(definition=definition, profile=await self.load_profile(request.profile_id))

    @activity.defn(name="finish_instance")
    async def finish_instance(self, finish: InstanceFinish) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.update(JourneyInstance).where(JourneyInstance.run_id == finish.run_id).values(
                ended_at=sa.func.now(), outcome=finish.outcome, exit_reason=finish.exit_reason,
                path=finish.path))

    @activity.defn(name="load_profile")
    async def load_profile(self, profile_id: str) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(*PROFILE_COLUMNS).where(Profile.id == profile_id))).first()
        return profile_context(row._mapping if row else {"id": profile_id})

    async def _definition(self, key: str, version: int) -> JourneyDefinition:
        cached = self._definitions.get((key, version))
        if cached is None:
            async with self.engine.connect() as conn:
                raw = (await conn.execute(
                    sa.select(JourneyVersion.definition).where(
                        JourneyVersion.journey_key == key, JourneyVersion.version == version)
                )).scalar_one_or_none()
            if raw is None:
                raise ApplicationError(f"journey {key} v{version} not found", non_retryable=True)
            cached = self._definitions[(key, version)] = JourneyDefinition.model_validate(raw)
        return cached


def profile_context(row: Any) -> dict[str, Any]:
    """The `profile` object seen by conditions and templates."""
    return {
        "id": row.get("id"),
        "email": row.get("email"),
        "phone": row.get("phone"),
        "timezone": row.get("timezone"),
        "locale": row.get("locale"),
        "attributes": row.get("attributes") or {},
    }
