"""Alembic environment: migrates the database named by DATABASE_URL (or the -x url)."""

from alembic import context
from sqlalchemy import create_engine, pool

from models.settings import get_settings, sqlalchemy_url
import models.delivery_tables  # noqa: F401  (registers the delivery tables in the metadata)
from models.tables import metadata

config = context.config


def database_url() -> str:
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    if not url:
        raise RuntimeError("DATABASE_URL is not set")
    return sqlalchemy_url(url)


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Autogenerate must not propose dropping the tables users declare as datasets (ds_*)."""
    if type_ == "table" and reflected and compare_to is None and name.startswith("ds_"):
        return False
    return True


def run_migrations_online() -> None:
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
