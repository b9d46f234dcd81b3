"""What the batch job already finished, looked up without reading audio.

Two keys, cheapest first:

* the **fingerprint** of an input (URI + size + modification time, from the listing): the
  ``batch_sources`` collection maps it to the record stored for it, so a re-run of a night's
  prefix skips finished objects from the listing alone, on the driver, with no byte read;
* the **audio hash** (the record's idempotency key), computed by the worker that downloads the
  bytes to decode them: an object copied under another name, or rewritten with the same audio, is
  skipped there, before any model runs.

Either way a record counts as finished only while ``calls`` holds it for this pipeline version
with status ok/empty (failed calls are retried).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from functools import partial
from typing import Any

from pymongo.collection import Collection

from pipeline import PIPELINE_VERSION
from pipeline.records import make_record_id
from pipeline.settings import Settings
from pipeline.store.store import DONE_STATUSES, CallStore, StoreUnavailable

log = logging.getLogger(__name__)
Doc = dict[str, Any]

SOURCES = "batch_sources"
# Inputs per lookup query. Small on purpose: the embedded server (SecantusDB) matches a long $in
# list slowly (10,000 fingerprints: 3 s in chunks of 100, 30 s in chunks of 1,000, minutes in one);
# on MongoDB 100 round trips for 10,000 inputs cost a fraction of a second.
_CHUNK = 100


def _find(collection: Collection[Doc], query: Doc, fields: Doc | None = None) -> list[Doc]:
    return list(collection.find(query, fields))


class SourceLedger:
    def __init__(self, store: CallStore) -> None:
        self.store = store

    def finished(self, fingerprints: Iterable[str]) -> dict[str, str]:
        """fingerprint -> record_id for inputs whose record is stored and done for this pipeline version."""
        wanted = list(dict.fromkeys(fingerprints))
        candidates: dict[str, str] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            query = {"_id": {"$in": chunk}, "pipeline_version": PIPELINE_VERSION}
            docs = self.store.retry("look up finished inputs", partial(_find, self.store.db[SOURCES], query))
            candidates.update({d["_id"]: d["record_id"] for d in docs})
        done = self._done_records(candidates.values())
        return {fp: rid for fp, rid in candidates.items() if rid in done}

    def _done_records(self, record_ids: Iterable[str]) -> set[str]:
        ids = list(set(record_ids))
        done: set[str] = set()
        for start in range(0, len(ids), _CHUNK):
            query = {"_id": {"$in": ids[start : start + _CHUNK]}, "status": {"$in": list(DONE_STATUSES)}}
            docs = self.store.retry("look up finished records", partial(_find, self.store.calls, query, {"_id": 1}))
            done.update(d["_id"] for d in docs)
        return done

    def remember(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Record ``(fingerprint, record_id)`` for finished inputs (best effort: a miss only costs a re-read)."""
        if not pairs:
            return
        from pymongo import UpdateOne

        now = datetime.now(timezone.utc)
        ops = [
            UpdateOne(
                {"_id": fp},
                {"$set": {"record_id": rid, "pipeline_version": PIPELINE_VERSION, "updated_at": now}},
                upsert=True,
            )
            for fp, rid in pairs
        ]
        try:
            self.store.retry("remember finished inputs", lambda: self.store.db[SOURCES].bulk_write(ops, ordered=False))
        except StoreUnavailable as err:
            log.warning("finished inputs not remembered (%s): a re-run will re-read them", err)


_WORKER_STORES: dict[tuple[str, str], CallStore] = {}
_UNREACHABLE_UNTIL: dict[tuple[str, str], float] = {}


def _worker_store(settings: Settings, uri: str) -> CallStore:
    """One connection per worker process to the driver's database (Ray reuses task processes)."""
    key = (uri, settings.store.database)
    if key not in _WORKER_STORES:
        own = settings.model_copy(deep=True)
        own.store.mongo_uri = uri
        own.store.auto_replay = False  # replaying the spool is the driver's business
        _WORKER_STORES[key] = CallStore(own).connect()
    return _WORKER_STORES[key]


class WorkerSkipCheck:
    """On a worker: is this audio already stored? If so, mark the job's file skipped and say so."""

    def __init__(self, settings: Settings, store_uri: str | None, job_id: str) -> None:
        self.settings = settings
        self.store_uri = store_uri
        self.job_id = job_id

    def _store(self) -> CallStore | None:
        if not self.store_uri:
            return None
        return _worker_store(self.settings, self.store_uri)

    def skip_if_done(self, audio_sha256: str, name: str, fingerprint: str) -> bool:
        key = (self.store_uri or "", self.settings.store.database)
        if time.monotonic() < _UNREACHABLE_UNTIL.get(key, 0.0):
            return False
        try:
            store = self._store()
            if store is None or not store.known_audio([audio_sha256], PIPELINE_VERSION):
                return False
            record_id = make_record_id(audio_sha256, PIPELINE_VERSION)
            store.update_job_files(
                self.job_id, [(name, "skipped", "already processed by this pipeline version (same audio)", record_id)]
            )
            SourceLedger(store).remember([(fingerprint, record_id)])
            return True
        except Exception as err:  # the database is the driver's to worry about: process the file
            # Not asked again for a while: a worker that cannot reach the database (an embedded
            # one on another node's loopback) must not wait out a timeout per file.
            _UNREACHABLE_UNTIL[key] = time.monotonic() + 120.0
            log.warning("skip check for %s failed (%s); processing it", name, err)
            return False


def job_file_statuses(store: CallStore, job_id: str, names: Sequence[str] | None = None) -> dict[str, Any]:
    query: dict[str, Any] = {"job_id": job_id}
    if names is not None:
        query["file"] = {"$in": list(names)}
    docs = store.retry(
        "read job files", lambda: list(store.job_files.find(query, {"file": 1, "status": 1, "record_id": 1}))
    )
    return {d["file"]: d for d in docs}
