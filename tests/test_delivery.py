"""The send activity against real Postgres, and SMTP against a real aiosmtpd server."""

import dataclasses
import socket
import uuid

import pytest
from aiosmtpd.controller import Controller
from temporalio.testing import ActivityEnvironment

from activities.delivery import DeliveryActivities
from activities.providers import SinkProvider, SmtpProvider
from models.journey_runtime import SEND_MAX_ATTEMPTS, MessageSource, SendRequest


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
async def template_and_profile(api):
    profile_id = f"p-{uuid.uuid4().hex[:8]}"
    await api.put("/v1/templates/welcome", json={"channel": "email", "subject": "Hi {{ profile.attributes.name }}",
                                                 "body": "Welcome {{ profile.attributes.name }}{{ missing.var }}!"})
    await api.put(f"/v1/profiles/{profile_id}", json={"email": "zoe@example.com", "attributes": {"name": "Zoe"}})
    return profile_id


def request_for(profile_id: str) -> SendRequest:
    return SendRequest(idempotency_key=f"test:{uuid.uuid4()}", profile_id=profile_id, channel="email",
                       template="welcome", source=MessageSource(kind="journey", key="t", version=1, node="n"))


async def test_sink_send_is_recorded_once_per_idempotency_key(engine, template_and_profile, db):
    activities = DeliveryActivities(engine, {"email": SinkProvider()})
    request = request_for(template_and_profile)
    first = await ActivityEnvironment().run(activities.send_message, request)
    second = await ActivityEnvironment().run(activities.send_message, request)
    assert first == second and first.status == "sent"
    rows = db.execute("select status, subject, body from messages where idempotency_key = %s",
                      (request.idempotency_key,)).fetchall()
    assert rows == [("sent", "Hi Zoe", "Welcome Zoe!")]


async def test_smtp_delivers_once_even_when_the_send_is_repeated(engine, template_and_profile, smtp_server, db):
    controller, inbox = smtp_server
    provider = SmtpProvider("127.0.0.1", controller.port, "Sojourn <no-reply@sojourn.test>")
    activities = DeliveryActivities(engine, {"email": provider})
    request = request_for(template_and_profile)
    for _ in range(3):
        result = await ActivityEnvironment().run(activities.send_message, request)
        assert result.status == "sent"
    assert len(inbox.messages) == 1
    mail = inbox.messages[0]
    assert mail.rcpt_tos == ["zoe@example.com"]
    assert b"Subject: Hi Zoe" in mail.content and b"Welcome Zoe!" in mail.content
    row = db.execute("select status, provider, provider_message_id from messages where idempotency_key = %s",
                     (request.idempotency_key,)).fetchone()
    assert row[0:2] == ("sent", "smtp") and row[2].startswith("<")


async def test_a_queued_row_left_by_a_crash_is_reused_not_duplicated(engine, template_and_profile, smtp_server, db):
    controller, inbox = smtp_server
    request = request_for(template_and_profile)
    db.execute("insert into messages (idempotency_key, profile_id, channel, status, source_kind) "
               "values (%s, %s, 'email', 'queued', 'journey')", (request.idempotency_key, template_and_profile))
    activities = DeliveryActivities(engine, {"email": SmtpProvider("127.0.0.1", controller.port, "x@sojourn.test")})
    result = await ActivityEnvironment().run(activities.send_message, request)
    assert result.status == "sent" and len(inbox.messages) == 1
    assert db.execute("select count(*) from messages where idempotency_key = %s",
                      (request.idempotency_key,)).fetchone()[0] == 1


async def test_smtp_failure_retries_then_records_failed_on_the_last_attempt(engine, template_and_profile, db):
    dead_port = free_port()  # nothing listens here
    activities = DeliveryActivities(engine, {"email": SmtpProvider("127.0.0.1", dead_port, "x@sojourn.test", timeout=2)})
    request = request_for(template_and_profile)
    with pytest.raises(Exception, match="smtp error"):
        await ActivityEnvironment().run(activities.send_message, request)
    assert db.execute("select status from messages where idempotency_key = %s",
                      (request.idempotency_key,)).fetchone() == ("queued",)

    last_attempt = ActivityEnvironment()
    last_attempt.info = dataclasses.replace(last_attempt.info, attempt=SEND_MAX_ATTEMPTS)
    result = await last_attempt.run(activities.send_message, request)
    assert result.status == "failed" and "smtp error" in result.reason
