"""Runs a journey on Temporal's time-skipping test server: 91 days pass in seconds.

The journey workflow runs unchanged, on a throwaway worker whose activities keep everything in
memory (activities/simulation.py). One simulation at a time per API process: the test
server's clock is shared, so simulations queue behind a lock.
"""

import asyncio
import time
import uuid
from contextlib import AsyncExitStack
from datetime import timedelta

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.journey_entry import api_entry_event
from activities.simulation import SimulatedRun, SimulationActivities
from cli import find_binary
from models import search_attributes
from models.conditions import evaluate
from models.delivery_queues import delivery_task_queue
from models.durations import parse_signed_duration
from models.journey_definition import CHANNELS, JourneyDefinition
from models.journey_runtime import EventPayload, JourneyStart
from models.simulation_schemas import SimulatedMessage, SimulationRequest, SimulationResult, TimelineEvent
from workflows.journey import JourneyWorkflow


class JourneySimulator:
    def __init__(self) -> None:
        self._env: WorkflowEnvironment | None = None
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        if self._env is not None:
            await self._env.shutdown()
            self._env = None

    async def _environment(self) -> WorkflowEnvironment:
        if self._env is None:
            self._env = await WorkflowEnvironment.start_time_skipping(
                test_server_existing_path=find_binary("temporal-test-server"),
                data_converter=pydantic_data_converter)
            await search_attributes.register(self._env.client)
        return self._env

    async def simulate(self, definition: JourneyDefinition, templates: dict[str, dict],
                       request: SimulationRequest) -> SimulationResult:
        async with self._lock:
            started = time.monotonic()
            env = await self._environment()
            begin = await env.get_current_time()
            profile = {"id": request.profile_id, **request.profile.model_dump()}
            entry = self._entry_event(definition, request, begin)
            timeline = [(parse_signed_duration(e.at), self._payload(e, begin + parse_signed_duration(e.at)))
                         for e in sorted(request.events, key=lambda e: parse_signed_duration(e.at))]
            events = {p.message_id: p.as_context() for _, p in timeline}
            if entry:
                events[entry.message_id] = entry.as_context()
            run = SimulatedRun(definition, profile, templates, events, request.webhook_responses)

            entry_where = getattr(definition.entry, "where", None)
            if entry_where and not evaluate(entry_where, {"profile": profile, "event": entry.as_context()}, now=begin):
                return _result(run, "not_entered", "entry condition not met", [], {}, timedelta(0), started)

            task_queue = f"simulate-{uuid.uuid4().hex}"
            activities = SimulationActivities(run)
            # Sends go to the per-channel delivery queues: serve those too (simulations run one
            # at a time on this server, so these workers are the only pollers).
            workers = [Worker(env.client, task_queue=task_queue, workflows=[JourneyWorkflow],
                              activities=activities.all())]
            workers += [Worker(env.client, task_queue=delivery_task_queue(channel),
                               activities=[activities.send_message]) for channel in CHANNELS]
            async with AsyncExitStack() as running:
                for worker in workers:
                    await running.enter_async_context(worker)
                handle = await env.client.start_workflow(
                    JourneyWorkflow.run,
                    JourneyStart(journey_key=definition.key, version=0, profile_id=request.profile_id,
                                 entry_event=entry),
                    id=f"simulation:{uuid.uuid4().hex}", task_queue=task_queue)
                for offset, payload in timeline:
                    wait = begin + offset - await env.get_current_time()
                    if wait > timedelta(0):
                        await env.sleep(wait)
                    await handle.signal(JourneyWorkflow.event, payload)
                state = await handle.result()
                # The server clock may skip on once the instance is done: use its close time.
                elapsed = (await handle.describe()).close_time - begin
            return _result(run, state.status, state.exit_reason, state.path, state.assignments, elapsed, started,
                           begin)

    @staticmethod
    def _entry_event(definition: JourneyDefinition, request: SimulationRequest, at) -> EventPayload | None:
        entry = definition.entry
        if entry.type == "audience":
            return None
        name = entry.event if entry.type == "event" else api_entry_event(definition.key)
        properties = request.entry.properties if request.entry else {}
        return EventPayload(message_id="simulated-entry", name=name, properties=properties, timestamp=at)

    @staticmethod
    def _payload(event: TimelineEvent, at) -> EventPayload:
        return EventPayload(message_id=f"simulated-{uuid.uuid4().hex}", name=event.name,
                            properties=event.properties, timestamp=at)


def _result(run: SimulatedRun, status, reason, path, assignments, elapsed, started, begin=None) -> SimulationResult:
    messages = [SimulatedMessage(**m, after=_iso(m["at"] - begin)) for m in run.messages] if begin else []
    actions = [{**a, "at": a["at"].isoformat(), "after": _iso(a["at"] - begin)} for a in run.actions] if begin else []
    return SimulationResult(status=status, exit_reason=reason, path=path, assignments=assignments,
                            profile=run.profile, messages=messages, actions=actions,
                            simulated_duration=_iso(elapsed), wall_seconds=round(time.monotonic() - started, 3))


def _iso(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    return f"P{days}DT{hours}H{minutes}M{seconds}S"


simulator = JourneySimulator()
