"""ISO 8601 durations (PT2H, P3D) as used by journey waits and timeouts."""

from datetime import timedelta

import isodate


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration into a timedelta.

    Months and years have no fixed length, so they are refused rather than guessed.
    """
    if not isinstance(text, str):
        raise ValueError("must be an ISO 8601 duration string such as PT2H or P3D")
    try:
        value = isodate.parse_duration(text)
    except (isodate.ISO8601Error, ValueError):
        raise ValueError(f"{text!r} is not an ISO 8601 duration (e.g. PT30M, PT2H, P3D)") from None
    if not isinstance(value, timedelta):
        raise ValueError(f"{text!r}: months and years are not allowed; use days (P30D)")
    if value <= timedelta(0):
        raise ValueError(f"{text!r}: a duration must be positive")
    return value


def parse_signed_duration(text: str) -> timedelta:
    """Like parse_duration but allows zero and a leading '-' (e.g. -P7D: seven days before)."""
    if not isinstance(text, str):
        raise ValueError("must be an ISO 8601 duration string such as -P7D or PT0S")
    negative = text.startswith("-")
    body = text[1:] if negative else text
    try:
        value = isodate.parse_duration(body)
    except (isodate.ISO8601Error, ValueError):
        raise ValueError(f"{text!r} is not an ISO 8601 duration (e.g. -P7D, PT12H)") from None
    if not isinstance(value, timedelta):
        raise ValueError(f"{text!r}: months and years are not allowed; use days")
    return -value if negative else value
