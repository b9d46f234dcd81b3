"""CallStore: call records and jobs in MongoDB (or the embedded SecantusDB), written idempotently.

Plain pymongo only, so a real MongoDB works unchanged. Writes are upserts keyed by ``record_id``
(audio hash + pipeline version), sent as unordered bulk writes in batches, retried with
exponential backoff on transient errors, and spooled to a local file when the database stays
down (see ``spool.py``); the spool is replayed automatically once a write gets through again, or
on demand with ``python -m pipeline.store replay-spool``.

A write never replaces a newer version of a record: the upsert matches only a stored document
whose ``created_at`` is not later than the incoming one, so a spooled write replayed after the
call was re-processed is reported as ``stale`` and dropped, not applied over the newer data.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from types import TracebackType
from typing import Any, TypeVar
from uuid import uuid4

from pymongo import ASCENDING, DESCENDING, IndexModel, MongoClient, ReplaceOne, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    InvalidDocument,
    OperationFailure,
    PyMongoError,
)

from pipeline.records import CallRecord
from pipeline.settings import Settings
from pipeline.store import documents as D
from pipeline.store.embedded import EmbeddedMongo
from pipeline.store.spool import ReplayReport, Spool
from pipeline.store.upgrades import record_from_stored, upgrade_job_document

log = logging.getLogger(__name__)

T = TypeVar("T")
Doc = dict[str, Any]

# Server error codes that mean "try again": shutdown, step-down, not primary, network trouble.
TRANSIENT_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})
DONE_STATUSES = ("ok", "empty")


class StoreUnavailable(RuntimeError):
    """The database did not answer after every retry."""


def is_transient(err: BaseException) -> bool:
    if isinstance(err, ConnectionFailure):  # AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError
        return True
    if isinstance(err, BulkWriteError):
        return False
    if isinstance(err, OperationFailure):
        return err.code in TRANSIENT_CODES or err.has_error_label("RetryableWriteError")
    return False


def retry_transient(what: str, fn: Callable[[], T], *, attempts: int, backoff_s: float, uri: str) -> T:
    """``fn()``, retried with exponential backoff (and jitter) on transient database errors.

    Other errors are raised at once; StoreUnavailable, naming ``what`` and the server, when the
    transient ones persist. The one retry loop of the store (calls, jobs, corrections).
    """
    last: BaseException | None = None
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except PyMongoError as err:
            if not is_transient(err):
                raise
            last = err
            if attempt == attempts:
                break
            delay = backoff_s * 2 ** (attempt - 1) * (1 + 0.25 * random.random())
            log.warning("%s: database error (%s), retry %d/%d in %.2f s", what, err, attempt, attempts - 1, delay)
            time.sleep(delay)
    raise StoreUnavailable(
        f"{what}: the database at {uri} did not answer after {attempts} attempts "
        f"({type(last).__name__}: {str(last).split(' (configured timeouts')[0][:200]}). "
        "Is it running and reachable?"
    ) from last


def redact_uri(uri: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", uri)


@dataclass
class WriteResult:
    """What happened to each record of an ``upsert_records`` call."""

    inserted: int = 0
    updated: int = 0
    spooled: int = 0
    stale: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    customer_keys: set[str] = field(default_factory=set)

    @property
    def written(self) -> int:
        return self.inserted + self.updated

    def merge(self, other: WriteResult) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.spooled += other.spooled
        self.stale += other.stale
        self.failed.update(other.failed)
        self.customer_keys |= other.customer_keys


CALL_INDEXES = [
    IndexModel([("audio_sha256", ASCENDING), ("pipeline_version", ASCENDING)], unique=True, name="audio_pipeline"),
    IndexModel([("agent_id", ASCENDING), ("call_time", DESCENDING)], name="agent_time"),
    IndexModel([("customer_key", ASCENDING), ("call_time", ASCENDING)], name="customer_time"),
    IndexModel([("customer_phone_digits", ASCENDING), ("call_time", ASCENDING)], name="phone_time"),
    IndexModel([("customer_id", ASCENDING)], name="customer_id"),
    IndexModel([("call_time", DESCENDING)], name="call_time"),
    IndexModel([("category", ASCENDING)], name="category"),
    IndexModel([("flags", ASCENDING)], name="flags"),
    IndexModel([("callback_due", ASCENDING)], name="callback_due"),
    IndexModel([("callback_status", ASCENDING)], name="callback_status"),
    IndexModel([("job_id", ASCENDING)], name="job_id"),
    IndexModel([("schema_version", ASCENDING), ("store_layout", ASCENDING)], name="versions"),
]
JOB_INDEXES = [
    IndexModel([("created_at", DESCENDING)], name="created_at"),
    IndexModel([("status", ASCENDING)], name="status"),
]
JOB_FILE_INDEXES = [
    IndexModel([("job_id", ASCENDING), ("status", ASCENDING)], name="job_status"),
    IndexModel([("record_id", ASCENDING)], name="record_id"),
]
# Reviewer corrections: one record's corrections in order, and the newest overall (change detection).
CORRECTION_INDEXES = [
    IndexModel([("record_id", ASCENDING), ("at", ASCENDING)], name="record_at"),
    IndexModel([("at", DESCENDING)], name="at"),
]


class CallStore:
    """Call records and jobs. ``connect()`` first (or use ``with CallStore(settings) as store``).

    One CallStore per process: it owns the pymongo client (thread-safe, pooled) and, when no URI is
    configured, the embedded server it started.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.options = settings.store
        self.spool = Spool(settings.spool_dir)
        self._client: MongoClient[Doc] | None = None
        self._db: Database[Doc] | None = None
        self._embedded: EmbeddedMongo | None = None
        self._uri: str | None = None
        self._down_until = 0.0
        self._spooled_here = False
        self._indexes_ready = False

    # ------------------------------------------------------------------ lifecycle

    def connect(self) -> CallStore:
        if self._client is not None:
            return self
        uri = self.options.mongo_uri
        if not uri:
            self._embedded = EmbeddedMongo(
                self.settings.store_data_dir,
                port=self.options.embedded_port,
                start_timeout_s=self.options.embedded_start_timeout_s,
                sync_on_commit=self.options.embedded_sync_on_commit,
            )
            uri = self._embedded.start()
        self._uri = uri
        timeout_ms = self.options.server_timeout_ms
        self._client = MongoClient(
            uri,
            tz_aware=True,
            appname="callaudit",
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            # Generous: big aggregations on a slow embedded server must not look like an outage.
            socketTimeoutMS=max(timeout_ms, 120_000),
        )
        self._db = self._client.get_default_database(default=self.options.database)
        try:
            self.ensure_indexes()
        except StoreUnavailable as err:
            # Start anyway: writes go to the spool until the database answers; indexes follow then.
            log.warning("%s; results will be spooled until it is back", err)
            self._enter_outage()
        else:
            if self.options.auto_replay and self.spool.files():
                self._replay_quietly()
        return self

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None
        self._db = None
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None

    def __enter__(self) -> CallStore:
        return self.connect()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def uri(self) -> str:
        """The server in use, credentials hidden (for messages and logs)."""
        return redact_uri(self._uri) if self._uri else "(not connected)"

    @property
    def connection_uri(self) -> str | None:
        """The full URI, to hand to worker processes (e.g. Ray actors) so they use this same server."""
        return self._uri

    @property
    def db(self) -> Database[Doc]:
        if self._db is None:
            raise RuntimeError("CallStore is not connected: call connect() first (or use it in a with-block)")
        return self._db

    @property
    def calls(self) -> Collection[Doc]:
        return self.db[D.CALLS]

    @property
    def jobs(self) -> Collection[Doc]:
        return self.db[D.JOBS]

    @property
    def job_files(self) -> Collection[Doc]:
        return self.db[D.JOB_FILES]

    def ensure_indexes(self) -> None:
        for collection, indexes in (
            (self.calls, CALL_INDEXES),
            (self.jobs, JOB_INDEXES),
            (self.job_files, JOB_FILE_INDEXES),
            (self.db[D.CORRECTIONS], CORRECTION_INDEXES),
        ):
            for index in indexes:
                self._create_index(collection, index)
        self._indexes_ready = True

    def _create_index(self, collection: Collection[Doc], index: IndexModel) -> None:
        try:
            self.retry(f"create index {index.document['name']}", lambda: collection.create_indexes([index]))
        except OperationFailure as err:
            # An index of that name or keys made by hand or an older version: keep it, say so.
            log.warning("index %s on %s left as it is: %s", index.document["name"], collection.name, err)

    # ------------------------------------------------------------------ retries and outage

    def retry(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()``, retried with exponential backoff on transient errors; StoreUnavailable when they persist."""
        return retry_transient(
            what, fn, attempts=self.options.retry_attempts, backoff_s=self.options.retry_backoff_s, uri=self.uri
        )

    def _enter_outage(self) -> None:
        self._down_until = time.monotonic() + self.options.outage_cooldown_s

    def _in_outage(self) -> bool:
        return time.monotonic() < self._down_until

    @property
    def available(self) -> bool:
        """False while the store is in an outage cool-down (writes go straight to the spool)."""
        return not self._in_outage()

    def _after_success(self) -> None:
        if not self._indexes_ready:
            try:
                self.ensure_indexes()
            except StoreUnavailable:
                return
        if self._spooled_here and self.options.auto_replay:
            self._spooled_here = False
            self._replay_quietly()

    def _replay_quietly(self) -> None:
        try:
            report = self.replay_spool()
        except StoreUnavailable:
            self._spooled_here = True
            return
        if report.calls or report.ops:
            log.info("replayed %d spooled record(s) and %d job update(s)", report.calls, report.ops)

    # ------------------------------------------------------------------ call records

    def upsert_record(self, record: CallRecord, *, job_id: str | None = None) -> WriteResult:
        return self.upsert_records([record], job_id=job_id)

    def upsert_records(self, records: Sequence[CallRecord], *, job_id: str | None = None) -> WriteResult:
        """Insert or replace records by record_id, in bulk batches; spool what the database cannot take."""
        result = WriteResult()
        now = datetime.now(timezone.utc)
        size = self.options.write_batch_size
        for start in range(0, len(records), size):
            docs = [
                D.to_document(r, job_id=job_id, now=now, default_due_hours=self.options.callback_default_due_hours)
                for r in records[start : start + size]
            ]
            result.merge(self._write_or_spool_calls(docs))
        return result

    def _write_or_spool_calls(self, docs: list[Doc]) -> WriteResult:
        if not self._in_outage():
            try:
                chunk = self._write_calls(docs)
            except StoreUnavailable as err:
                log.error("%s; spooling %d record(s) to %s", err, len(docs), self.spool.directory)
                self._enter_outage()
            else:
                self._after_success()
                return chunk
        self.spool.append([{"kind": "call", "doc": doc} for doc in docs])
        self._spooled_here = True
        return WriteResult(spooled=len(docs), customer_keys=D.customer_keys(docs))

    def _write_calls(self, docs: list[Doc]) -> WriteResult:
        """One bulk upsert; raises StoreUnavailable if the database stays unreachable."""
        result = WriteResult(customer_keys=D.customer_keys(docs))
        by_id = {d["_id"]: d for d in docs}  # a batch naming a record twice keeps the last version
        projection = {
            "first_stored_at": 1,
            "callback_promised": 1,
            "callback_due": 1,
            "callback_window_end": 1,
            **dict.fromkeys(D.CALLBACK_FIELDS, 1),
        }
        stored = self.retry(
            "read stored records",
            lambda: {d["_id"]: d for d in self.calls.find({"_id": {"$in": list(by_id)}}, projection)},
        )
        ops = {rid: self._replace_op(D.carry_over(doc, stored.get(rid))) for rid, doc in by_id.items()}
        order = list(ops)
        try:
            res = self.retry("write call records", lambda: self.calls.bulk_write(list(ops.values()), ordered=False))
            result.inserted, result.updated = res.upserted_count, res.matched_count
            return result
        except BulkWriteError as err:
            details = err.details
            result.inserted, result.updated = details.get("nUpserted", 0), details.get("nMatched", 0)
            errors = details.get("writeErrors", [])
        except InvalidDocument:
            # The driver refused one document before sending (too large, or not encodable): write the
            # batch one by one so the others still get in and the culprit is named.
            errors = []
            for index, rid in enumerate(order):
                try:
                    single = self.retry("write call record", partial(self.calls.bulk_write, [ops[rid]]))
                except BulkWriteError as err:
                    errors += [{**e, "index": index} for e in err.details.get("writeErrors", [])]
                except InvalidDocument as err:
                    errors.append({"index": index, "code": -1, "errmsg": f"{type(err).__name__}: {err}"})
                else:
                    result.inserted += single.upserted_count
                    result.updated += single.matched_count
        for error in errors:
            rid = order[error["index"]]
            if error.get("code") == 11000:
                outcome = self._settle_conflict(by_id[rid], ops[rid])
                if outcome == "stale":
                    result.stale.append(rid)
                    log.info("record %s not written: a newer version is already stored", rid)
                    continue
                if isinstance(outcome, tuple):
                    result.inserted += outcome[0]
                    result.updated += outcome[1]
                    continue
                message = outcome
            else:
                message = f"the database refused the record: {str(error.get('errmsg', 'unknown error'))[:300]}"
            result.failed[rid] = message
            log.error("record %s not written: %s", rid, message)
        if result.failed:
            # Retrying cannot help these, so they are not spooled; keep them for a person instead.
            kept = self.spool.set_aside(
                [{"kind": "call", "reason": result.failed[rid], "doc": by_id[rid]} for rid in result.failed]
            )
            log.error("%d refused record(s) kept in %s", len(result.failed), kept)
        return result

    def _settle_conflict(self, doc: Doc, op: ReplaceOne[Doc]) -> str | tuple[int, int]:
        """A duplicate-key error on an upsert: "stale", (inserted, updated) after one more try, or why not.

        The stale-write guard turns "a newer version is stored" into a duplicate key, but so does a
        concurrent insert of the same record by another worker; which index reports it differs between
        servers, so look at what is stored instead of at the error.
        """
        key = {"audio_sha256": doc["audio_sha256"], "pipeline_version": doc["pipeline_version"]}
        holder = self.retry("read a conflicting record", lambda: self.calls.find_one(key, {"created_at": 1}))
        if holder is None:
            holder = self.retry("read a conflicting record", lambda: self.calls.find_one({"_id": doc["_id"]}))
        if holder is not None and holder["_id"] != doc["_id"]:
            return (
                f"record {holder['_id']} already holds this audio and pipeline version under another id; "
                "run 'python -m pipeline.store migrate' or delete one of them"
            )
        stored_at = D.utc(holder.get("created_at")) if holder is not None else None
        if stored_at is not None and stored_at > doc["created_at"]:
            return "stale"
        try:
            single = self.retry("write call record", partial(self.calls.bulk_write, [op]))
        except BulkWriteError as err:
            first = (err.details.get("writeErrors") or [{}])[0]
            return f"the database refused the record: {str(first.get('errmsg', err))[:300]}"
        return single.upserted_count, single.matched_count

    @staticmethod
    def _replace_op(doc: Doc) -> ReplaceOne[Doc]:
        return ReplaceOne({"_id": doc["_id"], "created_at": {"$lte": doc["created_at"]}}, doc, upsert=True)

    def has_record(self, audio_sha256: str, pipeline_version: str, *, statuses: Sequence[str] = DONE_STATUSES) -> bool:
        """Whether this audio was already processed by this pipeline version (failed records do not count)."""
        query = {"audio_sha256": audio_sha256, "pipeline_version": pipeline_version, "status": {"$in": list(statuses)}}
        return self.retry("look up a record", lambda: self.calls.count_documents(query, limit=1)) > 0

    def known_audio(
        self, audio_hashes: Iterable[str], pipeline_version: str, *, statuses: Sequence[str] = DONE_STATUSES
    ) -> set[str]:
        """The subset of ``audio_hashes`` already processed by this pipeline version (one query)."""
        hashes = list(set(audio_hashes))
        query = {
            "audio_sha256": {"$in": hashes},
            "pipeline_version": pipeline_version,
            "status": {"$in": list(statuses)},
        }
        return self.retry(
            "look up records", lambda: {d["audio_sha256"] for d in self.calls.find(query, {"audio_sha256": 1})}
        )

    def get_document(self, record_id: str) -> Doc | None:
        return self.retry("read a record", lambda: self.calls.find_one({"_id": record_id}))

    def get_record(self, record_id: str) -> CallRecord | None:
        """The record, upgraded from an older schema version if need be."""
        doc = self.get_document(record_id)
        return record_from_stored(doc) if doc is not None else None

    def delete_record(self, record_id: str) -> bool:
        return self.retry("delete a record", lambda: self.calls.delete_one({"_id": record_id})).deleted_count == 1

    # ------------------------------------------------------------------ jobs

    def create_job(
        self, kind: str, inputs: Sequence[str] | str, *, job_id: str | None = None, meta: dict[str, Any] | None = None
    ) -> str:
        """A new job (batch run or upload); the id is made here so the job can be spooled if need be."""
        job_id = job_id or f"{kind}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid4().hex[:8]}"
        listed = [inputs] if isinstance(inputs, str) else list(inputs)
        now = datetime.now(timezone.utc)
        doc = {
            "schema_version": D.JOB_SCHEMA_VERSION,
            "kind": kind,
            "status": "running",
            # Inputs are for people reading the job: the per-file truth is in job_files.
            "inputs": listed[:1000],
            "inputs_count": len(listed),
            "meta": meta or {},
            "created_at": now,
            "updated_at": now,
            "finished_at": None,
            "summary": {},
        }
        self._job_op(D.JOBS, {"_id": job_id}, {"$setOnInsert": doc}, "create a job")
        return job_id

    def update_job_file(
        self,
        job_id: str,
        file: str,
        status: str,
        reason: str | None = None,
        record_id: str | None = None,
    ) -> None:
        self.update_job_files(job_id, [(file, status, reason, record_id)])

    def update_job_files(self, job_id: str, updates: Sequence[tuple[str, str, str | None, str | None]]) -> None:
        """Per-file status for many files at once: ``(file, status, reason, record_id)`` each."""
        now = datetime.now(timezone.utc)
        ops = [
            (
                # The time guard keeps a late replay of an older status from overwriting a newer one.
                {"_id": D.job_file_id(job_id, file), "updated_at": {"$lte": now}},
                {
                    "$set": {"status": status, "reason": reason, "record_id": record_id, "updated_at": now},
                    "$setOnInsert": {"schema_version": D.JOB_SCHEMA_VERSION, "job_id": job_id, "file": file},
                },
            )
            for file, status, reason, record_id in updates
        ]
        self._job_ops(D.JOB_FILES, ops, "update job files")

    def finish_job(self, job_id: str, summary: dict[str, Any], *, status: str = "finished") -> None:
        now = datetime.now(timezone.utc)
        self._job_op(
            D.JOBS,
            {"_id": job_id, "updated_at": {"$lte": now}},
            {
                "$set": {"status": status, "summary": summary, "finished_at": now, "updated_at": now},
                "$setOnInsert": {"schema_version": D.JOB_SCHEMA_VERSION, "kind": "unknown", "created_at": now},
            },
            "finish a job",
        )

    def get_job(self, job_id: str, *, files: bool = True, file_limit: int = 1000) -> Doc | None:
        """The job, its per-status file counts and (up to ``file_limit``) its files."""
        job = self.retry("read a job", lambda: self.jobs.find_one({"_id": job_id}))
        if job is None:
            return None
        job = upgrade_job_document(job)
        pipeline: list[Doc] = [{"$match": {"job_id": job_id}}, {"$group": {"_id": "$status", "n": {"$sum": 1}}}]
        counts = self.retry("count job files", lambda: list(self.job_files.aggregate(pipeline)))
        job["counts"] = {str(c["_id"]): int(c["n"]) for c in counts}
        job["files_total"] = sum(job["counts"].values())
        if files:
            cursor = lambda: list(  # noqa: E731
                self.job_files.find({"job_id": job_id}, {"_id": 0, "schema_version": 0})
                .sort([("file", ASCENDING)])
                .limit(file_limit)
            )
            job["files"] = self.retry("read job files", cursor)
        return job

    def list_jobs(self, *, limit: int = 50, kind: str | None = None) -> list[Doc]:
        query = {"kind": kind} if kind else {}
        return self.retry(
            "list jobs",
            lambda: [
                upgrade_job_document(j) for j in self.jobs.find(query).sort([("created_at", DESCENDING)]).limit(limit)
            ],
        )

    def _job_op(self, collection: str, filter: Doc, update: Doc, what: str) -> None:
        self._job_ops(collection, [(filter, update)], what)

    def _job_ops(self, collection: str, ops: Sequence[tuple[Doc, Doc]], what: str) -> None:
        if not ops:
            return
        if not self._in_outage():
            try:
                self._apply_ops(collection, ops)
            except StoreUnavailable as err:
                log.error("%s; spooling %d job update(s) to %s", err, len(ops), self.spool.directory)
                self._enter_outage()
            else:
                self._after_success()
                return
        self.spool.append(
            [{"kind": "op", "collection": collection, "filter": f, "update": u, "upsert": True} for f, u in ops]
        )
        self._spooled_here = True

    def _apply_ops(self, collection: str, ops: Sequence[tuple[Doc, Doc]]) -> int:
        """Idempotent upserts; returns how many were moot because a newer version was already stored."""
        requests = [UpdateOne(f, u, upsert=True) for f, u in ops]
        try:
            self.retry("write job updates", lambda: self.db[collection].bulk_write(requests, ordered=False))
        except BulkWriteError as err:
            errors = err.details.get("writeErrors", [])
            # Duplicate _id means the time guard did not match: a newer update is already stored.
            refused = [e for e in errors if e.get("code") != 11000]
            for error in refused:
                log.error("job update refused by the database: %s", str(error.get("errmsg"))[:300])
            return len(errors) - len(refused)
        return 0

    # ------------------------------------------------------------------ spool

    def replay_spool(self) -> ReplayReport:
        """Write every spooled entry to the database; stops (keeping the rest) if it goes down again."""
        report = ReplayReport()
        for spool_file in self.spool.claim():
            report.files += 1
            try:
                self._replay_file(spool_file.entries, report)
            except StoreUnavailable as err:
                report.failed.append(str(err))
                report.remaining_files = len(self.spool.files())
                self._enter_outage()
                return report
            report.rejected_lines += len(spool_file.rejected)
            self.spool.done(spool_file)
        report.remaining_files = len(self.spool.files())
        return report

    def _replay_file(self, entries: list[Doc], report: ReplayReport) -> None:
        batch: list[Doc] = []

        def flush() -> None:
            if batch:
                written = self._write_calls(list(batch))
                report.calls += written.written
                report.stale += len(written.stale)
                report.failed += [f"{rid}: {why}" for rid, why in written.failed.items()]
                batch.clear()

        for entry in entries:
            if entry["kind"] == "call":
                batch.append(entry["doc"])
                if len(batch) >= self.options.write_batch_size:
                    flush()
            else:
                flush()
                moot = self._apply_ops(entry["collection"], [(entry["filter"], entry["update"])])
                report.ops += 1 - moot
                report.stale += moot
        flush()
