"""Queries over stored calls: filters, keyword search, paging, aggregations and export.

One Python API for the Serve app and the CLI. Everything works on the flattened fields of a
``calls`` document (see ``documents.py``), so no query walks arrays of sub-documents, which
keeps the same pipelines valid on SecantusDB and on MongoDB.

Keyword search is a case-insensitive ``$regex`` over the stored ``transcript_text`` (one
"role: text" line per turn); every word of the query must occur (AND), matched as a literal
substring. SecantusDB has no text indexes, so this scans the calls that the other filters leave;
combine it with a time range or agent on large collections. On a real MongoDB you can add a text
index (``db.calls.createIndex({transcript_text: "text"})``) and query with ``$text`` yourself;
the regex search keeps working there too and, unlike ``$text``, matches parts of words and
numbers (order ids, amounts).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypedDict

from pydantic import BaseModel, Field

from pipeline.store.documents import CALLBACK_OVERDUE_FLAG, utc

if TYPE_CHECKING:
    from pipeline.store.store import CallStore

Doc = dict[str, Any]
ExportFormat = Literal["csv", "jsonl"]

# Sort keys a caller may use (all indexed or cheap); "-" in front sorts descending.
SORTABLE = frozenset(
    {
        "call_time",
        "stored_at",
        "created_at",
        "agent_id",
        "customer_id",
        "category",
        "duration_s",
        "sentiment_score",
        "callback_due",
        "file_name",
        "status",
    }
)
MAX_PAGE_SIZE = 1000
# Heavy fields left out of list results unless full documents are asked for.
LIST_EXCLUDE = ("tracks", "turns", "stages", "transcript_text")


class CallQuery(BaseModel):
    """Filters; all optional and combined with AND. Usable directly as a FastAPI query model."""

    time_from: datetime | None = Field(None, description="call_time >= this (naive = UTC)")
    time_to: datetime | None = Field(None, description="call_time < this (naive = UTC)")
    agent_id: str | None = None
    customer: str | None = Field(None, description="customer id or phone number")
    category: str | None = None
    flag: str | None = None
    sentiment: Literal["positive", "neutral", "negative"] | None = None
    compliance_failed: str | None = Field(None, description="name of a compliance item the call failed")
    callback_status: Literal["pending", "kept", "overdue", "unverifiable", "any", "none"] | None = None
    status: Literal["ok", "empty", "failed"] | None = None
    direction: Literal["inbound", "outbound"] | None = None
    queue: str | None = None
    job_id: str | None = None
    text: str | None = Field(None, description="keyword search over transcripts; every word must occur")


def build_filter(query: CallQuery | None) -> Doc:
    """The MongoDB filter for a CallQuery."""
    if query is None:
        return {}
    clauses: list[Doc] = []
    window: Doc = {}
    if query.time_from is not None:
        window["$gte"] = utc(query.time_from)
    if query.time_to is not None:
        window["$lt"] = utc(query.time_to)
    if window:
        clauses.append({"call_time": window})
    for name in ("agent_id", "category", "status", "direction", "queue", "job_id"):
        value = getattr(query, name)
        if value is not None:
            clauses.append({name: value})
    if query.customer:
        digits = re.sub(r"\D", "", query.customer)
        options: list[Doc] = [{"customer_id": query.customer}, {"customer_phone": query.customer}]
        if digits:
            options.append({"customer_phone_digits": digits})
        clauses.append({"$or": options})
    if query.flag:
        clauses.append({"flags": query.flag})
    if query.sentiment:
        clauses.append({"customer_sentiment": query.sentiment})
    if query.compliance_failed:
        clauses.append({"failed_compliance_items": query.compliance_failed})
    if query.callback_status == "any":
        clauses.append({"callback_status": {"$ne": None}})
    elif query.callback_status == "none":
        clauses.append({"callback_status": None})
    elif query.callback_status:
        clauses.append({"callback_status": query.callback_status})
    if query.text:
        for word in query.text.split():
            clauses.append({"transcript_text": {"$regex": re.escape(word), "$options": "i"}})
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def parse_sort(sort: str) -> list[tuple[str, int]]:
    """ "-call_time,agent_id" -> [("call_time", -1), ("agent_id", 1), ("_id", 1)]."""
    keys: list[tuple[str, int]] = []
    for part in (p.strip() for p in sort.split(",")):
        if not part:
            continue
        name, direction = (part[1:], -1) if part.startswith("-") else (part.lstrip("+"), 1)
        if name not in SORTABLE:
            raise ValueError(f"cannot sort by {name!r}; choose from {', '.join(sorted(SORTABLE))}")
        keys.append((name, direction))
    # _id last so pages never overlap or skip calls that tie on the sort key.
    return [*keys, ("_id", 1)]


@dataclass
class Page:
    items: list[Doc]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @property
    def has_more(self) -> bool:
        return self.page * self.page_size < self.total


def find_calls(
    store: CallStore,
    query: CallQuery | None = None,
    *,
    page: int = 1,
    page_size: int = 50,
    sort: str = "-call_time",
    full: bool = False,
) -> Page:
    """One page of calls matching ``query``; ``full=False`` leaves out tracks, turns, stages and transcript."""
    if page < 1:
        raise ValueError(f"page must be 1 or more, got {page}")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    order = parse_sort(sort)
    flt = build_filter(query)
    projection = None if full else dict.fromkeys(LIST_EXCLUDE, 0)

    def run() -> tuple[list[Doc], int]:
        cursor = store.calls.find(flt, projection).sort(order).skip((page - 1) * page_size).limit(page_size)
        return list(cursor), store.calls.count_documents(flt)

    items, total = store.retry("find calls", run)
    return Page(items=items, total=total, page=page, page_size=page_size)


def count_calls(store: CallStore, query: CallQuery | None = None) -> int:
    flt = build_filter(query)
    return store.retry("count calls", lambda: store.calls.count_documents(flt))


def search_transcripts(store: CallStore, text: str, *, page: int = 1, page_size: int = 50) -> Page:
    return find_calls(store, CallQuery(text=text), page=page, page_size=page_size)


# ---------------------------------------------------------------------- aggregations


class AgentScorecard(TypedDict):
    agent_id: str | None
    calls: int
    avg_sentiment: float | None
    compliance_pass_rate: float | None
    compliance_checked: int
    talk_ratio: float | None
    avg_agent_score: float | None
    flagged_calls: int
    callbacks_promised: int
    callbacks_kept: int
    callbacks_overdue: int
    callbacks_pending: int
    callback_kept_rate: float | None
    total_duration_s: float


class CategoryShare(TypedDict):
    category: str | None
    calls: int
    share: float
    avg_sentiment: float | None


class DailyTrend(TypedDict):
    day: str
    calls: int
    avg_sentiment: float | None
    flagged_calls: int
    compliance_pass_rate: float | None
    callbacks_overdue: int
    total_duration_s: float


def _count_if(condition: Doc) -> Doc:
    return {"$sum": {"$cond": [condition, 1, 0]}}


def _is(field: str, value: str) -> Doc:
    return {"$eq": [{"$ifNull": [f"${field}", None]}, value]}


_FLAGGED = {"$gt": [{"$size": {"$ifNull": ["$flags", []]}}, 0]}
_SHARED_GROUP: Doc = {
    "calls": {"$sum": 1},
    "avg_sentiment": {"$avg": "$sentiment_score"},  # $avg skips calls without a score
    "compliance_passed": {"$sum": {"$ifNull": ["$compliance_passed", 0]}},
    "compliance_checked": {"$sum": {"$ifNull": ["$compliance_checked", 0]}},
    "flagged_calls": _count_if(_FLAGGED),
    "callbacks_overdue": _count_if(_is("callback_status", "overdue")),
    "total_duration_s": {"$sum": {"$ifNull": ["$duration_s", 0]}},
}


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _round(value: Any) -> float | None:
    return round(float(value), 4) if value is not None else None


def agent_scorecards(store: CallStore, query: CallQuery | None = None) -> list[AgentScorecard]:
    """Per agent: calls, average customer sentiment (-1..1), compliance pass rate (passed / checked items),
    average agent talk ratio and performance score, flagged calls and callbacks (promised, kept, overdue,
    pending; kept rate = kept / (kept + overdue)). Busiest first."""
    pipeline: list[Doc] = [
        {"$match": build_filter(query)},
        {
            "$group": {
                "_id": "$agent_id",
                **_SHARED_GROUP,
                "talk_ratio": {"$avg": "$agent_talk_ratio"},
                "agent_score": {"$avg": "$agent_score"},
                # A promise has a callback_status (pending at the least), with or without a due time.
                "callbacks_promised": _count_if({"$ne": [{"$ifNull": ["$callback_status", None]}, None]}),
                "callbacks_kept": _count_if(_is("callback_status", "kept")),
                "callbacks_pending": _count_if(_is("callback_status", "pending")),
            }
        },
        {"$sort": {"calls": -1, "_id": 1}},
    ]
    rows = store.retry("agent scorecards", lambda: list(store.calls.aggregate(pipeline)))
    cards: list[AgentScorecard] = []
    for row in rows:
        decided = row["callbacks_kept"] + row["callbacks_overdue"]
        cards.append(
            AgentScorecard(
                agent_id=row["_id"],
                calls=row["calls"],
                avg_sentiment=_round(row["avg_sentiment"]),
                compliance_pass_rate=_ratio(row["compliance_passed"], row["compliance_checked"]),
                compliance_checked=row["compliance_checked"],
                talk_ratio=_round(row["talk_ratio"]),
                avg_agent_score=_round(row["agent_score"]),
                flagged_calls=row["flagged_calls"],
                callbacks_promised=row["callbacks_promised"],
                callbacks_kept=row["callbacks_kept"],
                callbacks_overdue=row["callbacks_overdue"],
                callbacks_pending=row["callbacks_pending"],
                # Kept out of those already decided: pending promises count neither way yet.
                callback_kept_rate=_ratio(row["callbacks_kept"], decided),
                total_duration_s=round(float(row["total_duration_s"]), 2),
            )
        )
    return cards


def category_distribution(store: CallStore, query: CallQuery | None = None) -> list[CategoryShare]:
    """Calls per category (None: not analysed or uncategorised), largest first, with its share of all calls."""
    pipeline: list[Doc] = [
        {"$match": build_filter(query)},
        {"$group": {"_id": "$category", "calls": {"$sum": 1}, "avg_sentiment": {"$avg": "$sentiment_score"}}},
        {"$sort": {"calls": -1, "_id": 1}},
    ]
    rows = store.retry("category distribution", lambda: list(store.calls.aggregate(pipeline)))
    total = sum(r["calls"] for r in rows)
    return [
        CategoryShare(
            category=r["_id"],
            calls=r["calls"],
            share=_ratio(r["calls"], total) or 0.0,
            avg_sentiment=_round(r["avg_sentiment"]),
        )
        for r in rows
    ]


def daily_trends(store: CallStore, query: CallQuery | None = None, *, timezone: str = "UTC") -> list[DailyTrend]:
    """Per calendar day of the call (in ``timezone``; calls without a call time count on the day they
    were processed): calls, average sentiment, flagged calls, compliance pass rate, overdue callbacks."""
    day = {
        "$dateToString": {
            "format": "%Y-%m-%d",
            "date": {"$ifNull": ["$call_time", "$created_at"]},
            "timezone": timezone,
        }
    }
    pipeline: list[Doc] = [
        {"$match": build_filter(query)},
        {"$group": {"_id": day, **_SHARED_GROUP}},
        {"$sort": {"_id": 1}},
    ]
    rows = store.retry("daily trends", lambda: list(store.calls.aggregate(pipeline)))
    return [
        DailyTrend(
            day=str(r["_id"]),
            calls=r["calls"],
            avg_sentiment=_round(r["avg_sentiment"]),
            flagged_calls=r["flagged_calls"],
            compliance_pass_rate=_ratio(r["compliance_passed"], r["compliance_checked"]),
            callbacks_overdue=r["callbacks_overdue"],
            total_duration_s=round(float(r["total_duration_s"]), 2),
        )
        for r in rows
    ]


def overview(store: CallStore, query: CallQuery | None = None) -> Doc:
    """Headline numbers for a dashboard or ``stats``: totals by status, flags and callback state."""
    flt = build_filter(query)
    pipeline: list[Doc] = [
        {"$match": flt},
        {
            "$facet": {
                "status": [{"$group": {"_id": "$status", "n": {"$sum": 1}}}],
                "callbacks": [
                    {"$match": {"callback_status": {"$ne": None}}},
                    {"$group": {"_id": "$callback_status", "n": {"$sum": 1}}},
                ],
                "flags": [{"$unwind": "$flags"}, {"$group": {"_id": "$flags", "n": {"$sum": 1}}}],
            }
        },
    ]
    facets = store.retry("overview", lambda: next(iter(store.calls.aggregate(pipeline)), {}))

    def counts(name: str) -> dict[str, int]:
        return {str(r["_id"]): int(r["n"]) for r in facets.get(name, [])}

    by_status = counts("status")
    return {
        "calls": sum(by_status.values()),
        "by_status": by_status,
        "callbacks": counts("callbacks"),
        "flags": dict(sorted(counts("flags").items(), key=lambda kv: (-kv[1], kv[0]))),
        "overdue_callbacks": counts("flags").get(CALLBACK_OVERDUE_FLAG, 0),
    }


# ---------------------------------------------------------------------- export

CSV_COLUMNS = (
    "record_id",
    "file_name",
    "source",
    "status",
    "call_time",
    "agent_id",
    "customer_id",
    "customer_phone",
    "direction",
    "queue",
    "duration_s",
    "language",
    "category",
    "subcategory",
    "customer_sentiment",
    "sentiment_score",
    "agent_sentiment",
    "agent_score",
    "csat",
    "flags",
    "failed_compliance_items",
    "compliance_passed",
    "compliance_checked",
    "agent_talk_ratio",
    "callback_due",
    "callback_window_end",
    "callback_status",
    "callback_kept_by",
    "summary",
    "pipeline_version",
    "job_id",
    "stored_at",
)
# Spreadsheet apps run cells that start with these as formulas; transcripts and LLM text can.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# ...but a phone number or a signed number is data, not a formula: leave "+90 555 123 45 67" as it is.
_PLAIN_NUMBER = re.compile(r"[+-]?[\d\s().-]+")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        value = ";".join(str(v) for v in value)
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def iter_calls(store: CallStore, query: CallQuery | None = None, *, full: bool = True) -> Iterator[Doc]:
    """Every matching call, oldest call first, streamed (no paging limit)."""
    projection = None if full else dict.fromkeys(LIST_EXCLUDE, 0)
    cursor = store.calls.find(build_filter(query), projection).sort([("call_time", 1), ("_id", 1)])
    try:
        yield from cursor
    finally:
        cursor.close()


def export_calls(
    store: CallStore, out: Path | IO[str], fmt: ExportFormat = "csv", query: CallQuery | None = None
) -> int:
    """Write matching calls as CSV (one row per call, flattened fields) or JSONL (whole documents).

    Returns the number of calls written. Dates are ISO 8601 in UTC.
    """
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"unknown export format {fmt!r}; use 'csv' or 'jsonl'")
    if isinstance(out, Path):
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8", newline="") as fh:
            return export_calls(store, fh, fmt, query)
    written = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for doc in iter_calls(store, query, full=False):
            writer.writerow({name: _cell(doc.get(name)) for name in CSV_COLUMNS})
            written += 1
    else:
        for doc in iter_calls(store, query, full=True):
            out.write(json.dumps(doc, default=_json_default, ensure_ascii=False) + "\n")
            written += 1
    return written
