"""Email over SMTP (aiosmtplib)."""

import hashlib
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from activities.providers.base import OutgoingMessage, ProviderError


class SmtpProvider:
    name = "smtp"
    delivers_by_recording = False

    def __init__(self, host: str, port: int, sender: str, username: str | None = None,
                 password: str | None = None, start_tls: bool = False, timeout: float = 30):
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password, self.start_tls, self.timeout = username, password, start_tls, timeout

    async def send(self, message: OutgoingMessage) -> str:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.to
        email["Subject"] = message.subject
        email["Date"] = formatdate(localtime=False)
        # A Message-ID derived from the idempotency key lets receivers drop a resend that
        # follows a crash between the SMTP transaction and the ledger update.
        digest = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32]
        message_id = f"<{digest}@sojourn>"
        email["Message-ID"] = message_id
        email.set_content(message.body)
        try:
            await aiosmtplib.send(
                email, hostname=self.host, port=self.port, username=self.username,
                password=self.password, start_tls=self.start_tls, timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            raise ProviderError(f"recipient refused: {error}", permanent=True) from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise ProviderError(f"smtp error: {error}") from error
        return message_id
