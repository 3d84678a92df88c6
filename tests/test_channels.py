"""Channels end to end against real servers: SMTP (aiosmtpd, STARTTLS + AUTH), a JSON HTTP
gateway (a real HTTP server), the in-app inbox, unsubscribe links and provider callbacks."""

import email
import json
import ssl
import subprocess
import threading
import uuid
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from temporalio.testing import ActivityEnvironment

from activities.delivery import DeliveryActivities
from activities.providers import HttpJsonProvider, InAppProvider, SinkProvider, SmtpProvider
from models.journey_runtime import MessageSource, SendRequest
from models.settings import HttpProviderSettings
from tests.test_delivery import Inbox, free_port, smtp_server  # noqa: F401 (fixture)
from tests.test_delivery_policies import make_profile, make_template, unique


def request(profile_id: str, template: str, channel: str = "email", **more) -> SendRequest:
    return SendRequest(idempotency_key=unique("k"), profile_id=profile_id, channel=channel, template=template,
                       source=MessageSource(kind="journey", key="t", version=1, node="n"), **more)


async def send(activities, req):
    return await ActivityEnvironment().run(activities.send_message, req)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
def secure_smtp(certificate):
    """An SMTP server that requires STARTTLS and AUTH (user sojourn / secret)."""
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"sojourn", b"secret")
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), tls_context=context,
                            require_starttls=True, authenticator=authenticate, auth_required=True)
    controller.start()
    yield controller, inbox, str(cert)
    controller.stop()


async def test_smtp_starttls_auth_parts_headers_and_unsubscribe_link(api, engine, settings, secure_smtp, db):
    controller, inbox, cert = secure_smtp
    provider = SmtpProvider("127.0.0.1", controller.port, "Default <default@sojourn.test>", "sojourn", "secret",
                            start_tls=True, cert_bundle=cert)
    activities = DeliveryActivities(engine, {"email": provider}, settings)
    profile = await make_profile(api, attributes={"name": "Zoë"})
    template = await make_template(
        api, subject="News for {{ profile.attributes.name }}", body="Text {{ unsubscribe_url }}",
        html="<p>HTML {{ profile.attributes.name }}</p>", from_address="Deals <deals@sojourn.test>",
        reply_to="help@sojourn.test")

    result = await send(activities, request(profile, template))
    assert result.status == "sent", result.reason
    (envelope,) = inbox.messages
    mail = email.message_from_bytes(envelope.original_content, policy=policy.default)
    assert mail["From"] == "Deals <deals@sojourn.test>" and mail["Reply-To"] == "help@sojourn.test"
    assert mail["Subject"] == "News for Zoë"
    assert mail.get_body(("plain",)).get_content().startswith("Text http://localhost:8000/unsubscribe/")
    assert mail.get_body(("html",)).get_content().strip() == "<p>HTML Zoë</p>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = mail["List-Unsubscribe"].strip("<>")
    stored_id = db.execute("select provider_message_id from messages where id = %s", (result.message_id,)).fetchone()
    assert stored_id == (mail["Message-ID"],)

    # The link's page confirms first (a GET never unsubscribes), then the one-click POST opts out.
    path = link.removeprefix("http://localhost:8000")
    page = await api.get(path)
    assert page.status_code == 200 and "<form method=\"post\">" in page.text and "email" in page.text
    assert (await api.get(f"/v1/profiles/{profile}/subscriptions")).json()["subscriptions"] == []
    done = await api.post(path, content=b"List-Unsubscribe=One-Click",
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200 and "Unsubscribed" in done.text
    (subscription,) = (await api.get(f"/v1/profiles/{profile}/subscriptions")).json()["subscriptions"]
    assert subscription["status"] == "opted_out" and subscription["source"] == "one_click"
    assert (await send(activities, request(profile, template))).reason == "opted out of email"
    assert len(inbox.messages) == 1


async def test_smtp_over_implicit_tls(api, engine, settings, certificate):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), ssl_context=context)
    controller.start()
    try:
        provider = SmtpProvider("127.0.0.1", controller.port, "tls@sojourn.test", use_tls=True, cert_bundle=str(cert))
        activities = DeliveryActivities(engine, {"email": provider}, settings)
        result = await send(activities, request(await make_profile(api), await make_template(api)))
    finally:
        controller.stop()
    assert result.status == "sent" and len(inbox.messages) == 1


async def test_a_tampered_unsubscribe_link_is_refused(api):
    assert (await api.get("/unsubscribe/not-a-token")).status_code == 404
    page = await api.post("/unsubscribe/cHJvZmlsZQ.AAAAAAAAAAAAAAAAAAAAAA")
    assert page.status_code == 404 and "not valid" in page.text


async def test_a_wrong_smtp_password_is_a_retryable_error(api, engine, settings, secure_smtp):
    controller, _, cert = secure_smtp
    provider = SmtpProvider("127.0.0.1", controller.port, "x@sojourn.test", "sojourn", "wrong",
                            start_tls=True, cert_bundle=cert, timeout=5)
    activities = DeliveryActivities(engine, {"email": provider}, settings)
    profile, template = await make_profile(api), await make_template(api)
    with pytest.raises(Exception, match="smtp error.*535"):
        await send(activities, request(profile, template))


