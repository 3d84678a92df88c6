"""Benchmark: batch delivery throughput, messages/s (goal >= 20,000/s on 2 cores).

Rendered Liquid messages (subject + body with profile attributes and a signed
`{{ unsubscribe_url }}`) through the sink provider with every policy check on: profile row
locks, hard suppressions (0.5% of addresses), channel and topic consent (1% opted out of the
channel, 1% of a topic), a typology rule (3 marketing emails per 7 days, weighted by
category), quiet hours (configured, not covering now). Each recipient gets one ledger row.

Two figures:
  engine    the batch activity's code (deliver_slice: chunked transactions, one policy
            statement and one COPY-staged insert per chunk), N slices in parallel in one
            process, as a worker runs them;
  temporal  (--temporal) the whole BatchDeliveryWorkflow on a Temporal dev server with an
            in-process worker: planning, slice activities, progress, completion;
and the ratio to a plain COPY of the same ledger rows into an identical table.

Creates a throwaway database `sojourn_bench_<random>` on --database-url and drops it at the
end, also on Ctrl-C. Run from the project root with Postgres reachable:

    .venv/bin/python bench/delivery_throughput.py
    .venv/bin/python bench/delivery_throughput.py --recipients 400000 --parallel 2 --temporal
"""

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from activities.batch_delivery import BatchDeliveryActivities  # noqa: E402
from activities.providers import SinkProvider  # noqa: E402
from bench.bench_database import add_database_argument, run_in_fresh_database  # noqa: E402
from models.batch_delivery import BatchDeliveryRequest, SliceRequest  # noqa: E402
from models.database import make_engine  # noqa: E402
from models.journey_runtime import MessageSource  # noqa: E402
from models.settings import Settings  # noqa: E402

GOAL = 20_000
ZONES = ["Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC", None]
SUBJECT = "{{ profile.attributes.first_name | default: 'Hello' }}, your {{ profile.attributes.plan }} perks"
BODY = ("Hi {{ profile.attributes.first_name }}, you have {{ profile.attributes.points }} points in "
        "{{ profile.attributes.city }}. Unsubscribe: {{ unsubscribe_url }}")
LEDGER_COLUMNS = ("idempotency_key, profile_id, channel, template, address, subject, body, status, reason, "
                  "provider, source_kind, source_key, source_version, source_node, kind, category, topic, sent_at")


