"""HTTP validation: a bad request is a 422 naming the JSON path, writes nothing, and never a 500.

The ASGI transport re-raises unhandled app exceptions, so any 500 fails the test that caused it.
"""

import uuid

import pytest

from models.settings import Settings
from tests.conftest import api_client_for
from tests.journey_fixtures import TEMPLATES, journey


def uid(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def paths(response) -> list[str]:
    assert response.status_code == 422, response.text
    return [item["path"] for item in response.json()["detail"]]


async def ensure_templates(api) -> None:
    for key, template in TEMPLATES.items():
        assert (await api.put(f"/v1/templates/{key}", json=template)).status_code == 200


@pytest.mark.parametrize("field, value", [
    ("email", "not-an-email"), ("email", "a@b"), ("phone", "0612345678"), ("phone", "+33 6 12 34 56 78"),
    ("phone", "+0612345678"), ("timezone", "Mars/Olympus"), ("timezone", "../etc"), ("colour", "red"),
])
async def test_put_profile_rejects_bad_field_and_writes_nothing(api, field, value):
    profile_id = uid()
    r = await api.put(f"/v1/profiles/{profile_id}", json={"email": "ok@example.com", field: value})
    assert paths(r) == [f"$.{field}"]
    assert (await api.get(f"/v1/profiles/{profile_id}")).status_code == 404


async def test_put_profile_accepts_valid_fields(api):
    profile_id = uid()
    fields = {"email": "ok@example.com", "phone": "+33612345678", "timezone": "Europe/Paris"}
    r = await api.put(f"/v1/profiles/{profile_id}", json=fields)
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in fields} == fields


async def test_bulk_profiles_is_all_or_nothing(api):
    good, bad = uid(), uid()
    r = await api.post("/v1/profiles/bulk", json={"profiles": [
        {"id": good, "email": "good@example.com"}, {"id": bad, "email": "nope"}]})
    assert paths(r) == ["$.profiles[1].email"]
    for profile_id in (good, bad):
        assert (await api.get(f"/v1/profiles/{profile_id}")).status_code == 404


async def test_bulk_profiles_limit(api):
    prefix = uid()
    too_many = [{"id": f"{prefix}-{i}"} for i in range(10_001)]
    assert paths(await api.post("/v1/profiles/bulk", json={"profiles": too_many})) == ["$.profiles"]
    assert (await api.get(f"/v1/profiles/{prefix}-0")).status_code == 404
    r = await api.post("/v1/profiles/bulk", json={"profiles": too_many[:10_000]})
    assert r.status_code == 200 and r.json() == {"upserted": 10_000}


async def test_bulk_profiles_merges_duplicate_ids(api):
    profile_id = uid()
    r = await api.post("/v1/profiles/bulk", json={"profiles": [
        {"id": profile_id, "email": "a@example.com", "attributes": {"a": 1, "b": 1}},
        {"id": profile_id, "phone": "+33612345678", "attributes": {"b": 2}}]})
    assert r.status_code == 200 and r.json() == {"upserted": 1}
    profile = (await api.get(f"/v1/profiles/{profile_id}")).json()
    assert (profile["email"], profile["phone"], profile["attributes"]) == (
        "a@example.com", "+33612345678", {"a": 1, "b": 2})


def event(message_id: str, profile_id: str = "p-events", name: str = "page_viewed", **extra) -> dict:
    return {"message_id": message_id, "profile_id": profile_id, "name": name, **extra}


def stored_events(db, message_ids: list[str]) -> dict[str, tuple[int, str]]:
    rows = db.execute("SELECT message_id, count(*), min(name) FROM events WHERE message_id = ANY(%s) "
                      "GROUP BY message_id", (message_ids,)).fetchall()
    return {m: (count, name) for m, count, name in rows}


@pytest.mark.parametrize("make_events, expected", [
    (lambda ids: [], ["$.events"]),
    (lambda ids: [event(ids[i % 3]) for i in range(10_001)], ["$.events"]),
    (lambda ids: [{"message_id": ids[0], "profile_id": "p-events"}], ["$.events[0].name"]),
    (lambda ids: [event(ids[0]), event(ids[1], name="has space")], ["$.events[1].name"]),
    (lambda ids: [event(ids[0]), event(ids[1], profile_id="")], ["$.events[1].profile_id"]),
    (lambda ids: [event(ids[0], timestamp="2024-05-01T10:00:00")], ["$.events[0].timestamp"]),
])
async def test_bad_event_batch_is_rejected_whole(api, db, make_events, expected):
    ids = [uid("m"), uid("m"), uid("m")]
    assert paths(await api.post("/v1/events", json={"events": make_events(ids)})) == expected
    assert stored_events(db, ids) == {}


async def test_event_batch_of_exactly_the_limit_is_accepted(api):
    ids = [uid("m") for _ in range(10_000)]
    r = await api.post("/v1/events", json={"events": [event(m) for m in ids]})
    assert r.status_code == 202 and r.json() == {"accepted": 10_000, "duplicates": 0}


async def test_duplicate_message_ids_are_stored_once(api, db):
    a, b, c = uid("m"), uid("m"), uid("m")
    r = await api.post("/v1/events", json={"events": [event(a), event(b, name="first"), event(a)]})
    assert r.status_code == 202 and r.json() == {"accepted": 2, "duplicates": 1}
    r = await api.post("/v1/events", json={"events": [event(b, name="second"), event(c)]})
    assert r.status_code == 202 and r.json() == {"accepted": 1, "duplicates": 1}
    assert stored_events(db, [a, b, c]) == {a: (1, "page_viewed"), b: (1, "first"), c: (1, "page_viewed")}


