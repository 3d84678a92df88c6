"""One journey instance: a durable walk through a published journey version for one profile
(or one profile and entry key, e.g. one cart).

Deterministic: time comes from workflow.now() and timers, data from (local) activities,
conditions and split assignments are pure functions. Events arrive as the `event` signal; exit
criteria are checked on every event, wherever the instance waits. Long waits continue-as-new
when history grows, carrying the instance's state, so a 91-day journey stays bounded.
"""

import hashlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.delivery import DeliveryActivities
    from activities.journey_actions import JourneyActionActivities
    from activities.journey_data import JourneyDataActivities
    from models import search_attributes as sa
    from models.conditions import evaluate
    from models.durations import parse_duration, parse_signed_duration
    from models.journey_definition import (
        ConditionNode,
        EndNode,
        JourneyDefinition,
        JumpNode,
        MessageNode,
        SplitNode,
        UpdateProfileNode,
        WaitEventNode,
        WaitNode,
        WebhookNode,
    )
    from models.journey_runtime import (
        JOURNEY_WORKFLOW,
        SEND_MAX_ATTEMPTS,
        CarriedState,
        EventPayload,
        InstanceContextRequest,
        InstanceFinish,
        InstanceState,
        JourneyStart,
        JumpRequest,
        MessageSource,
        ProfileUpdateRequest,
        SendRequest,
        WebhookRequest,
    )
    from models.delivery_queues import delivery_task_queue
    from models.local_time import next_window_start, profile_moment, time_context, zone

LOCAL_TIMEOUT = timedelta(seconds=30)
SEND_TIMEOUT = timedelta(minutes=2)
SEND_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1),
                         maximum_attempts=SEND_MAX_ATTEMPTS)
ACTION_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1),
                           maximum_attempts=5)
SEEN_EVENTS_KEPT = 200  # duplicate deliveries of one inbox event (dispatcher retries) are ignored
PENDING_EVENTS_KEPT = 10  # events buffered for a later wait_event; more are dropped and counted
# Continue-as-new well before Temporal's 10,240-event warning, even if the server never suggests it.
HISTORY_EVENTS_LIMIT = 4_000


def split_bucket(journey_key: str, node_id: str, profile_id: str, salt: str) -> float:
    """A stable number in [0, 100) per profile and node: the same profile always lands alike."""
    digest = hashlib.sha256(f"{journey_key}:{node_id}:{profile_id}:{salt}".encode()).hexdigest()
    return int(digest[:12], 16) % 1_000_000 / 10_000


class _ContinueAsNew(Exception):
    """Raised from a wait to unwind to run(), which continues as new at the same place."""

    def __init__(self, node_id: str, wake_at: datetime | None):
        self.node_id, self.wake_at = node_id, wake_at


