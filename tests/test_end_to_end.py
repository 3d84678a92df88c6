"""End to end: `sojourn dev` starts the real stack (Temporal dev server, worker, API) on the
test database; a cart-abandonment journey runs through the HTTP API; the stack restarts and a
waiting instance resumes."""

import os
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.test_delivery import free_port

CART = {
    "name": "Cart abandonment (e2e)",
    "entry": {"type": "event", "event": "cart_abandoned"},
    "exit": [{"event": "unsubscribed"}],
    "start": "wait",
    "nodes": {
        "wait": {"type": "wait", "duration": "PT2S", "next": "remind"},
        "remind": {"type": "message", "channel": "email", "template": "e2e-reminder", "next": "bought"},
        "bought": {"type": "wait_event", "event": "order_placed", "timeout": "PT5S",
                   "on_event": "thanks", "on_timeout": "end"},
        "thanks": {"type": "message", "channel": "email", "template": "e2e-thanks", "next": "end"},
        "end": {"type": "end"},
    },
}


class Stack:
    def __init__(self, data_dir, database_url):
        self.data_dir, self.database_url = data_dir, database_url
        self.api_port, self.temporal_port, self.ui_port = free_port(), free_port(), free_port()
        self.process: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.api_port}"

    def start(self) -> None:
        env = {**os.environ, "DATABASE_URL": self.database_url}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli", "dev", "--data-dir", str(self.data_dir),
             "--api-port", str(self.api_port), "--temporal-port", str(self.temporal_port),
             "--ui-port", str(self.ui_port)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stdout.read()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError("sojourn dev did not become ready in 90 s")

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture
def stack(tmp_path, database_url):
    stack = Stack(tmp_path / "sojourn-data", database_url)
    stack.start()
    yield stack
    if stack.process and stack.process.poll() is None:
        stack.stop()


def wait_for(predicate, timeout=30.0, interval=0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def post_event(http, profile_id, name, **properties):
    body = {"events": [{"message_id": str(uuid.uuid4()), "profile_id": profile_id, "name": name,
                        "properties": properties}]}
    r = http.post("/v1/events", json=body)
    assert r.status_code == 202 and r.json() == {"accepted": 1, "duplicates": 0}, r.text


def test_cart_abandonment_through_the_real_stack_and_a_restart(stack, database_url):
    key = f"e2e-{uuid.uuid4().hex[:6]}"
    http = httpx.Client(base_url=stack.url, timeout=10)
    assert http.put("/v1/templates/e2e-reminder", json={
        "channel": "email", "subject": "{{ profile.attributes.first_name }}, still thinking?",
        "body": "Your {{ event.properties.item }} is waiting."}).status_code == 200
    assert http.put("/v1/templates/e2e-thanks", json={
        "channel": "email", "subject": "Thanks", "body": "Order {{ event.properties.order_id }}"}).status_code == 200
    assert http.post("/v1/journeys", json={"key": key, **CART}).status_code == 201
    assert http.post(f"/v1/journeys/{key}/publish").json() == {"key": key, "version": 1, "status": "live"}
    for pid, name in (("buyer", "Bea"), ("idler", "Ian"), ("leaver", "Leo")):
        r = http.put(f"/v1/profiles/{key}-{pid}", json={"email": f"{pid}@example.com",
                                                        "attributes": {"first_name": name}})
        assert r.status_code == 200
        post_event(http, f"{key}-{pid}", "cart_abandoned", item="boots")

    def instance(pid):
        r = http.get(f"/v1/journeys/{key}/instances/{key}-{pid}")
        return r.json() if r.status_code == 200 else None

    # The leaver unsubscribes during the 2 s wait: exit criteria end the instance at once.
    wait_for(lambda: (instance("leaver") or {}).get("current_node") == "wait")
    post_event(http, f"{key}-leaver", "unsubscribed")
    # The buyer orders while waiting at `bought`.
    wait_for(lambda: (instance("buyer") or {}).get("current_node") == "bought")
    post_event(http, f"{key}-buyer", "order_placed", order_id="A-17")

    buyer = wait_for(lambda: (i := instance("buyer")) and i["status"] == "completed" and i)
    idler = wait_for(lambda: (i := instance("idler")) and i["status"] == "completed" and i)
    leaver = wait_for(lambda: (i := instance("leaver")) and i["status"] != "running" and i)
    assert buyer["path"] == ["wait", "remind", "bought", "thanks", "end"] and buyer["version"] == 1
    assert idler["path"] == ["wait", "remind", "bought", "end"]
    assert (leaver["status"], leaver["path"]) == ("exited", ["wait"])

    messages = http.get("/v1/messages", params={"journey": key}).json()["items"]
    sent = sorted((m["profile_id"].removeprefix(f"{key}-"), m["source"]["node"], m["subject"], m["body"])
                  for m in messages)
    assert sent == [
        ("buyer", "remind", "Bea, still thinking?", "Your boots is waiting."),
        ("buyer", "thanks", "Thanks", "Order A-17"),
        ("idler", "remind", "Ian, still thinking?", "Your boots is waiting."),
    ]
    assert all(m["status"] == "sent" and m["source"]["kind"] == "journey" for m in messages)

    # A duplicate message_id is accepted once only.
    dup = {"events": [{"message_id": f"{key}-dup", "profile_id": f"{key}-idler", "name": "noop"}] * 2}
    assert http.post("/v1/events", json=dup).json() == {"accepted": 1, "duplicates": 1}

    # Restart: an instance waiting in a timer survives `sojourn dev` stopping and starting again.
    slow = {"key": f"{key}-slow", **CART, "nodes": {**CART["nodes"],
            "wait": {"type": "wait", "duration": "PT8S", "next": "remind"}}}
    assert http.post("/v1/journeys", json=slow).status_code == 201
    assert http.post(f"/v1/journeys/{key}-slow/publish").status_code == 200
    post_event(http, f"{key}-idler", "cart_abandoned", item="hat")
    wait_for(lambda: http.get(f"/v1/journeys/{key}-slow/instances/{key}-idler").status_code == 200)
    assert stack.stop() == 0
    stack.start()
    http = httpx.Client(base_url=stack.url, timeout=10)
    assert http.get(f"/v1/profiles/{key}-buyer").json()["attributes"] == {"first_name": "Bea"}
    resumed = wait_for(lambda: (r := http.get(f"/v1/journeys/{key}-slow/instances/{key}-idler").json())
                       and r["status"] == "completed" and r, timeout=40)
    assert resumed["path"] == ["wait", "remind", "bought", "end"]
    slow_messages = http.get("/v1/messages", params={"journey": f"{key}-slow"}).json()["items"]
    assert [(m["body"], m["status"]) for m in slow_messages] == [("Your hat is waiting.", "sent")]
