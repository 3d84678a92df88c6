"""Benchmark: Sojourn journeys/s vs the same workflow shape on bare Temporal (goal: ratio >= 0.9).

One run, one Temporal dev server, one throwaway database `sojourn_bench_<random>` (migrated,
dropped at the end, also on error or Ctrl-C):
  sojourn  N profiles with emails, a template and the journey `cart_abandoned` -> wait PT1S ->
           message (email, sink) -> end, all set up through the real API (in-process); events
           POSTed in batches of 1,000; worker + event dispatcher in `python -m cli worker`
           (or in this process: --worker inprocess). Timed from the first event POST until N
           `messages` rows of the journey are `sent`.
  bare     N x start_workflow (semaphore 100) -> workflow.sleep(1 s) -> one regular activity
           inserting one row -> done; its worker runs in this process, so starter and worker
           share a process as the dispatcher and worker do. Timed until N rows exist.
Each side first runs --warmup instances (default 50, not timed: imports, pools, caches).
CPU per workflow of each process is printed: the machine has few cores, so it sets the rate.

Run (from the project root, Postgres reachable):

    .venv/bin/python bench/journey_throughput.py --profiles 2000
    .venv/bin/python bench/journey_throughput.py --profiles 1000 --order sojourn-first
"""

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

ROOT = os.path.dirname(os.path.dirname(__file__))  # absolute for a script; no I/O (sandbox)
sys.path.insert(0, ROOT)
# The sandbox re-runs this module for every BareWorkflow run: pass the heavy imports through,
# as workflows/journey.py does, so neither side pays extra per run.
with workflow.unsafe.imports_passed_through():
    import httpx
    import psycopg
    import sqlalchemy as sa

    from api.main import create_app
    from cli import find_binary
    from migrations.runner import upgrade_to_head
    from models import search_attributes
    from models.database import make_engine
    from models.settings import Settings
    from worker import run_worker

GOAL = 0.9
BATCH = 1000
STALL_SECONDS = 120  # no progress for this long: give up
JOURNEY = {"key": "bench-cart", "name": "Bench cart abandonment",
           "entry": {"type": "event", "event": "cart_abandoned"}, "start": "wait",
           "nodes": {"wait": {"type": "wait", "duration": "PT1S", "next": "remind"},
                     "remind": {"type": "message", "channel": "email", "template": "bench-reminder",
                                "next": "end"},
                     "end": {"type": "end"}}}
TEMPLATE = {"channel": "email", "subject": "Your cart", "body": "Cart {{ event.properties.cart_id }} misses you."}
SENT = "select count(*) from messages where source_key = 'bench-cart' and status = 'sent'"


class BareActivities:
    def __init__(self, engine) -> None:
        self.engine = engine

    @activity.defn(name="bench_insert_row")
    async def insert_row(self, workflow_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.text("insert into bench_bare (workflow_id) values (:id)"), {"id": workflow_id})


@workflow.defn(name="bench_bare")
class BareWorkflow:
    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(timedelta(seconds=1))
        await workflow.execute_activity_method(BareActivities.insert_row, workflow.info().workflow_id,
                                               start_to_close_timeout=timedelta(seconds=30))


