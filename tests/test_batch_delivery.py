"""The batch delivery engine on a real Temporal test server and real Postgres: partitions,
slices, policies, quiet-hours deferral with a durable timer, SMTP, resuming a slice."""

import dataclasses
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.batch_delivery import BatchDeliveryActivities
from activities.providers import SinkProvider, SmtpProvider
from models.batch_delivery import BatchDeliveryRequest, SliceCursor, SliceRequest, batch_message_key
from models.delivery_queues import batch_task_queue
from models.journey_runtime import MessageSource
from workflows.batch_delivery import BatchDeliveryWorkflow
from tests.test_delivery import Inbox, free_port  # noqa: F401  (smtp fixture helpers)
from tests.test_channels import smtp_server  # noqa: F401  (fixture)


def make_recipients(db: psycopg.Connection, count: int, prefix: str, **columns) -> tuple[str, list[str]]:
    """`count` profiles and a work table of their ids, like audiences.materialize writes."""
    table = f"work.aud_{uuid.uuid4().hex}"
    ids = [f"{prefix}-{i:05d}" for i in range(count)]
    timezone_name = columns.get("timezone")
    with db.cursor().copy("COPY profiles (id, email, timezone, attributes) FROM STDIN") as copy:
        for profile_id in ids:
            copy.write_row((profile_id, f"{profile_id}@example.com", timezone_name, f'{{"n": "{profile_id}"}}'))
    db.execute(f"CREATE UNLOGGED TABLE {table} (key text PRIMARY KEY)")
    with db.cursor().copy(f"COPY {table} (key) FROM STDIN") as copy:
        for profile_id in ids:
            copy.write_row((profile_id,))
    return table, ids


def template(db: psycopg.Connection, **columns) -> str:
    key = f"batch-{uuid.uuid4().hex[:8]}"
    values = {"channel": "email", "subject": "Hi {{ profile.id }}", "body": "For {{ profile.attributes.n }}",
              "kind": "marketing"} | columns
    db.execute("INSERT INTO templates (key, channel, subject, body, kind, version) VALUES (%s, %s, %s, %s, %s, 1)",
               (key, values["channel"], values["subject"], values["body"], values["kind"]))
    return key


def request_for(table: str, template_key: str, batch_id: str | None = None) -> BatchDeliveryRequest:
    batch_id = batch_id or f"batch-{uuid.uuid4().hex[:8]}"
    return BatchDeliveryRequest(batch_id=batch_id, work_table=table, channel="email", template=template_key,
                                source=MessageSource(kind="campaign", key=batch_id, version=1, node="send"))


@pytest.fixture
def batch_settings(settings):
    # Tiny sizes so a few hundred recipients exercise partitions, slices and chunks.
    return settings.model_copy(update={"batch_slice_size": 60, "batch_chunk_size": 25,
                                       "batch_partition_size": 150, "batch_parallel_slices": 3})


async def run_batch(env, engine, settings, provider, request: BatchDeliveryRequest):
    activities = BatchDeliveryActivities(engine, {"email": provider}, settings)
    main_queue = f"batch-test-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=main_queue, workflows=[BatchDeliveryWorkflow],
                      activities=[activities.plan_batch, activities.deferred_summary]), \
            Worker(env.client, task_queue=batch_task_queue("email"),
                   activities=[activities.deliver_slice, activities.deliver_deferred]):
        handle = await env.client.start_workflow(BatchDeliveryWorkflow.run, request, id=f"batch:{request.batch_id}",
                                                 task_queue=main_queue)
        result = await handle.result()
        progress = await handle.query(BatchDeliveryWorkflow.progress)
        run_batch.history = await handle.fetch_history()
    return result, progress


async def test_partitioned_batch_applies_policies_once_per_recipient(time_skipping_env, engine, batch_settings, db):
    table, ids = make_recipients(db, 400, f"bp-{uuid.uuid4().hex[:6]}")
    db.execute("INSERT INTO subscriptions (profile_id, channel, topic, status) VALUES (%s, 'email', '*', 'opted_out')",
               (ids[7],))
    db.execute("INSERT INTO suppressions (channel, address, reason) VALUES ('email', %s, 'complaint')",
               (f"{ids[8]}@example.com",))
    db.execute("DELETE FROM profiles WHERE id = %s", (ids[9],))
    request = request_for(table, template(db))

    result, progress = await run_batch(time_skipping_env, engine, batch_settings, SinkProvider(), request)
    assert result == progress
    assert (result.total, result.done, result.partitions_total, result.partitions_done) == (400, 400, 3, 3)
    assert result.statuses == {"sent": 397, "suppressed": 2, "skipped": 1}
    rows = db.execute("SELECT status, count(*), count(DISTINCT profile_id) FROM messages "
                      "WHERE starts_with(idempotency_key, %s) GROUP BY status ORDER BY status",
                      (batch_message_key(request.batch_id, ""),)).fetchall()
    assert rows == [("sent", 397, 397), ("skipped", 1, 1), ("suppressed", 2, 2)]
    body = db.execute("SELECT body FROM messages WHERE idempotency_key = %s",
                      (batch_message_key(request.batch_id, ids[0]),)).fetchone()
    assert body == (f"For {ids[0]}",)

    # The same batch id again (a re-run campaign step): nothing new is recorded or sent.
    again, _ = await run_batch(time_skipping_env, engine, batch_settings, SinkProvider(),
                               request.model_copy(update={}))
    assert again.statuses == result.statuses
    assert db.execute("SELECT count(*) FROM messages WHERE starts_with(idempotency_key, %s)",
                      (batch_message_key(request.batch_id, ""),)).fetchone() == (400,)


