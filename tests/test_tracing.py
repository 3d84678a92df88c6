"""OpenTelemetry: a journey's start, workflow run and activities become spans."""

import uuid

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.journey_entry import LiveJourneys, enter
from models.tracing import tracing_interceptors
from tests.test_journey_features import publish, simple
from worker import running_workers


async def test_journey_spans_are_exported(api, time_skipping_env, engine, settings):
    exporter = InMemorySpanExporter()
    client = await Client.connect(
        time_skipping_env.client.service_client.config.target_host, data_converter=pydantic_data_converter,
        interceptors=tracing_interceptors(settings, "sojourn-test", exporter=exporter))
    key = f"traced-{uuid.uuid4().hex[:6]}"
    await publish(api, simple(key, {"hello": {"type": "message", "channel": "email", "template": "thanks",
                                              "next": "end"}, "end": {"type": "end"}}, "hello"))
    traced_settings = settings.model_copy(update={"task_queue": f"traced-{uuid.uuid4().hex[:6]}"})
    async with running_workers(client, engine, traced_settings), engine.connect() as conn:
        journey = (await LiveJourneys().all(conn, key=key))[0]
        await enter(client, traced_settings.task_queue, journey, "tracy", None)
        await client.get_workflow_handle(f"journey:{key}:tracy").result()
    trace.get_tracer_provider().force_flush()
    names = {span.name for span in exporter.get_finished_spans()}
    assert {"StartWorkflow:journey", "RunWorkflow:journey", "RunActivity:send_message"} <= names
