"""Reviewer corrections: the record, the store interface, a JSONL file store and a MongoDB one.

``Correction``, the ``CorrectionStore`` interface (``add``, ``all``, ``get``) and the JSONL file store
live here, below the analysis that reads them and the save path that keeps them on the calls.
``MongoCorrectionStore`` keeps them in MongoDB next to the calls, so every worker of a cluster learns
from them, with the same meaning as the file: every correction is appended as its own document
(nothing is overwritten, so the history of a call's reviews stays), and ``all()``/``get()`` merge
them per call, the latest label of each field winning.

``open_corrections(settings)`` picks the store: ``analysis.corrections_store`` = ``"file"`` (JSONL under
``<home>/classifier``: one machine), ``"mongo"`` (the ``corrections`` collection in the database of
``calls``) or ``"auto"`` (mongo when ``store.mongo_uri`` is set, else the file). On a cluster every
analyser must read the same corrections, which only the database gives.

Outages: reading never fails the analysis. While the database does not answer, ``all()`` returns the
corrections read last (in memory, else the copy kept in ``<home>/classifier``), ``get()`` looks there,
a warning is logged, and the database is left alone for ``store.outage_cooldown_s``. Saving a
correction raises ``StoreUnavailable`` with the reason (the API answers 503): a reviewer's work must
not silently vanish.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from bson import ObjectId
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError

from pipeline.settings import Settings
from pipeline.store import documents as D
from pipeline.store.store import CORRECTION_INDEXES, StoreUnavailable, redact_uri, retry_transient

if TYPE_CHECKING:
    from pipeline.store.store import CallStore

log = logging.getLogger(__name__)

T = TypeVar("T")
Doc = dict[str, Any]
Retry = Callable[[str, Callable[[], Any]], Any]

_FIELDS = {"_id": 1, "record_id": 1, "labels": 1, "text": 1, "reviewer": 1, "at": 1}
_ORDER = [("at", 1), ("_id", 1)]


def classifier_dir(home: Path) -> Path:
    return Path(home) / "classifier"


# ---------------------------------------------------------------------------------------------
# Corrections: the record, the interface, the JSONL file store
# ---------------------------------------------------------------------------------------------
@dataclass
class Correction:
    record_id: str
    labels: dict[str, Any]
    text: str | None = None
    reviewer: str | None = None
    at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    def to_json(self) -> str:
        return json.dumps(self.__dict__, ensure_ascii=False, default=str)


class CorrectionStore(Protocol):
    def add(self, correction: Correction) -> None: ...

    def all(self) -> list[Correction]: ...

    def get(self, record_id: str) -> Correction | None: ...


class JsonlCorrectionStore:
    """Corrections appended to one JSONL file; the latest correction of a record wins."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def add(self, correction: Correction) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(correction.to_json() + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def all(self) -> list[Correction]:
        if not self.path.exists():
            return []
        latest: dict[str, Correction] = {}
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a crash; everything before it is good
            previous = latest.get(data["record_id"])
            labels = {**(previous.labels if previous else {}), **data.get("labels", {})}
            latest[data["record_id"]] = Correction(data["record_id"], labels, data.get("text") or (
                previous.text if previous else None), data.get("reviewer"), data.get("at", ""))
        return list(latest.values())

    def get(self, record_id: str) -> Correction | None:
        return next((c for c in self.all() if c.record_id == record_id), None)


def corrections_store(home: Path) -> JsonlCorrectionStore:
    return JsonlCorrectionStore(classifier_dir(home) / "corrections.jsonl")



def corrections_backend(settings: Settings) -> Literal["file", "mongo"]:
    """Which store ``analysis.corrections_store`` means here ("auto": mongo when a MongoDB URI is set)."""
    choice = settings.analysis.corrections_store
    if choice == "auto":
        return "mongo" if settings.store.mongo_uri else "file"
    return choice


def open_corrections(settings: Settings, *, store: CallStore | None = None) -> CorrectionStore:
    """The corrections store these settings ask for; ``store`` (connected) lends its client to the mongo one."""
    if corrections_backend(settings) == "file":
        return corrections_store(settings.home)
    if store is not None:
        return MongoCorrectionStore.for_store(store)
    return MongoCorrectionStore.from_settings(settings)


