"""One journey instance: a durable walk through a published journey version for one profile.

Deterministic: time comes from timers, data from (local) activities, conditions are pure.
Events arrive as the `event` signal; exit criteria are checked on every event, wherever the
instance waits.
"""

from collections import Counter, deque
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.delivery import DeliveryActivities
    from activities.journey_data import JourneyDataActivities
    from models import search_attributes as sa
    from models.conditions import evaluate
    from models.durations import parse_duration
    from models.journey_definition import (
        ConditionNode,
        EndNode,
        JourneyDefinition,
        MessageNode,
        WaitEventNode,
        WaitNode,
    )
    from models.journey_runtime import (
        EventPayload,
        InstanceContextRequest,
        InstanceState,
        JourneyStart,
        SEND_MAX_ATTEMPTS,
        MessageSource,
        SendRequest,
    )

LOCAL_READ_TIMEOUT = timedelta(seconds=30)
SEND_TIMEOUT = timedelta(minutes=2)
SEND_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1),
                         maximum_attempts=SEND_MAX_ATTEMPTS)
# Duplicate deliveries of the same inbox event (dispatcher retries) are ignored.
SEEN_EVENTS_KEPT = 200
# Events that arrive before the definition is loaded wait here (normally just the entry signal).
EARLY_EVENTS_KEPT = 10


def workflow_id(journey_key: str, profile_id: str) -> str:
    return f"journey:{journey_key}:{profile_id}"


@workflow.defn(name="journey")
class JourneyWorkflow:
    def __init__(self) -> None:
        self.definition: JourneyDefinition | None = None
        self.profile: dict = {}
        self.start: JourneyStart | None = None
        self.current_node: str | None = None
        self.path: list[str] = []
        self.status = "running"
        self.exit_reason: str | None = None
        self.waiting_for: WaitEventNode | None = None
        self.matched_event: EventPayload | None = None
        self.early_events: list[EventPayload] = []
        self.seen_events: deque[str] = deque(maxlen=SEEN_EVENTS_KEPT)

    @workflow.run
    async def run(self, start: JourneyStart) -> InstanceState:
        self.start = start
        if start.entry_event:
            self.seen_events.append(start.entry_event.message_id)
        context = await workflow.execute_local_activity_method(
            JourneyDataActivities.load_instance_context,
            InstanceContextRequest(journey_key=start.journey_key, version=start.version,
                                   profile_id=start.profile_id),
            start_to_close_timeout=LOCAL_READ_TIMEOUT,
        )
        self.definition, self.profile = context.definition, context.profile
        for early in self.early_events:
            self._receive(early)
        self.early_events.clear()

        event = start.entry_event  # the event whose data messages and conditions see
        visits: Counter[str] = Counter()
        node_id: str | None = self.definition.start
        while node_id is not None and self.status == "running":
            self._enter(node_id)
            visits[node_id] += 1
            node = self.definition.nodes[node_id]
            if isinstance(node, EndNode):
                self.status = "completed"
                break
            if isinstance(node, WaitNode):
                await self._sleep_unless_exited(parse_duration(node.duration))
                node_id = node.next
            elif isinstance(node, WaitEventNode):
                matched = await self._wait_for_event(node)
                if matched:
                    event = matched
                node_id = node.on_event if matched else node.on_timeout
            elif isinstance(node, ConditionNode):
                await self._refresh_profile()
                node_id = self._choose_branch(node, event)
            elif isinstance(node, MessageNode):
                await self._send(node_id, node, event, visits[node_id])
                node_id = node.next
        return self.state()

    @workflow.signal
    def event(self, payload: EventPayload) -> None:
        if payload.message_id in self.seen_events:
            return
        self.seen_events.append(payload.message_id)
        if self.definition is None:
            if len(self.early_events) < EARLY_EVENTS_KEPT:
                self.early_events.append(payload)
            return
        self._receive(payload)

    @workflow.query
    def state(self) -> InstanceState:
        assert self.start is not None
        return InstanceState(
            journey_key=self.start.journey_key, version=self.start.version,
            profile_id=self.start.profile_id, status=self.status,  # type: ignore[arg-type]
            current_node=self.current_node, path=list(self.path), exit_reason=self.exit_reason,
        )

    def _receive(self, payload: EventPayload) -> None:
        assert self.definition is not None
        if self.status != "running":
            return
        context = self._context(payload)
        for criterion in self.definition.exit:
            if criterion.event == payload.name and (
                criterion.where is None or evaluate(criterion.where, context)
            ):
                self.status = "exited"
                self.exit_reason = f"event {payload.name}"
                return
        waiting = self.waiting_for
        if waiting and self.matched_event is None and waiting.event == payload.name and (
            waiting.where is None or evaluate(waiting.where, context)
        ):
            self.matched_event = payload

    def _enter(self, node_id: str) -> None:
        self.current_node = node_id
        self.path.append(node_id)
        workflow.upsert_search_attributes([sa.CURRENT_NODE.value_set(node_id)])

    async def _sleep_unless_exited(self, duration: timedelta) -> None:
        try:
            await workflow.wait_condition(lambda: self.status != "running", timeout=duration)
        except TimeoutError:
            pass

    async def _wait_for_event(self, node: WaitEventNode) -> EventPayload | None:
        self.waiting_for, self.matched_event = node, None
        try:
            await workflow.wait_condition(
                lambda: self.matched_event is not None or self.status != "running",
                timeout=parse_duration(node.timeout),
            )
        except TimeoutError:
            pass
        matched, self.waiting_for, self.matched_event = self.matched_event, None, None
        return matched if self.status == "running" else None

    async def _refresh_profile(self) -> None:
        assert self.start is not None
        self.profile = await workflow.execute_local_activity_method(
            JourneyDataActivities.load_profile, self.start.profile_id,
            start_to_close_timeout=LOCAL_READ_TIMEOUT,
        )

    def _choose_branch(self, node: ConditionNode, event: EventPayload | None) -> str:
        context = self._context(event)
        for branch in node.branches:
            if evaluate(branch.when, context):
                return branch.next
        return node.else_

    async def _send(self, node_id: str, node: MessageNode, event: EventPayload | None,
                    visit: int) -> None:
        assert self.start is not None
        info = workflow.info()
        await workflow.execute_activity_method(
            DeliveryActivities.send_message,
            SendRequest(
                # Stable across retries and replays, distinct across re-entries (new runs).
                idempotency_key=f"{info.workflow_id}:{info.first_execution_run_id}:{node_id}:{visit}",
                profile_id=self.start.profile_id, channel=node.channel, template=node.template,
                event_message_id=event.message_id if event else None,
                source=MessageSource(kind="journey", key=self.start.journey_key,
                                     version=self.start.version, node=node_id),
            ),
            start_to_close_timeout=SEND_TIMEOUT,
            retry_policy=SEND_RETRY,
        )

    def _context(self, event: EventPayload | None) -> dict:
        return {"profile": self.profile, "event": event.as_context() if event else {}}
