"""Error responses people understand: always JSON ``{"detail": ...}``, never a stack trace or a server path.

Unexpected errors are logged in full on the server with an id, and the client gets only that id, so
a report can be matched to the log without exposing internals.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.store.store import StoreUnavailable
from serve_app.intake import UploadRefused

log = logging.getLogger(__name__)

# Server paths: under a usual file-system root (/home/x, /tmp/abc.wav, ...), or three or more parts
# ending in a file name; and Windows drive paths. API paths in messages ("/upload/zip/") stay.
_ROOTS = "home|tmp|work|usr|var|opt|root|etc|srv|mnt|data|private|Users|proc|run|app|lib|bin|media|nix|workspace"
_PATH = re.compile(
    rf"(?<![\w:/.])(?:/(?:{_ROOTS})(?:/[\w.@+~-]+)+/?|(?:/[\w@+~-]+){{2,}}/[\w@+~-]*\.[\w.-]+)"
    r"|\b[A-Za-z]:\\[^\s'\"]+"
)


def public_text(text: str | None, limit: int = 500) -> str | None:
    """A message safe to show a client: server paths shortened to their last part, length capped."""
    if text is None:
        return None
    cleaned = _PATH.sub(lambda m: "…/" + re.split(r"[/\\]", m.group(0).rstrip("/\\"))[-1], text)
    return cleaned[:limit]


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "request"


def validation_message(errors: list[dict[str, Any]]) -> str:
    parts = [f"{_field(e.get('loc', ()))}: {e.get('msg', 'invalid value')}" for e in errors]
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str | dict | list) else str(exc.detail)
        if isinstance(detail, str):
            detail = public_text(detail) or ""
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        return JSONResponse(
            {
                "detail": public_text(validation_message(errors)),
                "errors": [{"field": _field(e.get("loc", ())), "message": e.get("msg", "")} for e in errors],
            },
            status_code=422,
        )

    @app.exception_handler(UploadRefused)
    async def upload_refused(_: Request, exc: UploadRefused) -> JSONResponse:
        return JSONResponse({"detail": public_text(exc.detail)}, status_code=exc.status)

    @app.exception_handler(StoreUnavailable)
    async def store_down(_: Request, exc: StoreUnavailable) -> JSONResponse:
        log.error("store unavailable: %s", exc)
        return JSONResponse(
            {"detail": "the database is not answering right now; try again in a minute"},
            status_code=503,
            headers={"Retry-After": "30"},
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        log.exception("error %s on %s %s", error_id, request.method, request.url.path)
        return JSONResponse(
            {"detail": f"internal error; the server log has the details under error id {error_id}"},
            status_code=500,
        )
