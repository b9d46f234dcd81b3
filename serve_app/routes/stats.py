"""GET /stats: headline numbers, category distribution, agent scorecards and daily trends."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, HTTPException, Query
from fastapi.encoders import jsonable_encoder
from pydantic import Field

from pipeline.store.queries import CallQuery, agent_scorecards, category_distribution, daily_trends, overview
from serve_app.deps import ApiKey, StoreDep
from serve_app.routes.calls import filters_of

router = APIRouter(tags=["stats"], dependencies=[ApiKey])


class StatsParams(CallQuery):
    timezone: str = Field("UTC", description="IANA zone that decides which day a call falls on")


@router.get("/stats", summary="Scorecards, categories and trends over the calls matching the filters")
async def stats(store: StoreDep, params: Annotated[StatsParams, Query()]) -> dict[str, Any]:
    try:
        ZoneInfo(params.timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        message = f"unknown time zone {params.timezone!r}; use an IANA name such as Europe/Istanbul"
        raise HTTPException(400, message) from err
    query = filters_of(params)

    def run() -> dict[str, Any]:
        return {
            "overview": overview(store, query),
            "categories": category_distribution(store, query),
            "agents": agent_scorecards(store, query),
            "daily": daily_trends(store, query, timezone=params.timezone),
        }

    return jsonable_encoder(await asyncio.to_thread(run))
