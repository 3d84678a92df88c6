"""FastAPI dependencies: database engine, Temporal client, auth."""

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from models.settings import Settings
from models.temporal_client import connect_temporal


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_engine(request: Request) -> AsyncEngine:
    return request.app.state.engine


async def get_temporal(request: Request) -> Client:
    """Connect lazily: the API accepts profiles and events even while Temporal is down."""
    state = request.app.state
    if state.temporal is None:
        try:
            state.temporal = await connect_temporal(state.settings)
        except RuntimeError as error:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"Temporal unreachable: {error}") from None
    return state.temporal


def require_api_key(request: Request) -> None:
    """One place for auth, so scoped keys can replace it later."""
    expected = request.app.state.settings.api_key
    if not expected:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid API key",
                            headers={"WWW-Authenticate": "Bearer"})


Engine = Annotated[AsyncEngine, Depends(get_engine)]
Temporal = Annotated[Client, Depends(get_temporal)]
AppSettings = Annotated[Settings, Depends(get_settings_dep)]
