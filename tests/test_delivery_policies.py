"""Consent, suppression, typology rules and quiet hours at send time, against real Postgres.

Rules and quiet hours are workspace-wide, so each test scopes its rules to its own category
or removes what it created: other tests share the database.
"""

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from temporalio.testing import ActivityEnvironment

from activities.delivery import DeliveryActivities
from activities.providers import SinkProvider
from models.journey_runtime import MessageSource, SendRequest


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def delivery(engine, settings):
    return DeliveryActivities(engine, {"email": SinkProvider(), "sms": SinkProvider()}, settings)


async def send(delivery, profile_id, template, now=None, key=None, **overrides):
    request = SendRequest(idempotency_key=key or unique("k"), profile_id=profile_id, channel="email",
                          template=template, now=now, source=MessageSource(kind="journey", key="t", version=1, node="n"),
                          **overrides)
    return await ActivityEnvironment().run(delivery.send_message, request)


async def make_profile(api, **fields) -> str:
    profile_id = unique("p")
    fields.setdefault("email", f"{profile_id}@example.com")
    response = await api.put(f"/v1/profiles/{profile_id}", json=fields)
    assert response.status_code == 200, response.text
    return profile_id


async def make_template(api, **fields) -> str:
    key = unique("t")
    body = {"channel": "email", "subject": "Hello {{ profile.id }}", "body": "Body"} | fields
    response = await api.put(f"/v1/templates/{key}", json=body)
    assert response.status_code == 200, response.text
    return key


async def test_opted_out_profiles_get_no_marketing_but_do_get_transactional(api, delivery, db):
    profile = await make_profile(api)
    marketing = await make_template(api)
    transactional = await make_template(api, kind="transactional")
    response = await api.put(f"/v1/profiles/{profile}/subscriptions",
                             json={"subscriptions": [{"channel": "email", "status": "opted_out"}]})
    assert response.status_code == 200
    assert response.json()["subscriptions"][0] | {"updated_at": None} == {
        "channel": "email", "topic": "*", "status": "opted_out", "source": "api", "updated_at": None}

    blocked = await send(delivery, profile, marketing)
    assert (blocked.status, blocked.reason) == ("suppressed", "opted out of email")
    assert (await send(delivery, profile, transactional)).status == "sent"
    # A request can make a marketing template transactional (e.g. a receipt reusing a layout).
    assert (await send(delivery, profile, marketing, kind="transactional")).status == "sent"
    rows = db.execute("select status, reason, body from messages where profile_id = %s order by id",
                      (profile,)).fetchall()
    assert rows == [("suppressed", "opted out of email", None), ("sent", None, "Body"), ("sent", None, "Body")]
    listed = (await api.get("/v1/messages", params={"profile_id": profile})).json()["items"]
    assert [(m["status"], m["reason"], m["kind"]) for m in reversed(listed)] == [
        ("suppressed", "opted out of email", "marketing"), ("sent", None, "transactional"),
        ("sent", None, "transactional")]


async def test_topic_opt_out_and_opt_in_topics(api, delivery):
    profile = await make_profile(api)
    news, offers, vip = unique("news"), unique("offers"), unique("vip")
    assert (await api.put(f"/v1/topics/{vip}", json={"policy": "opt_in"})).status_code == 200
    news_template = await make_template(api, topic=news)
    offers_template = await make_template(api, topic=offers)
    vip_template = await make_template(api, topic=vip)
    await api.put(f"/v1/profiles/{profile}/subscriptions",
                  json={"subscriptions": [{"channel": "email", "topic": news, "status": "opted_out"}]})

    assert (await send(delivery, profile, news_template)).reason == f"opted out of topic {news}"
    assert (await send(delivery, profile, offers_template)).status == "sent"  # opt_out topic: default in
    assert (await send(delivery, profile, vip_template)).reason == f"not opted in to topic {vip}"
    await api.put(f"/v1/profiles/{profile}/subscriptions",
                  json={"subscriptions": [{"channel": "email", "topic": vip, "status": "opted_in"}]})
    assert (await send(delivery, profile, vip_template)).status == "sent"
    # Opting out of the whole channel wins over a topic opt-in.
    await api.put(f"/v1/profiles/{profile}/subscriptions",
                  json={"subscriptions": [{"channel": "email", "topic": "*", "status": "opted_out"}]})
    assert (await send(delivery, profile, vip_template)).reason == "opted out of email"


async def test_a_suppressed_address_gets_nothing_not_even_transactional(api, delivery):
    profile = await make_profile(api, email="Bounced.Person@Example.com")
    transactional = await make_template(api, kind="transactional")
    response = await api.post("/v1/suppressions", json={"channel": "email", "address": "bounced.person@example.COM",
                                                        "reason": "hard bounce"})
    assert response.status_code == 201 and response.json()["address"] == "bounced.person@example.com"
    result = await send(delivery, profile, transactional)
    assert (result.status, result.reason) == ("suppressed", "suppressed address: hard bounce")
    listed = (await api.get("/v1/suppressions", params={"address": "BOUNCED.person@example.com"})).json()
    assert [item["reason"] for item in listed["items"]] == ["hard bounce"]


