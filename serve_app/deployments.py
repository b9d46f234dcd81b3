"""Model-holding Serve deployments: transcription (audio stages + turns) and LLM analysis.

Each loads its models once per replica and is called by the ingress through a deployment handle,
so the models scale apart from the HTTP front: transcription replicas take a GPU when the cluster
has one, analysis replicas hold the LLM. Replica counts or autoscaling bounds come from
``ServeSettings``.

The stage objects are not thread-safe, so each replica runs one batch at a time (Serve's
``max_concurrent_batches=1``), in a worker thread so the replica's event loop keeps answering
health checks while Whisper or the LLM work.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from ray import serve

from pipeline.cluster import cluster_gpus
from pipeline.records import CallRecord
from pipeline.settings import Settings
from pipeline.stage import CallState

log = logging.getLogger(__name__)


def _replica_gpu_ids() -> list[Any]:
    try:
        import ray

        return list(ray.get_gpu_ids())
    except Exception:  # outside Ray (tests of the class itself): decide as the stage would
        return [0] if cluster_gpus() > 0 else []


def _scaling(replicas: int, autoscaling: tuple[int, int] | None, target: float) -> dict[str, Any]:
    if autoscaling is None:
        return {"num_replicas": replicas}
    low, high = autoscaling
    return {
        "autoscaling_config": {
            "min_replicas": low,
            "max_replicas": max(high, low, 1),
            "target_ongoing_requests": target,
        }
    }


def transcriber_options(settings: Settings) -> dict[str, Any]:
    serve_opts = settings.serve
    gpus = serve_opts.transcriber_gpus
    num_gpus = (1.0 if cluster_gpus() > 0 else 0.0) if gpus == "auto" else float(gpus)
    batch = serve_opts.transcriber_batch_size
    return {
        "ray_actor_options": {"num_cpus": serve_opts.transcriber_cpus, "num_gpus": num_gpus},
        # Room for one batch being worked on and the next one filling up.
        "max_ongoing_requests": max(2, 2 * batch),
        **_scaling(
            serve_opts.transcriber_replicas, serve_opts.transcriber_autoscaling, serve_opts.target_ongoing_requests
        ),
    }


def analyser_options(settings: Settings) -> dict[str, Any]:
    serve_opts = settings.serve
    return {
        "ray_actor_options": {"num_cpus": serve_opts.analyser_cpus},
        "max_ongoing_requests": 2,
        **_scaling(serve_opts.analyser_replicas, serve_opts.analyser_autoscaling, serve_opts.target_ongoing_requests),
    }


@serve.deployment(name="Transcriber")
class TranscriberDeployment:
    """Decoded call (a CallState row: record JSON + 16-bit PCM) -> record JSON with segments, turns, metrics."""

    def __init__(self, settings: Settings) -> None:
        from pipeline.stage_groups import stage_groups

        self.settings = settings
        if settings.transcribe.device == "auto" and not _replica_gpu_ids():
            # A replica Ray gave no GPU must not grab one that CUDA can see anyway.
            settings = settings.model_copy(
                update={"transcribe": settings.transcribe.model_copy(update={"device": "cpu"})}
            )
        # Every group before analysis: the analysis group runs in its own deployment.
        self.chains = [group.chain(settings) for group in stage_groups(settings, analyse=False)]
        self.transcribe.set_max_batch_size(settings.serve.transcriber_batch_size)  # type: ignore[attr-defined]
        log.info("transcriber ready (model %s)", settings.transcribe.model)

    @serve.batch(max_batch_size=1, batch_wait_timeout_s=0.05)
    async def transcribe(self, rows: list[dict[str, Any]]) -> list[str]:
        return await asyncio.to_thread(self._run, rows)

    def _run(self, rows: list[dict[str, Any]]) -> list[str]:
        states = [CallState.from_row(row) for row in rows]
        for chain in self.chains:
            states = chain.process_many(states)
        return [state.record.model_dump_json() for state in states]

    async def ready(self) -> dict[str, Any]:
        return {"ok": True, "model": self.settings.transcribe.model}


@serve.deployment(name="Analyser")
class AnalyserDeployment:
    """Record JSON -> record JSON with its LLM audit (sentiment, compliance, callback, category, flags)."""

    def __init__(self, settings: Settings) -> None:
        from pipeline.stage_groups import analysis_group

        self.settings = settings
        self.chain = analysis_group().chain(settings) if settings.analysis.enabled else None
        self.stage = self.chain.stages[0] if self.chain is not None else None  # the Analyser, for health()
        self._lock = threading.Lock()

    def _analyse(self, record_json: str) -> str:
        record = CallRecord.model_validate_json(record_json)
        if self.chain is None:
            record.analysis_status = "skipped"
            return record.model_dump_json()
        with self._lock:  # one LLM call at a time per replica: the model is not thread-safe
            state = self.chain.run(CallState(record=record))
        return state.record.model_dump_json()

    async def analyse(self, record_json: str) -> str:
        return await asyncio.to_thread(self._analyse, record_json)

    async def health(self) -> dict[str, Any]:
        """Whether the LLM backend answers: the stage's own ``health()`` when it has one, else a probe."""
        try:
            return await asyncio.to_thread(self._health)
        except Exception as err:  # the health endpoint reports, it does not fail
            log.warning("LLM health check failed", exc_info=True)
            return {"ok": False, "detail": f"the health check failed ({type(err).__name__})"}

    def _health(self) -> dict[str, Any]:
        stage = self.stage
        if stage is None:
            return {"ok": False, "detail": "analysis is turned off"}
        own = getattr(stage, "health", None)
        if callable(own):
            result = own()
            if isinstance(result, dict):
                return {"ok": bool(result.get("ok", True)), **{k: v for k, v in result.items() if k != "ok"}}
            return {"ok": bool(result), "model": stage.model_name()}
        # Adapter for an Analyser without health(): it keeps its backend and why it has none.
        backend = getattr(stage, "backend", None)
        if backend is None:
            reason = getattr(stage, "backend_error", None) or "no LLM backend could be started"
            return {"ok": False, "detail": str(reason)[:300]}
        name = str(getattr(backend, "name", type(backend).__name__))
        info = {"backend": name, "model": stage.model_name()}
        if name == "ollama":
            from pipeline.analysis.llm import ollama_ready, used_tiers

            ready = ollama_ready(self.settings.llm, used_tiers(self.settings.llm))
            detail = "the Ollama server answers with its models" if ready else "the Ollama server does not answer"
            return {"ok": ready, "detail": detail, **info}
        # The embedded model runs inside this replica: loaded means ready.
        return {"ok": True, "detail": "model loaded in the replica", **info}
