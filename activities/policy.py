"""The send-time policies in SQL, set-based: one statement decides a whole chunk.

Callers run these inside the transaction that inserts the ledger rows, after
`lock_profiles`: the locks serialise every send to a profile, and because each statement of
a READ COMMITTED transaction takes a fresh snapshot, the decision (run after the locks are
granted) sees every message a concurrent send committed before releasing them. So two sends
racing for the last slot of a frequency cap cannot both win.
"""

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from models.delivery_tables import ALL_TOPICS

# Row locks rather than advisory locks: they live in the tuples, not in the shared lock
# table, so locking a 1,000-profile chunk on many workers cannot exhaust
# max_locks_per_transaction. Ordered by id so concurrent chunks never deadlock each other.
# Run on the driver connection and with attributes as text + json.loads: at batch rates the
# ORM result layer and psycopg's jsonb loader cost several µs per row each. Lists of ids go
# as one JSON document: psycopg adapts a Python list to an array at ~2 µs per element (for
# a 1,000-row chunk, more than the statement itself), json.dumps at ~0.1 µs.
LOCK_PROFILES = """
    SELECT p.id, p.email, p.phone, p.timezone, p.locale, p.attributes::text
    FROM json_array_elements_text(%s::json) AS wanted(id) JOIN profiles p ON p.id = wanted.id
    ORDER BY p.id
    FOR UPDATE OF p
"""

# One row per candidate that some policy blocks (allowed candidates return nothing).
# `suppressed`: the address's hard suppression (applies to every kind of message);
# `unconsented`: marketing without consent for the channel/topic;
# `capped_by`: the first typology rule the message would overflow, counting the weighted
# marketing messages already queued or sent to the profile inside each rule's window.
# Every lookup is a LATERAL subquery keyed by the candidate, i.e. one index probe per
# candidate (and rule) whatever the statistics say: a batch fills `messages` faster than
# autovacuum analyses it, and plans made on stale statistics seq-scanned the whole ledger per
# chunk (measured 100x slower). No `= ANY(array)` either: the planner estimates it element by
# element, which cost more than running the statement.
DECIDE = sa.text("""
    WITH candidate AS MATERIALIZED (
        SELECT c.profile_id, c.address
        FROM ROWS FROM (json_array_elements_text(CAST(:profile_ids AS json)),
                        json_array_elements_text(CAST(:addresses AS json))) AS c(profile_id, address)
    ),
    rule AS MATERIALIZED (
        SELECT r.name, r.channel, r.category, r.max_count, r.window_seconds, r.weights,
               COALESCE((r.weights ->> CAST(:category AS text))::float8, 1) AS weight
        FROM typology_rules r
        WHERE CAST(:marketing AS boolean) AND r.enabled
          AND r.channel IN ('all', CAST(:channel AS text))
          AND r.category IN ('all', CAST(:category AS text))
    ),
    topic_policy AS MATERIALIZED (
        SELECT COALESCE((SELECT policy FROM topics WHERE key = CAST(:topic AS text)), 'opt_out') AS policy
    ),
    capped AS (
        SELECT DISTINCT ON (c.profile_id) c.profile_id, r.name
        FROM candidate c
        CROSS JOIN rule r
        CROSS JOIN LATERAL (
            SELECT sum(COALESCE((r.weights ->> m.category)::float8, 1)) AS used
            FROM messages m
            WHERE m.profile_id = c.profile_id
              AND m.created_at > now() - make_interval(secs => r.window_seconds)
              AND m.status IN ('queued', 'sent') AND m.kind = 'marketing'
              AND (r.channel = 'all' OR m.channel = r.channel)
              AND (r.category = 'all' OR m.category = r.category)
        ) pressure
        WHERE r.weight + COALESCE(pressure.used, 0) > r.max_count
        ORDER BY c.profile_id, r.name
    ),
    decision AS (
        SELECT c.profile_id,
               s.reason AS suppressed,
               CASE
                   WHEN NOT CAST(:marketing AS boolean) THEN NULL
                   WHEN sub.opted_out_all THEN 'opted out of ' || CAST(:channel AS text)
                   WHEN sub.opted_out_topic THEN 'opted out of topic ' || CAST(:topic AS text)
                   WHEN (SELECT policy FROM topic_policy) = 'opt_in' AND NOT COALESCE(sub.opted_in_topic, false)
                       THEN 'not opted in to topic ' || CAST(:topic AS text)
               END AS unconsented,
               capped.name AS capped_by
        FROM candidate c
        LEFT JOIN LATERAL (
            SELECT reason FROM suppressions
            WHERE channel = CAST(:channel AS text) AND address = lower(c.address)
        ) s ON true
        LEFT JOIN LATERAL (
            SELECT bool_or(status = 'opted_out' AND topic = :all_topics) AS opted_out_all,
                   bool_or(status = 'opted_out' AND topic = CAST(:topic AS text)) AS opted_out_topic,
                   bool_or(status = 'opted_in' AND topic = CAST(:topic AS text)) AS opted_in_topic
            FROM subscriptions
            WHERE profile_id = c.profile_id AND channel = CAST(:channel AS text)
              AND topic IN (:all_topics, CAST(:topic AS text))
        ) sub ON CAST(:marketing AS boolean)
        LEFT JOIN capped ON capped.profile_id = c.profile_id
    )
    SELECT profile_id, suppressed, unconsented, capped_by FROM decision
    WHERE suppressed IS NOT NULL OR unconsented IS NOT NULL OR capped_by IS NOT NULL
""")

QUIET_HOURS = sa.text('SELECT start, "end", mode FROM quiet_hours WHERE channel = :channel')


@dataclass(frozen=True)
class Block:
    """Why a candidate may not receive the message; at most one field matters, in order."""

    suppressed: str | None
    unconsented: str | None
    capped_by: str | None


@dataclass(frozen=True)
class QuietHoursRule:
    start: str
    end: str
    mode: str  # queue | discard


async def lock_profiles(conn: AsyncConnection, profile_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Lock the profiles' rows for the rest of the transaction and return them by id, each in
    the shape templates see as `profile` (activities/journey_data.profile_context)."""
    driver = (await conn.get_raw_connection()).driver_connection
    cursor = await driver.execute(LOCK_PROFILES, (json.dumps(profile_ids),))
    return {pid: {"id": pid, "email": email, "phone": phone, "timezone": tz, "locale": locale,
                  "attributes": json.loads(attributes) if attributes else {}}
            for pid, email, phone, tz, locale, attributes in await cursor.fetchall()}


async def policy_blocks(conn: AsyncConnection, *, channel: str, marketing: bool, category: str | None,
                        topic: str | None, candidates: list[tuple[str, str]]) -> dict[str, Block]:
    """Blocked candidates (profile_id, address) by profile id; the others may be sent to."""
    if not candidates:
        return {}
    profile_ids, addresses = zip(*candidates)
    rows = await conn.execute(DECIDE, {
        "profile_ids": json.dumps(profile_ids), "addresses": json.dumps(addresses), "channel": channel,
        "marketing": marketing, "category": category, "topic": topic, "all_topics": ALL_TOPICS,
    })
    return {r.profile_id: Block(r.suppressed, r.unconsented, r.capped_by) for r in rows}


async def quiet_hours_rule(conn: AsyncConnection, channel: str) -> QuietHoursRule | None:
    row = (await conn.execute(QUIET_HOURS, {"channel": channel})).first()
    return QuietHoursRule(row.start, row.end, row.mode) if row else None

