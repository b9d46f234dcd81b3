"""The FastAPI app in this process: ``create_app(ctx)`` behind httpx's ASGI transport, no Ray, no sockets.

``InProcessApp`` runs the app's event loop in a thread of its own (the upload workers live on it, as
on a Serve replica) and offers a blocking client with httpx's ``get``/``post``/... signatures, so API
tests read like tests against a server. Transcription runs the real audio and transcript stage
groups in a worker thread, one batch at a time, as the Transcriber deployment does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import httpx

from pipeline.records import CallRecord
from pipeline.settings import Settings
from pipeline.stage import CallState, StageChain
from pipeline.store.store import CallStore
from serve_app.app import create_app
from serve_app.app_context import AppContext

T = TypeVar("T")


def analyser(chain: StageChain) -> Callable[[str], Coroutine[Any, Any, str]]:
    """The Analyser deployment's work on a loaded analysis group: record JSON in, record JSON out."""
    lock = threading.Lock()

    def run(record_json: str) -> str:
        with lock:
            return chain.run(CallState(record=CallRecord.model_validate_json(record_json))).record.model_dump_json()

    async def analyse(record_json: str) -> str:
        return await asyncio.to_thread(run, record_json)

    return analyse


def transcriber(chains: Sequence[StageChain]) -> Callable[[dict[str, object]], Coroutine[Any, Any, str]]:
    """The Transcriber deployment's work on loaded stage groups: a CallState row in, record JSON out."""
    lock = threading.Lock()  # stage objects are not thread-safe: one call at a time, as a replica runs them

    def run(row: dict[str, object]) -> str:
        with lock:
            states = [CallState.from_row(row)]
            for chain in chains:
                states = chain.process_many(states)
            return states[0].record.model_dump_json()

    async def transcribe(row: dict[str, object]) -> str:
        return await asyncio.to_thread(run, row)

    return transcribe


class InProcessApp:
    def __init__(
        self,
        settings: Settings,
        chains: Sequence[StageChain],
        store: CallStore | None = None,
        analysis: StageChain | None = None,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="in-process-app", daemon=True)
        self._thread.start()
        self._own_store = store is None
        self.store = store or CallStore(settings).connect()
        self.ctx = AppContext.create(
            settings,
            transcribe=transcriber(chains),
            analyse=analyser(analysis) if analysis is not None else None,
            store=self.store,
        )
        self.settings = self.ctx.settings
        self.app = create_app(self.ctx)
        self.responses: list[httpx.Response] = []
        self._client = self.call(self._open())

    async def _open(self) -> httpx.AsyncClient:
        async def keep(response: httpx.Response) -> None:
            await response.aread()
            self.responses.append(response)

        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://callaudit.test",
            timeout=60.0,
            event_hooks={"response": [keep]},
        )

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=300)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        content = kwargs.get("content")
        if isinstance(content, Iterator):
            kwargs["content"] = _aiter(content)  # a streamed (chunked) body, as a sync client sends it
        return self.call(self._client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("OPTIONS", url, **kwargs)

    def close(self) -> None:
        self.call(self._client.aclose())
        self.call(self.ctx.work_queue.stop())
        if self._own_store:
            self.store.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


async def _aiter(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
