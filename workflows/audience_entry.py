"""A journey's audience entry run: materialize the audience, enter its profiles at the
journey's rate, drop the work table. Started once at publish or by a Temporal Schedule."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.audience_entry import AudienceEntryActivities, AudienceRun, EnterSlice

AUDIENCE_ENTRY_WORKFLOW = "journey-audience-entry"


def audience_entry_id(journey_key: str) -> str:
    return f"journey-audience:{journey_key}"


@workflow.defn(name=AUDIENCE_ENTRY_WORKFLOW)
class AudienceEntryWorkflow:
    def __init__(self) -> None:
        self.run_state = AudienceRun(journey_key="")
        self.entered = 0

    @workflow.run
    async def run(self, journey_key: str, rate: int) -> int:
        self.run_state = await workflow.execute_activity_method(
            AudienceEntryActivities.materialize_journey_audience, journey_key,
            start_to_close_timeout=timedelta(minutes=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5))
        try:
            # One long, heartbeating activity: if the worker dies, the retry resumes at the
            # heartbeat cursor, so nobody is entered twice or skipped.
            members = max(self.run_state.members, 1)
            self.entered = await workflow.execute_activity_method(
                AudienceEntryActivities.enter_audience,
                EnterSlice(journey_key=journey_key, work_table=self.run_state.work_table, rate=rate),
                start_to_close_timeout=timedelta(seconds=members / rate + 600),
                heartbeat_timeout=timedelta(seconds=30))
        finally:
            await workflow.execute_activity_method(
                AudienceEntryActivities.drop_audience_table, self.run_state.work_table,
                start_to_close_timeout=timedelta(minutes=1))
        return self.entered

    @workflow.query
    def progress(self) -> dict:
        return {"members": self.run_state.members, "entered": self.entered}
