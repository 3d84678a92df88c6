"""Reject JSON that PostgreSQL cannot store (NUL characters, NaN/Infinity) with a 422 that
names the JSON path, instead of letting the insert fail with a 500.

The raw body is scanned first (cheap); only a suspicious body is parsed again to find the path.
"""

import json
from typing import Any

from fastapi import HTTPException, Request

from api.errors import json_path

SUSPICIOUS = (b"\\u0000", b"NaN", b"Infinity")


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonFinite(name)


async def reject_unstorable_json(request: Request) -> None:
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    body = await request.body()
    if not any(marker in body for marker in SUSPICIOUS):
        return
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except _NonFinite as error:
        raise HTTPException(422, [{"loc": ["body"], "path": "$", "type": "value_error",
                                   "msg": f"{error} is not valid JSON; numbers must be finite"}]) from None
    except ValueError:
        return  # malformed JSON: FastAPI reports it
    faults = list(_nul_paths(document, []))
    if faults:
        raise HTTPException(422, [{"loc": ["body", *loc], "path": json_path(loc), "type": "value_error",
                                   "msg": "NUL characters (\\u0000) are not allowed"} for loc in faults])


def _nul_paths(value: Any, loc: list) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            yield loc
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                yield [*loc, key]
            yield from _nul_paths(item, [*loc, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, [*loc, index])
