"""Stored calls: list with the store's filters and paging, one call, its audio, export, re-analysis,
reviewer corrections (and the taxonomy the correction form offers)."""

from __future__ import annotations

import asyncio
import functools
import io
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from pipeline.analysis.compliance import Checklist
from pipeline.analysis.taxonomy import Taxonomy
from pipeline.analysis_schema import ComplianceStatus, Sentiment
from pipeline.settings import Settings
from pipeline.store.queries import MAX_PAGE_SIZE, CallQuery, export_calls, find_calls
from pipeline.store.upgrades import record_from_stored
from serve_app.deps import ApiKey, ContextDep, StoreDep
from serve_app.errors import public_text
from serve_app.intake import MEDIA_TYPES
from serve_app.routes.uploads import AcceptedFile, accepted_response
from serve_app.work_queue import WorkItem

router = APIRouter(tags=["calls"], dependencies=[ApiKey])

# Far past any real page, and small enough that the skip it makes stays a 64-bit integer.
MAX_PAGE = 1_000_000_000

# Store bookkeeping a client has no use for.
_HIDDEN = ("_id", "store_layout")


class ListParams(CallQuery):
    page: int = Field(1, ge=1, le=MAX_PAGE)
    page_size: int = Field(50, ge=1, le=MAX_PAGE_SIZE)
    sort: str = Field("-created_at", description='Fields, "-" for descending, e.g. "-call_time,agent_id"')


class ExportParams(CallQuery):
    format: Literal["csv", "jsonl"] = "csv"


class CallPage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int
    pages: int


def filters_of(params: CallQuery) -> CallQuery:
    """The plain CallQuery part of a parameter model that adds paging or format fields."""
    return CallQuery(**params.model_dump(include=set(CallQuery.model_fields)))


def public_doc(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k not in _HIDDEN}
    for error in out.get("errors") or []:
        if isinstance(error, dict):
            error["message"] = public_text(error.get("message"))
    return jsonable_encoder(out)


@router.get("/calls", response_model=CallPage, summary="Find calls (filters, keyword search, paging)")
async def list_calls(store: StoreDep, params: Annotated[ListParams, Query()]) -> CallPage:
    """Filters combine with AND; ``text`` searches transcripts (every word must occur). Transcripts,
    tracks and stage details are left out of list items: GET /calls/{id} has them."""
    try:
        page = await asyncio.to_thread(
            find_calls, store, filters_of(params), page=params.page, page_size=params.page_size, sort=params.sort
        )
    except ValueError as err:
        raise HTTPException(400, str(err)) from err
    return CallPage(
        items=[public_doc(d) for d in page.items],
        total=page.total,
        page=page.page,
        page_size=page.page_size,
        pages=page.pages,
    )


@router.get(
    "/calls/export",
    summary="Export matching calls as CSV (one row per call) or JSONL (whole records)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
)
async def export(store: StoreDep, params: Annotated[ExportParams, Query()]) -> Response:
    def run() -> str:
        buffer = io.StringIO()
        export_calls(store, buffer, params.format, filters_of(params))
        return buffer.getvalue()

    text = await asyncio.to_thread(run)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    media = "text/csv; charset=utf-8" if params.format == "csv" else "application/x-ndjson"
    return Response(
        text,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="calls-{stamp}.{params.format}"'},
    )


async def _document(store: StoreDep, call_id: str) -> dict[str, Any]:
    doc = await asyncio.to_thread(store.get_document, call_id)
    if doc is None:
        raise HTTPException(404, f"no call with id {call_id!r}")
    return doc


@router.get("/calls/{call_id}", summary="One call: transcript, metrics, analysis, provenance")
async def get_call(store: StoreDep, call_id: str) -> JSONResponse:
    return JSONResponse(public_doc(await _document(store, call_id)))


@router.get(
    "/calls/{call_id}/audio",
    summary="The call's recording as uploaded (supports Range requests for seeking)",
    response_class=FileResponse,
    responses={200: {"content": {"audio/*": {}}}, 404: {"description": "Unknown call, or audio not kept here"}},
)
async def get_audio(ctx: ContextDep, call_id: str) -> FileResponse:
    doc = await _document(ctx.store, call_id)
    found = await asyncio.to_thread(ctx.uploads.find, str(doc.get("audio_sha256", "")))
    if found is None:
        raise HTTPException(404, "the audio of this call is not kept on this server (only uploads are)")
    path, kind = found
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(kind, "application/octet-stream"),
        filename=str(doc.get("file_name") or f"{call_id}.{kind}"),
        content_disposition_type="inline",
    )


