"""Journey entries, nodes and rules on the time-skipping test server (real Postgres)."""

import asyncio
import json
import threading
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from models.journey_runtime import EventPayload, workflow_id
from tests.journey_fixtures import TEMPLATES, journey
from tests.test_journey_workflow import dispatch, send_events, temporal_worker  # noqa: F401
from workflows.journey import JourneyWorkflow, split_bucket


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def publish(api, definition: dict) -> None:
    for key, template in TEMPLATES.items():
        await api.put(f"/v1/templates/{key}", json=template)
    r = await api.post("/v1/journeys", json=definition)
    assert r.status_code == 201, r.text
    r = await api.post(f"/v1/journeys/{definition['key']}/publish")
    assert r.status_code == 200, r.text


def handle_of(env, key, profile_id, entry_key=""):
    return env.client.get_workflow_handle_for(JourneyWorkflow.run, workflow_id(key, profile_id, entry_key))


def simple(key: str, nodes: dict, start: str, **extra) -> dict:
    """A journey entered by an event named like the journey (tests share one database)."""
    return {"key": key, "name": key, "entry": {"type": "event", "event": key}, "start": start,
            "nodes": nodes, **extra}


async def test_keyed_entry_runs_one_instance_per_cart(api, temporal_worker, engine, settings, db):
    env, key = temporal_worker, unique("carts")
    await publish(api, journey(key, entry={"type": "event", "event": "cart_abandoned", "key": "properties.cart_id"}))
    await send_events(api, {"profile_id": "kay", "name": "cart_abandoned", "properties": {"cart_id": "c1", "item": "a"}},
                      {"profile_id": "kay", "name": "cart_abandoned", "properties": {"cart_id": "c2", "item": "b"}})
    await dispatch(env, engine, settings)
    await env.sleep(timedelta(hours=3))
    await send_events(api, {"profile_id": "kay", "name": "order_placed", "properties": {"cart_id": "c1", "order_id": "o"}})
    await dispatch(env, engine, settings)
    await env.sleep(timedelta(days=4))
    first, second = await handle_of(env, key, "kay", "c1").result(), await handle_of(env, key, "kay", "c2").result()
    assert first.path == ["wait", "remind", "bought", "thanks", "end"] and first.entry_key == "c1"
    assert second.path == ["wait", "remind", "bought", "end"] and second.entry_key == "c2"


@pytest.mark.parametrize("reentry, expected_instances", [
    ({"mode": "never"}, 1), ({"mode": "after_exit", "wait": "PT1H"}, 1), ({"mode": "after_exit", "wait": "PT0S"}, 2)])
async def test_reentry_rules(api, temporal_worker, engine, settings, db, reentry, expected_instances):
    env, key = temporal_worker, unique("again")
    await publish(api, simple(key, {"end": {"type": "end"}}, "end", reentry=reentry))
    for _ in range(2):
        await send_events(api, {"profile_id": "rey", "name": key})
        await dispatch(env, engine, settings)
        assert (await handle_of(env, key, "rey").result()).status == "completed"
    count = db.execute("select count(*) from journey_instances where journey_key = %s and outcome = 'completed'",
                       (key,)).fetchone()[0]
    assert count == expected_instances


async def test_global_timeout_exits_a_waiting_instance(api, temporal_worker, engine, settings, db):
    env, key = temporal_worker, unique("late")
    await publish(api, simple(key, {"wait": {"type": "wait", "duration": "P10D", "next": "end"}, "end": {"type": "end"}},
                              "wait", timeout="P2D"))
    await send_events(api, {"profile_id": "tim", "name": key})
    await dispatch(env, engine, settings)
    await env.sleep(timedelta(days=3))
    result = await handle_of(env, key, "tim").result()
    assert (result.status, result.exit_reason, result.path) == ("exited", "journey timeout", ["wait"])
    assert db.execute("select outcome from journey_instances where journey_key = %s", (key,)).fetchone() == ("timed_out",)


