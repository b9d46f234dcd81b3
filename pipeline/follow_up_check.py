"""The follow-up check on the stored calls: the taxonomy's ``follow_ups`` rules applied across a customer's calls.

After each saved batch (``pipeline.save.CallWriter``) the calls of the batch's customers are read back, the
rules of ``pipeline.analysis.follow_ups`` decide which calls take an earlier call's label, and the calls
whose stored label differs are updated in place: ``analysis.category`` / ``subcategory`` and the flattened
``category`` / ``subcategory``, ``analysis.follow_up_of`` (the earlier call's record id), and the review flags
evaluated again (a follow-up that becomes Complaint gets the ``complaint`` flag). ``analysis.classification``
keeps the call's own answer, so a call goes back to it when the earlier call's label changes (a reviewer
corrects it, a re-analysis labels it otherwise). A reviewer's label on the call itself is never replaced.

Like the callback check, every verdict is recomputed from the stored data each time, so calls that arrive out
of order (the follow-up processed before the call it follows) end up right, and a check skipped during a
database outage is caught up by the next save that touches the customer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pymongo import UpdateOne

from pipeline.records import CallRecord
from pipeline.store import documents as D

if TYPE_CHECKING:
    from pipeline.analysis.flags import FlagConfig
    from pipeline.analysis.follow_ups import CallLabel
    from pipeline.analysis.taxonomy import Taxonomy
    from pipeline.store.store import CallStore

log = logging.getLogger(__name__)

_FIELDS = {
    "customer_key": 1,
    "customer_phone_digits": 1,
    "call_time": 1,
    "audio_sha256": 1,
    "stored_at": 1,
    "metadata.extra": 1,
    "analysis.category": 1,
    "analysis.subcategory": 1,
    "analysis.classification.category": 1,
    "analysis.classification.subcategory": 1,
    "analysis.corrected_fields": 1,
    "analysis.follow_up_of": 1,
}


@dataclass
class FollowUpReport:
    checked: int = 0
    follow_ups: int = 0  # calls carrying an earlier call's label after the check
    changed: list[str] = field(default_factory=list)  # record ids updated by this check


def check_follow_ups(
    store: CallStore, taxonomy: Taxonomy, flags: FlagConfig, *, customers: Iterable[str] | None = None
) -> FollowUpReport:
    """Apply the follow-up rules to the stored calls of ``customers`` (customer keys; None: every customer)."""
    # Imported here: pipeline.analysis loads the analyser, which a process that only saves need not pay for.
    from pipeline.analysis.follow_ups import follow_up_labels

    report = FollowUpReport()
    if not taxonomy.follow_ups:
        return report
    query: dict[str, Any] = {"customer_key": {"$ne": None}}
    if customers is not None:
        whose = D.customers_filter(customers)
        if whose is None:
            return report
        query = whose
    docs = store.retry("read the customers' calls", lambda: list(store.calls.find(query, _FIELDS)))
    report.checked = len(docs)
    found = follow_up_labels((_call_label(doc, taxonomy) for doc in docs), taxonomy.follow_ups)
    report.follow_ups = len(found)
    updates: list[UpdateOne] = []
    for doc in docs:
        analysis = doc.get("analysis") or {}
        follow_up = found.get(str(doc["_id"]))
        category: str | None
        if follow_up is not None:
            category, subcategory = taxonomy.split(follow_up.label)
            of: str | None = follow_up.of
        else:
            category, subcategory = _own_pair(analysis)
            of = None
        if (analysis.get("category"), analysis.get("subcategory"), analysis.get("follow_up_of")) == (
            category, subcategory, of
        ):
            continue
        update = _relabel(store, doc, category, subcategory, of, flags)
        if update is not None:
            updates.append(update)
            report.changed.append(str(doc["_id"]))
    if updates:
        store.retry("save follow-up labels", lambda: store.calls.bulk_write(updates, ordered=False))
    if report.changed:
        log.info("follow-ups: %d calls checked, %d follow-ups, %d relabelled", report.checked,
                 report.follow_ups, len(report.changed))
    return report


def _own_pair(analysis: dict[str, Any]) -> tuple[str | None, str | None]:
    """The call's own (category, subcategory): the reviewer's if reviewed, else its classification's."""
    own = analysis.get("classification") or {}
    if "category" in (analysis.get("corrected_fields") or []) or not own.get("category"):
        return analysis.get("category"), analysis.get("subcategory")
    return own.get("category"), own.get("subcategory")


def _call_label(doc: dict[str, Any], taxonomy: Taxonomy) -> CallLabel:
    from pipeline.analysis.follow_ups import CallLabel

    analysis = doc.get("analysis") or {}
    reviewed = "category" in (analysis.get("corrected_fields") or [])
    flat = taxonomy.flat(*_own_pair(analysis)) if analysis else None
    company = ((doc.get("metadata") or {}).get("extra") or {}).get("company")
    return CallLabel(
        call_id=str(doc["_id"]),
        customers=frozenset(D.customer_keys([doc])),
        call_time=D.utc(doc.get("call_time")),
        own=None if reviewed else flat,
        reviewed=flat if reviewed else None,
        company=str(company) if company else None,
        audio=doc.get("audio_sha256"),
    )


def _relabel(
    store: CallStore, doc: dict[str, Any], category: str | None, subcategory: str | None, of: str | None,
    flags: FlagConfig,
) -> UpdateOne | None:
    """The update that puts (category, subcategory) and ``follow_up_of`` on the stored call, flags re-evaluated."""
    from pipeline.analysis.analyser import call_signals
    from pipeline.analysis.flags import evaluate_flags

    full = store.retry("read a follow-up call", lambda: store.calls.find_one({"_id": doc["_id"]}))
    if full is None or full.get("stored_at") != doc.get("stored_at"):
        return None  # re-written meanwhile: the save that did it checks again
    record = CallRecord.model_validate(D.record_from_document(full))
    analysis = record.analysis
    if analysis is None:
        return None
    analysis.category, analysis.subcategory, analysis.follow_up_of = category, subcategory, of
    analysis.flags = evaluate_flags(flags, analysis, call_signals(record))
    flat = D.flatten(record)
    stored_flags = full.get("flags") or []
    kept = [name for name in stored_flags if name == D.CALLBACK_OVERDUE_FLAG]  # the callback check's own flag
    change = {
        "analysis": analysis.model_dump(mode="python", serialize_as_any=True),
        "category": flat["category"],
        "subcategory": flat["subcategory"],
        "flags": list(dict.fromkeys([*flat["flags"], *kept])),
    }
    # Guard on the write we read: a record re-written meanwhile is left to the check of its own save.
    return UpdateOne({"_id": doc["_id"], "stored_at": doc.get("stored_at")}, {"$set": change})