@router.post(
    "/calls/{call_id}/reanalyse",
    status_code=202,
    summary="Run the LLM analysis again on the stored transcript",
    responses={404: {"description": "Unknown call"}, 409: {"description": "Analysis is turned off"}},
)
async def reanalyse(request: Request, ctx: ContextDep, call_id: str) -> JSONResponse:
    """No audio work: the stored transcript goes through the Analyser again (new prompts, taxonomy or
    model), and the record is updated in place. Answers with a job id like an upload."""
    doc = await _document(ctx.store, call_id)
    if not ctx.settings.analysis.enabled or ctx.work_queue.analyse is None:
        raise HTTPException(409, "analysis is turned off on this server (analysis.enabled is false)")
    name = str(doc.get("file_name") or call_id)
    job_id = await asyncio.to_thread(ctx.jobs.create, "reanalyse", [name], (), {"record_id": call_id})
    ctx.work_queue.submit([WorkItem(job_id, name, str(doc.get("audio_sha256", "")), "", reanalyse=call_id)])
    return accepted_response(request, job_id, [AcceptedFile(file=name, status="queued")])


# ---------------------------------------------------------------------- reviewer corrections

SENTIMENTS = ["positive", "neutral", "negative"]
COMPLIANCE_STATUSES = ["pass", "fail", "not_applicable"]


