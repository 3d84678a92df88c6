"""Journey instances on Temporal's time-skipping test server: days of waiting take seconds."""

import uuid
from datetime import timedelta

import pytest
from temporalio.worker import Worker

from activities.event_dispatcher import EventDispatcher
from tests.journey_fixtures import journey, publish_journey
from worker import running_workers
from models.journey_runtime import workflow_id
from workflows.journey import JourneyWorkflow


@pytest.fixture
async def temporal_worker(time_skipping_env, engine, settings):
    async with running_workers(time_skipping_env.client, engine, settings):
        yield time_skipping_env


async def send_events(api, *events):
    body = {"events": [{"message_id": str(uuid.uuid4()), **e} for e in events]}
    r = await api.post("/v1/events", json=body)
    assert r.status_code == 202, r.text
    return r.json()


async def dispatch(env, engine, settings):
    """Drain the inbox (other tests share the database and leave events in it)."""
    dispatcher = EventDispatcher(engine, env.client, settings)
    while True:
        fetched, dispatched = await dispatcher.dispatch_once()
        assert fetched == dispatched
        if fetched == 0:
            return


async def test_three_day_wait_completes_via_timeout(api, temporal_worker, engine, settings, db):
    env = temporal_worker
    key = f"cart-{uuid.uuid4().hex[:6]}"
    await publish_journey(api, journey(key))
    await api.put("/v1/profiles/ann", json={"email": "ann@example.com", "attributes": {"first_name": "Ann"}})
    await send_events(api, {"profile_id": "ann", "name": "cart_abandoned",
                            "properties": {"cart_id": "c1", "item": "boots"}})
    await dispatch(env, engine, settings)

    handle = env.client.get_workflow_handle_for(JourneyWorkflow.run, workflow_id(key, "ann"))
    await env.sleep(timedelta(days=4))
    result = await handle.result()  # 2 h wait + 3 day timeout, skipped
    assert result.status == "completed"
    assert result.path == ["wait", "remind", "bought", "end"]
    rows = db.execute("select subject, body, status, source_node from messages where source_key = %s",
                      (key,)).fetchall()
    assert rows == [("Ann, your cart", "You left boots in cart c1.", "sent", "remind")]



async def start_instance(api, env, engine, settings, definition, profile_id, profile=None, **properties):
    await publish_journey(api, definition)
    await api.put(f"/v1/profiles/{profile_id}", json=profile or {"email": f"{profile_id}@example.com"})
    await send_events(api, {"profile_id": profile_id, "name": definition["entry"]["event"],
                            "properties": properties})
    await dispatch(env, engine, settings)
    return env.client.get_workflow_handle_for(JourneyWorkflow.run, workflow_id(definition["key"], profile_id))


async def test_wait_event_matches_and_renders_the_matched_event(api, temporal_worker, engine, settings, db):
    env, key = temporal_worker, f"cart-{uuid.uuid4().hex[:6]}"
    definition = journey(key)
    definition["nodes"]["bought"]["where"] = {"attr": "event.properties.total", "op": "gte", "value": 10}
    handle = await start_instance(api, env, engine, settings, definition, "bob", item="hat", cart_id="c9")
    await env.sleep(timedelta(hours=3))
    assert (await handle.query(JourneyWorkflow.query_state)).current_node == "bought"

    # The first order does not pass the `where` filter; the second does.
    await send_events(api, {"profile_id": "bob", "name": "order_placed", "properties": {"total": 5, "order_id": "o1"}})
    await dispatch(env, engine, settings)
    await send_events(api, {"profile_id": "bob", "name": "order_placed", "properties": {"total": 50, "order_id": "o2"}})
    await dispatch(env, engine, settings)
    result = await handle.result()
    assert result.status == "completed"
    assert result.path == ["wait", "remind", "bought", "thanks", "end"]
    bodies = db.execute("select source_node, body from messages where source_key = %s order by id", (key,)).fetchall()
    assert bodies == [("remind", "You left hat in cart c9."), ("thanks", "Order o2 confirmed.")]


async def test_exit_criteria_end_the_instance_wherever_it_waits(api, temporal_worker, engine, settings, db):
    env, key = temporal_worker, f"cart-{uuid.uuid4().hex[:6]}"
    handle = await start_instance(api, env, engine, settings, journey(key), "cid", item="x")
    await env.sleep(timedelta(minutes=30))  # still in the 2 h wait
    await send_events(api, {"profile_id": "cid", "name": "unsubscribed"})
    await dispatch(env, engine, settings)
    result = await handle.result()
    assert (result.status, result.path, result.exit_reason) == ("exited", ["wait"], "event unsubscribed")
    assert db.execute("select count(*) from messages where source_key = %s", (key,)).fetchone()[0] == 0


async def test_condition_branches_on_profile_and_skips_profiles_without_email(api, temporal_worker, engine,
                                                                               settings, db):
    env, key = temporal_worker, f"vip-{uuid.uuid4().hex[:6]}"
    definition = {
        "key": key, "name": "VIP welcome", "entry": {"type": "event", "event": "signed_up"}, "start": "is_vip",
        "nodes": {
            "is_vip": {"type": "condition", "else": "end",
                       "branches": [{"when": {"attr": "profile.attributes.vip", "op": "eq", "value": True},
                                     "next": "welcome"}]},
            "welcome": {"type": "message", "channel": "email", "template": "thanks", "next": "end"},
            "end": {"type": "end"},
        },
    }
    vip = await start_instance(api, env, engine, settings, definition, "vip1", {"attributes": {"vip": True}})
    plain = env.client.get_workflow_handle_for(JourneyWorkflow.run, workflow_id(key, "plain1"))
    await api.put("/v1/profiles/plain1", json={"email": "p@example.com", "attributes": {"vip": False}})
    await send_events(api, {"profile_id": "plain1", "name": "signed_up"})
    await dispatch(env, engine, settings)
    assert (await vip.result()).path == ["is_vip", "welcome", "end"]
    assert (await plain.result()).path == ["is_vip", "end"]
    rows = db.execute("select profile_id, status, reason from messages where source_key = %s", (key,)).fetchall()
    assert rows == [("vip1", "skipped", "profile has no email address")]


async def test_entry_where_filters_and_entry_event_is_not_reprocessed(api, temporal_worker, engine, settings, db):
    env, key = temporal_worker, f"big-{uuid.uuid4().hex[:6]}"
    definition = journey(key, entry={"type": "event", "event": "cart_abandoned",
                                     "where": {"attr": "event.properties.value", "op": "gt", "value": 100}})
    await publish_journey(api, definition)
    await send_events(api, {"profile_id": "small", "name": "cart_abandoned", "properties": {"value": 5}},
                      {"profile_id": "large", "name": "cart_abandoned", "properties": {"value": 500}})
    await dispatch(env, engine, settings)
    await env.sleep(timedelta(days=4))
    large = await env.client.get_workflow_handle_for(JourneyWorkflow.run, workflow_id(key, "large")).result()
    assert large.path == ["wait", "remind", "bought", "end"]
    ids = [r[0] for r in db.execute("select workflow_id from (select distinct split_part(idempotency_key, ':', 3) "
                                    "as workflow_id from messages where source_key = %s) t", (key,))]
    assert ids == ["large"]
