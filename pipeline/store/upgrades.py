"""Schema versions of stored documents, and the path from older ones to the current one.

Every ``calls`` document carries ``schema_version`` (the CallRecord's, ``pipeline.records.SCHEMA_VERSION``)
and ``store_layout`` (the flattened query fields, ``documents.STORE_LAYOUT``); every ``jobs`` and
``job_files`` document carries ``schema_version`` (``documents.JOB_SCHEMA_VERSION``).

Reads upgrade on the fly (``record_from_stored``), so an old document never breaks a reader;
``python -m pipeline.store migrate`` (``migrations.py``) rewrites old documents in place so queries on
flattened fields see them too. When SCHEMA_VERSION is bumped, add a step ``N -> N+1`` to
``CALL_STEPS``: a function that takes the version-N document and returns it in version N+1 shape.
Steps run in order, so a document several versions behind walks the whole path.

A document from a *newer* version than this code knows is refused with a clear error rather than
being read with a wrong meaning or overwritten with an older shape.

Pure functions over documents: the store reads through them, so they import nothing of the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

from pydantic import ValidationError

from pipeline.records import SCHEMA_VERSION, CallError, CallRecord
from pipeline.store import documents as D

log = logging.getLogger(__name__)

Doc = dict[str, Any]
Step = Callable[[Doc], Doc]


class SchemaTooNew(ValueError):
    """A document written by a newer callaudit than this one."""


def _v0_to_v1(doc: Doc) -> Doc:
    """v0: documents from before versioning began (no schema_version field).

    They lack fields v1 requires; fill what can be derived from what is there.
    """
    doc.setdefault("record_id", doc.get("_id"))
    record_id = str(doc.get("record_id") or "")
    if "pipeline_version" not in doc and "-" in record_id:
        doc["pipeline_version"] = record_id.rsplit("-", 1)[1]
    source = doc.get("source") or doc.get("path") or doc.get("file_name") or ""
    doc.setdefault("source", source)
    doc.setdefault("file_name", PurePath(str(source)).name if source else record_id)
    # v0 kept the call metadata at the top level; v1 nests it under "metadata".
    if not isinstance(doc.get("metadata"), Mapping):
        names = ("agent_id", "customer_id", "customer_phone", "call_time", "direction", "queue")
        doc["metadata"] = {name: doc.get(name) for name in names if doc.get(name) is not None}
    if isinstance(doc.get("transcript"), str) and not doc.get("turns"):
        # v0 stored one flat transcript string: keep it as a single turn so search and display still work.
        doc["turns"] = [
            {"index": 0, "role": "unknown", "track": 0, "start": 0.0, "end": 0.0, "text": doc["transcript"]}
        ]
    doc["schema_version"] = 1
    return doc


# version N -> function producing version N+1
CALL_STEPS: dict[int, Step] = {0: _v0_to_v1}


def call_version(doc: Mapping[str, Any]) -> int:
    value = doc.get("schema_version", 0)
    return int(value) if isinstance(value, int | float) else 0


def upgrade_call_document(doc: Mapping[str, Any]) -> Doc:
    """The document in the current schema version (a copy; the input is not changed)."""
    upgraded = dict(doc)
    version = call_version(upgraded)
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"record {doc.get('_id')} has schema version {version}, newer than this callaudit understands "
            f"({SCHEMA_VERSION}); upgrade callaudit to read it"
        )
    while version < SCHEMA_VERSION:
        step = CALL_STEPS.get(version)
        if step is None:
            raise ValueError(f"no migration from schema version {version} to {version + 1}")
        upgraded = step(upgraded)
        version = call_version(upgraded)
    return upgraded


def record_from_stored(doc: Mapping[str, Any]) -> CallRecord:
    """A CallRecord from a stored document of any known version.

    An analysis section the current analysis model cannot read (it changes shape between releases)
    does not make the whole record unreadable: the record comes back without it, with an error that
    says so; the stored document is left untouched.
    """
    fields = D.record_from_document(upgrade_call_document(doc))
    try:
        return CallRecord.model_validate(fields)
    except ValidationError as err:
        if not any(e["loc"] and e["loc"][0] == "analysis" for e in err.errors()):
            raise
        fields["analysis"] = None
        record = CallRecord.model_validate(fields)
        record.errors.append(
            CallError(
                stage="store",
                code="analysis_unreadable",
                message="The stored analysis has a shape this version cannot read; re-run the analysis.",
            )
        )
        return record


def upgrade_job_document(doc: Mapping[str, Any]) -> Doc:
    upgraded = dict(doc)
    version = int(upgraded.get("schema_version") or 0)
    if version > D.JOB_SCHEMA_VERSION:
        raise SchemaTooNew(f"job {doc.get('_id')} has schema version {version}; upgrade callaudit to read it")
    if version == 0:
        upgraded.setdefault("kind", "unknown")
        upgraded.setdefault("status", "unknown")
        upgraded.setdefault("summary", {})
        upgraded["schema_version"] = D.JOB_SCHEMA_VERSION
    return upgraded


