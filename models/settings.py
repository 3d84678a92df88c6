"""All runtime configuration in one place: env prefix SOJOURN_, plus DATABASE_URL."""

from functools import lru_cache

from pydantic import AliasChoices, BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class HttpProviderSettings(BaseModel):
    """A generic JSON-over-HTTP provider (SMS gateways, push services, webhooks).

    `body` is a Liquid template of the JSON document posted to `url`; it sees `to`, `subject`,
    `body`, `idempotency_key`, `channel` and `profile`. Values are JSON-escaped by the
    `json` filter: `{"to": {{ to | json }}, "text": {{ body | json }}}`.
    """

    url: str
    body: str = '{"to": {{ to | json }}, "subject": {{ subject | json }}, "body": {{ body | json }}, "idempotency_key": {{ idempotency_key | json }}}'
    headers: dict[str, str] = {}  # e.g. {"Authorization": "Bearer ..."}
    timeout_seconds: float = 10
    # Where the provider's message id is in the JSON reply (dot path); absent: none stored.
    message_id_path: str | None = None


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
    smtp_tls: bool = False  # implicit TLS (usually port 465); smtp_start_tls upgrades port 587
    smtp_timeout_seconds: float = 30
    smtp_max_connections: int = 4  # connections kept open and reused by one worker process

    # Providers of the other channels: "sink" | "http" (settings in http_providers) | "inapp".
    channel_providers: dict[str, str] = {"sms": "sink", "push": "sink", "webhook": "sink", "inapp": "inapp"}
    http_providers: dict[str, HttpProviderSettings] = {}

    # Policies. Quiet hours use the profile's time zone, else this one.
    default_timezone: str = "UTC"
    # Unsubscribe links: signed with this secret (set it in production: links forged with the
    # default would be accepted) and served by the API at public_base_url.
    unsubscribe_secret: str = "sojourn-dev-unsubscribe-secret"
    public_base_url: str = "http://localhost:8000"
    unsubscribe_mailto: str | None = None  # optional mailto: for List-Unsubscribe

    # Messages per second per channel (e.g. {"email": 100}); enforced by Temporal's task-queue
    # rate limit on deliver-<channel> queues, so it holds across any number of workers.
    channel_rate_limits: dict[str, float] = {}
    # Batch engine: recipients per activity (a slice), per transaction (a chunk), per child
    # workflow (a partition); slices run in parallel up to batch_parallel_slices.
    batch_slice_size: int = 5000
    batch_chunk_size: int = 1000
    batch_partition_size: int = 200_000
    batch_parallel_slices: int = 2
    batch_heartbeat_timeout_seconds: float = 30

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
