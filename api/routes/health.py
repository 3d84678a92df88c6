from fastapi import APIRouter, Request, Response, status
from sqlalchemy import text

from api.deps import Engine
from models.temporal_client import connect_temporal

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request, engine: Engine, response: Response) -> dict:
    """Postgres and Temporal are reachable."""
    checks = {"postgres": "ok", "temporal": "ok"}
    try:
        async with engine.connect() as conn:
            await conn.execute(text("select 1"))
    except Exception as error:  # any failure means not ready; say which
        checks["postgres"] = f"error: {type(error).__name__}"
    try:
        state = request.app.state
        if state.temporal is None:
            state.temporal = await connect_temporal(state.settings)
        await state.temporal.service_client.check_health()
    except Exception as error:
        checks["temporal"] = f"error: {type(error).__name__}"
    if any(v != "ok" for v in checks.values()):
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return {"status": "ready" if response.status_code != 503 else "not ready", "checks": checks}
