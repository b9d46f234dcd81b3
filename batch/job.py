"""The Ray Data batch job: recordings → audit records in MongoDB.

    list inputs (driver: names, sizes, mtimes; no audio) → skip fingerprints already stored
      → read + hash + skip-if-stored + decode+split (tasks on the workers) → one actor pool per stage group
      (``pipeline.stage_groups``: audio, transcript on GPUs when present, analysis)
      → the driver saves each batch through the one save path (``pipeline.save.CallWriter``:
        upsert, reviews kept, callbacks of the batch's customers, job-file status).

Writing from the driver keeps each record written exactly once even when Ray retries a task
on a lost worker (a retried batch is recomputed, not re-written), and lets a database outage
spool results instead of failing the job.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from batch.fetch import UNREADABLE, fetch_and_decode
from batch.inputs import InputFile, plan_inputs
from batch.ledger import SourceLedger, job_file_statuses
from batch.progress import ProgressReporter
from batch.resume import find_interrupted, inputs_key, mark_interrupted
from pipeline.cluster import cluster_gpus, init_ray
from pipeline.records import CallRecord
from pipeline.save import CallWriter, SaveResult
from pipeline.settings import Settings
from pipeline.stage import StageChain
from pipeline.stage_groups import StageGroup, stage_groups
from pipeline.store.store import CallStore

log = logging.getLogger(__name__)


@dataclass
class JobSummary:
    job_id: str
    files: int = 0
    ok: int = 0
    empty: int = 0
    failed: int = 0
    skipped: int = 0
    rejected: int = 0
    unreadable: int = 0  # could not be read from storage (counted in failed too)
    audio_hours: float = 0.0
    wall_seconds: float = 0.0
    audio_hours_per_hour: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    analysis: dict[str, int] = field(default_factory=dict)
    callbacks: dict[str, int] = field(default_factory=dict)
    spooled: int = 0
    results: str = ""
    failures: dict[str, str] = field(default_factory=dict)

    def as_text(self) -> str:
        lines = [
            f"job {self.job_id}: {self.files} files - {self.ok} ok, {self.empty} empty, {self.failed} failed, "
            f"{self.skipped} skipped (already processed), {self.rejected} rejected inputs",
            f"audio {self.audio_hours * 60:.1f} min in {self.wall_seconds:.1f} s wall "
            f"= {self.audio_hours_per_hour:.1f} audio hours per hour",
            "stage seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in self.stage_seconds.items()),
        ]
        if self.analysis:
            lines.append("analysis: " + ", ".join(f"{k} {v}" for k, v in self.analysis.items()))
        if self.callbacks:
            lines.append("callbacks: " + ", ".join(f"{k} {v}" for k, v in self.callbacks.items()))
        if self.spooled:
            lines.append(
                f"{self.spooled} records spooled (database unreachable): run `python -m pipeline.store replay`"
            )
        for name, reason in list(self.failures.items())[:20]:
            lines.append(f"  failed: {name}: {reason}")
        lines.append(f"results: {self.results}")
        return "\n".join(lines)


def record_ids_of_job(store: CallStore, job_id: str) -> list[str]:
    docs = store.job_files.find({"job_id": job_id, "record_id": {"$ne": None}}, {"record_id": 1})
    return sorted({d["record_id"] for d in docs})


def retry_args(actor: bool, retries: int) -> dict[str, Any]:
    if actor:
        return {"max_restarts": retries, "max_task_retries": retries}
    return {"max_retries": retries}


def pool_options(group: StageGroup, settings: Settings, gpus: float) -> dict[str, Any]:
    """Ray Data ``map_batches`` arguments for one stage group's actor pool (settings.batch)."""
    from ray.data import ActorPoolStrategy

    opts = settings.batch
    sizes = {
        "audio": (opts.audio_batch_size, opts.audio_pool, opts.audio_cpus),
        "transcript": (opts.transcribe_batch_size, opts.transcribe_pool, opts.transcribe_cpus),
        "analysis": (opts.analyse_batch_size, opts.analyse_pool, opts.analyse_cpus),
    }
    batch_size, (low, high), cpus = sizes[group.name]
    options: dict[str, Any] = {
        "batch_size": batch_size,
        "compute": ActorPoolStrategy(min_size=low, max_size=high),
        "num_cpus": cpus,
        # Bounded, not Ray Data's infinite default: a file that kills its worker every time must end
        # up reported as failed instead of hanging the job.
        "ray_remote_args_fn": partial(retry_args, True, opts.max_task_retries),
    }
    if group.name == "transcript" and gpus:
        options.update(num_cpus=1.0, num_gpus=gpus)
    return options


def add_group(ds: Any, group: StageGroup, settings: Settings, gpus: float = 0.0) -> Any:
    """The dataset with one stage group run on it in its own actor pool."""
    return ds.map_batches(
        StageChain,
        fn_constructor_kwargs={"settings": settings, "stages": group.stages, "drop_audio": group.drop_audio},
        **pool_options(group, settings, gpus),
    )


