"""The worker process: the Temporal worker (journey workflows and their activities) plus the
event dispatcher that feeds it from the Postgres inbox."""

import asyncio
import logging
import signal

from temporalio.client import Client
from temporalio.worker import Worker

from activities.audience_entry import AudienceEntryActivities
from activities.delivery import DeliveryActivities
from activities.event_dispatcher import EventDispatcher
from activities.journey_actions import JourneyActionActivities
from activities.journey_data import JourneyDataActivities
from activities.providers import providers_from
from models.database import make_engine
from models.settings import Settings, get_settings
from models.temporal_client import connect_temporal
from workflows.audience_entry import AudienceEntryWorkflow
from workflows.journey import JourneyWorkflow

log = logging.getLogger("sojourn.worker")
WORKFLOWS = [JourneyWorkflow, AudienceEntryWorkflow]


def activities_for(engine, client: Client, settings: Settings) -> list:
    data = JourneyDataActivities(engine)
    actions = JourneyActionActivities(engine, client, settings)
    audience = AudienceEntryActivities(engine, client, settings)
    delivery = DeliveryActivities(engine, providers_from(settings), settings)
    return [data.load_instance_context, data.finish_instance, data.load_profile,
            actions.update_profile, actions.call_webhook, actions.jump, delivery.send_message,
            audience.materialize_journey_audience, audience.enter_audience, audience.drop_audience_table]


def build_worker(client: Client, engine, settings: Settings, task_queue: str | None = None) -> Worker:
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        activities=activities_for(engine, client, settings),
        max_concurrent_activities=200,
        max_concurrent_workflow_tasks=200,
    )


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    engine = make_engine(settings, pool_size=20)
    client = await connect_temporal(settings, wait=True, service="sojourn-worker")
    worker = build_worker(client, engine, settings)
    dispatcher = EventDispatcher(engine, client, settings)
    log.info("worker polling %s on %s", settings.task_queue, settings.temporal_address)
    async with worker:
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
