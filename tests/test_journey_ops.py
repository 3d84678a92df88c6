"""Lifecycle, API entries, instance lists and reports on a real Temporal dev server (its
visibility store answers "who waits where"), with the worker and dispatcher running."""

import asyncio
import time
import uuid

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.event_dispatcher import EventDispatcher
from cli import find_binary
from models import search_attributes
from tests.conftest import api_client_for
from tests.journey_fixtures import TEMPLATES
from worker import running_workers

WAITING = {"hold": {"type": "wait", "duration": "PT1H", "next": "end"}, "end": {"type": "end"}}


@pytest.fixture(scope="module")
async def dev_env():
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"), search_attributes=search_attributes.ALL,
        data_converter=pydantic_data_converter, dev_server_log_level="error")
    yield env
    await env.shutdown()


@pytest.fixture(scope="module")
async def ops(dev_env, settings, engine):
    """The API, a worker and the dispatcher, all on the dev server."""
    ops_settings = settings.model_copy(update={
        "temporal_address": dev_env.client.service_client.config.target_host,
        "task_queue": f"ops-{uuid.uuid4().hex[:6]}"})
    stop = asyncio.Event()
    async with running_workers(dev_env.client, engine, ops_settings):
        dispatcher = asyncio.create_task(EventDispatcher(engine, dev_env.client, ops_settings).run(stop))
        async for client in api_client_for(ops_settings):
            yield client
        stop.set()
        await dispatcher


async def eventually(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.3)


async def publish(api, key, nodes=WAITING, start="hold", entry=None, **extra):
    for name, template in TEMPLATES.items():
        await api.put(f"/v1/templates/{name}", json=template)
    definition = {"key": key, "name": key, "entry": entry or {"type": "event", "event": key},
                  "start": start, "nodes": nodes, **extra}
    if (await api.get(f"/v1/journeys/{key}")).status_code == 404:
        assert (await api.post("/v1/journeys", json=definition)).status_code == 201
    else:
        assert (await api.put(f"/v1/journeys/{key}", json=definition)).status_code == 200
    r = await api.post(f"/v1/journeys/{key}/publish")
    assert r.status_code == 200, r.text
    return r.json()["version"]


async def post_events(api, name, *profiles):
    events = [{"message_id": str(uuid.uuid4()), "profile_id": p, "name": name} for p in profiles]
    assert (await api.post("/v1/events", json={"events": events})).status_code == 202


async def instance(api, key, profile):
    r = await api.get(f"/v1/journeys/{key}/instances/{profile}")
    return r.json() if r.status_code == 200 else None


async def test_waiting_instances_are_listed_and_reported_then_stopped(ops, db):
    key = f"ops-{uuid.uuid4().hex[:6]}"
    await publish(ops, key)
    await post_events(ops, key, "w1", "w2", "w3")

    async def listed():
        r = await ops.get(f"/v1/journeys/{key}/instances", params={"node": "hold"})
        return len(r.json()["items"]) == 3 and r.json()["items"]
    items = await eventually(listed)
    assert sorted(i["profile_id"] for i in items) == ["w1", "w2", "w3"]

    report = (await ops.get(f"/v1/journeys/{key}/report")).json()
    hold = next(n for n in report["nodes"] if n["node"] == "hold")
    assert (hold["entered"], hold["waiting"]) == (3, 3)
    assert report["totals"]["running"] == 3

    r = await ops.post(f"/v1/journeys/{key}/stop")
    assert r.json() == {"key": key, "status": "stopped", "instances_stopped": 3}
    states = [await eventually(lambda p=p: _finished(ops, key, p)) for p in ("w1", "w2", "w3")]
    assert {(s["status"], s["exit_reason"]) for s in states} == {("exited", "journey stopped")}
    report = (await ops.get(f"/v1/journeys/{key}/report")).json()
    assert report["totals"]["stopped"] == 3 and report["totals"]["running"] == 0
    assert (await ops.post(f"/v1/journeys/{key}/pause")).status_code == 409


async def _finished(api, key, profile):
    state = await instance(api, key, profile)
    return state if state and state["status"] != "running" else None


async def test_pause_stops_new_entries_and_resume_restarts_them(ops):
    key = f"pause-{uuid.uuid4().hex[:6]}"
    await publish(ops, key, nodes={"end": {"type": "end"}}, start="end")
    assert (await ops.post(f"/v1/journeys/{key}/pause")).json()["status"] == "paused"
    await post_events(ops, key, "p1")
    await asyncio.sleep(1.5)
    assert await instance(ops, key, "p1") is None
    assert (await ops.post(f"/v1/journeys/{key}/resume")).json()["status"] == "live"
    await post_events(ops, key, "p1")
    assert (await eventually(lambda: _finished(ops, key, "p1")))["status"] == "completed"


