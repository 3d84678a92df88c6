"""The worker process: the Temporal worker (journey workflows and their activities) plus the
event dispatcher that feeds it from the Postgres inbox."""

import asyncio
import logging
import signal
from contextlib import AsyncExitStack, asynccontextmanager

from temporalio.client import Client
from temporalio.worker import Worker

from activities.audience_entry import AudienceEntryActivities
from activities.batch_delivery import BatchDeliveryActivities
from activities.delivery import DeliveryActivities
from activities.event_dispatcher import EventDispatcher
from activities.journey_actions import JourneyActionActivities
from activities.journey_data import JourneyDataActivities
from activities.providers import providers_from
from models.database import make_engine
from models.delivery_queues import batch_slice_rate, batch_task_queue, delivery_task_queue, single_send_rate
from models.settings import Settings, get_settings
from models.temporal_client import connect_temporal
from workflows.audience_entry import AudienceEntryWorkflow
from workflows.batch_delivery import BatchDeliveryWorkflow
from workflows.journey import JourneyWorkflow

log = logging.getLogger("sojourn.worker")
WORKFLOWS = [JourneyWorkflow, AudienceEntryWorkflow, BatchDeliveryWorkflow]


def activities_for(engine, client: Client, settings: Settings) -> list:
    data = JourneyDataActivities(engine)
    actions = JourneyActionActivities(engine, client, settings)
    audience = AudienceEntryActivities(engine, client, settings)
    delivery = DeliveryActivities(engine, providers_from(settings), settings)
    batch = BatchDeliveryActivities(engine, {}, settings)  # planning only: no provider calls
    return [data.load_instance_context, data.finish_instance, data.load_profile,
            actions.update_profile, actions.call_webhook, actions.jump, delivery.send_message,
            audience.materialize_journey_audience, audience.enter_audience, audience.drop_audience_table,
            batch.plan_batch, batch.deferred_summary]


def build_worker(client: Client, engine, settings: Settings, task_queue: str | None = None) -> Worker:
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        activities=activities_for(engine, client, settings),
        max_concurrent_activities=200,
        max_concurrent_workflow_tasks=200,
    )


def delivery_workers(client: Client, engine, settings: Settings) -> list[Worker]:
    """Per channel: deliver-<channel> (single sends) and deliver-<channel>-batch (batch slices),
    each with the channel's task-queue rate limit (models/delivery_queues.py). Every worker
    process sets the same values, as Temporal requires for a shared queue."""
    providers = providers_from(settings)
    delivery = DeliveryActivities(engine, providers, settings)
    batch = BatchDeliveryActivities(engine, providers, settings)
    workers = []
    for channel in providers:
        workers.append(Worker(
            client, task_queue=delivery_task_queue(channel), activities=[delivery.send_message],
            max_task_queue_activities_per_second=single_send_rate(settings, channel),
            max_concurrent_activities=100))
        workers.append(Worker(
            client, task_queue=batch_task_queue(channel),
            activities=[batch.deliver_slice, batch.deliver_deferred],
            max_task_queue_activities_per_second=batch_slice_rate(settings, channel),
            # Slices are CPU-bound (rendering, COPY): more per process than cores only queues.
            max_concurrent_activities=settings.batch_parallel_slices))
    return workers


@asynccontextmanager
async def running_workers(client: Client, engine, settings: Settings):
    """The main worker plus the per-channel delivery workers, running until the block exits."""
    async with AsyncExitStack() as running:
        for each in (build_worker(client, engine, settings), *delivery_workers(client, engine, settings)):
            await running.enter_async_context(each)
        yield


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    engine = make_engine(settings, pool_size=20)
    client = await connect_temporal(settings, wait=True, service="sojourn-worker")
    dispatcher = EventDispatcher(engine, client, settings)
    log.info("worker polling %s on %s", settings.task_queue, settings.temporal_address)
    async with running_workers(client, engine, settings):
        dispatch_task = asyncio.create_task(dispatcher.run(stop))
        await stop.wait()
        await dispatch_task
    await engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = get_settings()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop)

    asyncio.run(run())


if __name__ == "__main__":
    main()
