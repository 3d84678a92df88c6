"""Bulk rows of a dataset: upsert from JSON lines or CSV, delete by key. All or nothing.

The body is checked completely (off the event loop: it is CPU work) before a transaction
starts; any bad row rejects the batch with every error (line, column, reason), up to 100.
"""

from typing import Any

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from activities.bulk_load import delete_rows, upsert_rows
from activities.dataset_registry import load_registry, lock_dataset
from api.deps import Engine
from api.profile_store import upsert_profiles
from api.routes.datasets import DatasetName
from models.dataset_rows import CONVERTERS, check_rows
from models.dataset_schema import DatasetSchema
from models.profile_rows import PROFILE_COLUMNS, check_profiles
from models.row_formats import CONTENT_TYPES, CSV, RowError, media_type, read_records

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
MAX_BODY_BYTES = 64 * 1024 * 1024  # the CLI sends chunks far below this


class DeleteKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: list[Any] = Field(min_length=1, max_length=10_000)


def _row_errors(errors: list[RowError], truncated: bool) -> JSONResponse:
    return JSONResponse({"detail": [e.as_error() for e in errors], "truncated": truncated}, status_code=422)


async def _schema(conn: AsyncConnection, name: str) -> DatasetSchema:
    schema = (await load_registry(conn)).get(name)
    if schema is None:
        raise HTTPException(404, f"dataset {name!r} not found")
    return schema


@router.post("/{name}/rows", openapi_extra={"requestBody": {"content": {
    "application/x-ndjson": {"schema": {"type": "string"}}, "text/csv": {"schema": {"type": "string"}}}}})
async def load_rows(request: Request, engine: Engine, name: str = DatasetName):
    """Upsert rows by primary key. JSON lines: one object per line. CSV: a header line naming
    the columns, an empty field is null.

    The batch writes the columns it mentions (CSV header; for JSON lines, every key of any
    line, a line omitting one writes null to it); other columns keep their stored values.
    A key given twice in a batch: the last line wins."""
    kind = media_type(request.headers.get("content-type"))
    if kind is None:
        raise HTTPException(415, f"send rows as one of {', '.join(CONTENT_TYPES)}")
    if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
        raise HTTPException(413, f"at most {MAX_BODY_BYTES} bytes per request; send chunks (sojourn load does)")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(413, f"at most {MAX_BODY_BYTES} bytes per request; send chunks (sojourn load does)")
    async with engine.connect() as conn:
        schema = await _schema(conn, name)
    if name == "profiles":
        return await _load_profiles(engine, body, kind)

    checked = await run_in_threadpool(
        lambda: check_rows(schema, read_records(body, kind, set(schema.columns)), textual=kind == CSV))
    if checked.errors:
        return _row_errors(checked.errors, checked.truncated)
    async with engine.begin() as conn:
        await lock_dataset(conn, name, shared=True)
        current = await _schema(conn, name)
        if any(current.columns.get(c) != schema.columns[c] for c in checked.columns):
            raise HTTPException(409, f"dataset {name!r} changed during the load; send the batch again")
        upserted = await upsert_rows(conn, current, checked)
    return {"upserted": upserted}


async def _load_profiles(engine: Engine, body: bytes, kind: str):
    checked = await run_in_threadpool(
        lambda: check_profiles(read_records(body, kind, PROFILE_COLUMNS), textual=kind == CSV))
    if checked.errors:
        return _row_errors(checked.errors, checked.truncated)
    if not checked.profiles:
        return {"upserted": 0}
    async with engine.begin() as conn:
        upserted = await upsert_profiles(conn, checked.profiles)
    return {"upserted": upserted}


@router.delete("/{name}/rows")
async def delete_dataset_rows(engine: Engine, body: DeleteKeys, name: str = DatasetName) -> dict:
    if name == "profiles":
        raise HTTPException(409, "profiles are not deleted through the datasets API")
    async with engine.begin() as conn:
        await lock_dataset(conn, name, shared=True)
        schema = await _schema(conn, name)
        convert = CONVERTERS[schema.columns[schema.primary_key]]
        keys, errors = [], []
        for index, key in enumerate(body.keys):
            try:
                keys.append(convert(key, False))
            except ValueError as error:
                errors.append({"loc": ["body", "keys", index], "path": f"$.keys[{index}]",
                               "msg": str(error), "type": "value_error"})
        if errors:
            return JSONResponse({"detail": errors}, status_code=422)
        return {"deleted": await delete_rows(conn, schema, keys)}
