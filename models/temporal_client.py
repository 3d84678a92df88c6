"""Temporal client construction: pydantic data converter everywhere (DESIGN.md)."""

import asyncio
import logging

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from models.settings import Settings
from models.tracing import tracing_interceptors

log = logging.getLogger("sojourn.temporal")


async def connect_temporal(settings: Settings, wait: bool = False, service: str = "sojourn") -> Client:
    """Connect to Temporal (with tracing interceptors if enabled); with `wait`, retry until the
    server answers."""
    interceptors = tracing_interceptors(settings, service)
    while True:
        try:
            return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                        data_converter=pydantic_data_converter, interceptors=interceptors)
        except RuntimeError as error:
            if not wait:
                raise
            log.warning("Temporal at %s not reachable (%s); retrying", settings.temporal_address, error)
            await asyncio.sleep(1)
