"""Pydantic payloads of the batch delivery engine (workflows/batch_delivery.py)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from models.journey_runtime import MessageSource

# The idempotency key of a batch message: one per (batch, profile), whatever retries happen.
def batch_message_key(batch_id: str, profile_id: str) -> str:
    return f"{batch_id}:{profile_id}"


class BatchDeliveryRequest(BaseModel):
    """Deliver `template` on `channel` to every profile id of a work table.

    `work_table` is a schema-qualified table with a text primary key column `key` holding
    profile ids (what activities/audiences.materialize writes for the profiles dimension).
    `batch_id` namespaces the idempotency keys: running the same batch id twice never sends
    twice. The caller owns the work table (drops it after the workflow completes).
    """

    batch_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,150}$")
    work_table: str
    channel: str
    template: str
    source: MessageSource
    kind: Literal["marketing", "transactional"] | None = None
    category: str | None = None
    topic: str | None = None
    # A key range (after, upto]: set on partitions (child workflows); None = open end.
    after: str | None = None
    upto: str | None = None
    partition: bool = False  # True on a child: deliver its range, never partition again


class BatchPlan(BaseModel):
    """How the worker settings cut a batch (the workflow never reads settings itself)."""

    total: int
    partitioned: bool
    # Upper bounds of the consecutive ranges (partitions or slices) covering (after, upto];
    # the last one is the request's `upto` (None: open).
    bounds: list[str | None]
    slice_size: int
    chunk_size: int
    parallel: int  # slices (or child workflows) in flight at once
    task_queue: str  # deliver-<channel>-batch, rate limited per channel
    heartbeat_timeout_seconds: float


class SliceRequest(BaseModel):
    batch: BatchDeliveryRequest
    after: str | None
    upto: str | None
    chunk_size: int


class SliceCursor(BaseModel):
    """Heartbeat details: the last recipient key whose chunk is committed (and, with a real
    provider, handed to it), and what the slice recorded up to there. A resumed attempt starts
    after `cursor`; the chunk it may redo reads its statuses back from the ledger, so the
    counts stay exact."""

    cursor: str | None
    recipients: int = 0
    statuses: dict[str, int] = {}


class SliceResult(BaseModel):
    recipients: int
    statuses: dict[str, int]  # final ledger statuses of the slice's messages


class DeferredSummary(BaseModel):
    count: int
    next_retry_at: datetime | None


class DeferredRequest(BaseModel):
    batch: BatchDeliveryRequest
    chunk_size: int
    # The workflow's time when its timer fired: rows due by then are re-decided as of then
    # (so a time-skipping test server and the durable timer agree with the ledger).
    now: datetime


class BatchProgress(BaseModel):
    total: int = 0
    done: int = 0  # recipients whose ledger row is written
    partitions_total: int = 0
    partitions_done: int = 0
    statuses: dict[str, int] = {}
    deferred_waiting: int = 0
