"""The FastAPI app factory and the Ray Serve application (ingress + model deployments).

``create_app(ctx)`` builds a plain FastAPI app around an ``AppContext`` (so tests and other ASGI
servers can use it too); ``Ingress`` is the Serve deployment that builds the context on each
replica, with deployment handles to the Transcriber and Analyser, and serves that app;
``build_app(settings)`` wires the three together for ``serve.run``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import pipeline
from pipeline.settings import Settings
from pipeline.store.store import StoreUnavailable
from serve_app.app_context import AppContext
from serve_app.deployments import AnalyserDeployment, TranscriberDeployment, analyser_options, transcriber_options
from serve_app.errors import install_error_handlers
from serve_app.openapi import install_openapi
from serve_app.routes import calls, health, results, stats, ui, uploads
from serve_app.routes.calls import checklist_of, taxonomy_of
from serve_app.routes.ui import STATIC_DIR

log = logging.getLogger(__name__)

# Multipart framing and the metadata fields around the file, on top of the file itself.
MULTIPART_SLACK_BYTES = 64 * 1024

DESCRIPTION = """
Audit customer-service calls: upload recordings (one file or a ZIP), follow the job, and read
transcripts by speaker, metrics, the LLM audit (sentiment, compliance, callback, category, flags)
and aggregate statistics. The web UI is at `/`.

When the server has API keys configured, send one in the `X-API-Key` header
(or `Authorization: Bearer KEY`) with every call except `/healthz` and the docs.
"""


class BodyTooLargeMiddleware:
    """413 for request bodies over the limit, judged by Content-Length before anything is read and
    by counting while the body streams in (chunked uploads have no Content-Length)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    exceeded = True
                    # Stop the body here: the parser sees its end, and the answer below replaces its own.
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._refuse(send)
                return  # whatever the app answers to a truncated body is replaced by the 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)
        if exceeded and not started:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {"detail": f"the upload is larger than the {self.limit / 1e6:.0f} MB this server accepts"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class SecurityHeadersMiddleware:
    """Headers that stop browsers from guessing content types or framing the UI."""

    HEADERS: ClassVar[list[tuple[bytes, bytes]]] = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
    ]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.HEADERS]
            await send(message)

        await self.app(scope, receive, add_headers)


def create_app(ctx: AppContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Runs on the loop that serves requests, so the workers it starts live on that loop too.
        if ctx.settings.serve.ingress_replicas == 1:
            try:
                await ctx.work_queue.resume()
            except StoreUnavailable as err:
                log.error("unfinished jobs not resumed: %s", err)
        yield
        await ctx.work_queue.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="callaudit",
        version=pipeline.__version__,
        description=DESCRIPTION,
        # Served by routes.ui from local copies of Swagger UI and ReDoc (the defaults load them from a CDN).
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    app.add_middleware(BodyTooLargeMiddleware, limit=ctx.settings.serve.max_upload_bytes + MULTIPART_SLACK_BYTES)
    if ctx.settings.serve.cors_origins:
        # Off unless origins are listed: the UI is same-origin and needs none.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=ctx.settings.serve.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type"],
        )
    app.add_middleware(SecurityHeadersMiddleware)
    for module in (ui, uploads, results, calls, stats, health):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_openapi(app, lambda: taxonomy_of(ctx.settings), lambda: checklist_of(ctx.settings))
    return app


def _remote(handle: DeploymentHandle, method: str) -> Any:
    async def call(*args: Any) -> Any:
        return await getattr(handle, method).remote(*args)

    return call


@serve.deployment(name="Ingress")
@serve.ingress()
class Ingress:
    """The HTTP front: uploads, job tracking, queries, UI. Holds no models; decoding runs here in threads."""

    def __init__(
        self, settings: Settings, transcriber: DeploymentHandle, analyser: DeploymentHandle | None = None
    ) -> None:
        logging.basicConfig(level=logging.INFO)
        self.ctx = AppContext.create(
            settings,
            transcribe=_remote(transcriber, "transcribe"),
            analyse=_remote(analyser, "analyse") if analyser is not None else None,
            llm_health=_remote(analyser, "health") if analyser is not None else None,
        )

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(self.ctx)

    def __del__(self) -> None:
        # Only the client is closed here; an embedded database is stopped by whoever started it.
        ctx = getattr(self, "ctx", None)
        if ctx is not None:
            ctx.store.close()


def build_app(settings: Settings | None = None) -> Application:
    """The Serve application: Ingress -> Transcriber (+ Analyser when analysis is on)."""
    settings = settings or Settings()
    options = settings.serve
    transcriber = TranscriberDeployment.options(**transcriber_options(settings)).bind(settings)  # type: ignore[attr-defined]
    analyser = (
        AnalyserDeployment.options(**analyser_options(settings)).bind(settings)  # type: ignore[attr-defined]
        if settings.analysis.enabled
        else None
    )
    return Ingress.options(  # type: ignore[attr-defined]
        num_replicas=options.ingress_replicas,
        ray_actor_options={"num_cpus": options.ingress_cpus},
        # Uploads return at once and queries are short; many may be in flight per replica.
        max_ongoing_requests=100,
    ).bind(settings, transcriber, analyser)


def app_builder(args: dict[str, str] | None = None) -> Application:
    """For ``serve run serve_app.app:app_builder``: settings from the environment / CALLAUDIT_CONFIG."""
    return build_app(Settings())
