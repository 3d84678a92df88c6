"""Benchmark: an exact audience count compiled by condition_sql vs hand-written SQL (goal <= 1.3x).

Creates a throwaway database `sojourn_bench_<random>` on --database-url and migrates it, then:
1. COPYs --profiles profiles (reproducible: --seed, and a fixed "now" of 2026-11-01 UTC);
2. declares `bookings` through the real API (PUT /v1/datasets/bookings, app in-process) and
   loads --bookings bookings through the bulk-load path (POST …/rows, CSV chunks), printing
   its rows/s;
3. ANALYZE, then times "French profiles aged 30+ with >= 2 confirmed bookings checked in
   within the last 365 days" (3 clauses, one a `has` count), compiled by compile_condition,
   against hand-written SQL for the same question (two usual forms; the faster is the
   baseline), alternating runs, asserting identical counts; prints medians and the ratio.
The database is dropped at the end, also on Ctrl-C.

    .venv/bin/python bench/audience_count.py --profiles 100000 --bookings 300000   # quick
    .venv/bin/python bench/audience_count.py                                       # 1M / 3M
"""

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import httpx
import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from activities.dataset_registry import load_registry  # noqa: E402
from api.main import create_app  # noqa: E402
from models.condition_sql import compile_condition, table_for  # noqa: E402
from models.database import make_engine  # noqa: E402
from models.settings import Settings  # noqa: E402
from bench.bench_database import add_database_argument, run_in_fresh_database  # noqa: E402

GOAL = 1.3
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
COUNTRIES = ["FR"] * 20 + ["DE"] * 18 + ["GB"] * 15 + ["ES"] * 12 + ["IT"] * 12 + ["US"] * 13 + ["NL"] * 10
STATUSES = ["confirmed"] * 7 + ["cancelled"] * 2 + ["pending"]
BOOKINGS = {"primary_key": "booking_id",
            "columns": {"booking_id": "text", "profile_id": "text", "hotel_id": "text", "checkin": "date",
                        "nights": "integer", "amount": "numeric", "status": "text"},
            "links": {"profile": {"dataset": "profiles", "column": "profile_id"}}}
AUDIENCE = {"all": [
    {"attr": "attributes.country", "op": "eq", "value": "FR"},
    {"attr": "attributes.age", "op": "gte", "value": 30},
    {"has": {"dataset": "bookings",
             "where": {"all": [{"attr": "status", "op": "eq", "value": "confirmed"},
                               {"attr": "checkin", "op": "within_last", "value": "P365D"}]},
             "count": {"op": "gte", "value": 2}}},
]}
# The same question as a person would write it. `within_last P365D` on a date column means
# between the UTC dates of now - 365 days and now, both included.
HAND_CORRELATED = sa.text("""
    SELECT count(*) FROM profiles p
    WHERE p.attributes->>'country' = 'FR' AND (p.attributes->>'age')::numeric >= 30
      AND (SELECT count(*) FROM ds_bookings b
           WHERE b.profile_id = p.id AND b.status = 'confirmed'
             AND b.checkin BETWEEN :since AND :until) >= 2""")
HAND_GROUPED = sa.text("""
    SELECT count(*) FROM profiles p
    JOIN (SELECT profile_id FROM ds_bookings
          WHERE status = 'confirmed' AND checkin BETWEEN :since AND :until
          GROUP BY profile_id HAVING count(*) >= 2) b ON b.profile_id = p.id
    WHERE p.attributes->>'country' = 'FR' AND (p.attributes->>'age')::numeric >= 30""")



def profile_id(n: int) -> str:
    return f"u{n:07d}"


def copy_profiles(db_url: str, count: int, rng: random.Random) -> float:
    started = time.perf_counter()
    with psycopg.connect(db_url) as conn, conn.cursor() as cursor:
        with cursor.copy("COPY profiles (id, email, locale, attributes) FROM STDIN") as copy:
            for n in range(count):
                attributes = {"country": rng.choice(COUNTRIES), "age": rng.randint(18, 80),
                              "vip": rng.random() < 0.05, "plan": rng.choice(["free", "plus", "gold"])}
                copy.write_row((profile_id(n), f"{profile_id(n)}@example.com", "fr-FR", json.dumps(attributes)))
    return time.perf_counter() - started


def booking_chunks(count: int, profiles: int, chunk_rows: int, rng: random.Random) -> list[bytes]:
    """CSV bodies: bookings spread over the last two years, 70% confirmed, ~3 per profile."""
    today = NOW.date()
    header = "booking_id,profile_id,hotel_id,checkin,nights,amount,status\n"
    chunks = []
    for start in range(0, count, chunk_rows):
        lines = [header]
        for n in range(start, min(start + chunk_rows, count)):
            checkin = today - timedelta(days=rng.randrange(730))
            lines.append(f"b{n:08d},{profile_id(rng.randrange(profiles))},h{rng.randrange(5000):04d},"
                         f"{checkin.isoformat()},{rng.randint(1, 14)},{rng.randint(4000, 250000) / 100},"
                         f"{rng.choice(STATUSES)}\n")
        chunks.append("".join(lines).encode())
    return chunks


