"""The FastAPI application: a thin layer over Postgres and Temporal."""

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api.deps import require_api_key
from api.json_guard import reject_unstorable_json
from api.errors import install_error_handlers
from api.journey_simulator import simulator
from api.routes import audiences, dataset_rows, datasets, events, health, journeys, messages, profiles, templates
from api.routes import (delivery_callbacks, inbox, quiet_hours, subscriptions, suppressions, topics,
                        typology_rules, unsubscribe)
from models.database import make_engine
from models.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.settings = settings
        app.state.engine = make_engine(settings)
        app.state.temporal = None
        yield
        await simulator.close()
        await app.state.engine.dispose()

    app = FastAPI(title="Sojourn", version="0.1.0", lifespan=lifespan,
                  description="Durable customer journeys and messaging on Temporal.")
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(unsubscribe.router)  # public: the signed token is the authorisation
    protected = [Depends(require_api_key), Depends(reject_unstorable_json)]
    for module in (profiles, events, templates, journeys, messages, datasets, dataset_rows, audiences,
                   subscriptions, topics, suppressions, typology_rules, quiet_hours, inbox, delivery_callbacks):
        app.include_router(module.router, dependencies=protected)
    return app
