"""Per-channel task queues and their rate limits (Temporal enforces them server-side, so a
channel's rate holds across any number of workers; every worker on a queue must set the same
value, which is why both are derived here from the shared settings).

A rate R messages/s is applied to two queues per channel:
  deliver-<channel>        single sends (journeys): one message per activity -> R activities/s;
  deliver-<channel>-batch  batch slices: S messages per activity -> R/S activities/s, where a
                           slice holds at most one second of quota (S <= R), so a slice is
                           never a burst of more than a second's worth of messages.
The two budgets are separate: a channel can see up to R from journeys plus R from batches.
Give the provider's limit split between them if it matters (e.g. 0.5 R each).
"""

import math

from models.settings import Settings


def delivery_task_queue(channel: str) -> str:
    return f"deliver-{channel}"


def batch_task_queue(channel: str) -> str:
    return f"deliver-{channel}-batch"


def batch_slice_size(settings: Settings, channel: str) -> int:
    rate = settings.channel_rate_limits.get(channel)
    if rate is None:
        return settings.batch_slice_size
    return max(1, min(settings.batch_slice_size, math.ceil(rate)))


def single_send_rate(settings: Settings, channel: str) -> float | None:
    return settings.channel_rate_limits.get(channel)


def batch_slice_rate(settings: Settings, channel: str) -> float | None:
    rate = settings.channel_rate_limits.get(channel)
    if rate is None:
        return None
    return rate / batch_slice_size(settings, channel)
