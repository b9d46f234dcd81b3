"""POST /upload/audio/ and /upload/zip/: check, keep, queue, and answer 202 with a job id at once."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import unicodedata
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from pipeline.metadata import MetadataResolver
from pipeline.records import CallMetadata
from serve_app.app_context import AppContext
from serve_app.deps import ApiKey, ContextDep
from serve_app.errors import public_text, validation_message
from serve_app.intake import SNIFF_BYTES, UploadRefused, check_audio, check_zip, iter_zip_audio, zip_limits
from serve_app.jobs import JobIdentity
from serve_app.work_queue import WorkItem

log = logging.getLogger(__name__)

router = APIRouter(tags=["uploads"], dependencies=[ApiKey])

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class AcceptedFile(BaseModel):
    file: str
    status: Literal["queued", "failed"]
    reason: str | None = None
    size_bytes: int | None = None
    format: str | None = Field(None, description="Container found by content sniffing")


class UploadAccepted(JobIdentity):
    status_url: str = Field(description="Poll this for per-file progress and results")
    files: list[AcceptedFile]


class UploadRejected(BaseModel):
    detail: str
    files: list[AcceptedFile] = Field(default_factory=list)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Empty file or a form that is not multipart"},
    401: {"description": "API key missing or wrong"},
    413: {"description": "Over the upload size, entry count or unpacked size limit"},
    415: {"description": "Not audio (or not a ZIP), judged by content"},
    422: {"description": "Invalid metadata, or no entry of the ZIP could be accepted", "model": UploadRejected},
}


def display_name(name: str | None, fallback: str = "upload") -> str:
    """A file name for people: last path part only, no control characters, bounded length."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _CONTROL.sub("", unicodedata.normalize("NFC", base)).strip() or fallback
    return base[-200:]


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


MetaForm = Annotated[str | None, Form(max_length=200)]
# Company and agent names as the telephony export gives them: transcription hints and the greeting check's names.
NameForm = Annotated[str | None, Form(max_length=200, description="A name Whisper should expect (metadata.extra)")]


def form_metadata(
    agent_id: MetaForm = None,
    customer_id: MetaForm = None,
    customer_phone: MetaForm = None,
    call_time: Annotated[datetime | None, Form(description="ISO 8601, e.g. 2026-11-20T10:15:00+03:00; "
                                                           "for a ZIP it applies to every recording")] = None,
    direction: Annotated[Literal["inbound", "outbound"] | None, Form()] = None,
    queue: MetaForm = None,
    company: NameForm = None,
    agent_name: NameForm = None,
    language: Annotated[str | None, Form(max_length=20, description="The call's language as the telephony "
                                         "export knows it (a Whisper code or locale, e.g. en, tr-TR): used "
                                         "instead of detection (transcribe.language_field)")] = None,
) -> dict[str, Any]:
    """Metadata given with the upload (a dependency shared by both upload routes); empty form fields mean
    "not given" (browsers send them as "")."""
    # Typed fields are checked by FastAPI (422 per field, as the schema says); an empty one is "not given".
    values = {
        "agent_id": _clean(agent_id),
        "customer_id": _clean(customer_id),
        "customer_phone": _clean(customer_phone),
        "call_time": call_time,
        "direction": direction,
        "queue": _clean(queue),
    }
    given: dict[str, Any] = {k: v for k, v in values.items() if v is not None}
    # Names travel in metadata.extra, where manifests put them too (the Transcriber and analysis read them there).
    names = {k: v for k, v in (("company", _clean(company)), ("agent_name", _clean(agent_name))) if v}
    if (spoken := _clean(language)) is not None:
        names["language"] = spoken
    if names:
        given["extra"] = names
    try:
        CallMetadata(**given)
    except ValidationError as err:
        raise UploadRefused(422, validation_message(list(err.errors()))) from err  # type: ignore[arg-type]
    return given


def metadata_for(ctx: AppContext, name: str, given: dict[str, Any]) -> CallMetadata:
    """Metadata from the file name (``store.filename_pattern``) overlaid with what the form gave."""
    base: dict[str, Any] = {}
    if ctx.settings.store.filename_pattern:
        try:
            found = MetadataResolver(ctx.settings).resolve(name)
            base = found.model_dump(exclude_none=True)
        except Exception:  # a bad name is a note, not a refused upload
            log.warning("metadata from file name %r failed", name, exc_info=True)
    extra = {**base.get("extra", {}), **given.get("extra", {})}
    base.update(given)
    base["extra"] = extra
    extra["uploaded_at"] = datetime.now().astimezone().isoformat(timespec="seconds")
    return CallMetadata(**base)


