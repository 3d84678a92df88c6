"""Entering profiles into journeys: shared by the event dispatcher, API entries, audience
entries and `jump` nodes, so re-entry rules and instance ids are the same everywhere."""

from dataclasses import dataclass
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from models import search_attributes as sa_keys
from models.durations import parse_signed_duration
from models.journey_definition import JourneyDefinition
from models.journey_runtime import JOURNEY_WORKFLOW, EventPayload, JourneyStart, workflow_id
from models.tables import Journey, JourneyInstance, JourneyVersion


@dataclass(frozen=True)
class LiveJourney:
    """A journey as the dispatcher sees it: its newest open version, whether it takes new
    entries (live, not paused), and the events any of its running versions listen for."""

    key: str
    version: int
    definition: JourneyDefinition
    accepts_entries: bool = True
    listened: frozenset[str] = frozenset()


class LiveJourneys:
    """Reads open journeys (live or paused; live and closed versions), caching definitions."""

    def __init__(self) -> None:
        self._definitions: dict[tuple[str, int], JourneyDefinition] = {}

    async def all(self, conn: AsyncConnection, key: str | None = None) -> list[LiveJourney]:
        query = (sa.select(JourneyVersion.journey_key, JourneyVersion.version, JourneyVersion.status,
                           Journey.status.label("journey_status"))
                 .join(Journey, Journey.key == JourneyVersion.journey_key)
                 .where(JourneyVersion.status.in_(["live", "closed"]), Journey.status.in_(["live", "paused"]))
                 .order_by(JourneyVersion.journey_key, JourneyVersion.version))
        if key is not None:
            query = query.where(JourneyVersion.journey_key == key)
        versions: dict[str, list] = {}
        for row in (await conn.execute(query)).all():
            versions.setdefault(row.journey_key, []).append(row)
        journeys = []
        for journey_key, rows in versions.items():
            definitions = [await self._definition(conn, journey_key, r.version) for r in rows]
            newest = rows[-1]
            # Closed versions still have running instances that wait for their own events.
            listened = frozenset().union(*(d.listened_events() for d in definitions))
            journeys.append(LiveJourney(
                journey_key, newest.version, definitions[-1],
                accepts_entries=newest.status == "live" and newest.journey_status == "live",
                listened=listened))
        return journeys

    async def _definition(self, conn: AsyncConnection, key: str, version: int) -> JourneyDefinition:
        definition = self._definitions.get((key, version))
        if definition is None:
            raw = (await conn.execute(sa.select(JourneyVersion.definition).where(
                JourneyVersion.journey_key == key, JourneyVersion.version == version))).scalar_one()
            definition = self._definitions[(key, version)] = JourneyDefinition.model_validate(raw)
        return definition


def entry_key_of(definition: JourneyDefinition, event: EventPayload | None) -> str | None:
    """The instance key for keyed event entries ('' when unkeyed); None if the event lacks it."""
    path = getattr(definition.entry, "key", None)
    if not path:
        return ""
    value: object = {"properties": event.properties} if event else {}
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


async def reentry_blocked(conn: AsyncConnection, journey: LiveJourney,
                          candidates: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """(profile_id, entry_key) pairs the journey's re-entry rule keeps out right now.

    `never`: any earlier instance. `after_exit`: an instance that ended less than `wait` ago.
    A running instance is not "blocked": the entry reaches it as an ordinary event instead.
    """
    if not candidates:
        return set()
    rule = journey.definition.reentry
    query = sa.select(JourneyInstance.profile_id, JourneyInstance.entry_key).where(
        JourneyInstance.journey_key == journey.key,
        sa.tuple_(JourneyInstance.profile_id, JourneyInstance.entry_key).in_(list(candidates)),
        JourneyInstance.ended_at.is_not(None),
    )
    if rule.mode == "after_exit":
        query = query.where(JourneyInstance.ended_at > sa.func.now() - parse_signed_duration(rule.wait))
    return {(row.profile_id, row.entry_key) for row in (await conn.execute(query)).all()}


def api_entry_event(journey_key: str) -> str:
    """Inbox event name of an API entry; '$' cannot appear in user event names."""
    return f"$entry:{journey_key}"


async def enter(client: Client, task_queue: str, journey: LiveJourney, profile_id: str,
                event: EventPayload | None, entry_key: str = "") -> None:
    """Start the instance, or hand the event to the running one (signal-with-start)."""
    start = JourneyStart(journey_key=journey.key, version=journey.version, profile_id=profile_id,
                         entry_event=event, entry_key=entry_key)
    signal_args = [event] if event else []
    await client.start_workflow(
        JOURNEY_WORKFLOW, start,
        id=workflow_id(journey.key, profile_id, entry_key), task_queue=task_queue,
        start_signal="event" if event else None, start_signal_args=signal_args,
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(sa_keys.SOJOURN_KIND, "journey"),
            SearchAttributePair(sa_keys.JOURNEY_KEY, journey.key),
            SearchAttributePair(sa_keys.JOURNEY_VERSION, journey.version),
            SearchAttributePair(sa_keys.PROFILE_ID, profile_id),
        ]),
    )
