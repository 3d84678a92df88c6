"""A fresh, migrated database for one benchmark run, dropped afterwards (also on Ctrl-C)."""

import argparse
import os
import secrets
import sys
from collections.abc import Callable

import psycopg

from migrations.runner import upgrade_to_head


def add_database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL")
                        or "postgresql://postgres@127.0.0.1:5432/postgres",
                        help="server to create the benchmark database on")


def with_db(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")


def run_in_fresh_database(server_url: str, body: Callable[[str], None], keep: bool = False) -> None:
    """Create `sojourn_bench_<random>` on the server, migrate it, call body(url), drop it."""
    name = f"sojourn_bench_{secrets.token_hex(4)}"
    admin_url = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    db_url = with_db(admin_url, name)
    try:
        upgrade_to_head(db_url)
        body(db_url)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        if keep:
            print(f"kept database {db_url}")
        else:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
