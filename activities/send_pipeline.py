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
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from activities.journey_data import profile_context
from activities.policy import Block, QuietHoursRule, lock_profiles, policy_blocks, quiet_hours_rule
from activities.providers import OutgoingMessage, Provider
from activities.rendering import render
from models.delivery_tables import ALL_TOPICS
from models.quiet_hours import parse_clock, profile_zone, quiet_until
from models.unsubscribe_tokens import UnsubscribeScope, unsubscribe_url


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

INSERT_ROWS = """
    INSERT INTO messages AS m (
        idempotency_key, profile_id, address, subject, body, status, reason, retry_at, sent_at,
        channel, template, provider, source_kind, source_key, source_version, source_node,
        kind, category, topic)
    SELECT r.key, r.profile_id, r.address, r.subject, r.body, r.status, r.reason, r.retry_at,
           CASE WHEN r.status = 'sent' THEN now() END,
           :channel, :template, :provider, :source_kind, :source_key, :source_version, :source_node,
           :kind, :category, :topic
    FROM unnest(CAST(:keys AS text[]), CAST(:profile_ids AS text[]), CAST(:addresses AS text[]),
                CAST(:subjects AS text[]), CAST(:bodies AS text[]), CAST(:statuses AS text[]),
                CAST(:reasons AS text[]), CAST(:retry_ats AS timestamptz[]))
         AS r(key, profile_id, address, subject, body, status, reason, retry_at)
    ON CONFLICT (idempotency_key) DO UPDATE SET
        address = excluded.address, subject = excluded.subject, body = excluded.body,
        status = excluded.status, reason = excluded.reason, retry_at = excluded.retry_at,
        sent_at = excluded.sent_at, provider = excluded.provider,
        -- typology windows count from when the message really went out
        created_at = now()
    WHERE m.status = 'deferred'
"""
INSERT = sa.text(INSERT_ROWS)
INSERT_RETURNING = sa.text(INSERT_ROWS + " RETURNING m.id, m.idempotency_key, m.status, m.reason, m.retry_at")

QUEUED_AMONG = sa.text("""
    SELECT id, idempotency_key, profile_id FROM messages
    WHERE idempotency_key = ANY(CAST(:keys AS text[])) AND status = 'queued'
""")


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


@dataclass(frozen=True)
class UnsubscribeLinks:
    base_url: str
    secret: str


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

    @property
    def marketing(self) -> bool:
        return self.kind != "transactional"

    @property
    def wants_unsubscribe_link(self) -> bool:
        template = self.template
        shown = template is not None and any(
            "unsubscribe_url" in (text or "") for text in (template.subject, template.body, template.html))
        header = (self.marketing and self.channel == "email" and self.provider is not None
                  and not self.provider.delivers_by_recording)
        return shown or header


@dataclass(frozen=True)
class Recipient:
    idempotency_key: str
    profile_id: str


@dataclass
class Decided:
    """One recipient's ledger row as this pass decided it."""

    recipient: Recipient
    status: str
    reason: str | None = None
    address: str | None = None
    retry_at: datetime | None = None
    message: OutgoingMessage | None = None  # rendered, when status is sent/queued


@dataclass
class ChunkOutcome:
    decided: list[Decided]
    # Rows (ledger id, message) left `queued` for the provider: this pass's and any that an
    # interrupted earlier attempt recorded but never finished.
    to_send: list[tuple[int, OutgoingMessage]]
    stored: dict[str, Any]  # idempotency key -> RETURNING row (with returning=True)


async def load_template(conn: AsyncConnection, key: str) -> TemplateRow | None:
    row = (await conn.execute(TEMPLATE, {"key": key})).first()
    return TemplateRow(**row._mapping) if row else None


