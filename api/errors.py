"""One error shape for every 422: FastAPI's `detail` list, each item with a JSON `path`."""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from models.faults import DefinitionError


def json_path(loc: tuple | list) -> str:
    path = "$"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


async def request_validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
    detail = []
    for item in error.errors():
        loc = list(item["loc"])
        body_loc = loc[1:] if loc and loc[0] == "body" else loc
        detail.append({"loc": loc, "path": json_path(body_loc),
                       "msg": item["msg"].removeprefix("Value error, "), "type": item["type"]})
    return JSONResponse({"detail": detail}, status_code=422)


async def definition_error(_: Request, error: DefinitionError) -> JSONResponse:
    return JSONResponse({"detail": [fault.as_error() for fault in error.faults]}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, request_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(DefinitionError, definition_error)  # type: ignore[arg-type]
