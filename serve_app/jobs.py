"""Job tracking for uploads and re-analyses, kept in the store's ``jobs``/``job_files`` collections.

The batch job writes the same collections, so one ``/results/{task_id}/`` view serves both, and a
job survives a restart of the app. Per-file status, as the API reports it:

    queued   accepted, waiting for a worker
    running  being decoded, transcribed or analysed
    done     a record is stored (``record_id``); ``reason`` notes a reuse of an earlier result
    failed   no usable record: ``reason`` says why (refused at upload, undecodable audio, ...)

The batch job's own words are mapped onto these (``processing`` -> running, ``skipped`` -> done,
``missing``/``rejected`` -> failed) so clients see one vocabulary.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field

from pipeline.store.store import CallStore
from serve_app.errors import public_text

FileStatus = Literal["queued", "running", "done", "failed"]
JobStatus = Literal["queued", "running", "done", "failed"]

_FROM_STORE: dict[str, FileStatus] = {
    "queued": "queued",
    "pending": "queued",
    "running": "running",
    "processing": "running",
    "done": "done",
    "ok": "done",
    "skipped": "done",
    "failed": "failed",
    "missing": "failed",
    "rejected": "failed",
}
# Fields of a stored call shown with a finished file, enough for a results list without loading the call.
RESULT_FIELDS = (
    "file_name",
    "status",
    "duration_s",
    "language",
    "mode",
    "analysis_status",
    "category",
    "subcategory",
    "customer_sentiment",
    "flags",
    "summary",
    "agent_id",
    "customer_id",
    "call_time",
)


def file_status(stored: str | None) -> FileStatus:
    return _FROM_STORE.get((stored or "").lower(), "failed")


class FileView(BaseModel):
    file: str
    status: FileStatus
    reason: str | None = None
    record_id: str | None = None
    call_url: str | None = Field(None, description="Where the stored call is, once done")
    updated_at: datetime | None = None
    result: dict[str, Any] | None = Field(None, description="Headline fields of the stored call")


class JobIdentity(BaseModel):
    """A job's id, and the same id as ``task_id``: what the API called a job before, kept for its clients."""

    job_id: str

    @computed_field(  # type: ignore[prop-decorator]
        description="Deprecated: the same as job_id", json_schema_extra={"deprecated": True}
    )
    @property
    def task_id(self) -> str:
        return self.job_id


class JobView(JobIdentity):
    kind: str
    status: JobStatus
    created_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    files_total: int = 0
    files: list[FileView] = Field(default_factory=list)


class JobListing(JobIdentity):
    kind: str
    status: JobStatus
    created_at: datetime | None = None
    finished_at: datetime | None = None
    inputs: list[str] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)


def overall_status(counts: dict[str, int]) -> JobStatus:
    if counts.get("running"):
        return "running"
    if counts.get("queued"):
        return "running" if counts.get("done") or counts.get("failed") else "queued"
    if counts.get("done"):
        return "done"
    return "failed" if counts.get("failed") else "queued"


def job_status(job: dict[str, Any], counts: dict[str, int]) -> JobStatus:
    """The files' overall status, except that a job is only done or failed once it has been closed.

    The worker marks the last file before it closes the job (``finish_if_done`` sets ``finished_at``);
    in between, a client polling for "done" would get a job without ``finished_at`` or summary.
    """
    status = overall_status(counts)
    if status in ("done", "failed") and job.get("finished_at") is None:
        return "running"
    return status


def api_counts(store_counts: dict[str, int]) -> dict[str, int]:
    counts: dict[str, int] = {"queued": 0, "running": 0, "done": 0, "failed": 0}
    for name, n in store_counts.items():
        counts[file_status(name)] += n
    return counts


