"""The SQLAlchemy Table of a user dataset (`ds_<name>`): the one place its DDL is described.

Identifiers reach SQL only through these Table objects, so SQLAlchemy quotes every one.
"""

import hashlib

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from models.dataset_schema import DatasetSchema

SQL_TYPES: dict[str, sa.types.TypeEngine] = {
    "text": sa.Text(),
    "integer": sa.BigInteger(),  # 64-bit: ids and counts from other systems overflow int4
    "numeric": sa.Numeric(),
    "boolean": sa.Boolean(),
    "date": sa.Date(),
    "timestamptz": sa.DateTime(timezone=True),
    "jsonb": JSONB(),
}
MAX_IDENTIFIER = 63  # PostgreSQL truncates longer names silently


def link_index_name(table_name: str, column: str) -> str:
    """Deterministic (so re-declaring finds it) and never truncated by PostgreSQL."""
    name = f"{table_name}_{column}_idx"
    if len(name) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha1(f"{table_name}.{column}".encode()).hexdigest()[:12]
    return f"{table_name[:40]}_{digest}_idx"


def dataset_table(schema: DatasetSchema, metadata: sa.MetaData | None = None) -> sa.Table:
    metadata = metadata if metadata is not None else sa.MetaData()
    columns = [sa.Column(name, SQL_TYPES[type_], primary_key=name == schema.primary_key,
                         nullable=name != schema.primary_key)
               for name, type_ in schema.columns.items()]
    table = sa.Table(schema.table_name, metadata, *columns)
    for column in sorted({link.column for link in schema.links.values()} - {schema.primary_key}):
        sa.Index(link_index_name(schema.table_name, column), table.c[column])
    return table
