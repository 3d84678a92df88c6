"""Who is where, and how a journey performs.

Running instances are counted by Temporal visibility (the search attributes CurrentNode and
VisitedNodes that workflows keep up to date as part of their own workflow tasks); finished
ones by journey_instances, written once when each instance ends. So a report costs a few
queries, and instances pay no activity per node visit.
"""

from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel

from api.deps import Engine, Temporal
from models.journey_definition import KEY_PATTERN, NODE_ID, JourneyDefinition, MessageNode
from models.tables import Journey, JourneyInstance, JourneyVersion, Message

router = APIRouter(tags=["journeys"])  # mounted under /v1/journeys by api/routes/journeys.py
JourneyKey = Path(pattern=KEY_PATTERN)


class InstanceSummary(BaseModel):
    workflow_id: str
    profile_id: str | None
    version: int | None
    current_node: str | None
    status: str


class InstanceList(BaseModel):
    items: list[InstanceSummary]


@router.get("/{key}/instances", response_model=InstanceList)
async def list_instances(
    engine: Engine, temporal: Temporal, key: str = JourneyKey,
    node: str | None = Query(default=None, pattern=NODE_ID.pattern),
    status: Literal["running", "completed", "exited"] = "running",
    limit: int = Query(default=100, ge=1, le=1000),
) -> InstanceList:
    """Running instances come from Temporal visibility (e.g. everyone waiting at `node`);
    finished ones from journey_instances."""
    if status == "running":
        query = f"JourneyKey = '{key}' AND ExecutionStatus = 'Running'"  # both match strict patterns
        if node:
            query += f" AND CurrentNode = '{node}'"
        items = []
        async for execution in temporal.list_workflows(query, limit=limit):
            attributes = execution.typed_search_attributes
            items.append(InstanceSummary(
                workflow_id=execution.id, status="running",
                profile_id=_attribute(attributes, "ProfileId"), version=_attribute(attributes, "JourneyVersion"),
                current_node=_attribute(attributes, "CurrentNode")))
        return InstanceList(items=items)
    outcomes = ["completed"] if status == "completed" else ["exited", "timed_out", "holdout", "stopped"]
    statement = (sa.select(JourneyInstance).where(JourneyInstance.journey_key == key,
                                                  JourneyInstance.outcome.in_(outcomes))
                 .order_by(JourneyInstance.ended_at.desc()).limit(limit))
    if node:
        statement = statement.where(JourneyInstance.path[-1].astext == node)
    async with engine.connect() as conn:
        rows = (await conn.execute(statement)).all()
    return InstanceList(items=[InstanceSummary(
        workflow_id=r.workflow_id, profile_id=r.profile_id, version=r.version,
        current_node=r.path[-1] if r.path else None, status=status) for r in rows])


def _attribute(attributes, name: str):
    for pair in attributes:
        if pair.key.name == name:
            return pair.value
    return None


class NodeReport(BaseModel):
    node: str
    type: str
    entered: int
    waiting: int
    exited: int
    messages: dict[str, int] | None = None


class Totals(BaseModel):
    entered: int
    running: int
    completed: int
    exited_by_criteria: int
    timed_out: int
    holdout: int
    stopped: int


class Report(BaseModel):
    key: str
    version: int | None
    totals: Totals
    nodes: list[NodeReport]


@router.get("/{key}/report", response_model=Report)
async def report(engine: Engine, temporal: Temporal, key: str = JourneyKey,
                 version: int | None = Query(default=None, ge=1)) -> Report:
    async with engine.connect() as conn:
        version_filter = [JourneyVersion.journey_key == key]
        if version is not None:
            version_filter.append(JourneyVersion.version == version)
        raw = (await conn.execute(sa.select(JourneyVersion.definition).where(*version_filter)
                                  .order_by(JourneyVersion.version.desc()).limit(1))).scalar_one_or_none()
        if raw is None:
            exists = await conn.scalar(sa.select(sa.func.count()).where(Journey.key == key))
            raise HTTPException(404, f"journey {key!r} {'has no such version' if exists else 'not found'}")
        definition = JourneyDefinition.model_validate(raw)
        finished = _finished_filter(key, version)
        outcome = sa.func.coalesce(JourneyInstance.outcome, "running")
        outcome_counts = dict((await conn.execute(
            sa.select(outcome, sa.func.count()).where(*finished).group_by(outcome))).all())
        node_entered = {}
        node_exited = {}
        for node_id in definition.nodes:
            node_entered[node_id] = await conn.scalar(sa.select(sa.func.count()).where(
                *finished, JourneyInstance.ended_at.is_not(None), JourneyInstance.path.contains([node_id])))
            node_exited[node_id] = await conn.scalar(sa.select(sa.func.count()).where(
                *finished, JourneyInstance.outcome.in_(["exited", "timed_out", "stopped", "holdout"]),
                JourneyInstance.path[-1].astext == node_id))
        message_filter = [Message.source_kind == "journey", Message.source_key == key]
        if version is not None:
            message_filter.append(Message.source_version == version)
        message_counts: dict[str, dict[str, int]] = {}
        for node_id, message_status, count in (await conn.execute(
                sa.select(Message.source_node, Message.status, sa.func.count())
                .where(*message_filter).group_by(Message.source_node, Message.status))).all():
            message_counts.setdefault(node_id, {})[message_status] = count

    base = f"JourneyKey = '{key}' AND ExecutionStatus = 'Running'"
    if version is not None:
        base += f" AND JourneyVersion = {int(version)}"
    nodes = []
    for node_id, node in definition.nodes.items():
        waiting = (await temporal.count_workflows(f"{base} AND CurrentNode = '{node_id}'")).count
        visited = (await temporal.count_workflows(f"{base} AND VisitedNodes = '{node_id}'")).count
        statuses = None
        if isinstance(node, MessageNode):
            statuses = {s: message_counts.get(node_id, {}).get(s, 0) for s in ("sent", "skipped", "failed", "suppressed")}
        nodes.append(NodeReport(node=node_id, type=node.type, entered=node_entered[node_id] + visited,
                                waiting=waiting, exited=node_exited[node_id], messages=statuses))
    totals = Totals(
        entered=sum(outcome_counts.values()), running=outcome_counts.get("running", 0),
        completed=outcome_counts.get("completed", 0), exited_by_criteria=outcome_counts.get("exited", 0),
        timed_out=outcome_counts.get("timed_out", 0), holdout=outcome_counts.get("holdout", 0),
        stopped=outcome_counts.get("stopped", 0))
    return Report(key=key, version=version, totals=totals, nodes=nodes)


def _finished_filter(key: str, version: int | None) -> list:
    conditions = [JourneyInstance.journey_key == key]
    if version is not None:
        conditions.append(JourneyInstance.version == version)
    return conditions
