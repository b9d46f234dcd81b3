"""GET /healthz: is the store answering, and the LLM backend (when analysis is on)?"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serve_app.deps import ContextDep
from serve_app.errors import public_text

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

LLM_TIMEOUT_S = 10.0


@router.get(
    "/healthz",
    summary="Store and LLM backend checks",
    responses={200: {"description": "Everything needed answers"}, 503: {"description": "Something is down"}},
)
async def healthz(ctx: ContextDep) -> JSONResponse:
    """200 when the store answers and (with analysis on) the LLM backend does; 503 and which one otherwise.

    Open without an API key so load balancers can probe it; it tells nothing but up or down.
    """
    store = await asyncio.to_thread(_store_check, ctx)
    llm = await _llm_check(ctx)
    ok = store["ok"] and llm["ok"] is not False
    body: dict[str, Any] = {
        "status": "ok" if ok else "degraded",
        "store": store,
        "llm": llm,
        "queued_files": ctx.work_queue.queued,
    }
    return JSONResponse(body, status_code=200 if ok else 503)


def _store_check(ctx: Any) -> dict[str, Any]:
    try:
        ctx.store.db.command("ping")
    except Exception as err:
        log.warning("health: store check failed: %s", err)
        return {"ok": False, "detail": "the database does not answer"}
    return {"ok": True, "spooled_writes": ctx.store.spool.pending_entries()}


async def _llm_check(ctx: Any) -> dict[str, Any]:
    if not ctx.settings.analysis.enabled or ctx.llm_health is None:
        return {"ok": None, "detail": "analysis is turned off"}
    try:
        result = await asyncio.wait_for(ctx.llm_health(), timeout=LLM_TIMEOUT_S)
    except asyncio.TimeoutError:
        return {"ok": False, "detail": f"the LLM backend did not answer within {LLM_TIMEOUT_S:.0f} s"}
    except Exception as err:
        log.warning("health: LLM check failed: %s", err)
        return {"ok": False, "detail": "the analysis service is not available"}
    detail = {k: public_text(str(v)) if isinstance(v, str) else v for k, v in dict(result).items()}
    return {"ok": bool(detail.pop("ok", False)), **detail}
