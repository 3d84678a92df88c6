from activities.providers.base import OutgoingMessage, Provider, ProviderError
from activities.providers.http_json import HttpJsonProvider
from activities.providers.inapp import InAppProvider
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
            timeout=settings.smtp_timeout_seconds, use_tls=settings.smtp_tls,
            max_connections=settings.smtp_max_connections, unsubscribe_mailto=settings.unsubscribe_mailto,
        )
    raise ValueError(f"SOJOURN_EMAIL_PROVIDER must be 'sink' or 'smtp', got {settings.email_provider!r}")


def providers_from(settings: Settings) -> dict[str, Provider]:
    """One provider per channel, as configured (see Settings.channel_providers)."""
    providers: dict[str, Provider] = {"email": email_provider_from(settings)}
    for channel, kind in settings.channel_providers.items():
        if kind == "sink":
            providers[channel] = SinkProvider()
        elif kind == "inapp":
            providers[channel] = InAppProvider()
        elif kind == "http":
            config = settings.http_providers.get(channel)
            if config is None:
                raise ValueError(f"channel {channel!r} uses the http provider but SOJOURN_HTTP_PROVIDERS "
                                 f"has no entry for it")
            providers[channel] = HttpJsonProvider(f"http-{channel}", config)
        else:
            raise ValueError(f"unknown provider {kind!r} for channel {channel!r} (sink, inapp or http)")
    return providers


__all__ = ["HttpJsonProvider", "InAppProvider", "OutgoingMessage", "Provider", "ProviderError", "SinkProvider",
           "SmtpProvider", "email_provider_from", "providers_from"]
