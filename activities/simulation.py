"""Stand-ins for the journey activities used by simulations: they read templates, but keep
the profile, messages and actions in memory, so a simulated journey sends and stores nothing.

They register under the same activity names as the real ones, on a simulation-only worker,
so the journey workflow itself runs unchanged.
"""

from datetime import datetime
from typing import Any

from temporalio import activity

from activities.rendering import render
from models.journey_definition import JourneyDefinition
from models.journey_runtime import (InstanceContext, InstanceContextRequest, InstanceFinish, JumpRequest,
                                    ProfileUpdateRequest, SendRequest, SendResult, WebhookRequest)


class SimulatedRun:
    """What one simulated instance did."""

    def __init__(self, definition: JourneyDefinition, profile: dict, templates: dict[str, dict],
                 events: dict[str, dict], webhook_responses: dict[str, dict]):
        self.definition, self.profile, self.templates = definition, profile, templates
        self.events, self.webhook_responses = events, webhook_responses
        self.messages: list[dict[str, Any]] = []
        self.actions: list[dict[str, Any]] = []


class SimulationActivities:
    def __init__(self, run: SimulatedRun):
        self.run = run

    @activity.defn(name="load_instance_context")
    async def load_instance_context(self, request: InstanceContextRequest) -> InstanceContext:
        return InstanceContext(definition=self.run.definition, profile=self.run.profile)

    @activity.defn(name="finish_instance")
    async def finish_instance(self, finish: InstanceFinish) -> None:
        return None

    @activity.defn(name="load_profile")
    async def load_profile(self, profile_id: str) -> dict[str, Any]:
        return self.run.profile

    @activity.defn(name="send_message")
    async def send_message(self, request: SendRequest) -> SendResult:
        template = self.run.templates[request.template]
        context = {"profile": self.run.profile, "event": self.run.events.get(request.event_message_id or "", {})}
        has_address = bool(self.run.profile.get("email"))
        self.run.messages.append({
            "node": request.source.node, "channel": request.channel, "template": request.template,
            "at": _now(), "status": "would_send" if has_address else "skipped",
            "reason": None if has_address else f"profile has no {request.channel} address",
            "subject": render(template.get("subject"), context), "body": render(template["body"], context),
        })
        return SendResult(message_id=len(self.run.messages), status="sent" if has_address else "skipped")

    @activity.defn(name="update_profile")
    async def update_profile(self, request: ProfileUpdateRequest) -> dict[str, Any]:
        context = {"profile": self.run.profile, "event": request.event.as_context() if request.event else {},
                   "action": request.actions}
        values = {k: render(v, context) if isinstance(v, str) and "{" in v else v for k, v in request.set.items()}
        self.run.profile = {**self.run.profile, "attributes": {**self.run.profile.get("attributes", {}), **values}}
        self.run.actions.append({"type": "update_profile", "at": _now(), "set": values})
        return self.run.profile

    @activity.defn(name="call_webhook")
    async def call_webhook(self, request: WebhookRequest) -> dict[str, Any]:
        response = self.run.webhook_responses.get(request.node, {})
        self.run.actions.append({"type": "webhook", "node": request.node, "at": _now(),
                                 "method": request.method, "response": response})
        return {"status_code": 200, **response}

    @activity.defn(name="jump")
    async def jump(self, request: JumpRequest) -> bool:
        self.run.actions.append({"type": "jump", "at": _now(), "journey": request.journey_key})
        return True

    def all(self) -> list:
        return [self.load_instance_context, self.finish_instance, self.load_profile, self.send_message,
                self.update_profile, self.call_webhook, self.jump]


def _now() -> datetime:
    # The (time-skipped) server time at which the activity was scheduled: the simulated clock.
    return activity.info().current_attempt_scheduled_time