async def test_api_entry_with_context_and_idempotency(ops, db):
    key = f"api-{uuid.uuid4().hex[:6]}"
    await ops.put("/v1/templates/api-welcome", json={"channel": "email", "subject": "Hi",
                                                      "body": "Plan {{ event.properties.plan }}"})
    nodes = {"hello": {"type": "message", "channel": "email", "template": "api-welcome", "next": "end"},
             "end": {"type": "end"}}
    await publish(ops, key, nodes=nodes, start="hello", entry={"type": "api"})
    await ops.put("/v1/profiles/ana", json={"email": "ana@example.com"})
    body = {"profile_id": "ana", "context": {"plan": "pro"}, "message_id": f"{key}-1"}
    first = await ops.post(f"/v1/journeys/{key}/entries", json=body)
    again = await ops.post(f"/v1/journeys/{key}/entries", json=body)
    assert (first.status_code, first.json()["duplicate"], again.json()["duplicate"]) == (202, False, True)
    assert (await eventually(lambda: _finished(ops, key, "ana")))["path"] == ["hello", "end"]
    rows = db.execute("select body from messages where source_key = %s", (key,)).fetchall()
    assert rows == [("Plan pro",)]

    event_keyed = f"evt-{uuid.uuid4().hex[:6]}"
    await publish(ops, event_keyed, nodes={"end": {"type": "end"}}, start="end")
    r = await ops.post(f"/v1/journeys/{event_keyed}/entries", json={"profile_id": "ana"})
    assert r.status_code == 409


async def test_new_version_leaves_running_instances_on_theirs(ops):
    key = f"ver-{uuid.uuid4().hex[:6]}"
    assert await publish(ops, key) == 1
    await post_events(ops, key, "v-old")
    assert (await eventually(lambda: instance(ops, key, "v-old")))["version"] == 1
    assert await publish(ops, key, nodes={"end": {"type": "end"}}, start="end") == 2
    await post_events(ops, key, "v-new")
    assert (await eventually(lambda: _finished(ops, key, "v-new")))["version"] == 2
    old = await instance(ops, key, "v-old")
    assert (old["status"], old["version"], old["current_node"]) == ("running", 1, "hold")
    changed = {"key": key, "name": key, "entry": {"type": "api"}, "start": "end", "nodes": {"end": {"type": "end"}}}
    assert (await ops.put(f"/v1/journeys/{key}", json=changed)).status_code == 200
    r = await ops.post(f"/v1/journeys/{key}/publish")
    assert r.status_code == 422 and r.json()["detail"][0]["path"] == "$.entry.type"
    await ops.post(f"/v1/journeys/{key}/stop")


async def test_audience_entry_enters_members_at_a_rate(ops, db):
    key = f"aud-{uuid.uuid4().hex[:6]}"
    members = [{"id": f"{key}-{i}", "attributes": {"segment": key, "n": i}} for i in range(30)]
    outsiders = [{"id": f"{key}-x{i}", "attributes": {"segment": "other"}} for i in range(5)]
    assert (await ops.post("/v1/profiles/bulk", json={"profiles": members + outsiders})).status_code == 200
    audience = {"dimension": "profiles", "where": {"attr": "attributes.segment", "op": "eq", "value": key}}
    assert (await ops.put(f"/v1/audiences/{key}", json=audience)).status_code in (200, 201)
    await publish(ops, key, nodes={"end": {"type": "end"}}, start="end",
                  entry={"type": "audience", "audience": key, "rate": 20})

    async def all_entered():
        count = db.execute("select count(*) from journey_instances where journey_key = %s and outcome = 'completed'",
                           (key,)).fetchone()[0]
        return count == 30 and count
    assert await eventually(all_entered, timeout=30) == 30
    profiles = {r[0] for r in db.execute("select profile_id from journey_instances where journey_key = %s", (key,))}
    assert profiles == {m["id"] for m in members}


async def test_audience_entry_on_a_schedule(ops, dev_env):
    key = f"sched-{uuid.uuid4().hex[:6]}"
    await ops.post("/v1/profiles/bulk", json={"profiles": [{"id": f"{key}-1", "attributes": {"segment": key}}]})
    await ops.put(f"/v1/audiences/{key}", json={"dimension": "profiles",
                                                  "where": {"attr": "attributes.segment", "op": "eq", "value": key}})
    schedule = {"frequency": "weekly", "weekday": "tue", "at": "08:30", "timezone": "Europe/Paris"}
    await publish(ops, key, nodes={"end": {"type": "end"}}, start="end",
                  entry={"type": "audience", "audience": key, "schedule": schedule})
    handle = dev_env.client.get_schedule_handle(f"journey-audience:{key}")
    description = await handle.describe()
    calendar = description.schedule.spec.calendars[0]  # the server stores the cron as a calendar
    assert [(r.start, r.end) for r in calendar.hour] == [(8, 8)]
    assert [(r.start, r.end) for r in calendar.minute] == [(30, 30)]
    assert [(r.start, r.end) for r in calendar.day_of_week] == [(2, 2)]
    assert description.schedule.spec.time_zone_name == "Europe/Paris"
    await handle.trigger()
    assert (await eventually(lambda: _finished(ops, key, f"{key}-1")))["status"] == "completed"
    assert (await ops.post(f"/v1/journeys/{key}/pause")).status_code == 200
    assert (await handle.describe()).schedule.state.paused
    await ops.post(f"/v1/journeys/{key}/stop")
    with pytest.raises(Exception):
        await handle.describe()


async def test_audience_entry_needs_a_profiles_audience(ops):
    key = f"noaud-{uuid.uuid4().hex[:6]}"
    definition = {"key": key, "name": key, "entry": {"type": "audience", "audience": "missing"},
                  "start": "end", "nodes": {"end": {"type": "end"}}}
    assert (await ops.post("/v1/journeys", json=definition)).status_code == 201
    r = await ops.post(f"/v1/journeys/{key}/publish")
    assert r.status_code == 422 and r.json()["detail"][0]["path"] == "$.entry.audience"
    assert (await ops.get(f"/v1/journeys/{key}")).json()["status"] == "draft"