async def test_event_for_unknown_profile_creates_a_bare_profile(api):
    profile_id = uid()
    assert (await api.get(f"/v1/profiles/{profile_id}")).status_code == 404
    r = await api.post("/v1/events", json={"events": [event(uid("m"), profile_id=profile_id)]})
    assert r.status_code == 202, r.text
    profile = (await api.get(f"/v1/profiles/{profile_id}")).json()
    assert (profile["id"], profile["email"], profile["attributes"]) == (profile_id, None, {})


@pytest.mark.parametrize("fields, expected", [
    ({"subject": "Hi", "body": "Hello\n{% if x %}"}, [("$.body", 2)]),
    ({"subject": "{{ name", "body": "a\nb\n\n{% for %}"}, [("$.subject", 1), ("$.body", 4)]),
])
async def test_template_syntax_error_names_field_and_line(api, fields, expected):
    key = uid("tpl")
    r = await api.put(f"/v1/templates/{key}", json={"channel": "email", **fields})
    assert r.status_code == 422, r.text
    assert [(item["path"], item["line"]) for item in r.json()["detail"]] == expected
    assert f"line {expected[0][1]}" in r.json()["detail"][0]["msg"]
    assert (await api.get(f"/v1/templates/{key}")).status_code == 404


async def test_invalid_journey_reports_every_fault(api):
    await ensure_templates(api)
    key = uid("j")
    raw = journey(key, exit=[{"event": "x", "where": {"attr": "order.id", "op": "exists"}}])
    raw["nodes"]["remind"]["template"] = "no-such-template"
    raw["nodes"]["orphan"] = {"type": "end"}
    r = await api.post("/v1/journeys", json=raw)
    assert set(paths(r)) == {"$.nodes.orphan", "$.nodes.remind.template", "$.exit[0].where.attr"}
    assert all(item["msg"] and item["loc"][0] == "body" for item in r.json()["detail"])
    assert (await api.get(f"/v1/journeys/{key}")).status_code == 404


async def test_journey_lifecycle(api):
    await ensure_templates(api)
    key = uid("j")
    assert (await api.post("/v1/journeys", json=journey(key))).status_code == 201
    assert (await api.post("/v1/journeys", json=journey(key))).status_code == 409
    assert paths(await api.put(f"/v1/journeys/{key}", json=journey(uid("j")))) == ["$.key"]
    other = uid("j")
    assert (await api.put(f"/v1/journeys/{other}", json=journey(other))).status_code == 404
    renamed = journey(key, name="Renamed")
    del renamed["key"]
    r = await api.put(f"/v1/journeys/{key}", json=renamed)
    assert r.status_code == 200 and r.json()["name"] == "Renamed"

    r = await api.post(f"/v1/journeys/{key}/publish")
    assert r.status_code == 200 and r.json() == {"key": key, "version": 1, "status": "live"}
    r = await api.post(f"/v1/journeys/{key}/publish")
    assert r.status_code == 200 and r.json() == {"key": key, "version": 2, "status": "live"}
    body = (await api.get(f"/v1/journeys/{key}")).json()
    assert [(v["version"], v["status"]) for v in body["versions"]] == [(1, "closed"), (2, "live")]
    assert (body["status"], body["live_version"]) == ("live", 2)
    assert (await api.post(f"/v1/journeys/{uid('j')}/publish")).status_code == 404


@pytest.mark.parametrize("authorization, expected", [
    (None, 401), ("Bearer nope", 401), ("s3cret", 401), ("Basic s3cret", 401), ("Bearer s3cret2", 401),
    ("Bearer s3cret", 200)])
async def test_api_key(api, settings, authorization, expected):
    profile_id = uid()
    assert (await api.put(f"/v1/profiles/{profile_id}", json={"email": "k@example.com"})).status_code == 200
    headers = {"authorization": authorization} if authorization else {}
    async for client in api_client_for(Settings(database_url=settings.database_url, api_key="s3cret")):
        r = await client.get(f"/v1/profiles/{profile_id}", headers=headers)
        assert r.status_code == expected
        assert r.headers.get("www-authenticate") == ("Bearer" if expected == 401 else None)
        unknown = await client.get(f"/v1/profiles/{uid()}", headers=headers)
        assert unknown.status_code == (404 if expected == 200 else 401)
        assert (await client.get("/healthz", headers=headers)).status_code == 200


BAD_OP = {"attr": "event.name", "op": ["eq"], "value": "x"}


@pytest.mark.parametrize("method, url, body", [
    ("put", f"/v1/profiles/{uid()}", {"email": "a\u0000@example.com"}),
    ("put", f"/v1/profiles/{uid()}", {"attributes": {"note": "a\u0000b"}}),
    ("put", f"/v1/profiles/{uid()}", b'{"attributes": {"score": NaN}}'),
    ("post", "/v1/events", {"events": [event(uid("m"), properties={"note": "\u0000"})]}),
    ("put", f"/v1/templates/{uid('tpl')}", {"channel": "email", "body": "a\u0000b"}),
    ("post", "/v1/journeys", journey(uid("j"), exit=[{"event": "x", "where": BAD_OP}])),
], ids=["nul-email", "nul-attribute", "nan-attribute", "nul-event-property", "nul-template", "unhashable-op"])
async def test_hostile_input_is_a_422_not_a_500(api, method, url, body):
    """Postgres refuses NUL bytes and NaN in text/jsonb: they must be rejected as input, not crash."""
    if isinstance(body, bytes):
        r = await getattr(api, method)(url, content=body, headers={"content-type": "application/json"})
    else:
        r = await getattr(api, method)(url, json=body)
    assert r.status_code == 422, r.text
