"""Batch delivery: every profile of a work table receives one message, exactly once.

Never a workflow per recipient. The work table is cut by key into ranges:
- up to `batch_partition_size` recipients (200,000 by default), this workflow delivers the
  ranges itself as *slices*: one heartbeating activity per `batch_slice_size` recipients
  (5,000, or one second of the channel's rate), a few in flight, on the rate-limited
  `deliver-<channel>-batch` task queue;
- above that, it starts one child workflow per partition (the same workflow, flagged
  `partition`), at most MAX_CHILDREN_IN_FLIGHT at a time.
Why 200,000: a partition is 40 slices, so a child's history stays around 300 events (the
warning threshold is 10,240) whatever the batch size, and the parent only records one child
per 200,000 recipients (100M recipients = 500 children, ~4,000 events, well under the 2,000
pending-children limit thanks to the in-flight cap). A partition is also the unit of
parallelism across workers and of fault isolation: a failing partition retries alone.

Quiet hours in `queue` mode leave `deferred` ledger rows; after the slices, the top-level
workflow sleeps (durable timer) until the earliest `retry_at` and re-delivers the due ones,
until none is left.
"""

import asyncio
from collections.abc import Awaitable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.batch_delivery import BatchDeliveryActivities
    from models import search_attributes as attributes
    from models.batch_delivery import (
        BatchDeliveryRequest,
        BatchPlan,
        BatchProgress,
        DeferredRequest,
        SliceRequest,
        SliceResult,
    )

MAX_CHILDREN_IN_FLIGHT = 8
PLAN_TIMEOUT = timedelta(minutes=30)  # one ordered pass over the work table's primary key
SLICE_TIMEOUT = timedelta(hours=2)  # real providers at a low rate; heartbeats catch crashes sooner
# Unlimited attempts: a slice resumes from its cursor, so retrying is cheap and safe. Provider
# failures stop on their own: from attempt SEND_MAX_ATTEMPTS the slice records them `failed`.
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=2),
                    maximum_attempts=0)


@workflow.defn(name="batch_delivery")
class BatchDeliveryWorkflow:
    def __init__(self) -> None:
        self._progress = BatchProgress()

    @workflow.run
    async def run(self, request: BatchDeliveryRequest) -> BatchProgress:
        workflow.upsert_search_attributes([attributes.SOJOURN_KIND.value_set("batch_delivery")])
        plan = await workflow.execute_activity_method(
            BatchDeliveryActivities.plan_batch, request, start_to_close_timeout=PLAN_TIMEOUT, retry_policy=RETRY)
        self._progress.total = plan.total
        ranges = list(zip([request.after, *plan.bounds[:-1]], plan.bounds)) if plan.total else []
        if plan.partitioned:
            self._progress.partitions_total = len(ranges)
            await _bounded([self._partition(request, i, after, upto) for i, (after, upto) in enumerate(ranges)],
                           MAX_CHILDREN_IN_FLIGHT)
        else:
            await _bounded([self._slice(request, plan, after, upto) for after, upto in ranges], plan.parallel)
        if not request.partition:
            await self._deferred(request, plan)
        return self._progress

    @workflow.query
    def progress(self) -> BatchProgress:
        return self._progress

    async def _slice(self, request: BatchDeliveryRequest, plan: BatchPlan, after: str | None,
                     upto: str | None) -> None:
        result = await workflow.execute_activity_method(
            BatchDeliveryActivities.deliver_slice,
            SliceRequest(batch=request, after=after, upto=upto, chunk_size=plan.chunk_size),
            task_queue=plan.task_queue, start_to_close_timeout=SLICE_TIMEOUT,
            heartbeat_timeout=timedelta(seconds=plan.heartbeat_timeout_seconds), retry_policy=RETRY)
        self._add(result.recipients, result.statuses)

    async def _partition(self, request: BatchDeliveryRequest, index: int, after: str | None,
                         upto: str | None) -> None:
        part = request.model_copy(update={"after": after, "upto": upto, "partition": True})
        result: BatchProgress = await workflow.execute_child_workflow(
            BatchDeliveryWorkflow.run, part, id=f"{workflow.info().workflow_id}:part-{index}")
        self._progress.partitions_done += 1
        self._add(result.done, result.statuses)

    async def _deferred(self, request: BatchDeliveryRequest, plan: BatchPlan) -> None:
        while True:
            summary = await workflow.execute_activity_method(
                BatchDeliveryActivities.deferred_summary, request,
                start_to_close_timeout=timedelta(minutes=5), retry_policy=RETRY)
            self._progress.deferred_waiting = summary.count
            if summary.count == 0 or summary.next_retry_at is None:
                return
            wait = summary.next_retry_at - workflow.now()
            if wait > timedelta(0):
                await workflow.sleep(wait)
            result: SliceResult = await workflow.execute_activity_method(
                BatchDeliveryActivities.deliver_deferred,
                DeferredRequest(batch=request, chunk_size=plan.chunk_size, now=workflow.now()),
                task_queue=plan.task_queue, start_to_close_timeout=SLICE_TIMEOUT,
                heartbeat_timeout=timedelta(seconds=plan.heartbeat_timeout_seconds), retry_policy=RETRY)
            # Those rows were counted `deferred` by their slice; count their new status instead.
            statuses = self._progress.statuses
            statuses["deferred"] = statuses.get("deferred", 0) - result.recipients
            self._add(0, result.statuses)

    def _add(self, recipients: int, statuses: dict[str, int]) -> None:
        self._progress.done += recipients
        for status, count in statuses.items():
            self._progress.statuses[status] = self._progress.statuses.get(status, 0) + count
        self._progress.statuses = {s: c for s, c in self._progress.statuses.items() if c}


async def _bounded(jobs: list[Awaitable[None]], limit: int) -> None:
    """Run the jobs with at most `limit` in flight (deterministic: the workflow event loop)."""
    gate = asyncio.Semaphore(limit)

    async def run(job: Awaitable[None]) -> None:
        async with gate:
            await job

    await asyncio.gather(*(run(job) for job in jobs))
