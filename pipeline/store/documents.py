"""Document shapes: how a CallRecord is stored in ``calls``, and what ``jobs``/``job_files`` hold.

``calls`` (one document per recording and pipeline version)::

    _id                 record_id (audio_sha256[:24] + "-" + pipeline_version): the idempotency key
    ...                 every CallRecord field, nested as in pipeline.records (schema_version included)
    store_layout        version of the flattened fields below (STORE_LAYOUT); ``migrate`` re-derives them
    stored_at           last write; first_stored_at: first write (kept across re-processing)
    job_id              the job that last wrote the record, if any
    # flattened copies, derived on every write, so queries and aggregations never walk arrays of
    # sub-documents (SecantusDB cannot $project through them) and can use plain indexes:
    agent_id, customer_id, customer_phone, call_time, direction, queue     from record.metadata
    customer_key        customer_id, else "tel:" + the phone's digits
    customer_phone_digits  the phone's digits only, so "+90 (555) 111-22-33" finds "+90 555 111 2233";
                        callback matching takes a later call with the same customer_key or the same digits
    duration_s          audio duration (else metrics.duration_s)
    agent_talk_ratio    metrics.per_role["agent"].talk_ratio
    category, subcategory, summary, keywords   (category: after the follow-up rules, pipeline.follow_up_check,
                        which also set analysis.follow_up_of; analysis.classification keeps the call's own answer)
    customer_sentiment  "positive" | "neutral" | "negative" (at the end of the call when the trajectory says)
    sentiment_score     the customer's score, -1..1;  agent_sentiment: the agent's label
    agent_score         analysis.agent_performance.score (0..100);  csat: analysis.customer_satisfaction (1..5)
    compliance          [{item, passed}] normalised; passed is None when not applicable
    failed_compliance_items  ids of failed items;  compliance_passed / compliance_checked: counts
    flags               review flags from the analysis, plus "callback_overdue" set by callback checks
    callback_promised   a callback was promised (by either side)
    callback_due        when it is due (None: no time was said, or nothing promised)
    callback_window_end the end of the rubric's window for the time said (a date: 18:00 that day); a follow-up
                        call by then plus the grace hours keeps the promise. None when there is no due time:
                        any later follow-up keeps it, and it is never overdue
    callback_status     None | "pending" | "kept" | "overdue" | "unverifiable": the cross-call verdict,
                        written by callbacks.py (the analysis' own in-call view stays in analysis.callback.status)
    callback_kept_by, callback_kept_at, callback_checked_at
    transcript_text     "role: text" per turn, one per line: the keyword-search field

What the flattening reads from ``record.analysis`` (``pipeline.analysis_schema.Analysis``). When the
analysis offers ``flat_fields()`` its values are used for category, subcategory, flags,
customer_sentiment, agent_sentiment, failed_compliance_items and callback_due/callback_promised;
everything else, and any field missing there, is read defensively from the analysis itself, so an
older or partial analysis (or none at all) still stores fine::

    category, subcategory, summary: str;  keywords: [str]
    sentiment: {customer: {label, score, trajectory: [{phase, label, score}]}, agent: {label, ...}}
               (also accepted: customer_sentiment: str, sentiment: str, sentiment_score: float)
    compliance: [{id, status: "pass" | "fail" | "not_applicable"}]
               (also item/name/key/code for the id, passed: bool, or {id: bool})
    flags: [{name, reason, severity}]  (or [str]; also code/flag/id/label for the name)
    callback: {promised, due, window_end}  (or callback_due: datetime); a promise with no due time stays
                                       pending until a follow-up (store.callback_default_due_hours: or
                                       is due that long after the call)
    agent_performance: {score};  customer_satisfaction: int

``jobs`` (a batch run or an upload)::

    _id job_id, schema_version, kind ("batch" | "upload" | ...), status ("running" | "finished" |
    "failed"), inputs, created_at, updated_at, finished_at, summary
    (per-status file counts are computed from job_files on read, so retries never double-count)

``job_files`` (one per file of a job)::

    _id job_id + ":" + hash(file), schema_version, job_id, file, status ("queued" | "processing" | "done" |
    "skipped" | "failed" | "missing" | ...), reason, record_id, updated_at
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel

from pipeline.records import CallRecord

log = logging.getLogger(__name__)

STORE_LAYOUT = 2  # 2: callback_promised and callback_window_end; no default due time
JOB_SCHEMA_VERSION = 1

CALLS = "calls"
JOBS = "jobs"
JOB_FILES = "job_files"
# Reviewer corrections (pipeline/store/corrections.py): one document per correction, appended.
CORRECTIONS = "corrections"
CORRECTION_SCHEMA_VERSION = 1

CALLBACK_OVERDUE_FLAG = "callback_overdue"
CALLBACK_STATUSES = ("pending", "kept", "overdue", "unverifiable")
SENTIMENT_SCORES = {"positive": 1.0, "neutral": 0.0, "negative": -1.0}

# Fields the callback check owns: a re-write of a record keeps them while its promise is unchanged.
CALLBACK_FIELDS = ("callback_status", "callback_kept_by", "callback_kept_at", "callback_checked_at")

# Fields the store adds on top of the CallRecord; stripped before validating a document as a record.
FLAT_FIELDS = (
    "store_layout",
    "stored_at",
    "first_stored_at",
    "job_id",
    "agent_id",
    "customer_id",
    "customer_phone",
    "customer_key",
    "customer_phone_digits",
    "call_time",
    "direction",
    "queue",
    "duration_s",
    "agent_talk_ratio",
    "category",
    "subcategory",
    "summary",
    "keywords",
    "customer_sentiment",
    "sentiment_score",
    "compliance",
    "failed_compliance_items",
    "agent_sentiment",
    "agent_score",
    "csat",
    "compliance_passed",
    "compliance_checked",
    "flags",
    "callback_promised",
    "callback_due",
    "callback_window_end",
    *CALLBACK_FIELDS,
    "transcript_text",
)

_PASS_WORDS = {"pass", "passed", "yes", "true", "ok", "met", "compliant", "done"}
_FAIL_WORDS = {"fail", "failed", "no", "false", "missed", "not_met", "non_compliant", "violation"}
_NAME_KEYS = ("item", "id", "key", "name", "code")
_FLAG_KEYS = ("code", "name", "flag", "id", "label")


def utc(value: datetime | None) -> datetime | None:
    """Timezone-aware UTC; naive datetimes are taken to be UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def as_plain(value: Any) -> dict[str, Any]:
    """A model, mapping or plain object as a dict (subclass fields included)."""
    if value is None:
        return {}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="python", serialize_as_any=True)
    if isinstance(value, Mapping):
        return dict(value)
    return {k: v for k, v in vars(value).items() if not k.startswith("_")} if hasattr(value, "__dict__") else {}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, str) and value.strip():
        try:
            return utc(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _passed(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower().replace(" ", "_").replace("-", "_")
        if word in _PASS_WORDS:
            return True
        if word in _FAIL_WORDS:
            return False
    return None


def _first(mapping: Mapping[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        value = mapping.get(key)
        if value is not None:
            return value
    return None


def _role_sentiment(value: Any) -> tuple[Any, Any]:
    """(label, score) of one party, taking the end of the call when a trajectory is given."""
    if isinstance(value, str):
        return value, None
    if not isinstance(value, Mapping):
        return None, None
    for point in value.get("trajectory") or []:
        if isinstance(point, Mapping) and point.get("phase") == "end":
            return point.get("label"), point.get("score")
    return value.get("label"), value.get("score")


def sentiment_of(analysis: Mapping[str, Any], role: str = "customer") -> tuple[str | None, float | None]:
    label: Any = analysis.get(f"{role}_sentiment")
    score_keys = (f"{role}_sentiment_score", "sentiment_score") if role == "customer" else (f"{role}_sentiment_score",)
    score: Any = _first(analysis, score_keys)
    overall = analysis.get("sentiment")
    if isinstance(overall, Mapping):
        inner = overall.get(role, overall.get("overall") if role == "customer" else None)
        found_label, found_score = _role_sentiment(inner if inner is not None else overall)
        label = label if isinstance(label, str) else found_label
        score = score if score is not None else found_score
    elif isinstance(overall, str) and role == "customer" and not isinstance(label, str):
        label = overall
    name = label.strip().lower() if isinstance(label, str) else None
    if name not in SENTIMENT_SCORES:
        name = None
    number = _float(score)
    if number is not None:
        number = max(-1.0, min(1.0, number))
    if name is None and number is not None:
        name = "positive" if number > 0.25 else "negative" if number < -0.25 else "neutral"
    contradicts = name is not None and number is not None and number * SENTIMENT_SCORES[name] < 0
    if name is not None and (number is None or contradicts or (number == 0 and name != "neutral")):
        # A score that contradicts its label is a default or a slip; the label is what people review.
        number = SENTIMENT_SCORES[name]
    return name, number


def compliance_of(analysis: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = _first(analysis, ("compliance", "compliance_items", "compliance_results", "checklist"))
    if isinstance(raw, Mapping) and "items" in raw:
        raw = raw["items"]
    items: list[dict[str, Any]] = []
    if isinstance(raw, Mapping):
        for name, value in raw.items():
            passed = _passed(value.get("passed", value.get("status")) if isinstance(value, Mapping) else value)
            items.append({"item": str(name), "passed": passed})
    elif isinstance(raw, list):
        for entry in raw:
            entry_map = as_plain(entry) if not isinstance(entry, str) else {"item": entry}
            name = _text(_first(entry_map, _NAME_KEYS))
            if name is None:
                continue
            verdict = _first(entry_map, ("passed", "pass", "ok", "met", "status", "result", "outcome"))
            items.append({"item": name, "passed": _passed(verdict)})
    return items


def flags_of(analysis: Mapping[str, Any]) -> list[str]:
    raw = _first(analysis, ("flags", "review_flags"))
    found: list[str] = []
    if isinstance(raw, list):
        for entry in raw:
            name = _text(entry) if isinstance(entry, str) else _text(_first(as_plain(entry), _FLAG_KEYS))
            if name and name not in found:
                found.append(name)
    return found


def keywords_of(analysis: Mapping[str, Any]) -> list[str]:
    raw = analysis.get("keywords")
    words: list[str] = []
    if isinstance(raw, list):
        for entry in raw:
            word = (
                _text(entry) if isinstance(entry, str) else _text(_first(as_plain(entry), ("keyword", "text", "term")))
            )
            if word and word not in words:
                words.append(word)
    return words


def callback_of(
    analysis: Mapping[str, Any], call_time: datetime | None, default_due_hours: float | None
) -> tuple[bool, datetime | None, datetime | None]:
    """(promised, due, window end) of a callback promise in an analysis (flat fields or a nested callback)."""
    due = _datetime(analysis.get("callback_due"))
    window_end = _datetime(analysis.get("callback_window_end"))
    promised = analysis.get("callback_promised")
    nested = analysis.get("callback")
    if isinstance(nested, BaseModel):
        nested = as_plain(nested)
    if isinstance(nested, Mapping):
        due = due or _datetime(_first(nested, ("due", "due_at", "due_by", "due_time")))
        window_end = window_end or _datetime(_first(nested, ("window_end",)))
        if promised is None:
            promised = _first(nested, ("promised", "requested", "committed"))
    if due is None and promised is True and call_time is not None and default_due_hours is not None:
        due = call_time + timedelta(hours=default_due_hours)
    due_at, end_at = utc(due), utc(window_end)
    if due_at is None:
        window_end = None
    elif end_at is None or end_at < due_at:
        window_end = due
    return promised is True or due is not None, due, window_end


def phone_digits(phone: str | None) -> str | None:
    return re.sub(r"\D", "", phone or "") or None


def customer_key(customer_id: str | None, phone: str | None) -> str | None:
    if customer_id:
        return customer_id
    digits = phone_digits(phone)
    return f"tel:{digits}" if digits else None


def customers_filter(keys: Iterable[str]) -> dict[str, Any] | None:
    """The query for the calls of these customer keys (a key, or the digits of a "tel:" key, matches); None
    when there are none."""
    keys = sorted(set(keys))
    if not keys:
        return None
    digits = [k.removeprefix("tel:") for k in keys if k.startswith("tel:")]
    return {"$or": [{"customer_key": {"$in": keys}}, {"customer_phone_digits": {"$in": digits}}]}


def customer_keys(docs: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every key a callback check must look at for these calls: customer keys and "tel:" phone keys."""
    keys: set[str] = set()
    for doc in docs:
        if doc.get("customer_key"):
            keys.add(str(doc["customer_key"]))
        if doc.get("customer_phone_digits"):
            keys.add(f"tel:{doc['customer_phone_digits']}")
    return keys


def transcript_text(record: CallRecord) -> str:
    return "\n".join(f"{turn.role}: {turn.text}" for turn in record.turns if turn.text)


def _analysis_flat_fields(analysis: Any) -> dict[str, Any]:
    """The analysis' own ``flat_fields()``, if it has one that works."""
    method = getattr(analysis, "flat_fields", None)
    if not callable(method):
        return {}
    try:
        flat = method()
    except Exception as err:  # an analysis bug must not stop the record from being stored
        log.warning("analysis.flat_fields() failed (%s); reading the analysis fields directly", err)
        return {}
    return dict(flat) if isinstance(flat, Mapping) else {}


def flatten(record: CallRecord, *, default_due_hours: float | None = None) -> dict[str, Any]:
    """The query fields derived from a record (see the module docstring)."""
    meta = record.metadata
    analysis = as_plain(record.analysis)
    own = _analysis_flat_fields(record.analysis)
    call_time = utc(meta.call_time)
    sentiment, score = sentiment_of(analysis)
    if isinstance(own.get("customer_sentiment"), str) and own["customer_sentiment"] != sentiment:
        sentiment, score = sentiment_of({"customer_sentiment": own["customer_sentiment"]})
    agent_sentiment = own.get("agent_sentiment") or sentiment_of(analysis, "agent")[0]
    compliance = compliance_of(analysis)
    failed = own.get("failed_compliance_items")
    if not isinstance(failed, list):
        failed = [c["item"] for c in compliance if c["passed"] is False]
    flags = [str(f) for f in own["flags"]] if isinstance(own.get("flags"), list) else flags_of(analysis)
    if "callback_due" in own or "callback_promised" in own:
        promised, due, window_end = callback_of(
            {key: own.get(key) for key in ("callback_due", "callback_window_end", "callback_promised")},
            call_time,
            default_due_hours,
        )
    else:
        promised, due, window_end = callback_of(analysis, call_time, default_due_hours)
    agent_metrics = record.metrics.per_role.get("agent") if record.metrics else None
    duration = record.audio.duration_s or (record.metrics.duration_s if record.metrics else 0.0)
    performance = analysis.get("agent_performance")
    return {
        "agent_id": meta.agent_id,
        "customer_id": meta.customer_id,
        "customer_phone": meta.customer_phone,
        "customer_key": customer_key(meta.customer_id, meta.customer_phone),
        "customer_phone_digits": phone_digits(meta.customer_phone),
        "call_time": call_time,
        "direction": meta.direction,
        "queue": meta.queue,
        "duration_s": duration,
        "agent_talk_ratio": agent_metrics.talk_ratio if agent_metrics else None,
        "category": _text(own.get("category", analysis.get("category"))),
        "subcategory": _text(own.get("subcategory", analysis.get("subcategory"))),
        "summary": _text(analysis.get("summary")),
        "keywords": keywords_of(analysis),
        "customer_sentiment": sentiment,
        "sentiment_score": score,
        "agent_sentiment": agent_sentiment if isinstance(agent_sentiment, str) else None,
        "agent_score": _float(performance.get("score")) if isinstance(performance, Mapping) else None,
        "csat": _float(analysis.get("customer_satisfaction")),
        "compliance": compliance,
        "failed_compliance_items": [str(f) for f in failed],
        "compliance_passed": sum(1 for c in compliance if c["passed"] is True),
        "compliance_checked": sum(1 for c in compliance if c["passed"] is not None),
        "flags": list(dict.fromkeys(flags)),
        "callback_promised": promised,
        "callback_due": due,
        "callback_window_end": window_end,
        "callback_status": "pending" if promised else None,
        "callback_kept_by": None,
        "callback_kept_at": None,
        "callback_checked_at": None,
        "transcript_text": transcript_text(record),
    }


def to_document(
    record: CallRecord, *, job_id: str | None = None, now: datetime | None = None,
    default_due_hours: float | None = None,
) -> dict[str, Any]:
    """The ``calls`` document for a record (before callback fields are carried over from the stored one)."""
    now = now or datetime.now(timezone.utc)
    # serialize_as_any: an analysis model richer than the declared one keeps all of its fields.
    doc = record.model_dump(mode="python", serialize_as_any=True)
    doc["_id"] = record.record_id
    doc["created_at"] = utc(record.created_at)
    doc.update(flatten(record, default_due_hours=default_due_hours))
    doc["store_layout"] = STORE_LAYOUT
    doc["stored_at"] = now
    doc["first_stored_at"] = now
    doc["job_id"] = job_id
    return doc


def carry_over(doc: dict[str, Any], stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """Keep what a re-write must not reset: first_stored_at, and the callback verdict if still valid."""
    if not stored:
        return doc
    if stored.get("first_stored_at") is not None:
        doc["first_stored_at"] = stored["first_stored_at"]
    # The same promise: promised in both, same due time and window (a promise with no time: both None).
    same_promise = (
        bool(doc.get("callback_promised") or doc.get("callback_due"))
        and bool(stored.get("callback_promised") or stored.get("callback_due"))
        and utc(stored.get("callback_due")) == utc(doc.get("callback_due"))
        and utc(stored.get("callback_window_end") or stored.get("callback_due")) == utc(doc.get("callback_window_end"))
    )
    if same_promise and stored.get("callback_status") in CALLBACK_STATUSES:
        for name in CALLBACK_FIELDS:
            doc[name] = stored.get(name)
        if stored.get("callback_status") == "overdue" and CALLBACK_OVERDUE_FLAG not in doc["flags"]:
            doc["flags"] = [*doc["flags"], CALLBACK_OVERDUE_FLAG]
    return doc


def record_from_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The CallRecord fields of a stored document (store-only fields removed)."""
    return {k: v for k, v in doc.items() if k != "_id" and k not in FLAT_FIELDS}


def job_file_id(job_id: str, file: str) -> str:
    # File paths can hold dots and dollars (not allowed in field names) and be long; a hash is neither.
    return f"{job_id}:{hashlib.sha1(file.encode('utf-8', 'surrogateescape')).hexdigest()[:20]}"
