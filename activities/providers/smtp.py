"""Email over SMTP (aiosmtplib): implicit TLS or STARTTLS, AUTH, text + HTML parts, per-template
From/Reply-To, List-Unsubscribe headers; connections are kept open and reused."""

import asyncio
import hashlib
import time
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from activities.providers.base import OutgoingMessage, ProviderError

# Servers drop idle sessions (RFC 5321 suggests 5 minutes; many use less): reconnect rather
# than discover a dead connection in the middle of a send.
MAX_IDLE_SECONDS = 30


class SmtpProvider:
    name = "smtp"
    delivers_by_recording = False

    def __init__(self, host: str, port: int, sender: str, username: str | None = None,
                 password: str | None = None, start_tls: bool = False, timeout: float = 30,
                 use_tls: bool = False, validate_certs: bool = True, cert_bundle: str | None = None,
                 max_connections: int = 4, unsubscribe_mailto: str | None = None):
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password, self.start_tls, self.timeout = username, password, start_tls, timeout
        self.use_tls, self.validate_certs, self.cert_bundle = use_tls, validate_certs, cert_bundle
        self.unsubscribe_mailto = unsubscribe_mailto
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []  # (connection, last used)
        self._slots = asyncio.Semaphore(max_connections)

    async def send(self, message: OutgoingMessage) -> str:
        email, message_id = self.compose(message)
        async with self._slots:
            client = await self._connection()
            try:
                await client.send_message(email)
            except aiosmtplib.SMTPRecipientsRefused as error:
                self._release(client)  # the session is still fine
                raise ProviderError(f"recipient refused: {error}", permanent=True) from error
            except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as error:
                client.close()
                raise ProviderError(f"smtp error: {error}") from error
            self._release(client)
        return message_id

    def compose(self, message: OutgoingMessage) -> tuple[EmailMessage, str]:
        email = EmailMessage()
        email["From"] = message.from_address or self.sender
        email["To"] = message.to
        if message.reply_to:
            email["Reply-To"] = message.reply_to
        email["Subject"] = message.subject
        email["Date"] = formatdate(localtime=False)
        # A Message-ID derived from the idempotency key lets receivers drop a resend that
        # follows a crash between the SMTP transaction and the ledger update.
        digest = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32]
        message_id = f"<{digest}@sojourn>"
        email["Message-ID"] = message_id
        if message.unsubscribe_url:
            targets = [f"<{message.unsubscribe_url}>"]
            if self.unsubscribe_mailto:
                targets.append(f"<mailto:{self.unsubscribe_mailto}>")
            email["List-Unsubscribe"] = ", ".join(targets)
            # RFC 8058: the provider may POST "List-Unsubscribe=One-Click" to the https URL.
            email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        email.set_content(message.body)
        if message.html:
            email.add_alternative(message.html, subtype="html")
        return email, message_id

    async def _connection(self) -> aiosmtplib.SMTP:
        while self._idle:
            client, last_used = self._idle.pop()
            if client.is_connected and time.monotonic() - last_used < MAX_IDLE_SECONDS:
                return client
            client.close()
        client = aiosmtplib.SMTP(
            hostname=self.host, port=self.port, username=self.username, password=self.password,
            use_tls=self.use_tls, start_tls=self.start_tls, validate_certs=self.validate_certs,
            cert_bundle=self.cert_bundle, timeout=self.timeout)
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as error:
            client.close()
            raise ProviderError(f"smtp error: {error}") from error
        return client

    def _release(self, client: aiosmtplib.SMTP) -> None:
        self._idle.append((client, time.monotonic()))
