"""The interface every channel provider implements."""

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    idempotency_key: str
    channel: str
    to: str
    subject: str
    body: str  # plain text (email text part; the SMS text; the push body)
    html: str | None = None
    from_address: str | None = None  # None: the provider's default sender
    reply_to: str | None = None
    unsubscribe_url: str | None = None  # email: List-Unsubscribe (+ RFC 8058 one-click)
    profile: dict[str, Any] = field(default_factory=dict)  # for HTTP body mappings


class ProviderError(Exception):
    """A delivery attempt failed; `permanent` failures are not retried."""

    def __init__(self, reason: str, permanent: bool = False):
        super().__init__(reason)
        self.reason, self.permanent = reason, permanent


class Provider(Protocol):
    name: str
    # True when writing the ledger row *is* the delivery (sink, in-app inbox): no call needed.
    delivers_by_recording: bool

    async def send(self, message: OutgoingMessage) -> str | None:
        """Deliver the message; return the provider's message id (if it has one) or raise
        ProviderError."""
        ...