def seed_policies(db_url: str) -> None:
    """The template and the workspace-wide policies every run checks."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO templates (key, channel, subject, body, kind, category, topic, version) "
                     "VALUES ('perks', 'email', %s, %s, 'marketing', 'promo', 'perks', 1)", (SUBJECT, BODY))
        conn.execute("""INSERT INTO typology_rules (name, channel, category, max_count, "window", window_seconds,
                        weights, enabled) VALUES ('email-3-per-week', 'email', 'all', 3, 'P7D', 604800,
                        '{"promo": 1, "newsletter": 0.5}', true)""")
        conn.execute("""INSERT INTO quiet_hours (channel, start, "end", mode) VALUES ('email', '03:00', '03:01', 'queue')""")


def seed(db_url: str, recipients: int, prefix: str) -> str:
    """Profiles with their consent and suppressions, and the work table of their ids (returns
    its name). Each run gets its own profiles, so every run starts from the same state."""
    rng = random.Random(7)
    ids = [f"{prefix}-{i:08d}" for i in range(recipients)]
    table = f"work.aud_{uuid.uuid4().hex}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        with conn.cursor().copy("COPY profiles (id, email, timezone, attributes) FROM STDIN") as copy:
            for profile_id in ids:
                attributes = {"first_name": f"Name{rng.randrange(10_000)}", "plan": rng.choice(["free", "pro", "team"]),
                              "points": rng.randrange(100_000), "city": rng.choice(["Paris", "Lyon", "Osaka", "Lima"])}
                copy.write_row((profile_id, f"{profile_id}@example.com", rng.choice(ZONES), json.dumps(attributes)))
        with conn.cursor().copy("COPY subscriptions (profile_id, channel, topic, status) FROM STDIN") as copy:
            for profile_id in rng.sample(ids, recipients // 100):
                copy.write_row((profile_id, "email", "*", "opted_out"))
            for profile_id in rng.sample(ids, recipients // 100):
                copy.write_row((profile_id, "email", "perks", "opted_out"))
        with conn.cursor().copy("COPY suppressions (channel, address, reason) FROM STDIN") as copy:
            for profile_id in rng.sample(ids, recipients // 200):
                copy.write_row(("email", f"{profile_id}@example.com", "hard bounce"))
        conn.execute(f"CREATE UNLOGGED TABLE {table} (key text PRIMARY KEY)")
        with conn.cursor().copy(f"COPY {table} (key) FROM STDIN") as copy:
            for profile_id in ids:
                copy.write_row((profile_id,))
        conn.execute("ANALYZE")
    return table


def batch_request(table: str, batch_id: str) -> BatchDeliveryRequest:
    return BatchDeliveryRequest(batch_id=batch_id, work_table=table, channel="email", template="perks",
                                source=MessageSource(kind="campaign", key=batch_id, version=1, node="send"))


async def engine_run(settings: Settings, table: str, parallel: int) -> tuple[float, dict]:
    """deliver_slice over the whole table, `parallel` slices at a time, like a worker."""
    from temporalio.testing import ActivityEnvironment

    engine = make_engine(settings, pool_size=parallel + 2)
    activities = BatchDeliveryActivities(engine, {"email": SinkProvider()}, settings)
    request = batch_request(table, "bench-engine")
    plan = await ActivityEnvironment().run(activities.plan_batch, request)
    ranges = list(zip([None, *plan.bounds[:-1]], plan.bounds))
    pending = iter(ranges)
    statuses: dict[str, int] = {}

    async def lane() -> None:
        for after, upto in pending:  # shared iterator: each slice taken once
            result = await ActivityEnvironment().run(
                activities.deliver_slice, SliceRequest(batch=request, after=after, upto=upto, chunk_size=plan.chunk_size))
            for status, count in result.statuses.items():
                statuses[status] = statuses.get(status, 0) + count

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(lane() for _ in range(parallel)))
    seconds = time.perf_counter() - started
    python_cpu = time.process_time() - cpu_started
    postgres_cpu = await backend_cpu_seconds(engine)
    await engine.dispose()
    return seconds, statuses, python_cpu, postgres_cpu


async def backend_cpu_seconds(engine) -> float | None:
    """CPU time of this run's Postgres backends (the engine's pooled connections, opened for
    it), read from /proc when the server is local; None otherwise."""
    from sqlalchemy import text

    async with engine.connect() as conn:
        pids = (await conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'"
        ))).scalars().all()
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return total


async def temporal_run(settings: Settings, table: str) -> tuple[float, dict]:
    """The BatchDeliveryWorkflow end to end on a dev server, worker in this process."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from cli import find_binary
    from models import search_attributes
    from models.delivery_queues import batch_task_queue
    from workflows.batch_delivery import BatchDeliveryWorkflow

    engine = make_engine(settings, pool_size=settings.batch_parallel_slices + 4)
    activities = BatchDeliveryActivities(engine, {"email": SinkProvider()}, settings)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"), search_attributes=search_attributes.ALL,
        data_converter=pydantic_data_converter)
    try:
        async with Worker(env.client, task_queue="bench", workflows=[BatchDeliveryWorkflow],
                          activities=[activities.plan_batch, activities.deferred_summary]), \
                Worker(env.client, task_queue=batch_task_queue("email"),
                       activities=[activities.deliver_slice, activities.deliver_deferred],
                       max_concurrent_activities=settings.batch_parallel_slices):
            started, cpu_started, server_started = time.perf_counter(), time.process_time(), children_cpu_seconds()
            result = await env.client.execute_workflow(
                BatchDeliveryWorkflow.run, batch_request(table, "bench-temporal"), id="bench-batch", task_queue="bench")
            seconds = time.perf_counter() - started
            python_cpu = time.process_time() - cpu_started
            server_cpu = children_cpu_seconds() - server_started
            postgres_cpu = await backend_cpu_seconds(engine)
    finally:
        await env.shutdown()
        await engine.dispose()
    return seconds, result.statuses, python_cpu, postgres_cpu, server_cpu


