"""The one way a finished call is stored, whichever way in produced it.

``CallWriter.save(records, job_id=...)`` is used by the batch job, batch re-analysis, the Serve app's
uploads and re-analysis, and reviewer corrections (API and command line). For each batch it:

1. puts the reviewer's corrections back on every call that has any (``reviews kept``): a call
   re-analysed, re-processed (``--reprocess``) or processed by a new pipeline version (a new
   ``record_id`` for the same audio) keeps what a person decided, whatever the analysis did;
2. upserts the records (idempotent, stale-write guarded, spooled when the database is down:
   ``CallStore.upsert_records``);
3. re-checks the follow-up labels of the customers the batch touches (``pipeline.follow_up_check``: a call
   back about a complaint stays a Complaint) and their callbacks (``pipeline.store.callbacks``);
4. sets the job-file status of each call (done / failed, with the reason) when a job is given.

So what an export or the API reads back is what was stored, follow-up labels, callback verdicts and reviews
included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.follow_up_check import FollowUpReport, check_follow_ups
from pipeline.records import CallRecord
from pipeline.settings import Settings
from pipeline.store.callbacks import CallbackReport, verify_callbacks
from pipeline.store.store import CallStore, StoreUnavailable, WriteResult

if TYPE_CHECKING:
    from pipeline.analysis.flags import FlagConfig
    from pipeline.analysis.taxonomy import Taxonomy
    from pipeline.store.corrections import Correction, CorrectionStore

log = logging.getLogger(__name__)

SPOOLED_NOTE = "the database is down: the result waits in the spool"
STALE_NOTE = "a newer result of this call is already stored; this one was not written"
# record_id is the first 24 hex digits of the audio's SHA-256, then the pipeline version.
AUDIO_KEY_CHARS = 24

JobFileUpdate = tuple[str, str, "str | None", "str | None"]


@dataclass
class SaveResult:
    """What one ``save`` did: the write, the callback check, each job file's status, reviews kept."""

    write: WriteResult = field(default_factory=WriteResult)
    callbacks: CallbackReport = field(default_factory=CallbackReport)
    follow_ups: FollowUpReport = field(default_factory=FollowUpReport)
    files: list[JobFileUpdate] = field(default_factory=list)
    reviews_kept: list[str] = field(default_factory=list)

    @property
    def failed(self) -> dict[str, str]:
        return self.write.failed