async def test_typology_rule_caps_weighted_marketing_and_ignores_transactional(api, delivery, db):
    category, promo = unique("cat"), unique("promo")
    rule = unique("rule")
    response = await api.put(f"/v1/typology-rules/{rule}", json={
        "channel": "email", "category": "all", "max_count": 3, "window": "P7D", "weights": {promo: 2}})
    assert response.status_code == 200, response.text
    try:
        profile = await make_profile(api)
        plain = await make_template(api, category=category)
        heavy = await make_template(api, category=promo)
        receipt = await make_template(api, kind="transactional")

        assert (await send(delivery, profile, heavy)).status == "sent"  # weight 2 of 3
        assert (await send(delivery, profile, receipt)).status == "sent"  # not counted
        assert (await send(delivery, profile, heavy)).reason == f"typology rule {rule}"  # 2 + 2 > 3
        assert (await send(delivery, profile, plain)).status == "sent"  # 2 + 1 = 3
        assert (await send(delivery, profile, plain)).reason == f"typology rule {rule}"
        assert (await send(delivery, profile, receipt)).status == "sent"  # transactional bypasses caps
        statuses = [r[0] for r in db.execute(
            "select status from messages where profile_id = %s order by id", (profile,))]
        assert statuses == ["sent", "sent", "suppressed", "sent", "suppressed", "sent"]
        assert (await api.get(f"/v1/typology-rules/{rule}")).json()["weights"] == {promo: 2}
    finally:
        assert (await api.delete(f"/v1/typology-rules/{rule}")).status_code == 204


async def test_concurrent_sends_never_overshoot_a_cap(api, delivery, db):
    """The profile lock makes check + insert atomic: 20 racing sends, cap 3, exactly 3 sent."""
    category = unique("race")
    rule = unique("rule")
    await api.put(f"/v1/typology-rules/{rule}", json={"category": category, "max_count": 3, "window": "P1D"})
    try:
        profile = await make_profile(api)
        template = await make_template(api, category=category)
        results = await asyncio.gather(*(send(delivery, profile, template) for _ in range(20)))
        assert sorted(r.status for r in results) == ["sent"] * 3 + ["suppressed"] * 17
        assert db.execute("select count(*) from messages where profile_id = %s and status = 'sent'",
                          (profile,)).fetchone() == (3,)
    finally:
        await api.delete(f"/v1/typology-rules/{rule}")


@pytest.fixture
async def email_quiet_hours(api):
    async def set_quiet_hours(start: str, end: str, mode: str):
        response = await api.put("/v1/quiet-hours/email", json={"start": start, "end": end, "mode": mode})
        assert response.status_code == 200, response.text

    yield set_quiet_hours
    await api.delete("/v1/quiet-hours/email")


def window_around(now: datetime, tz: str) -> tuple[str, str, datetime]:
    """A quiet window from an hour before to an hour after `now` in `tz`, and its end."""
    local = now.astimezone(ZoneInfo(tz))
    start, end = local - timedelta(hours=1), local + timedelta(hours=1)
    return start.strftime("%H:%M"), end.strftime("%H:%M"), end.replace(second=0, microsecond=0)


async def test_quiet_hours_queue_defers_then_sends_under_the_same_key(api, delivery, db, email_quiet_hours):
    now = datetime(2026, 3, 10, 22, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
    start, end, local_end = window_around(now, "Asia/Tokyo")
    await email_quiet_hours(start, end, "queue")
    profile = await make_profile(api, timezone="Asia/Tokyo")
    template = await make_template(api)
    key = unique("k")

    first = await send(delivery, profile, template, now=now, key=key)
    assert first.status == "deferred" and first.retry_at == local_end
    assert first.reason.startswith(f"quiet hours {start}-{end} Asia/Tokyo")
    # The journey's durable timer fires at retry_at and sends the same request again.
    second = await send(delivery, profile, template, now=first.retry_at, key=key)
    assert (second.status, second.message_id) == ("sent", first.message_id)
    assert db.execute("select count(*), min(retry_at) from messages where idempotency_key = %s",
                      (key,)).fetchone() == (1, None)


async def test_quiet_hours_discard_and_transactional_bypass_and_default_timezone(api, delivery, email_quiet_hours):
    now = datetime.now(timezone.utc)
    start, end, _ = window_around(now, "UTC")  # settings.default_timezone is UTC
    await email_quiet_hours(start, end, "discard")
    no_timezone = await make_profile(api)
    elsewhere = await make_profile(api, timezone="Pacific/Kiritimati")  # UTC+14: outside the window
    template = await make_template(api)
    receipt = await make_template(api, kind="transactional")

    result = await send(delivery, no_timezone, template, now=now)
    assert (result.status, result.reason) == ("suppressed", f"quiet hours {start}-{end} UTC")
    assert (await send(delivery, elsewhere, template, now=now)).status == "sent"
    assert (await send(delivery, no_timezone, receipt, now=now)).status == "sent"


async def test_policy_api_validation_names_the_path(api):
    bad_rule = await api.put("/v1/typology-rules/bad", json={"max_count": 0, "window": "P1M", "channel": "fax"})
    assert bad_rule.status_code == 422
    assert {d["path"] for d in bad_rule.json()["detail"]} == {"$.max_count", "$.window", "$.channel"}
    bad_quiet = await api.put("/v1/quiet-hours/email", json={"start": "25:00", "end": "8:00"})
    assert {d["path"] for d in bad_quiet.json()["detail"]} == {"$.start", "$.end"}
    bad_subscription = await api.put("/v1/profiles/p1/subscriptions",
                                     json={"subscriptions": [{"channel": "email", "topic": "A B", "status": "maybe"}]})
    assert {d["path"] for d in bad_subscription.json()["detail"]} == {
        "$.subscriptions[0].topic", "$.subscriptions[0].status"}
    assert (await api.get("/v1/typology-rules/never-defined")).status_code == 404


async def test_a_template_of_another_channel_fails_instead_of_sending(api, delivery):
    profile = await make_profile(api, phone="+33612345678")
    sms_template = await make_template(api, channel="sms", subject=None)
    result = await send(delivery, profile, sms_template)  # sent on email
    assert (result.status, result.reason) == ("failed", f"template {sms_template!r} is for sms, not email")
