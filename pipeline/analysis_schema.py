"""Models for the LLM audit section of a call record.

Kept apart from ``pipeline.records`` (which imports it) so the analysis code can import the record
models without a cycle. Owned by the analysis stage (``pipeline.analysis``), which documents how each
field is produced: some by rules (empty calls, compliance phrases, PII, callback due times), some by the
LLM (category, sentiment, the customer's need), some by a classifier trained on reviewer corrections.
Every judgement carries evidence: the quoted turn, its index and its start time, so a reviewer can jump
to the audio.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Sentiment = Literal["positive", "neutral", "negative"]
# needs_review: the rule would fail the item, but on words the transcriber was unsure of (the reason says
# which); a person decides, and it is not counted as a compliance failure.
ComplianceStatus = Literal["pass", "fail", "not_applicable", "needs_review"]
CallbackStatus = Literal["none", "pending", "done", "missed"]
Phase = Literal["start", "middle", "end", "overall"]
# Who decided a field: a deterministic rule, the LLM, the trained classifier, both, or a person.
Source = Literal["rule", "llm", "classifier", "llm+classifier", "llm+rule", "classifier+rule", "llm+classifier+rule",
                 "reviewer", "none"]


class Evidence(BaseModel):
    quote: str
    turn: int | None = None
    time_s: float | None = None
    role: str | None = None


class SentimentPoint(BaseModel):
    phase: Phase
    label: Sentiment
    score: float = Field(0.0, ge=-1.0, le=1.0, description="-1 very negative .. +1 very positive")
    evidence: Evidence | None = None


class RoleSentiment(BaseModel):
    """One party's sentiment: the headline label, and how it moved through the call."""

    label: Sentiment = "neutral"
    score: float = Field(0.0, ge=-1.0, le=1.0)
    trajectory: list[SentimentPoint] = Field(default_factory=list)

    def at(self, phase: Phase) -> SentimentPoint | None:
        return next((p for p in self.trajectory if p.phase == phase), None)

    def relabelled(self, label: Sentiment, phases: Collection[Phase] | None = None) -> RoleSentiment:
        """A copy whose headline label, and the label of the given phases (all when None), is ``label``."""
        trajectory = [p.model_copy(update={"label": label}) if phases is None or p.phase in phases else p
                      for p in self.trajectory]
        return self.model_copy(update={"label": label, "trajectory": trajectory})


class SentimentResult(BaseModel):
    customer: RoleSentiment = Field(default_factory=RoleSentiment)
    agent: RoleSentiment = Field(default_factory=RoleSentiment)


class Classification(BaseModel):
    category: str
    subcategory: str | None = None
    confidence: float = Field(0.0, ge=0.0, le=1.0)
    justification: str = ""
    source: Source = "llm"
    evidence: list[Evidence] = Field(default_factory=list)
    # Probability per flat label ("Potential Customer", "Price Research", ...), when known.
    scores: dict[str, float] = Field(default_factory=dict)
    # The LLM's answers to the taxonomy's yes/no facts (probability of "yes"), and the rule they fired.
    facts: dict[str, float] = Field(default_factory=dict)
    rule: str | None = None
    llm_label: str | None = Field(None, description="The LLM's own label choice, before facts and classifier")
    llm_scores: dict[str, float] = Field(default_factory=dict, description="The LLM's label probabilities")


class ComplianceItemResult(BaseModel):
    id: str
    description: str = ""
    status: ComplianceStatus
    reason: str = ""
    source: Source = "rule"
    evidence: list[Evidence] = Field(default_factory=list)


class CallbackResult(BaseModel):
    promised: bool = False
    by: str | None = Field(None, description="Who promised: agent, technician, team, ...")
    to: str | None = Field(None, description="Who is to be called: usually the customer")
    due: datetime | None = Field(None, description="Absolute due time (call's time zone)")
    due_text: str | None = Field(None, description="The time phrase as said, e.g. 'tomorrow morning'")
    due_is_exact: bool = Field(False, description="True when a clock time was said, not a day part")
    window_end: datetime | None = Field(
        None, description="End of the QA rubric's window for the time said (tomorrow morning: 12:00; a date: 18:00; "
        "a clock time: +30 min); a follow-up call by then plus the grace hours keeps the promise. None: the due time"
    )
    status: CallbackStatus = "none"
    source: Source = "none"
    evidence: list[Evidence] = Field(default_factory=list)


