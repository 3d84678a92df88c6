"""OpenTelemetry tracing: Temporal client and worker calls (workflow starts, signals, workflow
and activity executions) become spans, exported as settings say.

`SOJOURN_OTEL_EXPORTER=console` prints spans; `none` (default) records nothing. Any other
exporter (OTLP…) plugs in here through a span processor of the SDK.
"""

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor

from models.settings import Settings

_provider: TracerProvider | None = None


def tracing_interceptors(settings: Settings, service: str, exporter: SpanExporter | None = None) -> list[Interceptor]:
    """Interceptors for Client.connect (workers inherit them from their client)."""
    if exporter is None and settings.otel_exporter == "none":
        return []
    provider = _tracer_provider(service, exporter or ConsoleSpanExporter())
    return [TracingInterceptor(provider.get_tracer("sojourn"))]


def _tracer_provider(service: str, exporter: SpanExporter) -> TracerProvider:
    global _provider
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({"service.name": service}))
        trace.set_tracer_provider(_provider)
    _provider.add_span_processor(BatchSpanProcessor(exporter))
    return _provider
