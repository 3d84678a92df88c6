"""The datasets registry in Postgres: read it, and declare (create or migrate) a dataset.

A declaration changes the registry row and the real table `ds_<name>` in one transaction, so
a failed migration leaves both as they were. Migrations only ever add columns, drop empty
columns and add link indexes; anything that could lose or reinterpret data is a conflict.
"""

from dataclasses import dataclass, field

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from models.dataset_schema import PROFILES, DatasetSchema, Link, Registry
from models.dataset_table import SQL_TYPES, dataset_table
from models.faults import Fault
from models.tables import Dataset, Profile


class DatasetConflict(Exception):
    """The declaration would lose or reinterpret data (the API answers 409)."""

    def __init__(self, faults: list[Fault]):
        super().__init__("; ".join(f"{f.path}: {f.message}" for f in faults))
        self.faults = faults


@dataclass
class Declared:
    schema: DatasetSchema
    created: bool
    added_columns: list[str] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)


def _schema_of(row) -> DatasetSchema:
    return DatasetSchema(name=row.name, primary_key=row.primary_key, columns=row.columns,
                         links={k: Link(**v) for k, v in row.links.items()})


async def load_registry(conn: AsyncConnection) -> Registry:
    """Every dataset of the workspace (profiles included): what conditions may address."""
    rows = await conn.execute(sa.select(Dataset.name, Dataset.primary_key, Dataset.columns, Dataset.links))
    datasets = {"profiles": PROFILES}
    datasets.update({row.name: _schema_of(row) for row in rows})
    return Registry(datasets=datasets)


def table_of(schema: DatasetSchema) -> sa.Table:
    return Profile.__table__ if schema.name == "profiles" else dataset_table(schema)  # type: ignore[return-value]


async def lock_dataset(conn: AsyncConnection, name: str, shared: bool = False) -> None:
    """Loads (shared) never run against a half-migrated table (declarations are exclusive).

    A transaction-level advisory lock: released at commit or rollback, whatever happens.
    """
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    key = sa.func.hashtextextended(sa.literal(f"sojourn.dataset.{name}"), 0)
    await conn.execute(sa.select(getattr(sa.func, function)(key)))


async def declare_dataset(conn: AsyncConnection, schema: DatasetSchema) -> Declared:
    """Create or migrate `ds_<name>` and its registry row; call inside a transaction."""
    await lock_dataset(conn, schema.name)
    row = (await conn.execute(sa.select(Dataset).where(Dataset.name == schema.name))).first()
    if row is None:
        await conn.run_sync(lambda sync: dataset_table(schema).create(sync))
        declared = Declared(schema, created=True, added_columns=list(schema.columns))
    else:
        declared = await _migrate(conn, _schema_of(row), schema)
    statement = insert(Dataset).values(name=schema.name, primary_key=schema.primary_key,
                                       columns=dict(schema.columns),
                                       links={k: v.model_dump() for k, v in schema.links.items()})
    await conn.execute(statement.on_conflict_do_update(
        index_elements=["name"],
        set_={"columns": statement.excluded.columns, "links": statement.excluded.links,
              "updated_at": sa.func.now()}))
    return declared


async def _migrate(conn: AsyncConnection, old: DatasetSchema, new: DatasetSchema) -> Declared:
    conflicts = []
    if old.primary_key != new.primary_key:
        conflicts.append(Fault("$.primary_key", f"the primary key of {new.name!r} is {old.primary_key!r}; "
                                                f"it cannot change (declare a new dataset instead)"))
    for column, type_ in new.columns.items():
        if column in old.columns and old.columns[column] != type_:
            conflicts.append(Fault(f"$.columns.{column}",
                                   f"{column!r} is {old.columns[column]}; changing its type to {type_} "
                                   f"is refused (add a new column and copy the data instead)"))
    dropped = [c for c in old.columns if c not in new.columns]
    table = dataset_table(old)
    for column in dropped:
        if column == old.primary_key:
            continue  # already a conflict above
        has_data = await conn.scalar(sa.select(sa.exists().where(table.c[column].is_not(None))))
        if has_data:
            conflicts.append(Fault(f"$.columns.{column}", f"column {column!r} holds data; dropping it is "
                                                          f"refused (set it to null everywhere first)"))
    if conflicts:
        raise DatasetConflict(conflicts)
    added = {c: t for c, t in new.columns.items() if c not in old.columns}
    await conn.run_sync(lambda sync: _alter(sync, new, added, dropped))
    return Declared(new, created=False, added_columns=list(added), dropped_columns=dropped)


def _alter(sync_conn: sa.Connection, new: DatasetSchema, added: dict[str, str], dropped: list[str]) -> None:
    operations = Operations(MigrationContext.configure(sync_conn))
    for column, type_ in added.items():
        operations.add_column(new.table_name, sa.Column(column, SQL_TYPES[type_], nullable=True))
    for column in dropped:
        operations.drop_column(new.table_name, column)
    for index in dataset_table(new).indexes:  # links may be new on old columns
        index.create(sync_conn, checkfirst=True)


async def count_rows(conn: AsyncConnection, schema: DatasetSchema) -> int:
    return await conn.scalar(sa.select(sa.func.count()).select_from(table_of(schema)))
