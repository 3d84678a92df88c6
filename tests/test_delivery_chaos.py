"""Chaos: the batch engine on a real Temporal dev server with the worker as a subprocess,
killed with SIGKILL in the middle of a slice, then replaced. Nothing may be lost or doubled.

Sink: the ledger insert is the delivery, so the ledger must hold exactly one `sent` row per
recipient. SMTP (real aiosmtpd): every recipient receives its mail; a resend can only happen
for a mail the server accepted in the instant between its "250 OK" and the ledger update of a
killed worker (an SMTP client cannot know whether that mail went out: the price of not losing
it). Such a resend carries the same Message-ID, which receiving systems use to drop it; the
test asserts one distinct Message-ID per recipient and at most one resend per SMTP connection
that was in flight at the kill.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from email import message_from_bytes
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.controller import Controller
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cli import find_binary
from models import search_attributes
from models.batch_delivery import batch_message_key
from activities.batch_delivery import BatchDeliveryActivities
from workflows.batch_delivery import BatchDeliveryWorkflow
from tests.test_batch_delivery import make_recipients, request_for, template
from tests.test_delivery import Inbox, free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
async def dev_server():
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"), search_attributes=search_attributes.ALL,
        data_converter=pydantic_data_converter)
    yield env
    await env.shutdown()


class WorkerProcess:
    """`python -m worker` (the real worker entry point) with its own settings."""

    def __init__(self, env: WorkflowEnvironment, database_url: str, **settings: str):
        self.env = {**os.environ, "DATABASE_URL": database_url,
                    "SOJOURN_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                    **{f"SOJOURN_{name.upper()}": value for name, value in settings.items()}}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "worker"], cwd=ROOT, env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()


async def kill_mid_slice(worker: WorkerProcess, progress, slice_size: int, total: int, timeout: float = 60) -> int:
    """Wait until a slice is half-way (progress not on a slice boundary), then SIGKILL."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.process.poll() is None, worker.process.stderr.read().decode()[-3000:]
        done = progress()
        if slice_size < done < total - slice_size and done % slice_size:
            worker.kill()
            return done
        await asyncio.sleep(0.005)
    raise AssertionError(f"no mid-slice moment seen (last progress {progress()})")


def attempts_of_slices(histories) -> list[int]:
    return [e.activity_task_started_event_attributes.attempt for history in histories for e in history.events
            if e.HasField("activity_task_started_event_attributes")]


async def histories(env, workflow_id: str, partitions: int):
    ids = [workflow_id] + [f"{workflow_id}:part-{i}" for i in range(partitions)]
    return [await env.client.get_workflow_handle(i).fetch_history() for i in ids]


async def test_sink_batch_survives_kill_9_with_exactly_one_row_per_recipient(dev_server, database_url, db):
    total, slice_size = 20_000, 2_500
    table, ids = make_recipients(db, total, f"chaos-{uuid.uuid4().hex[:6]}")
    request = request_for(table, template(db))
    prefix = batch_message_key(request.batch_id, "")
    task_queue = f"chaos-{uuid.uuid4().hex[:8]}"
    settings = dict(task_queue=task_queue, batch_slice_size=str(slice_size), batch_chunk_size="500",
                    batch_partition_size="8000", batch_parallel_slices="2",
                    batch_heartbeat_timeout_seconds="4", dispatch_idle_sleep_seconds="1",
                    # 2 slices/s: slow enough to kill one in the middle, fast enough for a test.
                    channel_rate_limits='{"email": 5000}')
    sent = lambda: db.execute("SELECT count(*) FROM messages WHERE starts_with(idempotency_key, %s)",  # noqa: E731
                              (prefix,)).fetchone()[0]

    first = WorkerProcess(dev_server, database_url, **settings)
    second = WorkerProcess(dev_server, database_url, **settings)
    first.start()
    try:
        workflow_id = f"batch:{request.batch_id}"
        handle = await dev_server.client.start_workflow(BatchDeliveryWorkflow.run, request, id=workflow_id,
                                                        task_queue=task_queue)
        killed_at = await kill_mid_slice(first, sent, slice_size, total)
        second.start()
        result = await asyncio.wait_for(handle.result(), timeout=75)
    finally:
        first.stop()
        second.stop()

    assert 0 < killed_at < total
    assert (result.total, result.done, result.statuses) == (total, total, {"sent": total})
    assert db.execute("SELECT count(*), count(DISTINCT profile_id), count(*) FILTER (WHERE status = 'sent') "
                      "FROM messages WHERE starts_with(idempotency_key, %s)", (prefix,)).fetchone() == (total, total, total)
    # The slice that was cut short really was resumed by a second attempt.
    assert max(attempts_of_slices(await histories(dev_server, workflow_id, 3))) >= 2


