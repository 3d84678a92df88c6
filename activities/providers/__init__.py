from activities.providers.base import OutgoingMessage, Provider, ProviderError
from activities.providers.sink import SinkProvider
from activities.providers.smtp import SmtpProvider
from models.settings import Settings


def email_provider_from(settings: Settings) -> Provider:
    if settings.email_provider == "sink":
        return SinkProvider()
    if settings.email_provider == "smtp":
        return SmtpProvider(
            settings.smtp_host, settings.smtp_port, settings.smtp_from,
            settings.smtp_username, settings.smtp_password, settings.smtp_start_tls,
        )
    raise ValueError(f"SOJOURN_EMAIL_PROVIDER must be 'sink' or 'smtp', got {settings.email_provider!r}")


__all__ = ["OutgoingMessage", "Provider", "ProviderError", "SinkProvider", "SmtpProvider",
           "email_provider_from"]
