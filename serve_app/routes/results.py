"""Task tracking: GET /results/{task_id}/ and the list of recent tasks."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from serve_app.deps import ApiKey, JobsDep
from serve_app.jobs import TaskSummary, TaskView

router = APIRouter(tags=["tasks"], dependencies=[ApiKey])


def _call_url(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/") + "/calls/{id}"


@router.get(
    "/results/{task_id}/",
    response_model=TaskView,
    responses={404: {"description": "No such task"}},
    summary="Progress and results of an upload or re-analysis",
)
async def get_results(request: Request, task_id: str, jobs: JobsDep) -> TaskView:
    """Per file: queued, running, done (with the stored call's headline fields) or failed (with why)."""
    view = await asyncio.to_thread(jobs.view, task_id, call_url=_call_url(request))
    if view is None:
        raise HTTPException(404, f"no task with id {task_id!r}")
    return view


@router.get("/results/{task_id}", response_model=TaskView, include_in_schema=False)
async def get_results_no_slash(request: Request, task_id: str, jobs: JobsDep) -> TaskView:
    return await get_results(request, task_id, jobs)


@router.get("/jobs", response_model=list[TaskSummary], summary="Recent tasks (uploads, batch runs, re-analyses)")
async def list_jobs(
    jobs: JobsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    kind: Annotated[str | None, Query(description="upload, batch, reanalyse, ...")] = None,
) -> list[TaskSummary]:
    return await asyncio.to_thread(jobs.recent, limit, kind)
