"""All runtime configuration in one place: env prefix SOJOURN_, plus DATABASE_URL."""

from functools import lru_cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOJOURN_", extra="ignore")

    # DATABASE_URL is the conventional name; SOJOURN_DATABASE_URL works too.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "SOJOURN_DATABASE_URL")
    )
    data_dir: str = ".sojourn"

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "sojourn"

    api_key: str | None = None

    # Delivery: "sink" records the message as delivered; "smtp" sends it.
    email_provider: str = "sink"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_start_tls: bool = False
    smtp_from: str = "Sojourn <no-reply@sojourn.local>"

    # Event dispatcher tuning.
    dispatch_batch_size: int = 1000
    dispatch_concurrency: int = 100
    dispatch_idle_sleep_seconds: float = 0.05

    otel_exporter: str = "none"  # "none" or "console"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def sqlalchemy_url(url: str) -> str:
    """Normalise postgres:// and postgresql:// URLs to the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got {url.split(':')[0]}://…")
