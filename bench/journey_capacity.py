"""Benchmark: audience entry rate and worker memory with many waiting journey instances.

In one run, on one Temporal dev server and a throwaway database:
  audience  N profiles (default 10,000) in an audience; a journey with an audience entry at the
            highest rate (10,000/s) whose instances then wait a day. Timed from publish until
            N instances have started (their journey_instances rows exist).
  bare      N x client.start_workflow of a bare workflow of the same shape (a local activity
            inserting one row, then a one-day timer), semaphore 100, on the same server.
Prints both rates (profiles/s), the ratio, and the Sojourn worker's resident memory (RSS) with
N instances waiting (goal <= 500 MB). The Sojourn worker runs as `python -m cli worker`.

    .venv/bin/python bench/journey_capacity.py --profiles 10000
"""

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

ROOT = os.path.dirname(os.path.dirname(__file__))
sys.path.insert(0, ROOT)
with workflow.unsafe.imports_passed_through():
    import psycopg

    from api.main import create_app
    from bench.bench_database import add_database_argument, run_in_fresh_database
    from cli import find_binary
    from models import search_attributes
    from models.settings import Settings
    from tests.conftest import api_client_for

RSS_GOAL_MB = 500
RATIO_GOAL = 0.9


@activity.defn(name="bench_capacity_insert")
async def insert_row(db_url_and_id: list[str]) -> None:
    db_url, workflow_id = db_url_and_id
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("insert into bench_capacity (workflow_id) values (%s) on conflict do nothing", (workflow_id,))


@workflow.defn(name="bench_capacity")
class BareWaitingWorkflow:
    @workflow.run
    async def run(self, db_url: str) -> None:
        await workflow.execute_local_activity(insert_row, [db_url, workflow.info().workflow_id],
                                              start_to_close_timeout=timedelta(seconds=30))
        await workflow.sleep(timedelta(days=1))


def count(db_url: str, query: str) -> int:
    with psycopg.connect(db_url) as conn:
        return conn.execute(query).fetchone()[0]


async def wait_for(db_url: str, query: str, target: int, timeout: float = 900) -> float:
    start = time.perf_counter()
    while count(db_url, query) < target:
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"stalled below {target}: {query}")
        await asyncio.sleep(0.25)
    return time.perf_counter() - start


def rss_mb(pid: int) -> tuple[float, float]:
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


async def run_audience(env, db_url: str, n: int) -> tuple[float, subprocess.Popen]:
    address = env.client.service_client.config.target_host
    settings = Settings(database_url=db_url, temporal_address=address, task_queue="bench-capacity")
    worker = subprocess.Popen([sys.executable, "-m", "cli", "worker"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL,
                              env={**os.environ, "DATABASE_URL": db_url, "SOJOURN_TEMPORAL_ADDRESS": address,
                                   "SOJOURN_TASK_QUEUE": "bench-capacity"})
    async for api in api_client_for(settings):
        profiles = [{"id": f"cap-{i:06d}", "attributes": {"segment": "bench"}} for i in range(n)]
        for start in range(0, n, 5000):
            r = await api.post("/v1/profiles/bulk", json={"profiles": profiles[start:start + 5000]})
            assert r.status_code == 200, r.text
        await api.put("/v1/audiences/bench", json={"dimension": "profiles", "where": {
            "attr": "attributes.segment", "op": "eq", "value": "bench"}})
        await api.post("/v1/journeys", json={
            "key": "bench-audience", "name": "bench", "start": "hold",
            "entry": {"type": "audience", "audience": "bench", "rate": 10_000},
            "nodes": {"hold": {"type": "wait", "duration": "P1D", "next": "end"}, "end": {"type": "end"}}})
        started = time.perf_counter()
        r = await api.post("/v1/journeys/bench-audience/publish")
        assert r.status_code == 200, r.text
        await wait_for(db_url, "select count(*) from journey_instances where journey_key = 'bench-audience'", n)
        return time.perf_counter() - started, worker
    raise RuntimeError("unreachable")


async def run_bare(env, db_url: str, n: int) -> float:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("create table bench_capacity (workflow_id text primary key)")
    limit = asyncio.Semaphore(100)

    async def start(i: int) -> None:
        async with limit:
            await env.client.start_workflow(BareWaitingWorkflow.run, db_url, id=f"bare-{i}", task_queue="bench-bare")

    async with Worker(env.client, task_queue="bench-bare", workflows=[BareWaitingWorkflow], activities=[insert_row],
                      max_concurrent_workflow_tasks=200):
        started = time.perf_counter()
        await asyncio.gather(*(start(i) for i in range(n)))
        await wait_for(db_url, "select count(*) from bench_capacity", n)
        return time.perf_counter() - started


async def run(args: argparse.Namespace, db_url: str) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"), search_attributes=search_attributes.ALL,
        data_converter=pydantic_data_converter, dev_server_log_level="error")
    worker = None
    try:
        bare_seconds = await run_bare(env, db_url, args.profiles)
        audience_seconds, worker = await run_audience(env, db_url, args.profiles)
        await asyncio.sleep(5)  # let the worker settle with every instance waiting
        rss, peak = rss_mb(worker.pid)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        await env.shutdown()
    n = args.profiles
    sojourn_rate, bare_rate = n / audience_seconds, n / bare_seconds
    print(f"profiles                 {n:,}")
    print(f"audience entry           {sojourn_rate:8,.0f} profiles/s ({audience_seconds:.1f} s from publish, "
          f"incl. materializing the audience)")
    print(f"bare Temporal starts     {bare_rate:8,.0f} workflows/s ({bare_seconds:.1f} s)")
    print(f"ratio                    {sojourn_rate / bare_rate:8.2f}  (goal >= {RATIO_GOAL}: "
          f"{'MET' if sojourn_rate / bare_rate >= RATIO_GOAL else 'NOT MET'})")
    print(f"worker RSS, {n:,} waiting {rss:8.0f} MB (peak {peak:.0f} MB; goal <= {RSS_GOAL_MB}: "
          f"{'MET' if peak <= RSS_GOAL_MB else 'NOT MET'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_argument(parser)
    parser.add_argument("--profiles", type=int, default=10_000)
    args = parser.parse_args()
    run_in_fresh_database(args.database_url, lambda db_url: asyncio.run(run(args, db_url)))


if __name__ == "__main__":
    main()
