"""Resuming a batch job whose driver died: the new job points at the one it continues.

Nothing else is needed to resume: finished inputs are skipped by fingerprint (batch/ledger.py), so a
re-run of the same command processes only what the interrupted job had not stored. This module
finds that job (the newest unfinished ``batch`` job on the same inputs) and links the two documents:
the new job's ``meta.resumes`` and the old job's ``status: interrupted`` with ``resumed_by``.
If the old driver was in fact still running, both finish harmlessly (writes are idempotent) and the
old job's own ``finish_job`` sets its status back to finished.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone

from pymongo import DESCENDING

from batch.storage import is_uri
from pipeline.store.store import CallStore


def inputs_key(inputs: list[str]) -> str:
    """The same inputs, however ordered or spelled relative to the working folder, give the same key."""
    normal = sorted(text if is_uri(text) else os.path.abspath(text) for text in inputs)
    return hashlib.sha256(json.dumps(normal).encode()).hexdigest()[:20]


def find_interrupted(store: CallStore, key: str) -> str | None:
    query = {"kind": "batch", "status": "running", "meta.inputs_key": key}
    docs = store.retry(
        "find an interrupted job",
        lambda: list(store.jobs.find(query, {"_id": 1}).sort([("created_at", DESCENDING)]).limit(1)),
    )
    return str(docs[0]["_id"]) if docs else None


def mark_interrupted(store: CallStore, job_id: str, *, resumed_by: str) -> None:
    now = datetime.now(timezone.utc)
    store.retry(
        "mark a job interrupted",
        lambda: store.jobs.update_one(
            {"_id": job_id, "status": "running"},
            {"$set": {"status": "interrupted", "resumed_by": resumed_by, "updated_at": now}},
        ),
    )
