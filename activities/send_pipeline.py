"""Decide, render and record a chunk of sends in one transaction; then hand the recorded
messages to the provider.

Shared by the single send of journeys (a chunk of one) and the batch engine (chunks of ~1,000),
so both apply exactly the same policies. Inside `record_chunk`'s transaction:
  1. lock the recipients' profile rows (per-profile serialisation, see activities/policy.py);
  2. one statement finds the blocked recipients (suppression, consent, typology rules);
  3. quiet hours are checked in Python (time zones are Python's, never a SQL error);
  4. allowed messages are rendered;
  5. one INSERT writes every recipient's ledger row (sent / queued / suppressed / deferred /
     skipped / failed), keyed by idempotency key.
A key that already has a final row is left untouched (ON CONFLICT), so replays and resumed
batches never record or deliver twice; a `deferred` row is re-decided in place.
"""

from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from activities.policy import Block, QuietHoursRule, lock_profiles, policy_blocks
from activities.providers import OutgoingMessage, Provider
from activities.rendering import render
from models.delivery_tables import ALL_TOPICS
from models.quiet_hours import parse_clock, profile_zone, quiet_until
from models.unsubscribe_tokens import Signer, UnsubscribeScope


def _push_token(profile: dict[str, Any]) -> str | None:
    token = (profile.get("attributes") or {}).get("push_token")
    return token if isinstance(token, str) else None


# Where each channel finds a profile's address. Webhooks and the in-app inbox address the
# profile itself.
ADDRESS_OF = {
    "email": lambda p: p.get("email"),
    "sms": lambda p: p.get("phone"),
    "push": _push_token,
    "webhook": lambda p: p.get("id"),
    "inapp": lambda p: p.get("id"),
}

TEMPLATE = sa.text("""
    SELECT key, channel, subject, body, html, kind, category, topic, from_address, reply_to
    FROM templates WHERE key = :key
""")

# Every chunk transaction starts with this (one round trip, three statements):
# - custom plans: psycopg prepares a statement after 5 runs and Postgres may then keep a
#   generic plan; one made while `messages` was small (a batch fills it) seq-scans it forever
#   after (measured: 100x slower). A custom plan sizes tables from their current pages.
# - no JIT: the policy statement's estimated cost grows with the ledger past jit_above_cost,
#   and compiling it took ~25 ms per chunk for a statement that runs in ~3 ms.
# - the staging table: rows reach Postgres by COPY into it, then one INSERT ... SELECT moves
#   them into the ledger: about twice as fast as binding arrays (measured), and the ledger's
#   unique key still decides. ON COMMIT DELETE ROWS empties it at every commit.
BEGIN_CHUNK = """
    SET LOCAL plan_cache_mode = force_custom_plan;
    SET LOCAL jit = off;
    CREATE TEMP TABLE IF NOT EXISTS delivery_stage (
        key text, profile_id text, address text, subject text, body text, status text, reason text,
        retry_at timestamptz
    ) ON COMMIT DELETE ROWS
"""
COPY_STAGE = "COPY delivery_stage (key, profile_id, address, subject, body, status, reason, retry_at) FROM STDIN"
INSERT_ROWS = """
    INSERT INTO messages AS m (
        idempotency_key, profile_id, address, subject, body, status, reason, retry_at, sent_at,
        channel, template, provider, source_kind, source_key, source_version, source_node,
        kind, category, topic)
    SELECT r.key, r.profile_id, r.address, r.subject, r.body, r.status, r.reason, r.retry_at,
           CASE WHEN r.status = 'sent' THEN now() END,
           %(channel)s, %(template)s, %(provider)s, %(source_kind)s, %(source_key)s, %(source_version)s,
           %(source_node)s, %(kind)s, %(category)s, %(topic)s
    FROM delivery_stage r
    ON CONFLICT (idempotency_key) DO UPDATE SET
        address = excluded.address, subject = excluded.subject, body = excluded.body,
        status = excluded.status, reason = excluded.reason, retry_at = excluded.retry_at,
        sent_at = excluded.sent_at, provider = excluded.provider,
        -- typology windows count from when the message really went out
        created_at = now()
    WHERE m.status = 'deferred'
    RETURNING m.id, m.idempotency_key, m.status, m.reason, m.retry_at
"""
# Keys whose row existed already with a final status (a replay, a resumed slice).
EXISTING = "SELECT id, idempotency_key, status, reason, retry_at FROM messages WHERE idempotency_key = ANY(%s)"


class Stored(NamedTuple):
    """A recipient's ledger row after the pass, whichever pass wrote it."""

    id: int
    idempotency_key: str
    status: str
    reason: str | None
    retry_at: datetime | None


@dataclass(frozen=True)
class TemplateRow:
    key: str
    channel: str
    subject: str | None
    body: str
    html: str | None
    kind: str
    category: str | None
    topic: str | None
    from_address: str | None
    reply_to: str | None