async def declare_and_load(api: httpx.AsyncClient, chunks: list[bytes], concurrency: int) -> tuple[int, float]:
    response = await api.put("/v1/datasets/bookings", json=BOOKINGS)
    response.raise_for_status()
    pending = iter(chunks)
    loaded = 0

    async def sender() -> None:
        nonlocal loaded
        for body in pending:  # shared iterator: each chunk is sent by exactly one sender
            response = await api.post("/v1/datasets/bookings/rows", content=body,
                                      headers={"content-type": "text/csv"})
            if response.status_code != 200:
                raise RuntimeError(f"load failed: {response.status_code} {response.text[:500]}")
            loaded += response.json()["upserted"]

    started = time.perf_counter()
    # With spare cores, 2 in flight overlap one chunk's type check (Python) with another's upsert.
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return loaded, time.perf_counter() - started


async def time_queries(engine, statements: dict[str, sa.Executable], params: dict, repetitions: int) -> dict:
    timings: dict[str, list[float]] = {name: [] for name in statements}
    counts: dict[str, set[int]] = {name: set() for name in statements}
    async with engine.connect() as conn:
        for statement in statements.values():  # warm the cache once each
            await conn.execute(statement, params)
        for _ in range(repetitions):
            for name, statement in statements.items():  # alternate, so drift hits all alike
                started = time.perf_counter()
                counts[name].add((await conn.execute(statement, params)).scalar_one())
                timings[name].append(time.perf_counter() - started)
    for name, seen in counts.items():
        if len(seen) != 1:
            raise SystemExit(f"{name} returned different counts across runs: {seen}")
    return {name: (counts[name].pop(), statistics.median(times), min(times)) for name, times in timings.items()}


async def explain(engine, statements: dict[str, sa.Executable], params: dict) -> None:
    async with engine.connect() as conn:
        for name, statement in statements.items():
            sql = str(statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})) \
                if not isinstance(statement, sa.TextClause) else statement.text
            for key, value in params.items():
                sql = sql.replace(f":{key}", f"'{value.isoformat()}'::date")
            plan = (await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")).scalars().all()
            print(f"--- {name}\n" + "\n".join(plan))


async def run(args: argparse.Namespace, db_url: str) -> None:
    rng = random.Random(args.seed)
    print(f"profiles {args.profiles:,}, bookings {args.bookings:,}, seed {args.seed}, now {NOW.isoformat()}")
    seconds = copy_profiles(db_url, args.profiles, rng)
    print(f"profiles COPY       {args.profiles / seconds:>12,.0f} rows/s ({seconds:.1f} s)")
    chunks = booking_chunks(args.bookings, args.profiles, args.chunk_rows, rng)

    settings = Settings(database_url=db_url, api_key=None)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as api:
            loaded, seconds = await declare_and_load(api, chunks, args.load_concurrency)
    print(f"bookings bulk load  {loaded / seconds:>12,.0f} rows/s ({seconds:.1f} s, {len(chunks)} CSV requests "
          f"of {args.chunk_rows:,} rows, {args.load_concurrency} in flight; API in-process: "
          f"parse + type-check + COPY + upsert)")
    del chunks

    with psycopg.connect(db_url, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("ANALYZE")
        print(f"ANALYZE             {time.perf_counter() - started:>12.1f} s")

    engine = make_engine(settings)
    try:
        async with engine.connect() as conn:
            registry = await load_registry(conn)
        profiles = table_for(registry, "profiles")
        compiled = sa.select(sa.func.count()).select_from(profiles).where(
            compile_condition(registry, "profiles", AUDIENCE, NOW))
        if args.show_sql:
            print(compiled.compile(dialect=postgresql.dialect()))
        today = NOW.astimezone(timezone.utc).date()
        params = {"since": today - timedelta(days=365), "until": today}
        statements = {"compiled": compiled, "hand (correlated)": HAND_CORRELATED, "hand (group by)": HAND_GROUPED}
        if args.explain:
            await explain(engine, statements, params)
        results = await time_queries(engine, statements, params, args.repetitions)
    finally:
        await engine.dispose()

    counts = {count for count, _, _ in results.values()}
    for name, (count, median, best) in results.items():
        print(f"{name:<19} {median * 1000:>9.0f} ms median, {best * 1000:.0f} ms best, count {count:,}")
    if len(counts) != 1:
        raise SystemExit(f"COUNT MISMATCH: {results}")
    baseline = min(median for name, (_, median, _) in results.items() if name != "compiled")
    ratio = results["compiled"][1] / baseline
    print(f"ratio compiled / best hand-written: {ratio:.2f}  (goal <= {GOAL}: {'MET' if ratio <= GOAL else 'NOT MET'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_argument(parser)
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--bookings", type=int, default=3_000_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000, help="bookings per load request")
    parser.add_argument("--load-concurrency", type=int, default=1, help="load requests in flight")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--show-sql", action="store_true", help="print the compiled SQL")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of each query")
    parser.add_argument("--keep", action="store_true", help="keep the database (to investigate plans)")
    args = parser.parse_args()

    run_in_fresh_database(args.database_url, lambda db_url: asyncio.run(run(args, db_url)), keep=args.keep)

if __name__ == "__main__":
    main()
