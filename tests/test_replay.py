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

from models.journey_runtime import workflow_id
from tests.journey_fixtures import journey
from tests.test_journey_features import endpoint, publish  # noqa: F401
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


async def test_fresh_history_with_actions_split_and_profile_dates_replays(api, temporal_worker, engine, settings,
                                                                         endpoint):
    env, key = temporal_worker, f"replay-actions-{uuid.uuid4().hex[:6]}"
    renewal = (await env.get_current_time() + timedelta(days=3)).date().isoformat()
    await api.put("/v1/profiles/rio", json={"email": "rio@example.com", "timezone": "Europe/Paris",
                                             "attributes": {"renewal": renewal}})
    nodes = {
        "hook": {"type": "webhook", "url": endpoint + "/score", "next": "save", "retries": 0},
        "save": {"type": "update_profile", "set": {"tier": "{{ action.hook.tier }}"}, "next": "ab"},
        "ab": {"type": "split", "variants": [{"name": "a", "weight": 1, "next": "until"},
                                             {"name": "b", "weight": 1, "next": "until"}]},
        "until": {"type": "wait", "until": {"attribute": "profile.attributes.renewal", "offset": "-P1D"},
                  "next": "window"},
        "window": {"type": "wait", "window": {"days": ["mon", "tue"], "start": "09:00", "end": "10:00"},
                   "next": "remind"},
        "remind": {"type": "message", "channel": "email", "template": "thanks", "next": "end"},
        "end": {"type": "end"},
    }
    await publish(api, {"key": key, "name": key, "entry": {"type": "event", "event": key}, "start": "hook",
                        "nodes": nodes})
    await send_events(api, {"profile_id": "rio", "name": key})
    await dispatch(env, engine, settings)
    await env.sleep(timedelta(days=10))
    handle = env.client.get_workflow_handle_for(JourneyWorkflow.run, workflow_id(key, "rio"))
    assert (await handle.result()).path == ["hook", "save", "ab", "until", "window", "remind", "end"]
    history = await handle.fetch_history()
    assert (await replayer().replay_workflow(history, raise_on_replay_failure=False)).replay_failure is None
    if os.environ.get("SOJOURN_RECORD_HISTORY"):
        (HISTORIES / "journey_actions.json").write_text(history.to_json())