class CallWriter:
    """Writes finished calls through the one save path. One per process that saves (driver, ingress).

    ``corrections``: the reviewer corrections to keep on the calls (default: the store the settings
    pick, opened on first use). ``public``: turns a job-file reason into what its readers may see
    (the web app shortens server paths).
    """

    def __init__(
        self,
        settings: Settings,
        store: CallStore,
        *,
        corrections: CorrectionStore | None = None,
        public: Callable[[str | None], str | None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self._corrections = corrections
        self._own_corrections = False
        self.public = public or (lambda text: text)
        self._flags: FlagConfig | None = None
        self._taxonomy_loaded: Taxonomy | None = None

    @property
    def corrections(self) -> CorrectionStore:
        if self._corrections is None:
            from pipeline.store.corrections import open_corrections

            self._corrections = open_corrections(self.settings, store=self.store)
            self._own_corrections = True
        return self._corrections

    def close(self) -> None:
        if self._own_corrections and self._corrections is not None:
            from pipeline.store.corrections import close_corrections

            close_corrections(self._corrections)
            self._corrections = None

    def save(
        self,
        records: Sequence[CallRecord],
        *,
        job_id: str | None = None,
        files: Sequence[str | None] | None = None,
    ) -> SaveResult:
        """Store ``records``; ``files`` names each one's job file (default: its source; None: no job file).

        ``job_id`` is stored on the records and, with ``files``, says which job's files to update.
        """
        result = SaveResult()
        records = list(records)
        result.reviews_kept = self.keep_reviews(records)
        result.write = self.store.upsert_records(records, job_id=job_id)
        result.follow_ups = self._check_follow_ups(result.write)
        result.callbacks = self._check_callbacks(result.write)
        if job_id is not None:
            names = list(files) if files is not None else [r.source for r in records]
            result.files = [
                self._file_status(name, record, result.write)
                for name, record in zip(names, records, strict=True)
                if name is not None
            ]
            self.store.update_job_files(job_id, result.files)
        return result

    # ------------------------------------------------------------------ reviews

    def correct(
        self, record: CallRecord, labels: Mapping[str, Any], *, reviewer: str | None = None, job_id: str | None = None
    ) -> tuple[CallRecord, SaveResult]:
        """A reviewer's correction: saved to the corrections (the classifier learns from it), then put on
        the stored call through this save path. ``job_id``: the job that made the call (kept on it).

        Raises ``StoreUnavailable`` when the correction itself cannot be saved (nothing changed then).
        """
        from pipeline.analysis.analyser import correct_record

        updated = correct_record(record, labels, self.settings, reviewer, corrections=self.corrections)
        # No job file: a correction is not a step of the job that made the call.
        return updated, self.save([updated], job_id=job_id, files=[None])

    def keep_reviews(self, records: Sequence[CallRecord]) -> list[str]:
        """Put each call's reviewer corrections on it (in place); the ids of the calls that had any.

        Corrections are found by audio, not only by record id, so a new pipeline version (a new id for
        the same recording) keeps them too; several corrections of one recording merge field by field
        in the order they were made, as for one record id.
        """
        candidates = [r for r in records if r.status != "failed" and r.audio_sha256]
        if not candidates:
            return []
        by_audio = _corrections_by_audio(self.corrections.all())
        kept: list[str] = []
        for record in candidates:
            found = by_audio.get(record.audio_sha256[:AUDIO_KEY_CHARS])
            if found:
                apply_review(record, found, self._flag_config())
                kept.append(record.record_id)
        return kept

    def _flag_config(self) -> FlagConfig:
        if self._flags is None:
            from pipeline.analysis.flags import FlagConfig

            self._flags = FlagConfig.load(self.settings.analysis.flags_file)
        return self._flags

    # ------------------------------------------------------------------ callbacks, job files

    def _check_follow_ups(self, write: WriteResult) -> FollowUpReport:
        if not write.customer_keys or not self.store.available:
            return FollowUpReport()
        try:
            return check_follow_ups(self.store, self._taxonomy(), self._flag_config(), customers=write.customer_keys)
        except StoreUnavailable as err:
            # Recomputed from the data on every check: the next save that touches these customers catches up.
            log.warning("follow-up check skipped: %s", err)
            return FollowUpReport()

    def _taxonomy(self) -> Taxonomy:
        if self._taxonomy_loaded is None:
            from pipeline.analysis.taxonomy import Taxonomy

            self._taxonomy_loaded = Taxonomy.load(self.settings.analysis.taxonomy_file)
        return self._taxonomy_loaded

    def _check_callbacks(self, write: WriteResult) -> CallbackReport:
        if not write.customer_keys or not self.store.available:
            return CallbackReport()
        try:
            return verify_callbacks(self.store, customers=write.customer_keys)
        except StoreUnavailable as err:
            # The verdicts are recomputed from the data on every check: the next one catches up.
            log.warning("callback check skipped: %s", err)
            return CallbackReport()

    def _file_status(self, name: str, record: CallRecord, write: WriteResult) -> JobFileUpdate:
        rid = record.record_id
        if rid in write.failed:
            return name, "failed", self.public(write.failed[rid]), rid
        reasons = "; ".join(e.message for e in record.errors) or None
        if record.status == "failed":
            return name, "failed", self.public(reasons or "failed"), rid
        notes = [reasons]
        if rid in write.stale:
            notes.append(STALE_NOTE)
        if write.spooled:
            notes.append(SPOOLED_NOTE)
        return name, "done", self.public("; ".join(filter(None, notes)) or None), rid


def _corrections_by_audio(corrections: Sequence[Correction]) -> dict[str, list[Correction]]:
    by_audio: dict[str, list[Correction]] = {}
    for correction in corrections:
        by_audio.setdefault(correction.record_id[:AUDIO_KEY_CHARS], []).append(correction)
    for found in by_audio.values():
        found.sort(key=lambda c: c.at)
    return by_audio


def apply_review(record: CallRecord, corrections: Sequence[Correction], flags: FlagConfig) -> CallRecord:
    """The reviewer's labels (merged in the order given, the latest per field) on ``record``, in place;
    its review flags evaluated again with them (as a correction through the API does)."""
    from pipeline.analysis.analyser import apply_correction, call_signals
    from pipeline.analysis.flags import evaluate_flags
    from pipeline.analysis_schema import Analysis

    labels: dict[str, object] = {}
    for correction in corrections:
        labels.update(correction.labels)
    latest = corrections[-1]
    if record.analysis is None:
        record.analysis = Analysis(complete=False)
    apply_correction(record.analysis, labels, reviewer=latest.reviewer, at=latest.at)
    record.analysis.flags = evaluate_flags(flags, record.analysis, call_signals(record))
    return record