# One block per file keeps a poison file's retries to itself; past this many files, blocks hold
# several (the driver then puts fewer objects in Ray's store and the plan stays seconds long).
MAX_READ_BLOCKS = 2000


def build_dataset(
    files: list[InputFile],
    settings: Settings,
    *,
    store_uri: str | None = None,
    job_id: str = "",
    reprocess: bool = False,
) -> Any:
    import ray

    opts = settings.batch
    ctx = ray.data.DataContext.get_current()
    ctx.max_errored_blocks = opts.max_errored_blocks

    gpus = opts.transcribe_gpus
    if gpus == "auto":
        gpus = 1.0 if cluster_gpus() > 0 else 0.0
    transcribe_settings = settings
    if settings.transcribe.cpu_threads == 0 and not gpus:
        transcribe_settings = settings.model_copy(deep=True)
        transcribe_settings.transcribe.cpu_threads = max(1, int(opts.transcribe_cpus))

    rows = [
        {
            "path": f.path,
            "member": f.member or "",
            "name": f.name,
            "fingerprint": f.fingerprint,
            "metadata": f.metadata.model_dump_json() if f.metadata else "",
        }
        for f in files
    ]
    ds: Any = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), MAX_READ_BLOCKS)))
    # Read, hash, skip-if-stored and decode run as plain tasks: no model held, so reading from
    # object storage scales with the cluster's CPUs and the driver never touches audio.
    ds = ds.map_batches(
        fetch_and_decode,
        fn_kwargs={"settings": settings, "store_uri": store_uri, "job_id": job_id, "reprocess": reprocess},
        batch_size=1,
        num_cpus=opts.decode_cpus,
        ray_remote_args_fn=partial(retry_args, False, opts.max_task_retries),
    )
    for group in stage_groups(settings):
        if group.name == "transcript":
            ds = add_group(ds, group, transcribe_settings, gpus)
        else:
            ds = add_group(ds, group, settings)
    return ds.select_columns(["record"])


