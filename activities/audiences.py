"""Audiences in SQL: the exact count with a sample, and materialization into a work table.

The condition is compiled by models/condition_sql.py (identifiers from the registry only,
values as bound parameters). Reads run in a READ ONLY, REPEATABLE READ transaction: the
count and the sample see the same snapshot, and no compiled statement could ever write.
"""

import re
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi.encoders import jsonable_encoder
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models.condition_sql import compile_condition, table_for
from models.dataset_schema import Registry

SAMPLE_SIZE = 10
WORK_SCHEMA = "work"  # created by migration 0002
WORK_TABLE_NAME = re.compile(r"^work\.aud_[0-9a-f]{32}$")


async def _read_only_snapshot(conn: AsyncConnection) -> None:
    await conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


async def count_audience(engine: AsyncEngine, registry: Registry, dimension: str, where: Any,
                         now: datetime, sample_size: int = SAMPLE_SIZE) -> tuple[int, list[dict]]:
    """The exact number of `dimension` rows matching `where`, and up to `sample_size` of them."""
    table = table_for(registry, dimension)
    condition = compile_condition(registry, dimension, where, now)
    async with engine.connect() as conn, conn.begin():
        await _read_only_snapshot(conn)
        count = await conn.scalar(sa.select(sa.func.count()).select_from(table).where(condition))
        # No ORDER BY: any members will do, and LIMIT can stop at the first ones found.
        rows = (await conn.execute(sa.select(table).where(condition).limit(sample_size))).mappings().all()
    return count, jsonable_encoder([dict(row) for row in rows])


def work_table(name: str, key_type: sa.types.TypeEngine | None = None) -> sa.Table:
    """The Table of a materialized audience `work.<name>`: one `key` column, the primary key."""
    schema, _, table_name = name.rpartition(".")
    return sa.Table(table_name, sa.MetaData(), sa.Column("key", key_type or sa.Text(), primary_key=True),
                    schema=schema or WORK_SCHEMA, prefixes=["UNLOGGED"])


async def materialize(engine: AsyncEngine, registry: Registry, dimension: str, where: Any,
                      now: datetime) -> tuple[str, int]:
    """Write the primary keys of the audience's members into a new work table.

    Returns its schema-qualified name (`work.aud_<uuid>`) and the number of members. The table
    is UNLOGGED (rebuildable, so no WAL) with `key` as primary key, so deliveries can page
    through it by key. The caller drops it (drop_work_table) when done.
    """
    table = table_for(registry, dimension)
    key_column = table.c[registry.datasets[dimension].primary_key]
    condition = compile_condition(registry, dimension, where, now)
    work = work_table(f"{WORK_SCHEMA}.aud_{uuid.uuid4().hex}", key_column.type)
    async with engine.begin() as conn:
        await conn.run_sync(work.create)
        # SQLAlchemy only keeps an INSERT's rowcount when asked to.
        inserted = await conn.execute(sa.insert(work).from_select(["key"], sa.select(key_column).where(condition))
                                      .execution_options(preserve_rowcount=True))
        count = inserted.rowcount
        # Fresh statistics: the next step joins this table against profiles.
        await conn.exec_driver_sql(f"ANALYZE {conn.dialect.identifier_preparer.format_table(work)}")
    return f"{WORK_SCHEMA}.{work.name}", count


async def drop_work_table(engine: AsyncEngine, name: str) -> None:
    if not WORK_TABLE_NAME.match(name):  # never drop anything but what materialize made
        raise ValueError(f"not a materialized audience: {name!r}")
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: work_table(name).drop(sync, checkfirst=True))