@workflow.defn(name=JOURNEY_WORKFLOW)
class JourneyWorkflow:
    def __init__(self) -> None:
        self.start: JourneyStart | None = None
        self.definition: JourneyDefinition | None = None
        self.profile: dict = {}
        self.state = CarriedState(node_id="", deadline=datetime.max)
        self.current_node: str | None = None
        self.status = "running"
        self.outcome: str | None = None
        self.exit_reason: str | None = None
        self.waiting_for: WaitEventNode | None = None
        self.matched_event: EventPayload | None = None
        self.early_events: list[EventPayload] = []

    # ----- entry point -----------------------------------------------------------------------

    @workflow.run
    async def run(self, start: JourneyStart) -> InstanceState:
        self.start = start
        info = workflow.info()
        first_run = start.carried is None
        context = await workflow.execute_local_activity_method(
            JourneyDataActivities.load_instance_context,
            InstanceContextRequest(
                journey_key=start.journey_key, version=start.version, profile_id=start.profile_id,
                register_entry=first_run, workflow_id=info.workflow_id, run_id=info.run_id,
                entry_key=start.entry_key),
            start_to_close_timeout=LOCAL_TIMEOUT,
        )
        self.definition, self.profile = context.definition, context.profile
        if start.carried is not None:
            self.state = start.carried
        else:
            self.state = CarriedState(
                node_id=self.definition.start, event=start.entry_event,
                deadline=workflow.now() + parse_duration(self.definition.timeout),
                seen_events=[start.entry_event.message_id] if start.entry_event else [])
        early, self.early_events = self.early_events, []
        for payload in early:  # signals that arrived with the start (incl. the entry event itself)
            self.event(payload)

        try:
            await self._walk()
        except _ContinueAsNew as resume:
            self.state.node_id, self.state.wake_at = resume.node_id, resume.wake_at
            self.state.runs += 1
            workflow.continue_as_new(start.model_copy(update={"carried": self.state}))

        await workflow.execute_local_activity_method(
            JourneyDataActivities.finish_instance,
            InstanceFinish(run_id=info.first_execution_run_id, outcome=self.outcome or "completed", exit_reason=self.exit_reason,
                           path=self.state.path),
            start_to_close_timeout=LOCAL_TIMEOUT,
        )
        return self.query_state()

    async def _walk(self) -> None:
        node_id: str | None = self.state.node_id
        resuming_wait = self.state.wake_at is not None
        while node_id is not None and self.status == "running":
            if not resuming_wait:
                self._enter(node_id)
            resuming_wait = False
            node = self.definition.nodes[node_id]
            if isinstance(node, EndNode):
                self._finish("completed")
                return
            node_id = await self._run_node(node_id, node)

    async def _run_node(self, node_id: str, node) -> str | None:
        if isinstance(node, WaitNode):
            await self._wait_until(node_id, self.state.wake_at or self._wait_target(node))
            return node.next
        if isinstance(node, WaitEventNode):
            matched = await self._wait_for_event(node_id, node)
            if matched:
                self.state.event = matched
            return node.on_event if matched else node.on_timeout
        if isinstance(node, ConditionNode):
            await self._refresh_profile()
            return self._choose_branch(node)
        if isinstance(node, SplitNode):
            return self._split(node_id, node)
        if isinstance(node, MessageNode):
            await self._send(node_id, node)
            return node.next
        if isinstance(node, UpdateProfileNode):
            self.profile = await workflow.execute_activity_method(
                JourneyActionActivities.update_profile,
                ProfileUpdateRequest(profile_id=self.start.profile_id, set=node.set,
                                     event=self.state.event, actions=self.state.actions),
                start_to_close_timeout=LOCAL_TIMEOUT, retry_policy=ACTION_RETRY)
            return node.next
        if isinstance(node, WebhookNode):
            return await self._webhook(node_id, node)
        if isinstance(node, JumpNode):
            await workflow.execute_activity_method(
                JourneyActionActivities.jump,
                JumpRequest(journey_key=node.journey, profile_id=self.start.profile_id, event=self.state.event),
                start_to_close_timeout=LOCAL_TIMEOUT, retry_policy=ACTION_RETRY)
            if node.next is None:
                self._finish("completed")
            return node.next
        raise ValueError(f"unsupported node type {type(node).__name__}")

    # ----- signals and queries ---------------------------------------------------------------

    @workflow.signal
    def event(self, payload: EventPayload) -> None:
        if self.definition is None:  # the first activation: the definition is not loaded yet
            self.early_events.append(payload)
            return
        if payload.message_id in self.state.seen_events:
            return
        self.state.seen_events = [*self.state.seen_events[-(SEEN_EVENTS_KEPT - 1):], payload.message_id]
        self._receive(payload)

    @workflow.signal
    def stop(self) -> None:
        """The journey was stopped: leave at once, wherever the instance waits."""
        if self.status == "running":
            self._finish("stopped", "journey stopped")

    @workflow.query(name="state")
    def query_state(self) -> InstanceState:
        start = self.start
        assert start is not None
        return InstanceState(
            journey_key=start.journey_key, version=start.version, profile_id=start.profile_id,
            status=self.status,  # type: ignore[arg-type]
            current_node=self.current_node, path=list(self.state.path), exit_reason=self.exit_reason,
            entry_key=start.entry_key, assignments=dict(self.state.assignments),
            dropped_events=self.state.dropped_events, runs=self.state.runs)

    def _receive(self, payload: EventPayload) -> None:
        if self.status != "running":
            return
        context = self._context(payload)
        for criterion in self.definition.exit:
            if criterion.event == payload.name and (criterion.where is None or evaluate(criterion.where, context, now=workflow.now())):
                self._finish("exited", f"event {payload.name}")
                return
        if self._matches_wait(payload):
            self.matched_event = payload
        elif payload.name in self.definition.waited_events():
            # Kept for a wait_event reached later (e.g. an order placed during a message send).
            if len(self.state.pending) < PENDING_EVENTS_KEPT:
                self.state.pending.append(payload)
            else:
                self.state.dropped_events += 1

    def _matches_wait(self, payload: EventPayload) -> bool:
        waiting = self.waiting_for
        return bool(waiting and self.matched_event is None and waiting.event == payload.name and (
            waiting.where is None or evaluate(waiting.where, self._context(payload), now=workflow.now())))

    # ----- node behaviour --------------------------------------------------------------------

    def _enter(self, node_id: str) -> None:
        self.current_node = self.state.node_id = node_id
        self.state.path.append(node_id)
        self.state.visits[node_id] = self.state.visits.get(node_id, 0) + 1
        workflow.upsert_search_attributes([
            sa.CURRENT_NODE.value_set(node_id),
            sa.VISITED_NODES.value_set(list(dict.fromkeys(self.state.path))),
        ])

    def _finish(self, outcome: str, reason: str | None = None) -> None:
        self.outcome, self.exit_reason = outcome, reason
        self.status = "completed" if outcome == "completed" else "exited"

    def _wait_target(self, node: WaitNode) -> datetime:
        now = workflow.now()
        if node.duration:
            return now + parse_duration(node.duration)
        tz = self._zone()
        if node.window:
            w = node.window
            return next_window_start(now, tz, list(w.days), w.start, w.end)
        if isinstance(node.until, datetime):
            return node.until
        # A profile date (+ offset); a missing or unreadable date does not hold the profile back.
        moment = profile_moment(self.profile.get("attributes", {}).get(node.until.attribute.split(".")[-1]), tz)
        return moment + parse_signed_duration(node.until.offset) if moment else now

    async def _wait_until(self, node_id: str, wake_at: datetime, matched=lambda: False) -> None:
        """Sleep until `wake_at` (bounded by the journey timeout) unless the instance leaves or
        `matched()` becomes true; continue-as-new if history grows meanwhile."""
        target = min(wake_at, self.state.deadline)
        remaining = target - workflow.now()
        if remaining > timedelta(0):
            try:
                await workflow.wait_condition(
                    lambda: self.status != "running" or matched() or self._history_too_long(),
                    timeout=remaining)
            except TimeoutError:
                pass
        self.state.wake_at = None
        if self.status == "running" and not matched():
            if self._history_too_long() and workflow.now() < target:
                raise _ContinueAsNew(node_id, wake_at)
            if workflow.now() >= self.state.deadline:
                self._finish("timed_out", "journey timeout")

    async def _wait_for_event(self, node_id: str, node: WaitEventNode) -> EventPayload | None:
        wake_at = self.state.wake_at or workflow.now() + parse_duration(node.timeout)
        self.waiting_for, self.matched_event = node, None
        while self.state.pending and self.matched_event is None:  # events that came early
            early = self.state.pending.pop(0)
            if self._matches_wait(early):
                self.matched_event = early
        try:
            await self._wait_until(node_id, wake_at, matched=lambda: self.matched_event is not None)
        finally:
            matched, self.waiting_for, self.matched_event = self.matched_event, None, None
        return matched if self.status == "running" else None

    def _history_too_long(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > HISTORY_EVENTS_LIMIT

    async def _refresh_profile(self) -> None:
        self.profile = await workflow.execute_local_activity_method(
            JourneyDataActivities.load_profile, self.start.profile_id, start_to_close_timeout=LOCAL_TIMEOUT)

    def _choose_branch(self, node: ConditionNode) -> str:
        context = self._context(self.state.event)
        for branch in node.branches:
            if evaluate(branch.when, context, now=workflow.now()):
                return branch.next
        return node.else_

    def _split(self, node_id: str, node: SplitNode) -> str | None:
        key, profile = self.start.journey_key, self.start.profile_id
        if split_bucket(key, node_id, profile, "holdout") < node.holdout:
            self.state.assignments[node_id] = "holdout"
            self._finish("holdout", "holdout")
            return None
        point = split_bucket(key, node_id, profile, "variant") / 100 * sum(v.weight for v in node.variants)
        for variant in node.variants:
            point -= variant.weight
            if point < 0:
                self.state.assignments[node_id] = variant.name
                return variant.next
        self.state.assignments[node_id] = node.variants[-1].name
        return node.variants[-1].next

    async def _send(self, node_id: str, node: MessageNode) -> None:
        info = workflow.info()
        event = self.state.event
        request = SendRequest(
            # Stable across retries, replays and continue-as-new; distinct across re-entries.
            idempotency_key=f"{info.workflow_id}:{info.first_execution_run_id}:{node_id}:"
                            f"{self.state.visits.get(node_id, 1)}",
            profile_id=self.start.profile_id, channel=node.channel, template=node.template,
            event_message_id=event.message_id if event else None,
            source=MessageSource(kind="journey", key=self.start.journey_key,
                                 version=self.start.version, node=node_id),
        )
        while True:
            result = await workflow.execute_activity_method(
                DeliveryActivities.send_message, request.model_copy(update={"now": workflow.now()}),
                # The channel's queue carries its rate limit, enforced by the Temporal server.
                task_queue=delivery_task_queue(node.channel),
                start_to_close_timeout=SEND_TIMEOUT, retry_policy=SEND_RETRY)
            if result.status != "deferred" or result.retry_at is None:
                return
            # Quiet hours in `queue` mode: a durable timer, then the same send again.
            try:
                await workflow.wait_condition(lambda: self.status != "running",
                                              timeout=max(result.retry_at - workflow.now(), timedelta(seconds=1)))
            except TimeoutError:
                pass
            if self.status != "running":
                return

    async def _webhook(self, node_id: str, node: WebhookNode) -> str | None:
        try:
            response = await workflow.execute_activity_method(
                JourneyActionActivities.call_webhook,
                WebhookRequest(journey_key=self.start.journey_key, node=node_id, profile_id=self.start.profile_id,
                               method=node.method, url=node.url, headers=node.headers, body=node.body,
                               timeout_seconds=parse_duration(node.timeout).total_seconds(),
                               event=self.state.event, actions=self.state.actions),
                start_to_close_timeout=parse_duration(node.timeout) + timedelta(seconds=5),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2,
                                         maximum_interval=timedelta(minutes=1), maximum_attempts=node.retries + 1),
            )
        except ActivityError as error:
            self.state.actions[node_id] = {"error": str(error.cause or error)}
            if node.on_error:
                return node.on_error
            self._finish("exited", f"webhook {node_id} failed")
            return None
        self.state.actions[node_id] = response
        return node.next

    def _zone(self):
        journey_zone = self.definition.timezone
        return zone(self.profile.get("timezone") if journey_zone == "profile" else journey_zone)

    def _context(self, event: EventPayload | None) -> dict:
        return {"profile": self.profile, "event": event.as_context() if event else {},
                "action": self.state.actions, "time": time_context(workflow.now(), self._zone())}
