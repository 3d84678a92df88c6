"""The in-app channel: the ledger row is the message in the profile's inbox
(`GET /v1/profiles/{id}/inbox`), so recording it delivers it."""

from activities.providers.base import OutgoingMessage


class InAppProvider:
    name = "inapp"
    delivers_by_recording = True

    async def send(self, message: OutgoingMessage) -> str | None:
        return None  # never called: the inbox reads the ledger
