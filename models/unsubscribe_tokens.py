"""Signed unsubscribe tokens: who opts out of what, without a database lookup or login.

token = base64url(profile_id \\x1f channel \\x1f topic) "." base64url(HMAC-SHA256[:16]).
They never expire: an unsubscribe link in a years-old email must still work (and RFC 8058
one-click requests come from mail providers at any time). Forging one needs the secret.
"""

import base64
import hashlib
import hmac
from dataclasses import dataclass

from models.delivery_tables import ALL_TOPICS

_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class UnsubscribeScope:
    profile_id: str
    channel: str
    topic: str = ALL_TOPICS


class InvalidToken(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:16]


def sign(secret: str, scope: UnsubscribeScope) -> str:
    return Signer(secret).sign(scope)


class Signer:
    """Signs many tokens with one secret: the HMAC key schedule is computed once (batch sends
    sign one link per message)."""

    def __init__(self, secret: str):
        self._keyed = hmac.new(secret.encode(), digestmod=hashlib.sha256)

    def sign(self, scope: UnsubscribeScope) -> str:
        payload = _SEPARATOR.join((scope.profile_id, scope.channel, scope.topic)).encode()
        mac = self._keyed.copy()
        mac.update(payload)
        return f"{_b64(payload)}.{_b64(mac.digest()[:16])}"


def verify(secret: str, token: str) -> UnsubscribeScope:
    try:
        encoded_payload, encoded_signature = token.split(".")
        payload, signature = _unb64(encoded_payload), _unb64(encoded_signature)
        if not hmac.compare_digest(signature, _signature(secret, payload)):
            raise InvalidToken("bad signature")
        profile_id, channel, topic = payload.decode().split(_SEPARATOR)
    except InvalidToken:
        raise
    except ValueError as error:  # bad base64, wrong shape, bad UTF-8
        raise InvalidToken(str(error)) from None
    return UnsubscribeScope(profile_id, channel, topic)


def unsubscribe_url(base_url: str, secret: str, scope: UnsubscribeScope) -> str:
    return f"{base_url.rstrip('/')}/unsubscribe/{sign(secret, scope)}"