class PiiSpan(BaseModel):
    """Where a piece of PII was, so the audio can be muted: turn, characters and seconds."""

    kind: str
    turn: int
    char_start: int
    char_end: int
    start_s: float | None = None
    end_s: float | None = None
    approximate_time: bool = False
    checksum_valid: bool | None = Field(None, description="Luhn / mod-97 / ID check; None if none exists")


class ReviewFlag(BaseModel):
    name: str
    reason: str
    severity: Literal["low", "medium", "high"] = "medium"


class AgentPerformance(BaseModel):
    score: int = Field(100, ge=0, le=100)
    reasons: list[str] = Field(default_factory=list)


class LLMCallInfo(BaseModel):
    """Provenance and cost of the LLM work behind this analysis."""

    backend: str | None = None
    model: str | None = None
    calls: int = 0
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    retries: int = 0


class Review(BaseModel):
    """The latest reviewer correction of a call: who, when, and which fields they set."""

    reviewer: str | None = None
    at: datetime
    fields: list[str] = Field(default_factory=list)


class Analysis(BaseModel):
    """The audit of one call. Filled by ``pipeline.analysis.analyser.Analyser``."""

    # Headline labels, duplicated from ``classification`` for easy reading and querying.
    category: str | None = None
    subcategory: str | None = None
    category_confidence: float | None = None
    classification: Classification | None = None
    follow_up_of: str | None = Field(
        None, description="The earlier call (record id) whose category this follow-up call took (the taxonomy's "
        "follow_ups rules, checked across the customer's stored calls); classification keeps the call's own answer")
    empty_call: bool = False
    sentiment: SentimentResult | None = None
    compliance: list[ComplianceItemResult] = Field(default_factory=list)
    callback: CallbackResult = Field(default_factory=CallbackResult)
    summary: str | None = None
    customer_need: str | None = None
    keywords: list[str] = Field(default_factory=list)
    topics: list[str] = Field(default_factory=list)
    customer_satisfaction: int | None = Field(None, ge=1, le=5, description="Estimated CSAT, 1-5")
    agent_performance: AgentPerformance | None = None
    flags: list[ReviewFlag] = Field(default_factory=list)
    pii: list[PiiSpan] = Field(default_factory=list)
    # Provenance: what produced this analysis.
    model: str | None = None
    prompt_version: str | None = None
    taxonomy_version: str | None = None
    compliance_version: str | None = None
    llm: LLMCallInfo = Field(default_factory=LLMCallInfo)
    complete: bool = Field(True, description="False when the LLM part is missing (pending or failed)")
    # Reviewer corrections applied on top of the machine's answer.
    reviewed: bool = False
    corrected_fields: list[str] = Field(default_factory=list)
    review: Review | None = Field(None, description="Who corrected the labels and when (None: not reviewed)")
    # Kept for older readers: evidence for the headline classification.
    evidence: list[Evidence] = Field(default_factory=list)

    @property
    def callback_due(self) -> datetime | None:
        return self.callback.due

    @property
    def failed_compliance_items(self) -> list[str]:
        return [item.id for item in self.compliance if item.status == "fail"]

    def flat_fields(self) -> dict[str, Any]:
        """The fields the store copies to the top of a document for MongoDB queries and indexes."""
        sentiment = self.sentiment
        customer: str | None = None
        agent: str | None = None
        if sentiment is not None:
            end = sentiment.customer.at("end")
            customer = end.label if end is not None else sentiment.customer.label
            agent = sentiment.agent.label
        return {
            "category": self.category,
            "subcategory": self.subcategory,
            "flags": [flag.name for flag in self.flags],
            "customer_sentiment": customer,
            "agent_sentiment": agent,
            "failed_compliance_items": self.failed_compliance_items,
            "callback_due": self.callback.due,
            "callback_window_end": self.callback.window_end,
            "callback_status": self.callback.status,
            "callback_promised": self.callback.promised,
        }
