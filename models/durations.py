"""ISO 8601 durations (PT2H, P3D) as used by journey waits and timeouts."""

from datetime import timedelta

import isodate


def parse_signed_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration, zero or with a leading '-' (-P7D: seven days before).

    Months and years have no fixed length, so they are refused rather than guessed.
    """
    if not isinstance(text, str):
        raise ValueError("must be an ISO 8601 duration string such as PT2H, P3D or -P7D")
    negative = text.startswith("-")
    try:
        value = isodate.parse_duration(text[1:] if negative else text)
    except (isodate.ISO8601Error, ValueError):
        raise ValueError(f"{text!r} is not an ISO 8601 duration (e.g. PT30M, PT2H, P3D)") from None
    if not isinstance(value, timedelta):
        raise ValueError(f"{text!r}: months and years are not allowed; use days (P30D)")
    return -value if negative else value


def parse_duration(text: str) -> timedelta:
    """A strictly positive ISO 8601 duration (waits, timeouts)."""
    value = parse_signed_duration(text)
    if value <= timedelta(0):
        raise ValueError(f"{text!r}: a duration must be positive")
    return value
