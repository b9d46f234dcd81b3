"""``python -m pipeline.store migrate``: rewrite stored documents of older schema versions in place.

The upgrade steps themselves are pure functions in ``upgrades.py`` (the store reads through them);
this runner sits above the store and walks the outdated documents through them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from pipeline.records import SCHEMA_VERSION
from pipeline.store import documents as D
from pipeline.store.upgrades import (
    SchemaTooNew,
    record_from_stored,
)

if TYPE_CHECKING:
    from pipeline.store.store import CallStore

__all__ = ["MigrationReport", "SchemaTooNew", "migrate", "outdated_calls_filter", "record_from_stored"]

log = logging.getLogger(__name__)

Doc = dict[str, Any]


@dataclass
class MigrationReport:
    scanned: int = 0
    migrated: int = 0
    changed_meanwhile: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    jobs_migrated: int = 0


def outdated_calls_filter() -> Doc:
    return {
        "$or": [
            {"schema_version": {"$lt": SCHEMA_VERSION}},
            {"schema_version": {"$exists": False}},
            {"store_layout": {"$lt": D.STORE_LAYOUT}},
            {"store_layout": {"$exists": False}},
        ]
    }


def _outdated_batch(store: CallStore, query: Doc, size: int) -> list[Doc]:
    return list(store.calls.find(query).sort([("_id", 1)]).limit(size))


def migrate(store: CallStore, *, dry_run: bool = False, batch_size: int = 200) -> MigrationReport:
    """Rewrite every outdated document in the current shape; documents that fail are left as they are."""
    report = MigrationReport()
    options = store.options
    last_id: Any = None
    while True:
        # Walk by _id rather than skip/limit: migrated documents drop out of the filter as we go.
        query = (
            outdated_calls_filter()
            if last_id is None
            else {"$and": [outdated_calls_filter(), {"_id": {"$gt": last_id}}]}
        )
        docs = store.retry(
            "read outdated records",
            partial(_outdated_batch, store, query, batch_size),
        )
        if not docs:
            break
        last_id = docs[-1]["_id"]
        for doc in docs:
            report.scanned += 1
            rid = str(doc["_id"])
            try:
                record = record_from_stored(doc)
            except (ValueError, ValidationError) as err:
                report.failed[rid] = f"cannot read as a call record: {str(err)[:300]}"
                continue
            new = D.to_document(
                record,
                job_id=doc.get("job_id"),
                now=datetime.now(timezone.utc),
                default_due_hours=options.callback_default_due_hours,
            )
            new["_id"] = doc["_id"]  # keep the stored key even if an old document derived it differently
            new = D.carry_over(new, doc)
            if dry_run:
                report.migrated += 1
                continue
            # Match the version we read: a document re-written meanwhile is left to its writer.
            guard = {
                "_id": doc["_id"],
                "schema_version": doc.get("schema_version"),
                "store_layout": doc.get("store_layout"),
            }
            res = store.retry("rewrite a record", partial(store.calls.replace_one, guard, new))
            if res.matched_count:
                report.migrated += 1
            else:
                report.changed_meanwhile += 1
    if not dry_run:
        res = store.retry(
            "upgrade jobs",
            lambda: store.jobs.update_many(
                {"schema_version": {"$exists": False}},
                {"$set": {"schema_version": D.JOB_SCHEMA_VERSION}},
            ),
        )
        report.jobs_migrated = res.modified_count
    log.info("migration: %d scanned, %d migrated, %d failed", report.scanned, report.migrated, len(report.failed))
    return report
