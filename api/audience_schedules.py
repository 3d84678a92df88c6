"""Starting a journey's audience entry: once at publish, or on a Temporal Schedule."""

from datetime import timezone

from temporalio.client import (Client, Schedule, ScheduleActionStartWorkflow, ScheduleCalendarSpec, ScheduleRange,
                               ScheduleSpec, ScheduleState)
from temporalio.service import RPCError, RPCStatusCode

from models.journey_definition import AudienceEntry, JourneyDefinition
from models.journey_definition import Schedule as EntrySchedule
from workflows.audience_entry import AUDIENCE_ENTRY_WORKFLOW, audience_entry_id

WEEKDAY_NUMBER = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


def schedule_spec(schedule: EntrySchedule) -> ScheduleSpec:
    hour, minute = (int(x) for x in schedule.at.split(":"))
    tz = schedule.timezone
    if schedule.frequency == "once":
        at = schedule.start_at.astimezone(timezone.utc)
        calendar = ScheduleCalendarSpec(
            second=[ScheduleRange(at.second)], minute=[ScheduleRange(at.minute)], hour=[ScheduleRange(at.hour)],
            day_of_month=[ScheduleRange(at.day)], month=[ScheduleRange(at.month)], year=[ScheduleRange(at.year)])
        return ScheduleSpec(calendars=[calendar], time_zone_name="UTC")
    cron = {
        "daily": f"{minute} {hour} * * *",
        "weekly": f"{minute} {hour} * * {WEEKDAY_NUMBER[schedule.weekday]}",
        "monthly": f"{minute} {hour} {schedule.day_of_month} * *",
        "cron": schedule.cron,
    }[schedule.frequency]
    return ScheduleSpec(cron_expressions=[cron], time_zone_name=tz)


async def start_audience_entry(client: Client, task_queue: str, definition: JourneyDefinition, version: int) -> None:
    entry = definition.entry
    assert isinstance(entry, AudienceEntry)
    action = ScheduleActionStartWorkflow(AUDIENCE_ENTRY_WORKFLOW, args=[definition.key, entry.rate],
                                         id=audience_entry_id(definition.key), task_queue=task_queue)
    await delete_schedule(client, definition.key)  # a new version replaces the old timetable
    if entry.schedule is None:
        await client.start_workflow(AUDIENCE_ENTRY_WORKFLOW, args=[definition.key, entry.rate],
                                    id=f"{audience_entry_id(definition.key)}:v{version}", task_queue=task_queue)
        return
    once = entry.schedule.frequency == "once"
    await client.create_schedule(
        audience_entry_id(definition.key),
        Schedule(action=action, spec=schedule_spec(entry.schedule),
                 state=ScheduleState(limited_actions=once, remaining_actions=1 if once else 0)))


async def delete_schedule(client: Client, journey_key: str) -> None:
    try:
        await client.get_schedule_handle(audience_entry_id(journey_key)).delete()
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise


async def pause_schedule(client: Client, journey_key: str, paused: bool) -> None:
    handle = client.get_schedule_handle(audience_entry_id(journey_key))
    try:
        await (handle.pause() if paused else handle.unpause())
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
