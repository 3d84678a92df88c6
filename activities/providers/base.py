"""The interface every channel provider implements."""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    idempotency_key: str
    channel: str
    to: str
    subject: str
    body: str


class ProviderError(Exception):
    """A delivery attempt failed; `permanent` failures are not retried."""

    def __init__(self, reason: str, permanent: bool = False):
        super().__init__(reason)
        self.reason, self.permanent = reason, permanent


class Provider(Protocol):
    name: str
    # True when writing the ledger row *is* the delivery (the sink): no provider call needed.
    delivers_by_recording: bool

    async def send(self, message: OutgoingMessage) -> str:
        """Deliver the message; return the provider's message id or raise ProviderError."""
        ...