def close_corrections(store: object) -> None:
    """Close a store from ``open_corrections`` (only a mongo one that made its own client holds anything)."""
    close = getattr(store, "close", None)
    if callable(close):
        close()


def merge_corrections(rows: Iterable[Mapping[str, Any]]) -> list[Correction]:
    """Corrections in the order made -> one per call: labels merged field by field, the latest winning.

    The same rule as ``JsonlCorrectionStore.all``: the latest reviewer and time, the latest text given.
    """
    latest: dict[str, Correction] = {}
    for row in rows:
        record_id = str(row["record_id"])
        previous = latest.get(record_id)
        labels = {**(previous.labels if previous else {}), **dict(row.get("labels") or {})}
        text = row.get("text") or (previous.text if previous else None)
        latest[record_id] = Correction(record_id, labels, text, row.get("reviewer"), _iso(row.get("at")))
    return list(latest.values())


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()
    return str(value or "")


def _when(at: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(at)
    except (TypeError, ValueError):
        return datetime.now(timezone.utc)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


class MongoCorrectionStore:
    """Corrections as documents in ``corrections``: ``{record_id, labels, text, reviewer, at, schema_version}``.

    Indexes ``(record_id, at)`` (one call's corrections, in order) and ``at`` (the newest: ``all()``
    re-reads the collection only when its count or newest document changed, so calling it for every
    analysed call stays cheap).
    """

    def __init__(
        self,
        collection: Collection[Doc],
        *,
        retry: Retry | None = None,
        mirror: Path | None = None,
        cooldown_s: float = 30.0,
        client: MongoClient[Doc] | None = None,
    ) -> None:
        self.collection = collection
        self._retry: Retry = retry or (lambda what, fn: fn())
        self.mirror = mirror
        self.cooldown_s = cooldown_s
        self._client = client  # made by from_settings: closed by close()
        self._lock = threading.Lock()
        self._cache: list[Correction] | None = None
        self._fingerprint: tuple[int, Any] | None = None
        self._down_until = 0.0
        self._indexes_ready = False

    @classmethod
    def from_settings(cls, settings: Settings) -> MongoCorrectionStore:
        """A store with a client of its own (analysers, the command line): the database of ``store.mongo_uri``."""
        opts = settings.store
        if not opts.mongo_uri:
            raise ValueError(
                "analysis.corrections_store is 'mongo' but store.mongo_uri is empty: set CALLAUDIT_STORE__MONGO_URI "
                "to the database every worker uses, or set analysis.corrections_store to 'file'"
            )
        timeout = opts.server_timeout_ms
        client: MongoClient[Doc] = MongoClient(
            opts.mongo_uri, tz_aware=True, appname="callaudit-corrections", serverSelectionTimeoutMS=timeout,
            connectTimeoutMS=timeout, socketTimeoutMS=max(timeout, 60_000),
        )
        db = client.get_default_database(default=opts.database)
        uri = redact_uri(opts.mongo_uri)

        def retry(what: str, fn: Callable[[], Any]) -> Any:
            return retry_transient(what, fn, attempts=opts.retry_attempts, backoff_s=opts.retry_backoff_s, uri=uri)

        return cls(db[D.CORRECTIONS], retry=retry, mirror=_mirror_path(settings.home, db.name),
                   cooldown_s=opts.outage_cooldown_s, client=client)

    @classmethod
    def for_store(cls, store: CallStore) -> MongoCorrectionStore:
        """A store on a connected CallStore's database and client (the web app's ingress)."""
        db = store.db
        return cls(db[D.CORRECTIONS], retry=store.retry, mirror=_mirror_path(store.settings.home, db.name),
                   cooldown_s=store.options.outage_cooldown_s)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ------------------------------------------------------------------ writes

    def add(self, correction: Correction) -> None:
        """Append one correction; StoreUnavailable (with the reason) when the database cannot take it."""
        doc: Doc = {
            "_id": ObjectId(),  # made here, so a retried insert that had got through is recognised
            "schema_version": D.CORRECTION_SCHEMA_VERSION,
            "record_id": correction.record_id,
            "labels": dict(correction.labels),
            "text": correction.text,
            "reviewer": correction.reviewer,
            "at": _when(correction.at),
        }
        what = f"save the correction of call {correction.record_id}"
        self._ensure_indexes()

        def insert() -> None:
            with contextlib.suppress(DuplicateKeyError):  # an earlier attempt got through, its answer lost
                self.collection.insert_one(doc)

        try:
            self._retry(what, insert)
        except StoreUnavailable as err:
            raise StoreUnavailable(f"the correction was not saved: {err}") from err
        except PyMongoError as err:
            raise StoreUnavailable(
                f"the correction was not saved: {what}: the database refused it ({type(err).__name__}: "
                f"{str(err)[:200]})"
            ) from err
        self._down_until = 0.0

    def _ensure_indexes(self) -> None:
        if self._indexes_ready:
            return
        try:
            self.collection.create_indexes(CORRECTION_INDEXES)
            self._indexes_ready = True
        except PyMongoError as err:  # an index made by hand with other options, or the database is down
            log.warning("indexes on %s not created now: %s", self.collection.name, err)

    # ------------------------------------------------------------------ reads (never raise)

    def all(self) -> list[Correction]:
        """The latest merged labels of every corrected call; during an outage, the last ones read."""
        with self._lock:
            if time.monotonic() < self._down_until:
                return self._fallback()
            try:
                fingerprint = self._current_fingerprint()
                if self._cache is None or fingerprint != self._fingerprint:
                    rows = self.collection.find({}, _FIELDS).sort(_ORDER)
                    self._cache = merge_corrections(rows)
                    self._fingerprint = fingerprint
                    self._write_mirror(self._cache)
                return list(self._cache)
            except PyMongoError as err:
                self._outage(err)
                return self._fallback()

    def get(self, record_id: str) -> Correction | None:
        """One call's merged correction, or None; during an outage, from the corrections read last."""
        if time.monotonic() >= self._down_until:
            try:
                rows = self.collection.find({"record_id": record_id}, _FIELDS).sort(_ORDER)
                merged = merge_corrections(rows)
                return merged[0] if merged else None
            except PyMongoError as err:
                with self._lock:
                    self._outage(err)
        with self._lock:
            return next((c for c in self._fallback() if c.record_id == record_id), None)

    def _current_fingerprint(self) -> tuple[int, Any]:
        # Corrections are only ever appended: a new one changes the count and, usually, the newest.
        newest = next(iter(self.collection.find({}, {"_id": 1}).sort([("at", -1), ("_id", -1)]).limit(1)), None)
        return self.collection.estimated_document_count(), newest["_id"] if newest else None

    def _outage(self, err: BaseException) -> None:
        if time.monotonic() >= self._down_until:
            log.warning(
                "reviewer corrections could not be read from the database (%s: %s); using the %d read last "
                "for the next %.0f s", type(err).__name__, str(err)[:200], len(self._fallback()), self.cooldown_s,
            )
        self._down_until = time.monotonic() + self.cooldown_s

    def _fallback(self) -> list[Correction]:
        if self._cache is None and self.mirror is not None and self.mirror.exists():
            try:
                self._cache = JsonlCorrectionStore(self.mirror).all()
            except (OSError, KeyError, TypeError) as err:
                log.warning("the local copy of the corrections is unreadable: %s", err)
        return list(self._cache or [])

    def _write_mirror(self, corrections: list[Correction]) -> None:
        """Keep the corrections read last on disk, so a worker started during an outage still has them."""
        if self.mirror is None:
            return
        tmp = self.mirror.with_name(f"{self.mirror.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.mirror.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text("".join(c.to_json() + "\n" for c in corrections), encoding="utf-8")
            os.replace(tmp, self.mirror)
        except OSError as err:
            log.debug("could not keep a local copy of the corrections: %s", err)


def _mirror_path(home: Path, database: str) -> Path:
    return classifier_dir(home) / f"corrections.{database}.mirror.jsonl"
