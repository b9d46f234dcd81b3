"""Progress people can read in a log, and the same numbers in the job document.

Every ``batch.progress_every_s`` seconds (and once at the end) one line such as::

    batch-20261206-0301-ab12cd: 1840/10000 files (1795 done, 12 failed, 33 skipped), 61.3 audio h
    in 0:42:10 = 87.2 audio h/h, about 2:28:00 left

goes to the log, and ``jobs.progress`` gets the same fields with the time they were taken (also
the heartbeat a re-run uses to tell an interrupted job from a running one). Files skipped by the
workers are counted from ``job_files``, where the workers mark them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from pipeline.store.store import CallStore, StoreUnavailable

log = logging.getLogger(__name__)


@dataclass
class Progress:
    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    audio_hours: float = 0.0
    elapsed_s: float = 0.0

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.skipped

    @property
    def audio_hours_per_hour(self) -> float:
        return self.audio_hours / (self.elapsed_s / 3600) if self.elapsed_s > 0 else 0.0

    def as_text(self, job_id: str) -> str:
        text = (
            f"{job_id}: {self.finished}/{self.total} files ({self.done} done, {self.failed} failed, "
            f"{self.skipped} skipped), {self.audio_hours:.2f} audio h in "
            f"{timedelta(seconds=round(self.elapsed_s))} = {self.audio_hours_per_hour:.1f} audio h/h"
        )
        processed = self.done + self.failed
        remaining = self.total - self.finished
        if processed and remaining > 0:
            text += f", about {timedelta(seconds=round(self.elapsed_s / processed * remaining))} left"
        return text

    def as_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = asdict(self)
        doc["audio_hours"] = round(self.audio_hours, 4)
        doc["audio_hours_per_hour"] = round(self.audio_hours_per_hour, 2)
        doc["at"] = datetime.now(timezone.utc)
        return doc


class ProgressReporter:
    """Counts what the driver sees and reports it on a timer thread, so quiet minutes still get a line."""

    def __init__(
        self,
        store: CallStore,
        job_id: str,
        total: int,
        every_s: float,
        emit: Callable[[str], None],
        skipped_so_far: int = 0,
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.every_s = every_s
        self.emit = emit
        self.progress = Progress(total=total, skipped=skipped_so_far)
        self._lock = threading.Lock()
        self._started = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"progress-{job_id}", daemon=True)

    def start(self) -> ProgressReporter:
        self._thread.start()
        return self

    def count(self, done: int = 0, failed: int = 0, audio_hours: float = 0.0) -> None:
        with self._lock:
            self.progress.done += done
            self.progress.failed += failed
            self.progress.audio_hours += audio_hours

    def report(self) -> Progress:
        """Take the numbers now, log them and write them to the job document."""
        try:
            skipped = self.store.retry(
                "count skipped files",
                lambda: self.store.job_files.count_documents({"job_id": self.job_id, "status": "skipped"}),
            )
        except StoreUnavailable:
            skipped = None
        with self._lock:
            if skipped is not None:
                self.progress.skipped = skipped
            self.progress.elapsed_s = time.perf_counter() - self._started
            snapshot = Progress(**asdict(self.progress))
        self.emit(snapshot.as_text(self.job_id))
        try:
            now = datetime.now(timezone.utc)
            self.store.retry(
                "write job progress",
                lambda: self.store.jobs.update_one(
                    {"_id": self.job_id}, {"$set": {"progress": snapshot.as_document(), "updated_at": now}}
                ),
            )
        except StoreUnavailable as err:
            log.warning("job progress not written: %s", err)
        return snapshot

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.report()
            except Exception:  # a progress line must never stop the job
                log.exception("progress report failed")

    def stop(self) -> Progress:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.every_s + 5)
        return self.report()
