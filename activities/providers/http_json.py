"""A generic JSON-over-HTTP provider: SMS gateways, push services, outgoing webhooks.

The request body is a Liquid mapping from settings (HttpProviderSettings.body) rendered with
`to`, `subject`, `body`, `idempotency_key`, `channel` and `profile`; its `json` filter
JSON-encodes a value, so any text lands in the document safely. The idempotency key also goes
in an `Idempotency-Key` header, which many providers honour to drop a resend.
"""

import json
from functools import lru_cache
from typing import Any

import httpx
from liquid import Environment

from activities.providers.base import OutgoingMessage, ProviderError
from models.settings import HttpProviderSettings

_mappings = Environment()
_mappings.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False, default=str)


@lru_cache(maxsize=64)
def _mapping(source: str):
    return _mappings.from_string(source)


class HttpJsonProvider:
    delivers_by_recording = False

    def __init__(self, name: str, config: HttpProviderSettings, client: httpx.AsyncClient | None = None):
        self.name, self.config = name, config
        self._client = client or httpx.AsyncClient(timeout=config.timeout_seconds)

    async def send(self, message: OutgoingMessage) -> str | None:
        payload = _mapping(self.config.body).render(
            to=message.to, subject=message.subject, body=message.body, html=message.html,
            idempotency_key=message.idempotency_key, channel=message.channel, profile=message.profile)
        try:
            json.loads(payload)
        except ValueError as error:
            raise ProviderError(f"{self.name}: body mapping is not JSON ({error})", permanent=True) from None
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.idempotency_key,
                   **self.config.headers}
        try:
            response = await self._client.post(self.config.url, content=payload.encode(), headers=headers,
                                               timeout=self.config.timeout_seconds)
        except httpx.HTTPError as error:
            raise ProviderError(f"{self.name}: {type(error).__name__}: {error}") from error
        if response.status_code == 429 or response.status_code >= 500:
            raise ProviderError(f"{self.name}: HTTP {response.status_code}: {response.text[:200]}")
        if response.status_code >= 400:  # the request itself is wrong: retrying will not help
            raise ProviderError(f"{self.name}: HTTP {response.status_code}: {response.text[:200]}", permanent=True)
        return _message_id(response, self.config.message_id_path)


def _message_id(response: httpx.Response, path: str | None) -> str | None:
    if not path:
        return None
    try:
        value: Any = response.json()
        for segment in path.split("."):
            value = value[segment]
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    return None if value is None else str(value)
