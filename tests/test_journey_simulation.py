"""POST /v1/journeys/simulate: 91 days in seconds, nothing sent or stored."""

import uuid

from tests.journey_fixtures import TEMPLATES, journey


async def test_simulation_returns_path_messages_and_times_without_side_effects(api, db):
    for key, template in TEMPLATES.items():
        await api.put(f"/v1/templates/{key}", json=template)
    key = f"sim-{uuid.uuid4().hex[:6]}"
    definition = journey(key)
    definition["nodes"]["bought"]["timeout"] = "P30D"
    messages_before = db.execute("select count(*) from messages").fetchone()[0]
    r = await api.post("/v1/journeys/simulate", json={
        "definition": definition,
        "profile": {"email": "sim@example.com", "attributes": {"first_name": "Sam"}},
        "entry": {"at": "PT0S", "name": "cart_abandoned", "properties": {"item": "scarf", "cart_id": "s1"}},
        "events": [{"at": "P2D", "name": "order_placed", "properties": {"order_id": "S-9"}}],
    })
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["status"] == "completed"
    assert result["path"] == ["wait", "remind", "bought", "thanks", "end"]
    sent = [(m["node"], m["after"], m["subject"], m["body"]) for m in result["messages"]]
    assert sent == [("remind", "P0DT2H0M0S", "Sam, your cart", "You left scarf in cart s1."),
                    ("thanks", "P2DT0H0M0S", "Thanks!", "Order S-9 confirmed.")]
    assert result["wall_seconds"] < 60
    assert db.execute("select count(*) from messages").fetchone()[0] == messages_before
    assert (await api.get(f"/v1/journeys/{key}")).status_code == 404  # not stored either


async def test_simulating_a_91_day_journey_with_waits_events_and_webhooks(api):
    await api.put("/v1/templates/sim-tip", json={"channel": "email", "subject": "Tip", "body": "Tier {{ profile.attributes.tier }}"})
    key = f"long-{uuid.uuid4().hex[:6]}"
    definition = {
        "key": key, "name": "Onboarding", "entry": {"type": "event", "event": "signed_up"}, "start": "score",
        "nodes": {
            "score": {"type": "webhook", "url": "https://crm.example/score", "next": "save"},
            "save": {"type": "update_profile", "set": {"tier": "{{ action.score.tier }}"}, "next": "week"},
            "week": {"type": "wait", "duration": "P7D", "next": "tip"},
            "tip": {"type": "message", "channel": "email", "template": "sim-tip", "next": "active"},
            "active": {"type": "wait_event", "event": "logged_in", "timeout": "P80D", "on_event": "end",
                       "on_timeout": "end"},
            "end": {"type": "end"}},
    }
    r = await api.post("/v1/journeys/simulate", json={
        "definition": definition, "profile": {"email": "o@example.com"},
        "webhook_responses": {"score": {"tier": "gold"}}})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["path"] == ["score", "save", "week", "tip", "active", "end"]
    assert result["profile"]["attributes"]["tier"] == "gold"
    assert [(m["after"], m["body"]) for m in result["messages"]] == [("P7DT0H0M0S", "Tier gold")]
    assert result["simulated_duration"].startswith("P87D")
    assert [a["type"] for a in result["actions"]] == ["webhook", "update_profile"]


async def test_simulation_rejects_bad_definitions_with_paths(api):
    bad = journey("bad-sim")
    bad["nodes"]["wait"]["duration"] = "soon"
    r = await api.post("/v1/journeys/simulate", json={"definition": bad})
    assert r.status_code == 422
    assert r.json()["detail"][0]["path"] == "$.definition.nodes.wait.duration"
