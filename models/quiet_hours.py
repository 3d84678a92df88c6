"""Quiet hours: when a channel must not disturb a profile, in the profile's local time.

Pure (the caller passes `now`), so activities and workflows can both use it.
"""

from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=1024)
def profile_zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    """The profile's time zone, else the workspace default, else UTC (an unknown name never
    fails a send)."""
    for candidate in (name, fallback):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


@lru_cache(maxsize=64)
def parse_clock(text: str) -> time:
    """'HH:MM' (24 h) -> time; raises ValueError otherwise."""
    hours, sep, minutes = text.partition(":")
    if not sep or len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit():
        raise ValueError(f"{text!r} is not a HH:MM time (e.g. 21:30)")
    return time(int(hours), int(minutes))


def quiet_until(now: datetime, tz: ZoneInfo, start: time, end: time) -> datetime | None:
    """The moment the quiet period containing `now` ends, or None when `now` is not quiet.

    The period runs from `start` to `end` local time and wraps midnight when end <= start
    (21:00-08:00). start == end means no quiet period.
    """
    if start == end:
        return None
    local = now.astimezone(tz)
    today = local.date()
    clock = local.time().replace(tzinfo=None)
    if start < end:  # same-day window, e.g. 12:00-14:00
        if start <= clock < end:
            return _local_moment(today, end, tz)
        return None
    if clock >= start:  # evening part of a window wrapping midnight
        return _local_moment(today + timedelta(days=1), end, tz)
    if clock < end:  # morning part
        return _local_moment(today, end, tz)
    return None


def _local_moment(day, clock: time, tz: ZoneInfo) -> datetime:
    """`clock` on `day` in `tz`, as an aware datetime. A time skipped by a DST jump resolves
    to the instant after the gap (fold=0 semantics of zoneinfo), never to an earlier one."""
    return datetime.combine(day, clock, tz)