class UnsubscribeLinks:
    """Signed unsubscribe URLs; the HMAC key schedule is computed once, not per message."""

    def __init__(self, base_url: str, secret: str):
        self.base_url, self.secret = base_url, secret
        self._signer = Signer(secret)

    def url(self, scope: UnsubscribeScope) -> str:
        return f"{self.base_url.rstrip('/')}/unsubscribe/{self._signer.sign(scope)}"


@dataclass(frozen=True)
class SendSpec:
    """What every message of a chunk shares."""

    channel: str
    template_key: str
    template: TemplateRow | None
    provider: Provider | None
    source_kind: str
    source_key: str | None
    source_version: int | None
    source_node: str | None
    kind: str  # marketing | transactional
    category: str | None
    topic: str | None
    now: datetime  # quiet hours are judged at this instant
    default_timezone: str
    links: UnsubscribeLinks
    event: dict[str, Any] = field(default_factory=dict)
    # Read with the template (once per send; once per slice in batches), not once per chunk.
    quiet_hours: QuietHoursRule | None = None

    @property
    def marketing(self) -> bool:
        return self.kind != "transactional"

    @cached_property
    def wants_unsubscribe_link(self) -> bool:
        template = self.template
        shown = template is not None and any(
            "unsubscribe_url" in (text or "") for text in (template.subject, template.body, template.html))
        header = (self.marketing and self.channel == "email" and self.provider is not None
                  and not self.provider.delivers_by_recording)
        return shown or header


class Recipient(NamedTuple):  # a tuple: created per message, cheaper than a frozen dataclass
    idempotency_key: str
    profile_id: str


@dataclass(slots=True)
class Decided:
    """One recipient's ledger row as this pass decided it (rendered when sent/queued)."""

    recipient: Recipient
    status: str
    reason: str | None = None
    address: str | None = None
    retry_at: datetime | None = None
    subject: str | None = None
    body: str | None = None
    html: str | None = None
    unsubscribe_url: str | None = None
    context: dict[str, Any] | None = None


@dataclass
class ChunkOutcome:
    stored: dict[str, Stored]  # every recipient's ledger row, by idempotency key
    # Rows (ledger id, message) left `queued` for the provider: this pass's and any that an
    # interrupted earlier attempt recorded but never handed over.
    to_send: list[tuple[int, OutgoingMessage]]


async def load_template(conn: AsyncConnection, key: str) -> TemplateRow | None:
    row = (await conn.execute(TEMPLATE, {"key": key})).first()
    return TemplateRow(**row._mapping) if row else None


async def record_chunk(conn: AsyncConnection, spec: SendSpec, recipients: list[Recipient]) -> ChunkOutcome:
    """Decide and record every recipient's message. Run inside a transaction (`conn.begin()`);
    the caller commits, then delivers `to_send`."""
    await (await conn.get_raw_connection()).driver_connection.execute(BEGIN_CHUNK)
    profiles = await lock_profiles(conn, sorted({r.profile_id for r in recipients}))
    address_of = ADDRESS_OF.get(spec.channel, lambda p: None)
    addresses = {pid: address_of(p) for pid, p in profiles.items()}
    blocks = await policy_blocks(
        conn, channel=spec.channel, marketing=spec.marketing, category=spec.category, topic=spec.topic,
        candidates=[(pid, address) for pid, address in addresses.items() if address])
    quiet = _QuietCheck(spec, spec.quiet_hours) if spec.quiet_hours and spec.marketing else None
    decided = [_decide(spec, r, profiles.get(r.profile_id), addresses.get(r.profile_id),
                       blocks.get(r.profile_id), quiet) for r in recipients]
    await _stage(conn, decided)
    stored = await _insert(conn, spec, [r.idempotency_key for r in recipients])

    to_send: list[tuple[int, OutgoingMessage]] = []
    if spec.provider is not None and not spec.provider.delivers_by_recording:
        rendered = {d.recipient.idempotency_key: d for d in decided if d.subject is not None}
        for recipient in recipients:
            row, profile = stored[recipient.idempotency_key], profiles.get(recipient.profile_id)
            if row.status != "queued" or profile is None:  # a deleted profile has nothing to send
                continue
            # This pass's rendering, or a fresh one for a row an interrupted attempt queued.
            done = rendered.get(row.idempotency_key) or _rendered(
                spec, recipient, profile, addresses[recipient.profile_id])
            to_send.append((row.id, outgoing(spec, done, profile)))
    return ChunkOutcome(stored, to_send)


async def _insert(conn: AsyncConnection, spec: SendSpec, keys: list[str]) -> dict[str, Stored]:
    """Move the staged rows into the ledger; return every key's row, new or pre-existing."""
    driver = (await conn.get_raw_connection()).driver_connection
    cursor = await driver.execute(INSERT_ROWS, _insert_parameters(spec))
    stored = {row[1]: Stored(*row) for row in await cursor.fetchall()}
    if len(stored) < len(keys):
        cursor = await driver.execute(EXISTING, ([key for key in keys if key not in stored],))
        stored.update({row[1]: Stored(*row) for row in await cursor.fetchall()})
    return stored


