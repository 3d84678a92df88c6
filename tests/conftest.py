"""Shared fixtures: a fresh PostgreSQL database per test run and real Temporal servers.

The database server is DATABASE_URL's (CI uses the machine's PostgreSQL) or, when unset, an
embedded one from the pgserver wheel. Each run creates its own database and drops it at the end.
"""

import os
import tempfile
import uuid
from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from cli import find_binary
from migrations.runner import upgrade_to_head
from models import search_attributes
from models.database import make_engine
from models.settings import Settings


def _server_url() -> tuple[str, object | None]:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url, None
    import pgserver

    server = pgserver.get_server(tempfile.mkdtemp(prefix="sojourn-test-pg-"), cleanup_mode="delete")
    return server.get_uri(), server


def _with_database(url: str, name: str) -> str:
    base, sep, query = url.partition("?")
    head, _, _old_db = base.rpartition("/")
    return f"{head}/{name}{sep}{query}"


@pytest.fixture(scope="session")
def database_url() -> str:
    server_url, server = _server_url()
    name = f"sojourn_test_{uuid.uuid4().hex[:12]}"
    admin_url = _with_database(server_url.replace("postgresql+psycopg://", "postgresql://"), "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(admin_url, name)
    upgrade_to_head(url)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if server is not None:
        server.cleanup()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, task_queue=f"test-{uuid.uuid4().hex[:8]}",
                    dispatch_idle_sleep_seconds=0.02)


@pytest.fixture(scope="session")
async def engine(settings: Settings):
    engine = make_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
def db(database_url: str) -> psycopg.Connection:
    """A plain autocommit connection for assertions on rows."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await search_attributes.register(env.client)
    yield env
    await env.shutdown()


async def api_client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sojourn.test") as client:
            yield client


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real FastAPI app in-process against the test database (no Temporal needed)."""
    async for client in api_client_for(settings):
        yield client


def temporal_client_of(env: WorkflowEnvironment) -> Client:
    return env.client


@pytest.fixture(autouse=True)
def retire_journeys_after_each_test(database_url: str):
    """Tests share one database: close every journey a test published, so its entry events
    (often the same names, e.g. cart_abandoned) do not start instances for later tests."""
    yield
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE journey_versions SET status = 'closed' WHERE status = 'live'")
        conn.execute("UPDATE journeys SET status = 'stopped' WHERE status IN ('live', 'paused')")
