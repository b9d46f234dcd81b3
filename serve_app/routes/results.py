"""Jobs (uploads, re-analyses, batch runs): GET /jobs/{job_id} and the list of recent jobs."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from serve_app.deps import ApiKey, JobsDep
from serve_app.jobs import JobListing, JobView

router = APIRouter(tags=["jobs"], dependencies=[ApiKey])


def _call_url(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/") + "/calls/{id}"


@router.get(
    "/jobs/{job_id}",
    response_model=JobView,
    responses={404: {"description": "No such job"}},
    summary="Progress and results of a job: an upload, a re-analysis, a batch run",
)
async def get_job(request: Request, job_id: str, jobs: JobsDep) -> JobView:
    """Per file: queued, running, done (with the stored call's headline fields) or failed (with why)."""
    view = await asyncio.to_thread(jobs.view, job_id, call_url=_call_url(request))
    if view is None:
        raise HTTPException(404, f"no job with id {job_id!r}")
    return view


@router.get(
    "/results/{task_id}/",
    response_model=JobView,
    responses={404: {"description": "No such job"}},
    summary="The same as GET /jobs/{job_id} (the path before jobs had one name)",
    deprecated=True,
)
async def get_results(request: Request, task_id: str, jobs: JobsDep) -> JobView:
    return await get_job(request, task_id, jobs)


@router.get("/results/{task_id}", response_model=JobView, include_in_schema=False)
async def get_results_no_slash(request: Request, task_id: str, jobs: JobsDep) -> JobView:
    return await get_job(request, task_id, jobs)


@router.get("/jobs", response_model=list[JobListing], summary="Recent jobs (uploads, batch runs, re-analyses)")
async def list_jobs(
    jobs: JobsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    kind: Annotated[str | None, Query(description="upload, batch, reanalyse, ...")] = None,
) -> list[JobListing]:
    return await asyncio.to_thread(jobs.recent, limit, kind)
