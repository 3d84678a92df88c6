import sqlalchemy as sa
from fastapi import APIRouter

from api.deps import Engine
from api.journey_simulator import simulator
from models.faults import DefinitionError, Fault
from models.journey_definition import MessageNode, parse_journey
from models.simulation_schemas import SimulationRequest, SimulationResult
from models.tables import Template

router = APIRouter(tags=["journeys"])  # mounted under /v1/journeys by api/routes/journeys.py


@router.post("/simulate", response_model=SimulationResult)
async def simulate(engine: Engine, request: SimulationRequest) -> SimulationResult:
    """Run a definition (published or not) for one synthetic profile and a timeline of events
    on Temporal's time-skipping test server: the exact path, every message that would be sent
    (rendered) and when, and the final state, in seconds. Nothing is sent or stored."""
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(Template.key, Template.subject, Template.body))).all()
    templates = {r.key: {"subject": r.subject, "body": r.body} for r in rows}
    try:
        definition = parse_journey(request.definition, known_templates=set(templates))
    except DefinitionError as error:  # the definition sits under $.definition in this request
        raise DefinitionError([Fault("$.definition" + f.path[1:], f.message) for f in error.faults]) from None
    used = {n.template for n in definition.nodes.values() if isinstance(n, MessageNode)}
    return await simulator.simulate(definition, {k: templates[k] for k in used}, request)