async def test_split_assigns_stably_with_holdout(api, temporal_worker, engine, settings):
    env, key = temporal_worker, unique("ab")
    nodes = {"split": {"type": "split", "holdout": 20, "variants": [
                {"name": "a", "weight": 1, "next": "end"}, {"name": "b", "weight": 1, "next": "end"}]},
             "end": {"type": "end"}}
    await publish(api, simple(key, nodes, "split"))
    profiles = [f"s{i}" for i in range(30)]
    await send_events(api, *({"profile_id": p, "name": key} for p in profiles))
    await dispatch(env, engine, settings)
    seen = {}
    for p in profiles:
        state = await handle_of(env, key, p).result()
        seen[p] = state.assignments["split"]
        holdout = split_bucket(key, "split", p, "holdout") < 20
        assert (seen[p] == "holdout") == holdout
        assert (state.status, state.exit_reason) == (("exited", "holdout") if holdout else ("completed", None))
    assert set(seen.values()) == {"a", "b", "holdout"}


class Endpoint(BaseHTTPRequestHandler):
    calls: list = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["content-length"] or 0))
        Endpoint.calls.append((self.path, self.headers.get("x-token"), body.decode()))
        status, reply = (500, {}) if self.path == "/broken" else (200, {"score": 42, "tier": "gold"})
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(reply).encode())

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


async def test_webhook_response_feeds_conditions_and_update_profile(api, temporal_worker, engine, settings, db,
                                                                    endpoint):
    env, key = temporal_worker, unique("hook")
    nodes = {
        "hook": {"type": "webhook", "url": endpoint + "/score?p={{ profile.id }}", "headers": {"x-token": "t-{{ profile.id }}"},
                 "body": '{"plan": "{{ event.properties.plan }}"}', "next": "gold", "retries": 0},
        "gold": {"type": "condition", "else": "end", "branches": [
            {"when": {"all": [{"attr": "action.hook.score", "op": "gte", "value": 40},
                              {"attr": "time.weekday", "op": "exists"}]}, "next": "save"}]},
        "save": {"type": "update_profile", "set": {"tier": "{{ action.hook.tier }}", "scored": True}, "next": "end"},
        "end": {"type": "end"},
    }
    await publish(api, simple(key, nodes, "hook"))
    await send_events(api, {"profile_id": "wes", "name": key, "properties": {"plan": "pro"}})
    await dispatch(env, engine, settings)
    assert (await handle_of(env, key, "wes").result()).path == ["hook", "gold", "save", "end"]
    assert ("/score?p=wes", "t-wes", '{"plan": "pro"}') in Endpoint.calls
    attributes = db.execute("select attributes from profiles where id = 'wes'").fetchone()[0]
    assert attributes["tier"] == "gold" and attributes["scored"] is True


async def test_failing_webhook_takes_on_error_after_retries(api, temporal_worker, engine, settings, endpoint):
    env, key = temporal_worker, unique("broken")
    nodes = {"hook": {"type": "webhook", "url": endpoint + "/broken", "retries": 1, "timeout": "PT5S",
                      "next": "end", "on_error": "fallback"},
             "fallback": {"type": "end"}, "end": {"type": "end"}}
    await publish(api, simple(key, nodes, "hook"))
    before = sum(1 for c in Endpoint.calls if c[0] == "/broken")
    await send_events(api, {"profile_id": "bob", "name": key})
    await dispatch(env, engine, settings)
    result = await handle_of(env, key, "bob").result()
    assert result.path == ["hook", "fallback"]
    assert sum(1 for c in Endpoint.calls if c[0] == "/broken") - before == 2  # first try + 1 retry


async def test_jump_enters_another_live_journey(api, temporal_worker, engine, settings):
    env, target, origin = temporal_worker, unique("target"), unique("origin")
    await publish(api, simple(target, {"end": {"type": "end"}}, "end", entry={"type": "api"}))
    await publish(api, simple(origin, {"go": {"type": "jump", "journey": target}}, "go"))
    await send_events(api, {"profile_id": "jim", "name": origin})
    await dispatch(env, engine, settings)
    assert (await handle_of(env, origin, "jim").result()).status == "completed"
    assert (await handle_of(env, target, "jim").result()).path == ["end"]