def status_url(request: Request, job_id: str) -> str:
    return f"{request.scope.get('root_path', '').rstrip('/')}/jobs/{job_id}"


def accepted_response(request: Request, job_id: str, files: list[AcceptedFile]) -> JSONResponse:
    url = status_url(request, job_id)
    body = UploadAccepted(job_id=job_id, status_url=url, files=files)
    return JSONResponse(body.model_dump(mode="json"), status_code=202, headers={"Location": url})


UploadMetadata = Annotated[dict[str, Any], Depends(form_metadata)]


@router.post(
    "/upload/audio/",
    status_code=202,
    response_model=UploadAccepted,
    responses=ERROR_RESPONSES,
    summary="Upload one recording",
)
async def upload_audio(
    request: Request,
    ctx: ContextDep,
    file: Annotated[UploadFile, File(description="A call recording: wav, mp3, m4a, ogg/opus, flac, ... (judged by "
                                                 "content, not name; 415 otherwise)")],
    given: UploadMetadata,
) -> JSONResponse:
    """Answers 202 with a job id as soon as the file is checked and saved; poll ``status_url``."""
    name = display_name(file.filename, "recording")
    data = await file.read()
    kind = check_audio(data[:SNIFF_BYTES], name)
    limit = ctx.settings.audio.max_file_bytes
    if len(data) > limit:
        raise UploadRefused(413, f"the file is {len(data) / 1e6:.0f} MB, over the {limit / 1e6:.0f} MB limit")
    sha = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
    await asyncio.to_thread(ctx.uploads.save, sha, kind, data)
    item = WorkItem(job_id="", file=name, sha256=sha, kind=kind, metadata=metadata_for(ctx, name, given))
    job_id = await asyncio.to_thread(ctx.jobs.create, "upload", [name], (), {"files": [item.to_meta()], "via": "api"})
    item.job_id = job_id
    ctx.work_queue.submit([item])
    return accepted_response(
        request, job_id, [AcceptedFile(file=name, status="queued", size_bytes=len(data), format=kind)]
    )


@router.post(
    "/upload/zip/",
    status_code=202,
    response_model=UploadAccepted,
    responses=ERROR_RESPONSES,
    summary="Upload a ZIP of recordings",
)
async def upload_zip(
    request: Request,
    ctx: ContextDep,
    file: Annotated[UploadFile, File(description="A ZIP archive of call recordings (folders allowed)")],
    given: UploadMetadata,
) -> JSONResponse:
    """Every entry is checked (traversal, links, nesting, ratio, content) without unpacking first;
    refused entries are listed with their reason, the rest are queued. Metadata given here applies
    to every recording; ``store.filename_pattern`` fills it per file when configured."""
    limits = zip_limits(ctx.settings)
    check = await asyncio.to_thread(check_zip, file.file, limits)

    def save_all() -> list[tuple[str, str, str, int]]:
        saved: list[tuple[str, str, str, int]] = []
        for entry, data in iter_zip_audio(file.file, check, limits):
            sha = hashlib.sha256(data).hexdigest()
            ctx.uploads.save(sha, entry.kind, data)
            saved.append((entry.name, sha, entry.kind, len(data)))
        return saved

    saved = await asyncio.to_thread(save_all) if check.accepted else []
    refused = [AcceptedFile(file=r.name, status="failed", reason=public_text(r.reason)) for r in check.rejected]
    if not saved:
        body = UploadRejected(detail="no recording in the archive could be accepted", files=refused)
        return JSONResponse(body.model_dump(mode="json"), status_code=422)
    archive = display_name(file.filename, "archive.zip")
    items = [
        WorkItem(job_id="", file=name, sha256=sha, kind=kind, metadata=metadata_for(ctx, name, given))
        for name, sha, kind, _ in saved
    ]
    job_id = await asyncio.to_thread(
        ctx.jobs.create,
        "upload",
        [item.file for item in items],
        [(r.file, r.reason or "refused") for r in refused],
        {"archive": archive, "files": [item.to_meta() for item in items], "via": "api"},
    )
    for item in items:
        item.job_id = job_id
    ctx.work_queue.submit(items)
    queued = [AcceptedFile(file=n, status="queued", size_bytes=size, format=k) for n, _, k, size in saved]
    return accepted_response(request, job_id, queued + refused)