class _QuietCheck:
    """Quiet hours for one chunk: computed once per time zone, not once per recipient."""

    def __init__(self, spec: SendSpec, rule: QuietHoursRule):
        self.spec, self.rule = spec, rule
        self.start, self.end = parse_clock(rule.start), parse_clock(rule.end)
        self._by_zone: dict[str | None, tuple[datetime | None, str]] = {}

    def until(self, timezone_name: str | None) -> tuple[datetime | None, str]:
        """(end of the quiet period now, or None; the zone's name)"""
        known = self._by_zone.get(timezone_name)
        if known is None:
            tz = profile_zone(timezone_name, self.spec.default_timezone)
            known = self._by_zone[timezone_name] = (quiet_until(self.spec.now, tz, self.start, self.end), tz.key)
        return known


def _decide(spec: SendSpec, recipient: Recipient, profile: dict | None, address: str | None,
            block: Block | None, quiet: "_QuietCheck | None") -> Decided:
    if spec.template is None:
        return Decided(recipient, "failed", f"template {spec.template_key!r} not found", address)
    if spec.template.channel != spec.channel:
        return Decided(recipient, "failed", f"template {spec.template_key!r} is for {spec.template.channel}, "
                                            f"not {spec.channel}", address)
    if spec.provider is None:
        return Decided(recipient, "failed", f"no provider for channel {spec.channel}", address)
    if profile is None:
        return Decided(recipient, "skipped", "profile not found")
    if not address:
        return Decided(recipient, "skipped", f"profile has no {spec.channel} address")
    if block is not None and block.suppressed:
        return Decided(recipient, "suppressed", f"suppressed address: {block.suppressed}", address)
    if block is not None and block.unconsented:
        return Decided(recipient, "suppressed", block.unconsented, address)
    if quiet is not None:
        until, zone_name = quiet.until(profile.get("timezone"))
        if until is not None:
            where = f"quiet hours {quiet.rule.start}-{quiet.rule.end} {zone_name}"
            if quiet.rule.mode == "queue":
                return Decided(recipient, "deferred", f"{where}: until {until.isoformat()}", address, until)
            return Decided(recipient, "suppressed", where, address)
    if block is not None and block.capped_by:
        return Decided(recipient, "suppressed", f"typology rule {block.capped_by}", address)
    return _rendered(spec, recipient, profile, address)


def _rendered(spec: SendSpec, recipient: Recipient, profile: dict, address: str) -> Decided:
    """An allowed message, rendered for its profile."""
    assert spec.template is not None and spec.provider is not None
    template = spec.template
    context: dict[str, Any] = {"profile": profile, "event": spec.event}  # already profile_context's shape
    link = None
    # Signing costs a few µs: only when the template shows the link or a real email carries
    # it as a List-Unsubscribe header.
    if spec.wants_unsubscribe_link:
        scope = UnsubscribeScope(recipient.profile_id, spec.channel, spec.topic or ALL_TOPICS)
        link = context["unsubscribe_url"] = spec.links.url(scope)
    return Decided(recipient, "sent" if spec.provider.delivers_by_recording else "queued", None, address,
                   subject=render(template.subject, context), body=render(template.body, context),
                   html=render(template.html, context) if template.html else None, unsubscribe_url=link,
                   context=context)


def outgoing(spec: SendSpec, decided: Decided, profile: dict) -> OutgoingMessage:
    """The provider's view of a rendered message."""
    assert spec.template is not None and decided.address is not None
    return OutgoingMessage(
        idempotency_key=decided.recipient.idempotency_key, channel=spec.channel, to=decided.address,
        subject=decided.subject or "", body=decided.body or "", html=decided.html,
        from_address=spec.template.from_address, reply_to=spec.template.reply_to,
        unsubscribe_url=decided.unsubscribe_url if spec.marketing else None,
        profile=profile)


async def _stage(conn: AsyncConnection, decided: list[Decided]) -> None:
    raw = (await conn.get_raw_connection()).driver_connection
    async with raw.cursor().copy(COPY_STAGE) as copy:
        for d in decided:
            await copy.write_row((d.recipient.idempotency_key, d.recipient.profile_id, d.address, d.subject,
                                  d.body, d.status, d.reason, d.retry_at))


def _insert_parameters(spec: SendSpec) -> dict[str, Any]:
    return {
        "channel": spec.channel, "template": spec.template_key,
        "provider": spec.provider.name if spec.provider else None,
        "source_kind": spec.source_kind, "source_key": spec.source_key,
        "source_version": spec.source_version, "source_node": spec.source_node,
        "kind": spec.kind, "category": spec.category, "topic": spec.topic,
    }