def children_cpu_seconds() -> float:
    """CPU time of this process's children (the Temporal dev server)."""
    total = 0.0
    for children in Path("/proc/self/task").glob("*/children"):
        for pid in children.read_text().split():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def copy_baseline(db_url: str, source_key: str) -> tuple[float, int]:
    """The same ledger rows, COPY'd in one transaction into an identical empty table (same
    indexes), from memory: the floor for writing these rows at all."""
    with psycopg.connect(db_url) as conn:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT {LEDGER_COLUMNS} FROM messages WHERE source_key = %s", (source_key,))
            rows = cursor.fetchall()
        conn.execute("CREATE TABLE messages_copy (LIKE messages INCLUDING ALL)")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor().copy(f"COPY messages_copy ({LEDGER_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return time.perf_counter() - started, len(rows)


def report(label: str, recipients: int, seconds: float, statuses: dict, copy_rate: float, python_cpu: float,
           postgres_cpu: float | None, server_cpu: float = 0.0) -> float:
    rate = recipients / seconds
    print(f"{label:<9} {rate:>10,.0f} messages/s   {seconds:6.2f} s   ratio to COPY {rate / copy_rate:.2f}"
          f"   statuses {dict(sorted(statuses.items()))}")
    if postgres_cpu is not None:
        # The machine may be shared: CPU per message says what 2 dedicated cores would do (the
        # worker's Python is one thread; Postgres and the Temporal server use the other core).
        per_message = lambda cpu: cpu / recipients * 1e6  # noqa: E731
        projected = recipients / max(python_cpu, (python_cpu + postgres_cpu + server_cpu) / 2)
        server = f" + temporal {per_message(server_cpu):.1f} µs" if server_cpu else ""
        print(f"{'':<9} CPU/msg python {per_message(python_cpu):.1f} µs + postgres {per_message(postgres_cpu):.1f} µs"
              f"{server} -> {projected:,.0f} messages/s on 2 dedicated cores (load average {os.getloadavg()[0]:.1f})")
    return rate


async def run(args: argparse.Namespace, db_url: str) -> None:
    print(f"seeding {args.recipients:,} profiles and policies ...", flush=True)
    seed_policies(db_url)
    table = seed(db_url, args.recipients, "engine")
    settings = Settings(database_url=db_url, batch_slice_size=args.slice, batch_chunk_size=args.chunk,
                        batch_parallel_slices=args.parallel, batch_partition_size=max(args.recipients, 1))
    seconds, statuses, python_cpu, postgres_cpu = await engine_run(settings, table, args.parallel)
    copy_seconds, copied = copy_baseline(db_url, "bench-engine")
    copy_rate = copied / copy_seconds
    print(f"recipients {args.recipients:,}  slice {args.slice}  chunk {args.chunk}  parallel slices {args.parallel}"
          f"  cores {os.cpu_count()}")
    print(f"COPY      {copy_rate:>10,.0f} rows/s       {copy_seconds:6.2f} s   (same ledger rows, identical table)")
    best = report("engine", args.recipients, seconds, statuses, copy_rate, python_cpu, postgres_cpu)
    if args.temporal:
        seconds, statuses, *cpu = await temporal_run(settings, seed(db_url, args.recipients, "temporal"))
        best = max(best, report("temporal", args.recipients, seconds, statuses, copy_rate, *cpu))
    print(f"goal >= {GOAL:,}/s (wall clock, best run): {'MET' if best >= GOAL else 'NOT MET'}")
    sent = statuses.get("sent", 0)
    if sum(statuses.values()) != args.recipients or not sent:
        raise SystemExit(f"LEDGER CHECK FAILED: {statuses} for {args.recipients} recipients")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_argument(parser)
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--slice", type=int, default=5000, help="recipients per slice activity")
    parser.add_argument("--chunk", type=int, default=1000, help="recipients per transaction")
    parser.add_argument("--parallel", type=int, default=2, help="slices in flight")
    parser.add_argument("--temporal", action="store_true", help="also run the workflow on a dev server")
    args = parser.parse_args()
    run_in_fresh_database(args.database_url, lambda db_url: asyncio.run(run(args, db_url)))


if __name__ == "__main__":
    main()