class JobTracker:
    """Create jobs, move their files through the statuses, and read them back for the API."""

    def __init__(self, store: CallStore) -> None:
        self.store = store

    def create(
        self,
        kind: str,
        files: Sequence[str],
        refused: Sequence[tuple[str, str]] = (),
        meta: dict[str, Any] | None = None,
    ) -> str:
        """A job whose ``files`` are queued and whose ``refused`` (name, reason) are failed from the start."""
        job_id = self.store.create_job(kind, [*files, *(name for name, _ in refused)], meta=meta)
        updates: list[tuple[str, str, str | None, str | None]] = [(name, "queued", None, None) for name in files]
        updates += [(name, "failed", reason, None) for name, reason in refused]
        if updates:
            self.store.update_job_files(job_id, updates)
        return job_id

    def mark(
        self, job_id: str, file: str, status: FileStatus, reason: str | None = None, record_id: str | None = None
    ) -> None:
        self.store.update_job_file(job_id, file, status, public_text(reason), record_id)

    def finish_if_done(self, job_id: str) -> bool:
        """Close the job once no file is queued or running; True if it is closed now."""
        job = self.store.get_job(job_id, files=False)
        if job is None:
            return False
        counts = api_counts(job.get("counts", {}))
        if counts["queued"] or counts["running"]:
            return False
        status = "finished" if counts["done"] else "failed"
        self.store.finish_job(job_id, {"files": counts}, status=status)
        return True

    def unfinished(
        self, kinds: Sequence[str] = ("upload", "reanalyse"), limit: int = 1000
    ) -> list[tuple[dict[str, Any], list[str]]]:
        """Open jobs of these kinds with their queued or running files; jobs with none left are closed."""
        query = {"status": "running", "kind": {"$in": list(kinds)}}
        jobs = self.store.retry("find open jobs", lambda: list(self.store.jobs.find(query).limit(limit)))
        open_statuses = [name for name, status in _FROM_STORE.items() if status in ("queued", "running")]
        out: list[tuple[dict[str, Any], list[str]]] = []

        def open_files(job_id: Any) -> list[str]:
            flt = {"job_id": job_id, "status": {"$in": open_statuses}}
            return [str(f["file"]) for f in self.store.job_files.find(flt, {"file": 1})]

        for job in jobs:
            files = self.store.retry("find open files", functools.partial(open_files, job["_id"]))
            if files:
                out.append((job, files))
            else:
                self.finish_if_done(str(job["_id"]))
        return out

    def view(self, job_id: str, *, call_url: str = "/calls/{id}", file_limit: int = 1000) -> JobView | None:
        job = self.store.get_job(job_id, files=True, file_limit=file_limit)
        if job is None:
            return None
        counts = api_counts(job.get("counts", {}))
        files = [
            FileView(
                file=str(f.get("file")),
                status=file_status(f.get("status")),
                reason=public_text(f.get("reason")),
                record_id=f.get("record_id"),
                call_url=call_url.format(id=f["record_id"]) if f.get("record_id") else None,
                updated_at=f.get("updated_at"),
            )
            for f in job.get("files", [])
        ]
        self._attach_results(files)
        return JobView(
            job_id=str(job["_id"]),
            kind=str(job.get("kind", "unknown")),
            status=job_status(job, counts),
            created_at=job.get("created_at"),
            updated_at=job.get("updated_at"),
            finished_at=job.get("finished_at"),
            counts=counts,
            files_total=int(job.get("files_total", len(files))),
            files=files,
        )

    def _attach_results(self, files: list[FileView]) -> None:
        ids = [f.record_id for f in files if f.record_id and f.status == "done"]
        if not ids:
            return
        projection = dict.fromkeys(RESULT_FIELDS, 1)
        docs = self.store.retry(
            "read job results",
            lambda: {d["_id"]: d for d in self.store.calls.find({"_id": {"$in": ids}}, projection)},
        )
        for f in files:
            doc = docs.get(f.record_id) if f.record_id else None
            if doc is not None:
                f.result = {k: doc.get(k) for k in RESULT_FIELDS}

    def recent(self, limit: int = 50, kind: str | None = None) -> list[JobListing]:
        jobs = self.store.list_jobs(limit=limit, kind=kind)
        counts = self._counts([str(job["_id"]) for job in jobs])
        return [
            JobListing(
                job_id=str(job["_id"]),
                kind=str(job.get("kind", "unknown")),
                status=job_status(job, counts.get(str(job["_id"]), api_counts({}))),
                created_at=job.get("created_at"),
                finished_at=job.get("finished_at"),
                inputs=[public_text(str(i), 200) or "" for i in job.get("inputs", [])[:20]],
                counts=counts.get(str(job["_id"]), api_counts({})),
            )
            for job in jobs
        ]

    def _counts(self, job_ids: list[str]) -> dict[str, dict[str, int]]:
        """Per-status file counts of many jobs in one aggregation."""
        if not job_ids:
            return {}
        pipeline: list[dict[str, Any]] = [
            {"$match": {"job_id": {"$in": job_ids}}},
            {"$group": {"_id": {"job": "$job_id", "status": "$status"}, "n": {"$sum": 1}}},
        ]
        rows = self.store.retry("count job files", lambda: list(self.store.job_files.aggregate(pipeline)))
        raw: dict[str, dict[str, int]] = {}
        for row in rows:
            key = row["_id"]
            raw.setdefault(str(key["job"]), {})[str(key["status"])] = int(row["n"])
        return {job: api_counts(c) for job, c in raw.items()}
