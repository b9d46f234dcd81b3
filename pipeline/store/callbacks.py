"""Cross-call callback verification: was each promised callback actually made?

For every call with a callback promise (``callback_promised``, or a ``callback_due``), look for a later call
with the same customer (the same ``customer_key``, i.e. customer id, else phone; or the same phone digits,
since telephony knows the number even when the CRM id is missing) whose call time is after the promising call
and no later than the end of the promise's window plus a grace period (``callback_window_end`` +
``store.callback_grace_hours``; the QA rubric: "tomorrow" is kept by a call until 18:00 + 2 h, not 10:00 + 2 h):

    found                                   -> "kept"     (callback_kept_by / callback_kept_at say which call)
    none, and now > window end + grace      -> "overdue"  (and the call gets the "callback_overdue" flag)
    none yet, still inside window end + grace, or no time was said ("someone will ring you")
                                            -> "pending"
    no customer or no call time to match on -> "unverifiable" (never "overdue": we cannot tell)

The follow-up must come from the side that promised (the QA rubric): the company's promise is kept by
an outbound call to the customer, the customer's own promise by an inbound call; a call whose direction
is unknown counts either way. Another processing of the same audio (same audio hash) never counts as a follow-up.

Runs after each saved batch for the batch's customers (``pipeline.save.CallWriter``), and on demand for all
(``python -m pipeline.store verify-callbacks``), which also turns pending promises overdue as time passes.
Every verdict is recomputed from the data each time, so records arriving out of order (the
follow-up call processed before the promise) end up right.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, UpdateOne

from pipeline.store.documents import CALLBACK_OVERDUE_FLAG, customers_filter, utc

if TYPE_CHECKING:
    from pipeline.store.store import CallStore

log = logging.getLogger(__name__)


@dataclass
class CallbackReport:
    checked: int = 0
    kept: int = 0
    overdue: int = 0
    pending: int = 0
    unverifiable: int = 0
    changed: int = 0
    overdue_ids: list[str] = field(default_factory=list)


def verdict(promise: dict[str, Any], follow_up: dict[str, Any] | None, *, now: datetime, grace: timedelta) -> str:
    if not promise.get("customer_key") or promise.get("call_time") is None:
        return "unverifiable"
    if follow_up is not None:
        return "kept"
    end = _window_end(promise)
    if end is None:
        return "pending"  # no time was said: pending until a follow-up (the QA rubric), never overdue
    return "overdue" if now > end + grace else "pending"


def verify_callbacks(
    store: CallStore, *, now: datetime | None = None, customers: Iterable[str] | None = None
) -> CallbackReport:
    """Recompute the callback status of every promise (of ``customers`` only, if given)."""
    now = utc(now) or datetime.now(timezone.utc)
    grace = timedelta(hours=store.options.callback_grace_hours)
    # Promises with a due time, and (store layout 2 on) promises with none.
    promised: dict[str, Any] = {"$or": [{"callback_due": {"$ne": None}}, {"callback_promised": True}]}
    query: dict[str, Any] = promised
    if customers is not None:
        whose = customers_filter(customers)
        if whose is None:
            return CallbackReport()
        query = {"$and": [promised, whose]}
    fields = {
        "customer_key": 1,
        "customer_phone_digits": 1,
        "call_time": 1,
        "callback_due": 1,
        "callback_window_end": 1,
        "audio_sha256": 1,
        "callback_status": 1,
        "callback_kept_by": 1,
        "flags": 1,
        "analysis.callback.by": 1,
    }
    promises = store.retry("read callback promises", lambda: list(store.calls.find(query, fields)))
    report = CallbackReport()
    updates: list[UpdateOne] = []
    for promise in promises:
        report.checked += 1
        follow_up = (
            _follow_up(store, promise, grace) if promise.get("customer_key") and promise.get("call_time") else None
        )
        status = verdict(promise, follow_up, now=now, grace=grace)
        setattr(report, status, getattr(report, status) + 1)
        if status == "overdue":
            report.overdue_ids.append(str(promise["_id"]))
        kept_by = follow_up["_id"] if follow_up else None
        flagged = CALLBACK_OVERDUE_FLAG in (promise.get("flags") or [])
        unchanged = (
            promise.get("callback_status") == status
            and promise.get("callback_kept_by") == kept_by
            and flagged == (status == "overdue")
        )
        change: dict[str, Any] = {
            "$set": {
                "callback_status": status,
                "callback_kept_by": kept_by,
                "callback_kept_at": follow_up["call_time"] if follow_up else None,
                "callback_checked_at": now,
            }
        }
        if status == "overdue":
            change["$addToSet"] = {"flags": CALLBACK_OVERDUE_FLAG}
        elif flagged:
            change["$pull"] = {"flags": CALLBACK_OVERDUE_FLAG}
        # Guard on the due time we judged: a record re-written meanwhile with a new promise is left alone.
        updates.append(UpdateOne({"_id": promise["_id"], "callback_due": promise.get("callback_due")}, change))
        report.changed += 0 if unchanged else 1
    if updates:
        store.retry("save callback verdicts", lambda: store.calls.bulk_write(updates, ordered=False))
    log.info(
        "callbacks: %d checked, %d kept, %d overdue, %d pending, %d unverifiable",
        report.checked,
        report.kept,
        report.overdue,
        report.pending,
        report.unverifiable,
    )
    return report


def _window_end(promise: dict[str, Any]) -> datetime | None:
    """The end of the promise's window (the due time for a deadline, or for a store layout 1 document that has
    no window); None when no time was said."""
    return utc(promise.get("callback_window_end") or promise.get("callback_due"))


def _follow_up(store: CallStore, promise: dict[str, Any], grace: timedelta) -> dict[str, Any] | None:
    deadline = _window_end(promise)  # no time said: any later call keeps the promise
    same_customer: list[dict[str, Any]] = [{"customer_key": promise["customer_key"]}]
    if promise.get("customer_phone_digits"):
        same_customer.append({"customer_phone_digits": promise["customer_phone_digits"]})
    query: dict[str, Any] = {
        "$or": same_customer,
        "call_time": {"$gt": promise["call_time"]} if deadline is None
        else {"$gt": promise["call_time"], "$lte": deadline + grace},
        "audio_sha256": {"$ne": promise.get("audio_sha256")},
    }
    # The promising side must make the call (QA rubric): the company's promise is kept by an outbound
    # call, the customer's by an inbound one; calls of unknown direction still count.
    by = ((promise.get("analysis") or {}).get("callback") or {}).get("by")
    if by == "customer":
        query["direction"] = {"$ne": "outbound"}
    elif by:
        query["direction"] = {"$ne": "inbound"}
    return store.retry(
        "look for a callback",
        lambda: store.calls.find_one(query, {"call_time": 1}, sort=[("call_time", ASCENDING)]),
    )
