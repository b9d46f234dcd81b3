"""The work queue of accepted uploads: decode here, transcribe and analyse in their deployments, save.

An upload answers 202 as soon as its files are saved and queued; workers on the ingress replica's
event loop then take each file through decode (in a thread: PyAV releases the GIL), the Transcriber
deployment, the Analyser deployment (when analysis is on), and the one save path
(``pipeline.save.CallWriter``), moving the file's status in the job as they go. The number of files
in flight per replica is bounded (``serve.max_concurrent_files``) because each holds its decoded
audio in memory; the rest wait in the queue, which is what a file's "queued" means.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pipeline import PIPELINE_VERSION
from pipeline.audio import Decoder
from pipeline.records import CallMetadata, CallRecord, make_record_id
from pipeline.save import CallWriter
from pipeline.settings import Settings
from pipeline.store.store import StoreUnavailable
from serve_app.intake import UploadStore
from serve_app.jobs import JobTracker

log = logging.getLogger(__name__)

TranscribeFn = Callable[[dict[str, object]], Awaitable[str]]
AnalyseFn = Callable[[str], Awaitable[str]]


@dataclass
class WorkItem:
    job_id: str
    file: str  # the file's name in the job (unique within it)
    sha256: str
    kind: str  # container sniffed at upload: where the bytes are kept
    metadata: CallMetadata | None = None
    # Re-analysis of a stored call: no audio work, only the Analyser.
    reanalyse: str | None = None

    def to_meta(self) -> dict[str, Any]:
        """What the job keeps about the file so a restarted app can take it up again.

        A list entry, not a mapping keyed by file name: MongoDB refuses dots in field names on update.
        """
        return {
            "file": self.file,
            "sha256": self.sha256,
            "format": self.kind,
            "metadata": self.metadata.model_dump(mode="json", exclude_none=True) if self.metadata else None,
        }


class WorkQueue:
    def __init__(
        self,
        settings: Settings,
        uploads: UploadStore,
        jobs: JobTracker,
        writer: CallWriter,
        transcribe: TranscribeFn,
        analyse: AnalyseFn | None,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.store = writer.store
        self.uploads = uploads
        self.jobs = jobs
        self.transcribe = transcribe
        self.analyse = analyse
        self.decoder = Decoder(settings)
        self._queue: asyncio.Queue[WorkItem] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._outstanding: dict[str, int] = {}

    @property
    def queued(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def _ensure_started(self) -> asyncio.Queue[WorkItem]:
        # Started on first use, on the loop that serves requests (Serve runs user code on its own loop).
        if self._queue is None:
            self._queue = asyncio.Queue()
            for i in range(self.settings.serve.max_concurrent_files):
                self._workers.append(asyncio.create_task(self._worker(), name=f"callaudit-worker-{i}"))
        return self._queue

    def submit(self, items: list[WorkItem]) -> None:
        queue = self._ensure_started()
        for item in items:
            self._outstanding[item.job_id] = self._outstanding.get(item.job_id, 0) + 1
            queue.put_nowait(item)

    async def resume(self) -> int:
        """Queue again the files of upload and re-analysis jobs left unfinished by a previous replica.

        Only safe with one ingress replica (with several, a live one may still hold them); the app
        calls it at startup in that case. Returns how many files were queued.
        """
        pending = await asyncio.to_thread(self.jobs.unfinished)
        items: list[WorkItem] = []
        for job, files in pending:
            job_id, meta = str(job["_id"]), job.get("meta") or {}
            known = {str(f.get("file")): f for f in meta.get("files") or [] if isinstance(f, dict)}
            for name in files:
                if job.get("kind") == "reanalyse":
                    items.append(WorkItem(job_id, name, "", "", reanalyse=str(meta.get("record_id", ""))))
                    continue
                info = known.get(name)
                if info is None or not self.uploads.path_for(str(info["sha256"]), str(info["format"])).exists():
                    reason = "the server restarted and the uploaded file is gone; upload it again"
                    await asyncio.to_thread(self.jobs.mark, job_id, name, "failed", reason)
                    await asyncio.to_thread(self.jobs.finish_if_done, job_id)
                    continue
                metadata = CallMetadata(**info["metadata"]) if info.get("metadata") else None
                items.append(WorkItem(job_id, name, str(info["sha256"]), str(info["format"]), metadata))
        for item in items:
            await self._mark(item, "queued", "taken up again after a server restart")
        if items:
            log.info("resuming %d unfinished file(s) from %d job(s)", len(items), len(pending))
            self.submit(items)
        return len(items)

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        self._queue = None

    async def _worker(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            item = await queue.get()
            try:
                await self._process(item)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Whatever went wrong, the file must not stay "running" forever.
                log.exception("processing %s of job %s failed", item.file, item.job_id)
                await self._mark(item, "failed", "processing failed on the server; try the upload again")
            finally:
                queue.task_done()
                await self._one_done(item.job_id)

    async def _one_done(self, job_id: str) -> None:
        left = self._outstanding.get(job_id, 1) - 1
        if left > 0:
            self._outstanding[job_id] = left
            return
        self._outstanding.pop(job_id, None)
        try:
            await asyncio.to_thread(self.jobs.finish_if_done, job_id)
        except StoreUnavailable as err:
            log.error("could not close job %s: %s", job_id, err)

    async def _mark(self, item: WorkItem, status: str, reason: str | None = None, record_id: str | None = None) -> None:
        try:
            await asyncio.to_thread(self.jobs.mark, item.job_id, item.file, status, reason, record_id)  # type: ignore[arg-type]
        except StoreUnavailable as err:
            log.error("could not update job %s: %s", item.job_id, err)

    async def _process(self, item: WorkItem) -> None:
        await self._mark(item, "running")
        if item.reanalyse is not None:
            await self._reanalyse(item)
            return
        if self.settings.serve.skip_known_audio:
            known = await asyncio.to_thread(self.store.has_record, item.sha256, PIPELINE_VERSION)
            if known:
                record_id = make_record_id(item.sha256, PIPELINE_VERSION)
                await self._mark(item, "done", "already processed: the stored result is reused", record_id)
                return
        stored = self.uploads.path_for(item.sha256, item.kind)
        data = await asyncio.to_thread(stored.read_bytes)
        state = await asyncio.to_thread(self.decoder.decode, item.file, data, item.metadata)
        del data
        if state.record.status == "failed":
            record = state.record
        else:
            # Converting a long call to 16-bit PCM takes a while: not on the event loop.
            row = await asyncio.to_thread(state.to_row)
            state.tracks = None  # the row holds the audio now; keep one copy only
            record = CallRecord.model_validate_json(await self.transcribe(row))
            del row
        record = await self._analysed(record)
        await self._save(item, record)

    async def _analysed(self, record: CallRecord) -> CallRecord:
        if self.analyse is None or record.status != "ok":
            return record
        try:
            return CallRecord.model_validate_json(await self.analyse(record.model_dump_json()))
        except Exception:
            # The transcript is kept; analysis can be re-run later (POST /calls/{id}/reanalyse).
            log.exception("analysis of %s failed", record.record_id)
            record.analysis_status = "failed"
            record.add_error("analyse", "analysis_unavailable", "the analysis service failed; re-run it later")
            return record

    async def _reanalyse(self, item: WorkItem) -> None:
        record = await asyncio.to_thread(self.store.get_record, item.reanalyse or "")
        if record is None:
            await self._mark(item, "failed", "the call no longer exists")
            return
        if self.analyse is None:
            await self._mark(item, "failed", "analysis is turned off on this server", record.record_id)
            return
        record.errors = [e for e in record.errors if e.stage != "analyse"]
        record = await self._analysed(record)
        await self._save(item, record)

    async def _save(self, item: WorkItem, record: CallRecord) -> None:
        """The one save path: upsert, reviews kept, callbacks checked, the file's status in the job."""
        await asyncio.to_thread(self.writer.save, [record], job_id=item.job_id, files=[item.file])
