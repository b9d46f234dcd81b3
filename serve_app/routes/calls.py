"""Stored calls: list with the store's filters and paging, one call, its audio, export, re-analysis."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from pipeline.store.queries import MAX_PAGE_SIZE, CallQuery, export_calls, find_calls
from serve_app.deps import ApiKey, ContextDep, StoreDep
from serve_app.errors import public_text
from serve_app.processing import WorkItem
from serve_app.routes.uploads import AcceptedFile, accepted_response
from serve_app.uploads import MEDIA_TYPES

router = APIRouter(tags=["calls"], dependencies=[ApiKey])

# Store bookkeeping a client has no use for.
_HIDDEN = ("_id", "store_layout")


class ListParams(CallQuery):
    page: int = Field(1, ge=1)
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
    model), and the record is updated in place. Answers with a task id like an upload."""
    doc = await _document(ctx.store, call_id)
    if not ctx.settings.analysis.enabled or ctx.processor.analyse is None:
        raise HTTPException(409, "analysis is turned off on this server (analysis.enabled is false)")
    name = str(doc.get("file_name") or call_id)
    job_id = await asyncio.to_thread(ctx.jobs.create, "reanalyse", [name], (), {"record_id": call_id})
    ctx.processor.submit([WorkItem(job_id, name, str(doc.get("audio_sha256", "")), "", reanalyse=call_id)])
    return accepted_response(request, job_id, [AcceptedFile(file=name, status="queued")])
