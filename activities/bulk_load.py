"""Write checked rows into a dataset: COPY into a staging table, then one upsert statement.

COPY is the fastest way into PostgreSQL; the staging table lets one `INSERT … SELECT … ON
CONFLICT (pk) DO UPDATE` apply the whole batch atomically, so readers see all of it or none.
Rows arrive already type-checked (models/dataset_rows.py): COPY meets only valid text.
"""

import uuid

import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from models.dataset_rows import CheckedRows
from models.dataset_schema import DatasetSchema
from models.dataset_table import dataset_table


async def upsert_rows(conn: AsyncConnection, schema: DatasetSchema, checked: CheckedRows) -> int:
    """Upsert the batch (inside the caller's transaction); returns the number of rows written."""
    if not checked.rows:
        return 0
    table = dataset_table(schema)
    stage_name = f"stage_{uuid.uuid4().hex}"
    quote = conn.dialect.identifier_preparer.quote
    # LIKE copies the column types, so COPY parses each value exactly as the target would.
    await conn.exec_driver_sql(f"CREATE TEMP TABLE {quote(stage_name)} (LIKE {quote(table.name)}) ON COMMIT DROP")
    await _copy(conn, stage_name, checked)

    stage = sa.table(stage_name, *(sa.column(c) for c in checked.columns))
    # Key order: concurrent loads of overlapping keys then lock rows in the same order and
    # wait for each other instead of deadlocking.
    rows = sa.select(*(stage.c[c] for c in checked.columns)).order_by(stage.c[schema.primary_key])
    statement = insert(table).from_select(checked.columns, rows)
    updated = checked.columns[1:]  # primary key first
    if updated:
        statement = statement.on_conflict_do_update(
            index_elements=[schema.primary_key], set_={c: statement.excluded[c] for c in updated})
    else:
        statement = statement.on_conflict_do_nothing(index_elements=[schema.primary_key])
    await conn.execute(statement)
    return len(checked.rows)


async def _copy(conn: AsyncConnection, stage_name: str, checked: CheckedRows) -> None:
    # COPY is psycopg's own API, so its own identifier quoting composes the statement.
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(stage_name), sql.SQL(", ").join(map(sql.Identifier, checked.columns)))
    raw = await conn.get_raw_connection()
    async with raw.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
        async with cursor.copy(statement) as copy:
            for row in checked.rows:
                await copy.write_row(row)


async def delete_rows(conn: AsyncConnection, schema: DatasetSchema, keys: list[str]) -> int:
    """Delete by primary key (keys in the text form dataset_rows produces); returns the count."""
    table = dataset_table(schema)
    key_type = table.c[schema.primary_key].type
    values = sa.func.unnest(sa.cast(sa.literal(keys, sa.ARRAY(sa.Text())), sa.ARRAY(sa.Text())))
    result = await conn.execute(sa.delete(table).where(
        table.c[schema.primary_key].in_(sa.select(sa.cast(values.column_valued(), key_type)))))
    return result.rowcount
