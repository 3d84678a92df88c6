"""Journey drafts, publishing (immutable versions) and instance status."""

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, HTTPException, Path, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.audience_schedules import start_audience_entry
from api.deps import AppSettings, Engine, Temporal, get_temporal
from api.routes import journey_lifecycle, journey_reports, journey_simulation
from models.faults import DefinitionError, Fault
from models.journey_definition import KEY_PATTERN, AudienceEntry, JourneyDefinition, parse_journey
from models.journey_runtime import InstanceState
from models.profile_schemas import PROFILE_ID_PATTERN
from models.search_attributes import JOURNEY_VERSION
from models.tables import Audience, Journey, JourneyVersion, Template
from models.journey_runtime import workflow_id

router = APIRouter(prefix="/v1/journeys", tags=["journeys"])
# Lifecycle and reporting routes live in their own modules; mounted here so /v1/journeys is one
# router for the app.
router.include_router(journey_simulation.router)
router.include_router(journey_lifecycle.router)
router.include_router(journey_reports.router)
JourneyKey = Path(pattern=KEY_PATTERN)
Definition = Body(description="A journey definition (see DESIGN.md, Journey DSL)")


class VersionOut(BaseModel):
    version: int
    status: str
    published_at: Any


class JourneyOut(BaseModel):
    key: str
    name: str
    status: str
    live_version: int | None
    definition: dict[str, Any]
    versions: list[VersionOut]


class Published(BaseModel):
    key: str
    version: int
    status: str


class InstanceOut(BaseModel):
    status: str
    version: int | None
    current_node: str | None
    path: list[str]
    exit_reason: str | None = None


async def _validated(conn: AsyncConnection, raw: Any) -> JourneyDefinition:
    templates = set((await conn.execute(sa.select(Template.key))).scalars())
    return parse_journey(raw, known_templates=templates)


@router.post("", status_code=201, response_model=JourneyOut)
async def create_journey(engine: Engine, raw: dict[str, Any] = Definition) -> JourneyOut:
    async with engine.begin() as conn:
        definition = await _validated(conn, raw)
        exists = await conn.scalar(sa.select(sa.func.count()).where(Journey.key == definition.key))
        if exists:
            raise HTTPException(409, f"journey {definition.key!r} already exists; use PUT to edit its draft")
        await conn.execute(sa.insert(Journey).values(
            key=definition.key, name=definition.name, definition=raw, status="draft"))
    return await get_journey(engine, definition.key)


@router.put("/{key}", response_model=JourneyOut)
async def edit_draft(engine: Engine, key: str = JourneyKey, raw: dict[str, Any] = Definition) -> JourneyOut:
    raw = {"key": key, **raw}
    if raw["key"] != key:
        raise DefinitionError([Fault("$.key", f"must equal the key in the URL ({key!r})")])
    async with engine.begin() as conn:
        definition = await _validated(conn, raw)
        updated = await conn.execute(sa.update(Journey).where(Journey.key == key).values(
            name=definition.name, definition=raw, updated_at=sa.func.now()))
        if updated.rowcount == 0:
            raise HTTPException(404, f"journey {key!r} not found")
    return await get_journey(engine, key)