class CountingInbox(Inbox):
    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.original_content))
        return "250 OK"


async def test_smtp_batch_survives_kill_9_and_every_recipient_gets_one_mail(dev_server, database_url, db):
    total, slice_size, connections = 600, 100, 4
    inbox = CountingInbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    table, ids = make_recipients(db, total, f"chaos-smtp-{uuid.uuid4().hex[:6]}")
    request = request_for(table, template(db))
    task_queue = f"chaos-{uuid.uuid4().hex[:8]}"
    settings = dict(task_queue=task_queue, email_provider="smtp", smtp_host="127.0.0.1", smtp_port=str(smtp.port),
                    smtp_max_connections=str(connections), batch_chunk_size="50", batch_parallel_slices="1",
                    batch_heartbeat_timeout_seconds="4", dispatch_idle_sleep_seconds="1",
                    channel_rate_limits=f'{{"email": {slice_size}}}')  # one 100-mail slice per second
    received = lambda: len(inbox.messages)  # noqa: E731

    first = WorkerProcess(dev_server, database_url, **settings)
    second = WorkerProcess(dev_server, database_url, **settings)
    first.start()
    try:
        handle = await dev_server.client.start_workflow(BatchDeliveryWorkflow.run, request,
                                                        id=f"batch:{request.batch_id}", task_queue=task_queue)
        killed_at = await kill_mid_slice(first, received, slice_size, total)
        second.start()
        result = await asyncio.wait_for(handle.result(), timeout=75)
    finally:
        first.stop()
        second.stop()
        smtp.stop()

    assert 0 < killed_at < total
    assert result.statuses == {"sent": total}
    recipients = [m["To"] for m in inbox.messages]
    assert sorted(set(recipients)) == sorted(f"{i}@example.com" for i in ids)  # nobody missed
    message_ids = {m["Message-ID"] for m in inbox.messages}
    assert len(message_ids) == total  # one distinct mail per recipient
    resent = len(inbox.messages) - total
    print(f"SMTP chaos: killed after {killed_at} mails; {resent} resent mail(s) (same Message-ID)")
    assert 0 <= resent <= connections


async def test_the_channel_rate_limit_paces_batch_slices(dev_server, engine, settings, db):
    """300 recipients at 100 messages/s: slices of 100 (one second of quota), one slice
    activity per second from the rate-limited deliver-email-batch queue -> >= 2 s of sending."""
    from temporalio.worker import Worker

    from worker import delivery_workers

    limited = settings.model_copy(update={"channel_rate_limits": {"email": 100}, "task_queue": f"rate-{uuid.uuid4().hex[:6]}"})
    table, _ = make_recipients(db, 300, f"rate-{uuid.uuid4().hex[:6]}")
    request = request_for(table, template(db))
    activities = BatchDeliveryActivities(engine, {}, limited)
    workers = [Worker(dev_server.client, task_queue=limited.task_queue, workflows=[BatchDeliveryWorkflow],
                      activities=[activities.plan_batch, activities.deferred_summary]),
               *delivery_workers(dev_server.client, engine, limited)]
    for each in workers:
        await each.__aenter__()
    try:
        result = await dev_server.client.execute_workflow(BatchDeliveryWorkflow.run, request,
                                                          id=f"batch:{request.batch_id}", task_queue=limited.task_queue)
    finally:
        for each in workers:
            await each.__aexit__(None, None, None)
    assert result.statuses == {"sent": 300}
    first, last = db.execute("SELECT min(sent_at), max(sent_at) FROM messages WHERE starts_with(idempotency_key, %s)",
                             (batch_message_key(request.batch_id, ""),)).fetchone()
    assert (last - first).total_seconds() >= 1.5