class Gateway:
    """A real HTTP server standing in for an SMS gateway: records requests, answers per script."""

    def __init__(self):
        self.requests: list[tuple[dict, dict]] = []
        self.status = 200
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                gateway.requests.append((dict(self.headers), body))
                reply = json.dumps({"data": {"sid": f"SM{len(gateway.requests)}"}}).encode()
                self.send_response(gateway.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/messages"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def gateway():
    gateway = Gateway()
    yield gateway
    gateway.server.shutdown()


async def test_sms_through_the_http_json_provider(api, engine, settings, gateway, db):
    config = HttpProviderSettings(
        url=gateway.url, headers={"Authorization": "Bearer sms-key"}, message_id_path="data.sid",
        body='{"From": "Sojourn", "To": {{ to | json }}, "Body": {{ body | json }}, "ref": {{ profile.id | json }}}')
    activities = DeliveryActivities(engine, {"sms": HttpJsonProvider("http-sms", config)}, settings)
    profile = await make_profile(api, phone="+33612345678", attributes={"name": 'Ann "A" O\'Neil'})
    template = await make_template(api, channel="sms", subject=None, body='Hi {{ profile.attributes.name }}!',
                                   kind="transactional")

    result = await send(activities, request(profile, template, channel="sms"))
    assert result.status == "sent"
    ((headers, body),) = gateway.requests
    assert body == {"From": "Sojourn", "To": "+33612345678", "Body": 'Hi Ann "A" O\'Neil!', "ref": profile}
    assert headers["Authorization"] == "Bearer sms-key" and headers["Idempotency-Key"].startswith("k-")
    assert db.execute("select provider, provider_message_id from messages where id = %s",
                      (result.message_id,)).fetchone() == ("http-sms", "SM1")

    gateway.status = 400  # a refused request is permanent: failed at once, no retry
    refused = await send(activities, request(profile, template, channel="sms"))
    assert refused.status == "failed" and "HTTP 400" in refused.reason
    gateway.status = 503  # a gateway outage is transient: the activity retries
    with pytest.raises(Exception, match="HTTP 503"):
        await send(activities, request(profile, template, channel="sms"))


async def test_inapp_messages_land_in_the_inbox_and_can_be_marked_read(api, engine, settings):
    activities = DeliveryActivities(engine, {"inapp": InAppProvider()}, settings)
    profile = await make_profile(api)
    template = await make_template(api, channel="inapp", subject="Offer", body="10% for {{ profile.id }}")
    first = await send(activities, request(profile, template, channel="inapp"))
    second = await send(activities, request(profile, template, channel="inapp"))
    assert first.status == second.status == "sent"

    inbox = (await api.get(f"/v1/profiles/{profile}/inbox")).json()
    assert inbox["unread"] == 2 and [m["id"] for m in inbox["items"]] == [second.message_id, first.message_id]
    assert inbox["items"][0]["body"] == f"10% for {profile}"
    read = await api.post(f"/v1/profiles/{profile}/inbox/{first.message_id}/read")
    assert read.status_code == 200 and read.json()["read_at"] is not None
    unread = (await api.get(f"/v1/profiles/{profile}/inbox", params={"unread_only": True})).json()
    assert unread["unread"] == 1 and [m["id"] for m in unread["items"]] == [second.message_id]
    assert (await api.post(f"/v1/profiles/someone-else/inbox/{first.message_id}/read")).status_code == 404


async def test_hard_bounce_callback_marks_the_message_and_suppresses_the_address(api, engine, settings, smtp_server, db):
    controller, inbox = smtp_server
    activities = DeliveryActivities(engine, {"email": SmtpProvider("127.0.0.1", controller.port, "x@sojourn.test")},
                                    settings)
    profile = await make_profile(api)
    template = await make_template(api)
    receipt = await make_template(api, kind="transactional")
    sent = await send(activities, request(profile, template))
    provider_id = db.execute("select provider_message_id from messages where id = %s",
                             (sent.message_id,)).fetchone()[0]

    response = await api.post("/v1/delivery/callbacks/smtp", json={"events": [
        {"provider_message_id": provider_id, "status": "delivered"},
        {"provider_message_id": provider_id, "status": "bounced", "bounce": "hard", "reason": "550 no such user"},
        {"provider_message_id": provider_id, "status": "delivered"},  # late and weaker: ignored
        {"provider_message_id": "<unknown@x>", "status": "delivered"},
    ]})
    assert response.json() == {"updated": 2, "suppressed": 1, "unknown": ["<unknown@x>"]}
    assert db.execute("select status, delivery_status, reason from messages where id = %s",
                      (sent.message_id,)).fetchone() == ("sent", "bounced", "hard bounce: 550 no such user")
    blocked = await send(activities, request(profile, receipt))  # even transactional
    assert (blocked.status, blocked.reason) == ("suppressed", "suppressed address: hard bounce")
    assert len(inbox.messages) == 1
    bad = await api.post("/v1/delivery/callbacks/smtp", json={"events": [{"status": "delivered"}]})
    assert bad.status_code == 422 and bad.json()["detail"][0]["path"] == "$.events[0]"

