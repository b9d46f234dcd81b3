"""The first step on the workers: read one recording, hash it, skip it if already stored, decode it.

Runs as Ray Data tasks (no model held), so reading from object storage scales with the cluster's
CPUs and the driver never touches audio. A file that cannot be read (object deleted, bucket gone,
access denied) becomes a failed row with the reason and no audio; the driver reports it on the job
without storing a record, so a later run after the store is fixed processes it normally.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from batch.ledger import WorkerSkipCheck
from batch.storage import describe_error, read_recording
from pipeline.archive import ArchiveError
from pipeline.audio import Decoder, new_record
from pipeline.records import CallMetadata
from pipeline.settings import Settings
from pipeline.stage import PCM_COLUMN, RECORD_COLUMN, TRACKS_COLUMN, CallState, batch_rows, rows_to_batch

UNREADABLE = "unreadable_source"


def fetch_and_decode(
    batch: Mapping[str, Any], settings: Settings, store_uri: str | None, job_id: str, reprocess: bool
) -> dict[str, list[Any]]:
    decoder = Decoder(settings)
    skip_check = WorkerSkipCheck(settings, store_uri, job_id)
    rows: list[dict[str, Any]] = []
    for row in batch_rows(batch):
        name = str(row["name"])
        metadata = CallMetadata.model_validate_json(row["metadata"]) if row.get("metadata") else None
        try:
            data = read_recording(str(row["path"]), row.get("member") or None, settings)
        except (OSError, ArchiveError) as err:
            state = CallState(record=new_record(name, b"", metadata))
            state.record.status = "failed"
            state.record.add_error("decode", UNREADABLE, f"cannot read {name}: {describe_error(err)}")
            rows.append(state.to_row())
            continue
        if not reprocess and skip_check.skip_if_done(hashlib.sha256(data).hexdigest(), name, str(row["fingerprint"])):
            continue  # marked skipped on the job by the check itself; nothing flows on
        rows.append(decoder.decode(name, data, metadata).to_row())
    if not rows:  # every file of the batch was skipped: an empty batch that still has the columns
        return {RECORD_COLUMN: [], PCM_COLUMN: [], TRACKS_COLUMN: []}
    return rows_to_batch(rows)
