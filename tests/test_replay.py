"""Determinism guard: journey histories must replay on the current workflow code.

Committed histories in tests/histories/ were recorded from earlier code; a change that would
break running instances fails here. Record a new one with SOJOURN_RECORD_HISTORY=1.
"""

import json
import os
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.journey_fixtures import journey
from tests.test_journey_workflow import dispatch, send_events, start_instance, temporal_worker  # noqa: F401
from workflows.journey import JourneyWorkflow

HISTORIES = Path(__file__).parent / "histories"


def replayer() -> Replayer:
    return Replayer(workflows=[JourneyWorkflow], data_converter=pydantic_data_converter)


async def test_fresh_history_with_every_node_type_replays(api, temporal_worker, engine, settings):
    env, key = temporal_worker, f"replay-{uuid.uuid4().hex[:6]}"
    definition = journey(key)
    definition["nodes"]["bought"]["on_event"] = "big"
    definition["nodes"]["big"] = {"type": "condition", "else": "end", "branches": [
        {"when": {"attr": "event.properties.total", "op": "gte", "value": 100}, "next": "thanks"}]}
    handle = await start_instance(api, env, engine, settings, definition, "rita", item="lamp")
    await env.sleep(timedelta(hours=3))
    await send_events(api, {"profile_id": "rita", "name": "order_placed", "properties": {"total": 120}})
    await dispatch(env, engine, settings)
    assert (await handle.result()).path == ["wait", "remind", "bought", "big", "thanks", "end"]

    history = await handle.fetch_history()
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None
    if os.environ.get("SOJOURN_RECORD_HISTORY"):
        (HISTORIES / "journey_every_node.json").write_text(history.to_json())


async def test_committed_histories_replay():
    files = sorted(HISTORIES.glob("*.json"))
    assert files, "no recorded histories"
    for file in files:
        history = WorkflowHistory.from_json(file.stem, json.loads(file.read_text()))
        result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{file.name}: {result.replay_failure}"
