"""Everything a request handler needs, built once per ingress replica and reached through ``deps``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.save import CallWriter
from pipeline.settings import Settings
from pipeline.store.corrections import CorrectionStore, open_corrections
from pipeline.store.store import CallStore
from serve_app.errors import public_text
from serve_app.intake import UploadStore, upload_dir
from serve_app.jobs import JobTracker
from serve_app.work_queue import AnalyseFn, TranscribeFn, WorkQueue

HealthFn = Any  # async () -> dict, the Analyser's health check


@dataclass
class AppContext:
    settings: Settings
    store: CallStore
    uploads: UploadStore
    jobs: JobTracker
    work_queue: WorkQueue
    # The one save path (uploads, re-analysis, corrections), with the corrections it keeps on the calls.
    writer: CallWriter
    llm_health: HealthFn | None = None
    # Reviewer corrections (POST /calls/{id}/correction): the file, or the calls database on a cluster.
    corrections: CorrectionStore | None = None

    @classmethod
    def create(
        cls,
        settings: Settings,
        transcribe: TranscribeFn,
        analyse: AnalyseFn | None = None,
        llm_health: HealthFn | None = None,
        store: CallStore | None = None,
    ) -> AppContext:
        store = store or CallStore(settings).connect()
        uploads = UploadStore(upload_dir(settings))
        uploads.root.mkdir(parents=True, exist_ok=True)
        jobs = JobTracker(store)
        corrections = open_corrections(settings, store=store)
        writer = CallWriter(settings, store, corrections=corrections, public=public_text)
        work_queue = WorkQueue(settings, uploads, jobs, writer, transcribe, analyse)
        return cls(settings, store, uploads, jobs, work_queue, writer, llm_health, corrections)

    async def close(self) -> None:
        await self.work_queue.stop()
        self.store.close()