def cpu_seconds(database: str) -> dict[str, float]:
    """CPU seconds so far of this process, its children (dev server, worker), the Postgres
    backends serving `database`, and the whole machine (the rest is other load)."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as stat:
        machine = sum(int(v) for i, v in enumerate(stat.readline().split()[1:9]) if i not in (3, 4))
    found = {"bench": time.process_time(), "machine": machine / tick}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat, open(f"/proc/{pid}/cmdline", "rb") as cmd:
                fields, exe = stat.read().rsplit(")", 1)[1].split(), cmd.read().split(b"\0")[0]
        except OSError:
            continue
        seconds = (int(fields[11]) + int(fields[12])) / tick
        if int(fields[1]) == os.getpid():
            found["server" if b"temporal" in exe else "worker"] = seconds
        elif exe.startswith(b"postgres:") and f" {database} ".encode() in exe:
            found["postgres"] = found.get("postgres", 0) + seconds
    return found


def cpu_ms_per_workflow(database: str, before: dict[str, float], n: int) -> dict[str, float]:
    used = {k: 1000 * (v - before.get(k, 0)) / n for k, v in cpu_seconds(database).items()}
    used["other load"] = used.pop("machine") - sum(used.values())
    return used


async def wait_for_count(db_url: str, query: str, target: int) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        last, changed = -1, time.monotonic()
        while (count := (await (await conn.execute(query)).fetchone())[0]) < target:
            if count != last:
                last, changed = count, time.monotonic()
            elif time.monotonic() - changed > STALL_SECONDS:
                raise RuntimeError(f"stalled at {count}/{target} for {STALL_SECONDS}s: {query}")
            await asyncio.sleep(0.2)


async def timed(db_url: str, query: str, warmup: int, n: int, submit) -> tuple[float, dict[str, float]]:
    """Warm up, then time `submit` of n more until `query` counts warmup + n rows."""
    await submit(0, warmup)
    await wait_for_count(db_url, query, warmup)
    database = db_url.rsplit("/", 1)[1].split("?")[0]
    cpu, t0 = cpu_seconds(database), time.perf_counter()
    await submit(warmup, warmup + n)
    await wait_for_count(db_url, query, warmup + n)
    return time.perf_counter() - t0, cpu_ms_per_workflow(database, cpu, n)


async def run_bare(client: Client, settings: Settings, n: int, warmup: int) -> tuple[float, str]:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("create table bench_bare (workflow_id text primary key, created_at timestamptz default now())")
    engine = make_engine(settings, pool_size=20)  # as worker.run_worker
    queue, limit = f"bench-bare-{secrets.token_hex(4)}", asyncio.Semaphore(100)

    async def start(i: int) -> None:
        async with limit:
            await client.start_workflow(BareWorkflow.run, id=f"{queue}-{i}", task_queue=queue)

    async def submit(first: int, end: int) -> None:
        await asyncio.gather(*(start(i) for i in range(first, end)))

    async with Worker(client, task_queue=queue, workflows=[BareWorkflow],  # limits as build_worker
                      activities=[BareActivities(engine).insert_row],
                      max_concurrent_activities=200, max_concurrent_workflow_tasks=200):
        result = await timed(settings.database_url, "select count(*) from bench_bare", warmup, n, submit)
        await asyncio.sleep(1)  # let the last workflows complete before their worker stops
    await engine.dispose()
    return result


async def post(api: httpx.AsyncClient, path: str, key: str, rows: list[dict]) -> None:
    for i in range(0, len(rows), BATCH):
        r = await api.post(path, json={key: rows[i:i + BATCH]})
        if r.status_code not in (200, 202):
            raise RuntimeError(f"POST {path} -> {r.status_code}: {r.text[:300]}")


async def run_sojourn(settings: Settings, n: int, warmup: int, mode: str) -> tuple[float, str]:
    stop, log = asyncio.Event(), tempfile.TemporaryFile("w+")
    if mode == "subprocess":
        env = {**os.environ, "DATABASE_URL": settings.database_url, "SOJOURN_TASK_QUEUE": settings.task_queue,
               "SOJOURN_TEMPORAL_ADDRESS": settings.temporal_address}
        env.pop("SOJOURN_API_KEY", None)
        worker = subprocess.Popen([sys.executable, "-m", "cli", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log)
    else:  # what `cli worker` runs: the workers (journeys, delivery queues) and the dispatcher
        running = asyncio.create_task(run_worker(settings, stop))
    profiles = [f"p-{i:06d}" for i in range(warmup + n)]
    events = [{"message_id": str(uuid.uuid4()), "profile_id": p, "name": "cart_abandoned",
               "properties": {"cart_id": f"cart-{p}"}} for p in profiles]
    try:
        app = create_app(settings)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=120) as api:
            for method, path, body in [("PUT", "/v1/templates/bench-reminder", TEMPLATE),
                                       ("POST", "/v1/journeys", JOURNEY),
                                       ("POST", "/v1/journeys/bench-cart/publish", None)]:
                r = await api.request(method, path, json=body)
                if r.status_code not in (200, 201):
                    raise RuntimeError(f"{method} {path} -> {r.status_code}: {r.text[:300]}")
            await post(api, "/v1/profiles/bulk", "profiles", [{"id": p, "email": f"{p}@example.com"} for p in profiles])
            return await timed(settings.database_url, SENT, warmup, n,
                               lambda first, end: post(api, "/v1/events", "events", events[first:end]))
    except BaseException:
        log.seek(0)
        print("sojourn worker log tail:\n" + "".join(log.readlines()[-30:]), file=sys.stderr)
        raise
    finally:
        stop.set()
        if mode == "subprocess":
            worker.terminate()
            worker.wait(30)
        else:
            await running
        log.close()


async def run(args: argparse.Namespace, db_url: str) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"), search_attributes=search_attributes.ALL,
        data_converter=pydantic_data_converter, dev_server_log_level="error")
    try:
        settings = Settings(database_url=db_url, temporal_address=env.client.service_client.config.target_host,
                            task_queue=f"bench-sojourn-{secrets.token_hex(4)}")
        n, results = args.profiles, {}
        for side in (["bare", "sojourn"] if args.order == "bare-first" else ["sojourn", "bare"]):
            results[side] = (await run_bare(env.client, settings, n, args.warmup) if side == "bare" else
                             await run_sojourn(settings, n, args.warmup, args.worker))
    finally:
        await env.shutdown()
    print(f"N={n}; warm-up of {args.warmup} per side excluded from timing; order {args.order}; "
          f"sojourn worker: {args.worker}; {os.cpu_count()} CPUs")
    own = {}  # CPU ms per workflow of the processes under test
    for side, (seconds, cpu) in results.items():
        own[side] = sum(v for k, v in cpu.items() if k != "other load")
        print(f"{side:8} {n} workflows in {seconds:6.1f} s = {n / seconds:6.1f} workflows/s   CPU ms/workflow: "
              + "  ".join(f"{k} {v:.1f}" for k, v in cpu.items()) + f"  (own total {own[side]:.1f})")
    ratio = results["bare"][0] / results["sojourn"][0]  # same n: rate ratio = inverse time ratio
    print(f"ratio sojourn/bare {ratio:.2f}   (CPU-cost ratio bare/sojourn {own['bare'] / own['sojourn']:.2f}: "
          f"the rate ratio to expect when CPU-bound, less sensitive to other load)")
    busy = max(cpu["other load"] / (cpu["other load"] + own[side]) for side, (_, cpu) in results.items())
    if busy > 0.1:
        print(f"WARNING: other processes used up to {busy:.0%} of the CPU while timing; the rates are unreliable")
    print(f"goal >= {GOAL}: {'MET' if ratio >= GOAL else 'NOT MET'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL")
                        or "postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--profiles", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--order", choices=["bare-first", "sojourn-first"], default="bare-first")
    parser.add_argument("--worker", choices=["subprocess", "inprocess"], default="subprocess")
    args = parser.parse_args()

    admin_url = args.database_url.replace("postgresql+psycopg://", "postgresql://")
    name = f"sojourn_bench_{secrets.token_hex(4)}"
    base, sep, query = admin_url.partition("?")
    db_url = f"{base.rsplit('/', 1)[0]}/{name}{sep}{query}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    try:
        upgrade_to_head(db_url)
        asyncio.run(run(args, db_url))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


if __name__ == "__main__":
    main()
