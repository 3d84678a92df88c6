"""Datasets registry: declare relational tables (bookings, hotels, …) and read their schemas."""

from fastapi import APIRouter, HTTPException, Path

from activities.dataset_registry import DatasetConflict, count_rows, declare_dataset, load_registry
from api.deps import Engine
from models.dataset_definition import DatasetIn, dataset_out, to_schema, validate_dataset
from models.dataset_schema import NAME_PATTERN
from models.faults import DefinitionError, Fault

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
DatasetName = Path(pattern=NAME_PATTERN, description="lowercase letters, digits and _; table ds_<name>")


def conflict(faults: list[Fault]) -> HTTPException:
    """A 409 in the 422 shape: every reason with the JSON path it is about."""
    return HTTPException(409, [fault.as_error() | {"type": "conflict"} for fault in faults])


@router.put("/{name}")
async def put_dataset(engine: Engine, body: DatasetIn, name: str = DatasetName) -> dict:
    if name == "profiles":
        raise conflict([Fault("$", "profiles is built in; its schema cannot be declared "
                                   "(load profiles with POST /v1/datasets/profiles/rows)")])
    async with engine.begin() as conn:
        faults = validate_dataset(name, body, await load_registry(conn))
        if faults:
            raise DefinitionError(faults)
        try:
            declared = await declare_dataset(conn, to_schema(name, body))
        except DatasetConflict as error:
            raise conflict(error.faults) from None
    return dataset_out(declared.schema, created=declared.created,
                       added_columns=declared.added_columns, dropped_columns=declared.dropped_columns)


@router.get("")
async def list_datasets(engine: Engine) -> dict:
    async with engine.connect() as conn:
        registry = await load_registry(conn)
    return {"datasets": [dataset_out(schema) for _, schema in sorted(registry.datasets.items())]}


@router.get("/{name}")
async def get_dataset(engine: Engine, name: str = DatasetName) -> dict:
    async with engine.connect() as conn:
        schema = (await load_registry(conn)).get(name)
        if schema is None:
            raise HTTPException(404, f"dataset {name!r} not found")
        return dataset_out(schema, row_count=await count_rows(conn, schema))
