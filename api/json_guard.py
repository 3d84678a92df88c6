"""Reject JSON that PostgreSQL cannot store (NUL characters, lone UTF-16 surrogates such as
"\ud800", NaN/Infinity) with a 422 that names the JSON path, instead of a 500 from the driver.

The raw body is scanned first (cheap); only a suspicious body is parsed again to find the path.
"""

import json
from typing import Any

from fastapi import HTTPException, Request

from api.errors import json_path

SUSPICIOUS = (b"\\u0000", b"NaN", b"Infinity", b"\\ud", b"\\uD")  # \ud800-\udfff: surrogates


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
    # A key at fault is named in the answer: escape what JSON output could not encode.
    faults = [[_printable(part) for part in loc] for loc in _nul_paths(document, [])]
    if faults:
        raise HTTPException(422, [{"loc": ["body", *loc], "path": json_path(loc), "type": "value_error",
                                   "msg": "NUL characters (\\u0000) and lone surrogates are not allowed"}
                                  for loc in faults])


def _printable(part: Any) -> Any:
    return part.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(part, str) else part


def _unstorable(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")  # a lone surrogate (a pair decodes to one character) cannot be
    except UnicodeEncodeError:
        return True
    return False


def _nul_paths(value: Any, loc: list) -> Any:
    if isinstance(value, str):
        if _unstorable(value):
            yield loc
    elif isinstance(value, dict):
        for key, item in value.items():
            if _unstorable(key):
                yield [*loc, key]
            yield from _nul_paths(item, [*loc, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, [*loc, index])
