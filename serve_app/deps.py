"""FastAPI dependencies (``Annotated`` aliases): the app context, settings, store, and the API-key check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from pipeline.settings import Settings
from pipeline.store.store import CallStore
from serve_app.app_context import AppContext
from serve_app.jobs import JobTracker

API_KEY_HEADER = "X-API-Key"

# auto_error=False: the check below decides, so auth can be off when no keys are configured.
_api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="One of serve.api_keys")
_bearer = HTTPBearer(auto_error=False, description="The same API key as a bearer token")


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_settings(ctx: ContextDep) -> Settings:
    return ctx.settings


def get_store(ctx: ContextDep) -> CallStore:
    return ctx.store


def get_jobs(ctx: ContextDep) -> JobTracker:
    return ctx.jobs


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[CallStore, Depends(get_store)]
JobsDep = Annotated[JobTracker, Depends(get_jobs)]


def require_api_key(
    settings: SettingsDep,
    header_key: Annotated[str | None, Depends(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless a configured key is sent; does nothing when ``serve.api_keys`` is empty.

    Settings refuse an empty key list on a non-loopback address, so "no keys" means local-only.
    """
    keys = settings.serve.api_keys
    if not keys:
        return
    given = header_key or (bearer.credentials if bearer else None)
    # compare_digest on every key: the time taken does not tell how much of a guess was right.
    if given and any(hmac.compare_digest(given.encode(), key.encode()) for key in keys):
        return
    raise HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=f"a valid API key is required: send it in the {API_KEY_HEADER} header",
        headers={"WWW-Authenticate": "Bearer"},
    )


ApiKey = Depends(require_api_key)