async def test_quiet_hours_defer_batch_messages_until_a_durable_timer_fires(
        time_skipping_env, engine, batch_settings, db, api):
    now = datetime.now(timezone.utc)
    start, end = (now - timedelta(hours=1)).strftime("%H:%M"), (now + timedelta(hours=1)).strftime("%H:%M")
    assert (await api.put("/v1/quiet-hours/email", json={"start": start, "end": end, "mode": "queue"})).status_code == 200
    try:
        sleeping, _ = make_recipients(db, 30, f"bq-{uuid.uuid4().hex[:6]}", timezone="UTC")
        request = request_for(sleeping, template(db))
        # The time-skipping server fast-forwards the timer to the end of the quiet hours.
        result, _ = await run_batch(time_skipping_env, engine, batch_settings, SinkProvider(), request)
    finally:
        await api.delete("/v1/quiet-hours/email")
    assert result.statuses == {"sent": 30} and result.deferred_waiting == 0
    timers = [e for e in run_batch.history.events if e.HasField("timer_started_event_attributes")]
    assert len(timers) == 1  # every recipient was deferred to the same end of quiet hours
    rows = db.execute("SELECT status, retry_at, count(*) FROM messages WHERE starts_with(idempotency_key, %s) "
                      "GROUP BY 1, 2", (batch_message_key(request.batch_id, ""),)).fetchall()
    assert rows == [("sent", None, 30)]


async def test_batch_over_smtp_sends_each_mail_once(time_skipping_env, engine, batch_settings, smtp_server, db):
    controller, inbox = smtp_server
    table, ids = make_recipients(db, 90, f"bs-{uuid.uuid4().hex[:6]}")
    provider = SmtpProvider("127.0.0.1", controller.port, "batch@sojourn.test", max_connections=4)
    request = request_for(table, template(db))
    result, _ = await run_batch(time_skipping_env, engine, batch_settings, provider, request)
    assert result.statuses == {"sent": 90}
    assert sorted(m.rcpt_tos[0] for m in inbox.messages) == sorted(f"{i}@example.com" for i in ids)


async def test_a_retried_slice_resumes_after_its_heartbeat_cursor(engine, batch_settings, db, smtp_server):
    """The attempt that died had committed chunk 1 and left chunk 2's rows `queued` (recorded
    but never handed to SMTP). The retry skips chunk 1, sends chunk 2's queued rows once."""
    controller, inbox = smtp_server
    table, ids = make_recipients(db, 10, f"br-{uuid.uuid4().hex[:6]}")
    request = request_for(table, template(db))
    key = lambda i: batch_message_key(request.batch_id, ids[i])  # noqa: E731
    for i in range(3):  # chunk 1: sent by the dead attempt
        db.execute("INSERT INTO messages (idempotency_key, profile_id, channel, status, source_kind) "
                   "VALUES (%s, %s, 'email', 'sent', 'campaign')", (key(i), ids[i]))
    for i in range(3, 5):  # chunk 2: recorded, not sent
        db.execute("INSERT INTO messages (idempotency_key, profile_id, channel, status, source_kind, source_key) "
                   "VALUES (%s, %s, 'email', 'queued', 'campaign', %s)", (key(i), ids[i], request.batch_id))

    provider = SmtpProvider("127.0.0.1", controller.port, "batch@sojourn.test")
    activities = BatchDeliveryActivities(engine, {"email": provider}, batch_settings)
    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(retry.info, attempt=2,
                                     heartbeat_details=[SliceCursor(cursor=ids[2], recipients=3, statuses={"sent": 3}).model_dump()])
    result = await retry.run(activities.deliver_slice, SliceRequest(batch=request, after=None, upto=None, chunk_size=4))

    assert result.recipients == 10 and result.statuses == {"sent": 10}
    assert sorted(m.rcpt_tos[0] for m in inbox.messages) == [f"{i}@example.com" for i in ids[3:]]