class CorrectionRequest(BaseModel):
    """A reviewer's labels for one call: send only the fields to set."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"category": "Unnecessary Call", "subcategory": "Complaint", "customer_sentiment": "negative",
                          "reviewer": "qa-lead"}]
        },
    )

    category: str | None = Field(None, description="A category of the taxonomy (GET /taxonomy)")
    subcategory: str | None = Field(
        None, description="One of the category's sub-categories (required when it has any); alone, implies the category"
    )
    customer_sentiment: Sentiment | None = None
    agent_sentiment: Sentiment | None = None
    callback_promised: bool | None = None
    callback_due: datetime | None = Field(None, description="When the promised callback is due (ISO 8601)")
    compliance: dict[str, ComplianceStatus] | None = Field(
        None, description="Checklist item id -> pass / fail / not_applicable (ids from GET /taxonomy)"
    )
    reviewer: str | None = Field(None, max_length=200, description="Who corrected the call (shown on the call page)")


class TaxonomyCategory(BaseModel):
    name: str
    subcategories: list[str]
    definition: str = ""


class ChecklistItem(BaseModel):
    id: str
    description: str = ""


class TaxonomyView(BaseModel):
    version: str
    categories: list[TaxonomyCategory]
    sentiments: list[str]
    compliance_version: str
    compliance: list[ChecklistItem]
    compliance_statuses: list[str]


@functools.lru_cache(maxsize=8)
def _taxonomy(path: str, mtime_ns: int) -> Taxonomy:
    return Taxonomy.load(Path(path))


@functools.lru_cache(maxsize=8)
def _checklist(path: str, mtime_ns: int) -> Checklist:
    return Checklist.load(Path(path))


def taxonomy_of(settings: Settings) -> Taxonomy:
    """The configured taxonomy, read again when its file changes."""
    path = settings.analysis.taxonomy_file
    return _taxonomy(str(path), path.stat().st_mtime_ns)


def checklist_of(settings: Settings) -> Checklist:
    path = settings.analysis.compliance_file
    return _checklist(str(path), path.stat().st_mtime_ns)


def subcategories_of(taxonomy: Taxonomy, category: str) -> list[str]:
    return [label.subcategory for label in taxonomy.labels if label.category == category and label.subcategory]


def correction_labels(body: CorrectionRequest, taxonomy: Taxonomy, checklist: Checklist) -> dict[str, Any]:
    """The labels to save, checked against the taxonomy and the checklist; 422 (per field) otherwise."""
    given = body.model_dump(mode="json", exclude_unset=True, exclude={"reviewer"})
    # An explicit null clears a sub-category or a due time; for the other fields it means "unchanged".
    labels = {k: v for k, v in given.items() if v is not None or k in ("subcategory", "callback_due")}
    errors: list[dict[str, Any]] = []

    def refuse(field: str, message: str) -> None:
        errors.append({"loc": ("body", field), "msg": message, "type": "value_error"})

    if "category" in labels:
        category = labels["category"]
        subcategory = labels.get("subcategory")
        subs = subcategories_of(taxonomy, category)
        if category not in taxonomy.categories:
            refuse("category", f"unknown category {category!r}; the taxonomy has: {', '.join(taxonomy.categories)}")
        elif subs and subcategory is None:
            refuse("subcategory", f"category {category!r} needs a sub-category: one of {', '.join(subs)}")
        elif subs and subcategory not in subs:
            refuse("subcategory", f"{subcategory!r} is not a sub-category of {category!r}; its sub-categories are: "
                                  f"{', '.join(subs)}")
        elif not subs and subcategory is not None:
            refuse("subcategory", f"category {category!r} has no sub-categories (got {subcategory!r})")
        labels["subcategory"] = subcategory
    elif "subcategory" in labels:
        subcategory = labels["subcategory"]
        owner = next((label.category for label in taxonomy.labels if label.subcategory == subcategory), None)
        if subcategory is None:
            refuse("subcategory", "send the category to clear a sub-category")
        elif owner is None:
            known = [label.subcategory for label in taxonomy.labels if label.subcategory]
            refuse("subcategory", f"unknown sub-category {subcategory!r}; the taxonomy has: {', '.join(known)}")
        else:
            labels["category"] = owner
    if "compliance" in labels:
        known_ids = [item.id for item in checklist.items]
        unknown = sorted(set(labels["compliance"]) - set(known_ids))
        if unknown:
            refuse("compliance", f"unknown checklist item(s) {', '.join(unknown)}; the checklist has: "
                                 f"{', '.join(known_ids)}")
    if labels.get("callback_due") is not None:
        if labels.get("callback_promised") is False:
            refuse("callback_due", "a callback due time needs callback_promised true (or leave it out)")
        labels["callback_promised"] = True
    if not labels and not errors:
        refuse("body", "nothing to correct: send at least one of category, subcategory, customer_sentiment, "
                       "agent_sentiment, callback_promised, callback_due, compliance")
    if errors:
        raise RequestValidationError(errors)
    return labels


@router.get("/taxonomy", response_model=TaxonomyView, tags=["review"],
            summary="Categories, sub-categories, sentiments and checklist items a correction may use")
async def get_taxonomy(ctx: ContextDep) -> TaxonomyView:
    taxonomy = taxonomy_of(ctx.settings)
    checklist = checklist_of(ctx.settings)
    return TaxonomyView(
        version=taxonomy.version,
        categories=[
            TaxonomyCategory(name=name, subcategories=subcategories_of(taxonomy, name),
                             definition=taxonomy.category_definitions.get(name, ""))
            for name in taxonomy.categories
        ],
        sentiments=SENTIMENTS,
        compliance_version=checklist.version,
        compliance=[ChecklistItem(id=item.id, description=item.description) for item in checklist.items],
        compliance_statuses=COMPLIANCE_STATUSES,
    )


@router.post(
    "/calls/{call_id}/correction",
    tags=["review"],
    summary="Correct a call's labels as a reviewer (they also teach the classifier)",
    responses={
        404: {"description": "Unknown call"},
        409: {"description": "The call has no transcript, or was re-processed meanwhile"},
        422: {"description": "Unknown category, sub-category of another category, unknown checklist item..."},
        503: {"description": "The database did not answer: the correction was not saved"},
    },
)
async def correct_call(ctx: ContextDep, call_id: str, body: CorrectionRequest) -> JSONResponse:
    """Saves the correction in the corrections store (the classifier retrains on it; a later
    re-analysis of this call keeps it), applies it to the stored call (``analysis.review`` says who
    and when; flags are evaluated again) and answers with the updated call, as GET /calls/{id}."""
    labels = correction_labels(body, taxonomy_of(ctx.settings), checklist_of(ctx.settings))
    doc = await _document(ctx.store, call_id)
    record = record_from_stored(doc)
    if not record.turns:
        raise HTTPException(409, f"call {call_id!r} has no transcript (status {record.status}): nothing to correct")
    reviewer = (body.reviewer or "").strip() or None
    # The one save path, as every other write of a call: the correction, then the call updated with it.
    _, saved = await asyncio.to_thread(ctx.writer.correct, record, labels, reviewer=reviewer, job_id=doc.get("job_id"))
    result = saved.write
    if call_id in result.failed:
        raise HTTPException(500, f"the correction is saved but the call could not be updated: {result.failed[call_id]}")
    if call_id in result.stale:
        raise HTTPException(409, "the call was processed again meanwhile; the correction is saved and applies when "
                                 "it is analysed again: reload the call to see it")
    if result.spooled:
        raise HTTPException(
            503, "the correction is saved; the updated call waits for the database and is written when it is back",
            headers={"Retry-After": "30"},
        )
    return JSONResponse(public_doc(await _document(ctx.store, call_id)))