@router.post("/{key}/publish", response_model=Published)
async def publish(request: Request, engine: Engine, settings: AppSettings, key: str = JourneyKey) -> Published:
    async with engine.begin() as conn:
        journey = (await conn.execute(
            sa.select(Journey.definition).where(Journey.key == key).with_for_update())).first()
        if journey is None:
            raise HTTPException(404, f"journey {key!r} not found")
        # Re-validate: a template may have been deleted since the draft was saved.
        definition = await _validated(conn, journey.definition)
        previous = (await conn.execute(
            sa.select(JourneyVersion.version, JourneyVersion.definition).where(JourneyVersion.journey_key == key)
            .order_by(JourneyVersion.version.desc()).limit(1))).first()
        if previous is not None:
            _check_same_entry(previous.definition["entry"], definition)
        version = 1 + (previous.version if previous else 0)
        await conn.execute(sa.update(JourneyVersion).where(
            JourneyVersion.journey_key == key, JourneyVersion.status == "live").values(status="closed"))
        await conn.execute(sa.insert(JourneyVersion).values(
            journey_key=key, version=version, status="live",
            definition=definition.model_dump(mode="json", by_alias=True)))
        await conn.execute(sa.update(Journey).where(Journey.key == key).values(
            status="live", live_version=version, updated_at=sa.func.now()))
        if isinstance(definition.entry, AudienceEntry):
            await _check_audience(conn, definition.entry)
            # Inside the transaction: if Temporal refuses, nothing is published.
            await start_audience_entry(await get_temporal(request), settings.task_queue, definition, version)
    return Published(key=key, version=version, status="live")


async def _check_audience(conn: AsyncConnection, entry: AudienceEntry) -> None:
    dimension = await conn.scalar(sa.select(Audience.dimension).where(Audience.key == entry.audience))
    if dimension is None:
        raise DefinitionError([Fault("$.entry.audience", f"unknown audience {entry.audience!r}")])
    if dimension != "profiles":
        raise DefinitionError([Fault("$.entry.audience", f"journeys enter profiles; audience "
                                                         f"{entry.audience!r} selects {dimension}")])


def _check_same_entry(previous_entry: dict, definition: JourneyDefinition) -> None:
    """Running instances and their ids depend on how profiles enter: versions keep it."""
    entry = definition.entry
    if previous_entry.get("type") != entry.type:
        raise DefinitionError([Fault("$.entry.type", f"a new version cannot change the entry type "
                                                     f"({previous_entry.get('type')} -> {entry.type})")])
    if previous_entry.get("key") != getattr(entry, "key", None):
        raise DefinitionError([Fault("$.entry.key", "a new version cannot change the entry key")])


@router.get("/{key}", response_model=JourneyOut)
async def get_journey(engine: Engine, key: str = JourneyKey) -> JourneyOut:
    async with engine.connect() as conn:
        journey = (await conn.execute(sa.select(Journey).where(Journey.key == key))).first()
        if journey is None:
            raise HTTPException(404, f"journey {key!r} not found")
        versions = (await conn.execute(
            sa.select(JourneyVersion.version, JourneyVersion.status, JourneyVersion.published_at)
            .where(JourneyVersion.journey_key == key).order_by(JourneyVersion.version))).all()
    return JourneyOut(key=journey.key, name=journey.name, status=journey.status,
                      live_version=journey.live_version, definition=journey.definition,
                      versions=[VersionOut.model_validate(dict(v._mapping)) for v in versions])


FINAL_STATUS = {
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TERMINATED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
    WorkflowExecutionStatus.CANCELED: "exited",
}


@router.get("/{key}/instances/{profile_id}", response_model=InstanceOut)
async def get_instance(temporal: Temporal, key: str = JourneyKey,
                       profile_id: str = Path(pattern=PROFILE_ID_PATTERN)) -> InstanceOut:
    handle = temporal.get_workflow_handle(workflow_id(key, profile_id), result_type=InstanceState)
    try:
        description = await handle.describe()
        if description.status in FINAL_STATUS:
            version = description.typed_search_attributes.get(JOURNEY_VERSION)
            return InstanceOut(status=FINAL_STATUS[description.status], version=version,
                               current_node=None, path=[])
        if description.status == WorkflowExecutionStatus.COMPLETED:
            state = await handle.result()
        else:
            state = await handle.query("state", result_type=InstanceState)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(404, f"profile {profile_id!r} has no instance of journey {key!r}") from None
        raise HTTPException(503, f"Temporal error: {error.message}") from None
    return InstanceOut(status=state.status, version=state.version, current_node=state.current_node,
                       path=state.path, exit_reason=state.exit_reason)
