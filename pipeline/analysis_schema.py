"""Models for the LLM audit section of a call record.

Kept apart from ``pipeline.records`` (which imports it) so the analysis code can import the record
models without a cycle. Owned by the analysis stage (``pipeline.analysis``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Sentiment = Literal["positive", "neutral", "negative"]


class Evidence(BaseModel):
    quote: str
    turn: int | None = None
    time_s: float | None = None


class Analysis(BaseModel):
    """Filled by pipeline.analysis; see that package for how each field is produced."""

    category: str | None = None
    subcategory: str | None = None
    category_confidence: float | None = None
    summary: str | None = None
    model: str | None = None
    prompt_version: str | None = None
    callback_due: datetime | None = None
    evidence: list[Evidence] = Field(default_factory=list)
