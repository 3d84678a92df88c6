"""Benchmark: events/s accepted durably by `POST /v1/events` (goal >= 10,000/s).

Creates a throwaway database `sojourn_bench_<random>` on the server named by
--database-url, migrates it, starts the real API (uvicorn subprocess), posts
--events events in batches of --batch with --concurrency concurrent requests,
checks that `select count(*) from events` equals the accepted total, and then
inserts the same rows with psycopg COPY as a floor (`api/copy ratio`).
The server is stopped and the database dropped at the end, also on Ctrl-C.

Run (from the project root, Postgres reachable):

    .venv/bin/python bench/event_ingest.py
    .venv/bin/python bench/event_ingest.py --concurrency 8 --workers 2 --events 500000
"""

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.bench_database import add_database_argument, run_in_fresh_database  # noqa: E402

GOAL = 10_000
NAMES = ["page_viewed", "product_viewed", "added_to_cart", "checkout_started", "order_completed", "email_opened"]
PLANS = ["free", "pro", "team", "enterprise"]


def make_events(n: int, profiles: int = 10_000) -> list[dict]:
    """Realistic events: 10k profiles, a few properties each, unique message ids."""
    rng = random.Random(42)
    now = datetime.now(timezone.utc)
    return [{
        "message_id": str(uuid.uuid4()),
        "profile_id": f"user-{rng.randrange(profiles):05d}",
        "name": rng.choice(NAMES),
        "properties": {"path": f"/p/{rng.randrange(500)}", "value": round(rng.uniform(1, 500), 2),
                       "plan": rng.choice(PLANS), "mobile": rng.random() < 0.4},
        "timestamp": (now - timedelta(seconds=rng.randrange(86_400))).isoformat(),
    } for _ in range(n)]



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(app: str, db_url: str, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": db_url}
    env.pop("SOJOURN_API_KEY", None)
    cmd = [sys.executable, "-m", "uvicorn", app, "--factory", "--port", str(port),
           "--log-level", "warning", "--workers", str(workers)]
    # Own session: Ctrl-C reaches only us, and we stop the server in order.
    return subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)


def stop_api(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


async def wait_healthy(client: httpx.AsyncClient, server: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"API exited with code {server.returncode}")
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("API did not become healthy")


async def post_all(client: httpx.AsyncClient, bodies: list[bytes], concurrency: int) -> tuple[int, list[float], float]:
    queue = iter(bodies)
    latencies: list[float] = []
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        for body in queue:  # shared iterator: each body is taken by exactly one worker
            t0 = time.perf_counter()
            r = await client.post("/v1/events", content=body, headers={"content-type": "application/json"})
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 202:
                raise RuntimeError(f"POST /v1/events -> {r.status_code}: {r.text[:300]}")
            accepted += r.json()["accepted"]

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return accepted, latencies, time.perf_counter() - t0


def copy_baseline(db_url: str, events: list[dict]) -> float:
    """The same rows, COPY'd in one transaction into an identical empty table (same indexes)."""
    with psycopg.connect(db_url) as conn:
        conn.execute("create table events_copy (like events including all)")
        conn.commit()
        t0 = time.perf_counter()
        with conn.cursor().copy("copy events_copy (message_id, profile_id, name, properties, occurred_at)"
                                " from stdin") as copy:
            for e in events:
                copy.write_row((e["message_id"], e["profile_id"], e["name"],
                                json.dumps(e["properties"]), e["timestamp"]))
        conn.commit()
        return time.perf_counter() - t0


async def run(args: argparse.Namespace, db_url: str) -> None:
    events = make_events(args.events)
    bodies = [json.dumps({"events": events[i:i + args.batch]}).encode()
              for i in range(0, len(events), args.batch)]
    port = free_port()
    server = start_api(args.app, db_url, port, args.workers)
    try:
        limits = httpx.Limits(max_connections=args.concurrency)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=120) as client:
            await wait_healthy(client, server)
            accepted, latencies, seconds = await post_all(client, bodies, args.concurrency)
    finally:
        stop_api(server)
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("select count(*) from events").fetchone()[0]
    copy_seconds = copy_baseline(db_url, events)

    rate, copy_rate = accepted / seconds, len(events) / copy_seconds
    p50, p95 = (statistics.quantiles(latencies, n=100)[i] * 1000 for i in (49, 94)) if len(latencies) > 1 \
        else (latencies[0] * 1000,) * 2
    print(f"workers={args.workers} concurrency={args.concurrency} batch={args.batch}")
    print(f"events           {len(events):>10,}  (accepted {accepted:,}, stored {stored:,})")
    print(f"batches          {len(bodies):>10,}")
    print(f"seconds          {seconds:>10.2f}")
    print(f"events/s         {rate:>10,.0f}  accepted via API")
    print(f"batch latency    p50 {p50:.1f} ms   p95 {p95:.1f} ms")
    print(f"COPY baseline    {copy_rate:>10,.0f}  events/s ({copy_seconds:.2f} s, one transaction)")
    print(f"api/copy ratio   {rate / copy_rate:>10.2f}")
    print(f"goal >= {GOAL:,}/s: {'MET' if rate >= GOAL else 'NOT MET'}")
    if stored != accepted or accepted != len(events):
        raise SystemExit(f"DURABILITY CHECK FAILED: accepted {accepted}, stored {stored}, sent {len(events)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_argument(parser)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--app", default="api.main:create_app", help="app factory (to A/B a patched route)")
    args = parser.parse_args()

    run_in_fresh_database(args.database_url, lambda db_url: asyncio.run(run(args, db_url)))

if __name__ == "__main__":
    main()
