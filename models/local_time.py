"""Pure local-time helpers for journeys: time windows, profile dates, time-of-day context.

Pure functions of their arguments (the caller passes `now`), so workflows can use them.
"""

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from models.quiet_hours import parse_clock, profile_zone

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


zone = profile_zone  # a profile's zone, else the fallback, else UTC: never fails


def next_window_start(now: datetime, tz: ZoneInfo, days: list[str], start: str, end: str) -> datetime:
    """`now` if it lies inside the window, else the next moment the window opens."""
    local = now.astimezone(tz)
    opens, closes = parse_clock(start), parse_clock(end)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        if WEEKDAYS[day.weekday()] not in days:
            continue
        window_open = datetime.combine(day, opens, tz)
        window_close = datetime.combine(day, closes, tz)
        if local < window_open:
            return window_open
        if local < window_close:
            return now
    return now  # unreachable with at least one day; never block forever


def profile_moment(value: Any, tz: ZoneInfo) -> datetime | None:
    """Read a date or datetime a profile attribute holds (ISO text); dates mean local midnight."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if len(value) <= 10:  # a plain date
        return datetime.combine(date.fromisoformat(value), time(0), tz)
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def time_context(now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """`time.*` in journey conditions."""
    local = now.astimezone(tz)
    return {"hour": local.hour, "minute": local.minute, "weekday": WEEKDAYS[local.weekday()],
            "date": local.date().isoformat()}
