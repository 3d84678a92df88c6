"""Development/benchmark provider: the `messages` row is the delivery."""

from activities.providers.base import OutgoingMessage


class SinkProvider:
    name = "sink"
    delivers_by_recording = True

    async def send(self, message: OutgoingMessage) -> str | None:
        return None  # never called: recording the ledger row is the whole delivery