async def record_chunk(conn: AsyncConnection, spec: SendSpec, recipients: list[Recipient],
                       returning: bool = False) -> ChunkOutcome:
    """Decide and record every recipient's message. Run inside a transaction (`conn.begin()`);
    the caller commits, then delivers `to_send`."""
    profiles = await lock_profiles(conn, sorted({r.profile_id for r in recipients}))
    quiet = await quiet_hours_rule(conn, spec.channel) if spec.marketing else None
    address_of = ADDRESS_OF.get(spec.channel, lambda p: None)
    addresses = {pid: address_of(p) for pid, p in profiles.items()}
    blocks = await policy_blocks(
        conn, channel=spec.channel, marketing=spec.marketing, category=spec.category, topic=spec.topic,
        candidates=[(pid, address) for pid, address in addresses.items() if address])
    decided = [_decide(spec, r, profiles.get(r.profile_id), addresses.get(r.profile_id),
                       blocks.get(r.profile_id), quiet) for r in recipients]

    result = await conn.execute(INSERT_RETURNING if returning else INSERT, _insert_parameters(spec, decided))
    stored = {row.idempotency_key: row for row in result} if returning else {}

    to_send: list[tuple[int, OutgoingMessage]] = []
    if spec.provider is not None and not spec.provider.delivers_by_recording:
        rendered = {d.recipient.idempotency_key: d.message for d in decided if d.message}
        queued = (await conn.execute(QUEUED_AMONG, {"keys": [r.idempotency_key for r in recipients]})).all()
        for row in queued:
            message = rendered.get(row.idempotency_key)
            profile = profiles.get(row.profile_id)
            if message is None and profile is not None:  # recorded by an interrupted attempt
                message = compose(spec, Recipient(row.idempotency_key, row.profile_id), profile,
                                  addresses[row.profile_id])
            if message is not None:
                to_send.append((row.id, message))
    return ChunkOutcome(decided, to_send, stored)


def _decide(spec: SendSpec, recipient: Recipient, profile: dict | None, address: str | None,
            block: Block | None, quiet: QuietHoursRule | None) -> Decided:
    def verdict(status: str, reason: str | None = None, **more: Any) -> Decided:
        return Decided(recipient, status, reason, address, **more)

    if spec.template is None:
        return verdict("failed", f"template {spec.template_key!r} not found")
    if spec.provider is None:
        return verdict("failed", f"no provider for channel {spec.channel}")
    if profile is None:
        return verdict("skipped", "profile not found")
    if not address:
        return verdict("skipped", f"profile has no {spec.channel} address")
    if block and block.suppressed:
        return verdict("suppressed", f"suppressed address: {block.suppressed}")
    if block and block.unconsented:
        return verdict("suppressed", block.unconsented)
    if quiet is not None:
        tz = profile_zone(profile.get("timezone"), spec.default_timezone)
        until = quiet_until(spec.now, tz, parse_clock(quiet.start), parse_clock(quiet.end))
        if until is not None:
            where = f"quiet hours {quiet.start}-{quiet.end} {tz.key}"
            if quiet.mode == "queue":
                return verdict("deferred", f"{where}: until {until.isoformat()}", retry_at=until)
            return verdict("suppressed", where)
    if block and block.capped_by:
        return verdict("suppressed", f"typology rule {block.capped_by}")
    status = "sent" if spec.provider.delivers_by_recording else "queued"
    return verdict(status, message=compose(spec, recipient, profile, address))


def compose(spec: SendSpec, recipient: Recipient, profile: dict, address: str) -> OutgoingMessage:
    """Render the template for one profile."""
    assert spec.template is not None
    template = spec.template
    context: dict[str, Any] = {"profile": profile_context(profile), "event": spec.event}
    link = None
    # Signing costs a few µs: only when the template shows the link or a real email carries
    # it as a List-Unsubscribe header.
    if spec.wants_unsubscribe_link:
        scope = UnsubscribeScope(recipient.profile_id, spec.channel, spec.topic or ALL_TOPICS)
        link = unsubscribe_url(spec.links.base_url, spec.links.secret, scope)
        context["unsubscribe_url"] = link
    return OutgoingMessage(
        idempotency_key=recipient.idempotency_key, channel=spec.channel, to=address,
        subject=render(template.subject, context), body=render(template.body, context),
        html=render(template.html, context) if template.html else None,
        from_address=template.from_address, reply_to=template.reply_to,
        unsubscribe_url=link if spec.marketing else None, profile=context["profile"],
    )


def _insert_parameters(spec: SendSpec, decided: list[Decided]) -> dict[str, Any]:
    return {
        "keys": [d.recipient.idempotency_key for d in decided],
        "profile_ids": [d.recipient.profile_id for d in decided],
        "addresses": [d.address for d in decided],
        "subjects": [d.message.subject if d.message else None for d in decided],
        "bodies": [d.message.body if d.message else None for d in decided],
        "statuses": [d.status for d in decided],
        "reasons": [d.reason for d in decided],
        "retry_ats": [d.retry_at for d in decided],
        "channel": spec.channel, "template": spec.template_key,
        "provider": spec.provider.name if spec.provider else None,
        "source_kind": spec.source_kind, "source_key": spec.source_key,
        "source_version": spec.source_version, "source_node": spec.source_node,
        "kind": spec.kind, "category": spec.category, "topic": spec.topic,
    }