class BatchJob:
    """One run of the batch job over a connected CallStore."""

    def __init__(self, settings: Settings, store: CallStore, on_progress: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.store = store
        self.on_progress = on_progress or (lambda message: log.info(message))

    def run(self, inputs: list[str], reprocess: bool = False) -> JobSummary:
        started = time.perf_counter()
        settings = self.settings
        job_id = f"batch-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        plan = plan_inputs(inputs, settings)
        summary = JobSummary(job_id=job_id, rejected=len(plan.rejected), failures=dict(plan.rejected))
        self._attach_metadata(plan.files)
        planned_s = time.perf_counter() - started

        # The same inputs' last job, if it never finished (driver killed, head node lost): this
        # run resumes it, and each job document says which.
        key = inputs_key(inputs)
        interrupted = find_interrupted(self.store, key)
        meta: dict[str, Any] = {"inputs": inputs, "inputs_key": key, "plan_seconds": round(planned_s, 2)}
        if interrupted:
            meta["resumes"] = interrupted
        self.store.create_job("batch", [f.name for f in plan.files] + list(plan.rejected), job_id=job_id, meta=meta)
        if interrupted:
            mark_interrupted(self.store, interrupted, resumed_by=job_id)
            self.on_progress(f"{job_id}: resumes the interrupted job {interrupted}")
        for name, reason in plan.rejected.items():
            self.store.update_job_file(job_id, name, "failed", reason=reason)

        # Inputs whose fingerprint (where + size + mtime) is already stored: skipped from the listing.
        finished = {} if reprocess else SourceLedger(self.store).finished(f.fingerprint for f in plan.files)
        todo = [f for f in plan.files if f.fingerprint not in finished]
        skipped = [f for f in plan.files if f.fingerprint in finished]
        self.store.update_job_files(
            job_id,
            [
                (f.name, "skipped", "already processed by this pipeline version", finished[f.fingerprint])
                for f in skipped
            ],
        )
        summary.files = len(plan.files)
        self.on_progress(
            f"{job_id}: {len(plan.files)} files listed in {planned_s:.1f} s: {len(todo)} to process, "
            f"{len(skipped)} already done, {summary.rejected} rejected"
        )

        progress = ProgressReporter(
            self.store, job_id, len(plan.files), settings.batch.progress_every_s, self.on_progress, len(skipped)
        ).start()
        try:
            if todo:
                self._process(job_id, todo, summary, progress, reprocess)
        finally:
            final = progress.stop()
        summary.skipped = final.skipped
        summary.wall_seconds = round(time.perf_counter() - started, 2)
        if summary.wall_seconds:
            summary.audio_hours_per_hour = round(summary.audio_hours / (summary.wall_seconds / 3600), 2)
        summary.results = f"MongoDB {self.store.uri}, database {self.settings.store.database!r}, collection 'calls'"
        self.store.finish_job(job_id, asdict(summary))
        return summary

    def _attach_metadata(self, files: list[InputFile]) -> None:
        try:
            from pipeline.metadata import MetadataResolver
        except ImportError:  # metadata patterns are optional
            return
        resolver = MetadataResolver(self.settings)
        for item in files:
            if item.metadata is None:
                item.metadata = resolver.resolve(item.name)

    def _process(
        self, job_id: str, todo: list[InputFile], summary: JobSummary, progress: ProgressReporter, reprocess: bool
    ) -> None:
        init_ray(self.settings, dashboard=True)
        self.store.update_job_files(job_id, [(f.name, "queued", None, None) for f in todo])
        ds = build_dataset(todo, self.settings, store_uri=self.store.connection_uri, job_id=job_id, reprocess=reprocess)
        by_name = {f.name: f for f in todo}
        seen: set[str] = set()
        stage_seconds: dict[str, float] = defaultdict(float)
        analysis: Counter[str] = Counter()
        callbacks: Counter[str] = Counter()
        ledger = SourceLedger(self.store)
        writer = CallWriter(self.settings, self.store)
        try:
            for batch in ds.iter_batches(batch_size=self.settings.store.write_batch_size, batch_format="numpy"):
                records = [CallRecord.model_validate_json(str(text)) for text in batch["record"]]
                # A file that could not be read has no audio, so no call to save: the job file says
                # why, and the next run reads it again.
                unreadable = [r for r in records if any(e.code == UNREADABLE for e in r.errors)]
                records = [r for r in records if not any(e.code == UNREADABLE for e in r.errors)]
                self._report_unreadable(job_id, unreadable, summary, progress)
                seen.update(r.source for r in unreadable)
                saved = writer.save(records, job_id=job_id)
                summary.spooled += saved.write.spooled
                callbacks.update(callback_counts(saved))
                for record, (name, status, reason, _) in zip(records, saved.files, strict=True):
                    seen.add(name)
                    hours = record.audio.duration_s / 3600
                    summary.audio_hours += hours
                    if status == "failed":
                        summary.failed += 1
                        summary.failures[name] = reason or "failed"
                    elif record.status == "empty":
                        summary.empty += 1
                    else:
                        summary.ok += 1
                    progress.count(done=int(status != "failed"), failed=int(status == "failed"), audio_hours=hours)
                    analysis[record.analysis_status] += 1
                    for stage in record.stages:
                        stage_seconds[stage.stage] += stage.seconds
                # Only once the call is saved: a driver killed before this line re-reads the file
                # next time, and the worker's audio-hash check skips it.
                stored = [r for r in records if r.status != "failed" and r.source in by_name]
                ledger.remember([(by_name[r.source].fingerprint, r.record_id) for r in stored])
        finally:
            writer.close()
        # Files skipped by the workers (audio already stored, marked on the job there), and files
        # whose blocks were dropped after every retry (a worker kept dying on them).
        missing = [item.name for item in todo if item.name not in seen]
        marked = job_file_statuses(self.store, job_id, missing) if missing else {}
        for name in missing:
            if marked.get(name, {}).get("status") == "skipped":
                continue
            reason = "processing failed repeatedly (worker lost); see the Ray dashboard logs"
            self.store.update_job_file(job_id, name, "failed", reason=reason)
            summary.failed += 1
            summary.failures[name] = reason
            progress.count(failed=1)
        if summary.unreadable:
            first = next(r for r in summary.failures.values() if r.startswith("cannot read"))
            self.on_progress(
                f"{job_id}: {summary.unreadable} files could not be read from where they are stored and were "
                f"not processed (nothing was written for them; run the job again once they are back). First: {first}"
            )
        summary.audio_hours = round(summary.audio_hours, 4)
        summary.stage_seconds = {k: round(v, 2) for k, v in stage_seconds.items()}
        summary.analysis = dict(analysis)
        summary.callbacks = dict(callbacks)

    def _report_unreadable(
        self, job_id: str, records: list[CallRecord], summary: JobSummary, progress: ProgressReporter
    ) -> None:
        updates: list[tuple[str, str, str | None, str | None]] = []
        for record in records:
            why = "; ".join(e.message for e in record.errors)
            updates.append((record.source, "failed", why, None))
            summary.failed += 1
            summary.unreadable += 1
            summary.failures[record.source] = why
        if updates:
            self.store.update_job_files(job_id, updates)
            progress.count(failed=len(updates))


def callback_counts(saved: SaveResult) -> dict[str, int]:
    """The callback check of one save as counts (summed over a job's batches for its summary)."""
    return {k: v for k, v in asdict(saved.callbacks).items() if isinstance(v, int)}