async def test_wait_until_profile_date_with_offset(api, temporal_worker, engine, settings):
    env, key = temporal_worker, unique("renew")
    renewal = (await env.get_current_time() + timedelta(days=20)).date().isoformat()  # server time runs ahead
    await api.put("/v1/profiles/ren", json={"timezone": "Europe/Paris", "attributes": {"renewal": renewal}})
    nodes = {"before": {"type": "wait", "until": {"attribute": "profile.attributes.renewal", "offset": "-P7D"},
                        "next": "end"}, "end": {"type": "end"}}
    await publish(api, simple(key, nodes, "before"))
    await send_events(api, {"profile_id": "ren", "name": key})
    await dispatch(env, engine, settings)
    handle = handle_of(env, key, "ren")
    await env.sleep(timedelta(days=11))
    assert (await handle.query(JourneyWorkflow.query_state)).status == "running"
    await env.sleep(timedelta(days=3))
    assert (await handle.result()).status == "completed"


async def test_thousands_of_events_continue_as_new_and_keep_state(api, temporal_worker, engine, settings):
    env, key = temporal_worker, unique("long")
    nodes = {"bought": {"type": "wait_event", "event": "order_placed", "timeout": "P91D",
                        "where": {"attr": "event.properties.final", "op": "eq", "value": True},
                        "on_event": "thanks", "on_timeout": "end"},
             "thanks": {"type": "message", "channel": "email", "template": "thanks", "next": "end"},
             "end": {"type": "end"}}
    await publish(api, simple(key, nodes, "bought"))
    await send_events(api, {"profile_id": "lou", "name": key})
    await dispatch(env, engine, settings)
    handle = handle_of(env, key, "lou")
    limit = asyncio.Semaphore(50)

    async def signal(i: int) -> None:
        async with limit:
            await handle.signal(JourneyWorkflow.event, EventPayload(
                message_id=f"{key}-{i}", name="order_placed", properties={"final": False},
                timestamp=datetime.now(timezone.utc)))

    await asyncio.gather(*(signal(i) for i in range(4200)))
    for _ in range(100):  # the instance continues as new once its history passes the limit
        if (await handle.query(JourneyWorkflow.query_state)).runs >= 2:
            break
        await asyncio.sleep(0.2)
    await handle.signal(JourneyWorkflow.event, EventPayload(message_id=f"{key}-final", name="order_placed",
                                                           properties={"final": True}, timestamp=datetime.now(timezone.utc)))
    result = await handle.result()
    assert result.runs >= 2  # continued as new at least once
    assert result.path == ["bought", "thanks", "end"] and result.status == "completed"
    assert result.dropped_events > 0  # non-matching events beyond the 10 kept were dropped, counted


async def test_quiet_hours_queue_a_journey_message_on_a_durable_timer(api, temporal_worker, engine, settings, db):
    env, key = temporal_worker, unique("quiet")
    now = await env.get_current_time()  # the test server's clock runs ahead of the wall clock
    window = {"start": (now - timedelta(hours=1)).strftime("%H:%M"), "end": (now + timedelta(hours=2)).strftime("%H:%M"),
              "mode": "queue"}
    await api.put("/v1/templates/quiet-sms", json={"channel": "sms", "body": "Hello {{ profile.id }}"})
    await api.put("/v1/profiles/qui", json={"phone": "+33612345678", "timezone": "UTC"})
    assert (await api.put("/v1/quiet-hours/sms", json=window)).status_code == 200
    try:
        nodes = {"text": {"type": "message", "channel": "sms", "template": "quiet-sms", "next": "end"},
                 "end": {"type": "end"}}
        await publish(api, simple(key, nodes, "text"))
        await send_events(api, {"profile_id": "qui", "name": key})
        await dispatch(env, engine, settings)
        handle = handle_of(env, key, "qui")
        await env.sleep(timedelta(minutes=30))
        row = db.execute("select status from messages where source_key = %s", (key,)).fetchone()
        assert row == ("deferred",) and (await handle.query(JourneyWorkflow.query_state)).status == "running"
        await env.sleep(timedelta(hours=3))
        assert (await handle.result()).status == "completed"
        assert db.execute("select status, body from messages where source_key = %s", (key,)).fetchall() == [
            ("sent", "Hello qui")]
    finally:
        await api.delete("/v1/quiet-hours/sms")
