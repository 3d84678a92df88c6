"""Engine construction shared by the API, the worker and the tests."""

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from models.settings import Settings, sqlalchemy_url


def resolve_database_url(settings: Settings) -> str:
    if not settings.database_url:
        raise RuntimeError(
            "DATABASE_URL is not set. `sojourn dev` sets it for its children; "
            "for `sojourn api`/`sojourn worker` export DATABASE_URL=postgresql://…"
        )
    return sqlalchemy_url(settings.database_url)


def make_engine(settings: Settings, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        resolve_database_url(settings), pool_size=pool_size, max_overflow=10, pool_pre_ping=True
    )
