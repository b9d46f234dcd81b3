"""Calibrated sentiment: the LLM's score plus a few words-based features, through a small fitted model.

A 1.5B model's own sentiment labels disagree with human reviewers about half the time (its scores lean
positive and hardly separate "polite" from "pleased"), and fixed thresholds on its score fitted on one
labelled set did not carry over to another. A multinomial logistic regression over a handful of
features did: the LLM's P(positive) - P(negative), the closing-turn cue counts, how short the
customer's last turn is and whether they thanked us (customer at the end); the LLM's score, courtesy
and curtness markers and the agent's turn length (agent). Its coefficients live in
``pipeline/data/sentiment_calibration.json`` with the LLM and prompt version they were fitted for
(``python -m bench.fit_sentiment --write``); with another model the stage falls back to thresholds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.analysis.sentiment import ClosingCues, speaking_turns
from pipeline.analysis.text import AGENT, CUSTOMER, TurnView, phrase_pattern
from pipeline.analysis_schema import Sentiment

CUSTOMER_FEATURES = ("llm_score", "positive_cues", "negative_cues", "log_last_turn_words", "thanked")
AGENT_FEATURES = ("llm_score", "courtesy_per_turn", "curt_phrases", "log_words_per_turn")


@dataclass(frozen=True)
class AgentManner:
    polite: tuple[str, ...]
    rude: tuple[str, ...]
    # The rubric's agent label from the agent's words over the whole call ("agent_rule" in the cues file):
    # curt or condescending phrases -> negative unless the agent is courteous throughout; courteous -> positive;
    # neither -> neutral (matter-of-fact). None: the calibrated model / thresholds decide.
    rule: Mapping[str, float] | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AgentManner:
        rule = data.get("agent_rule")
        return cls(tuple(str(p) for p in data.get("agent_polite") or ()),
                   tuple(str(p) for p in data.get("agent_rude") or ()),
                   {str(k): float(v) for k, v in rule.items()} if isinstance(rule, Mapping) else None)

    def label(self, turns: Sequence[TurnView]) -> Sentiment | None:
        """The agent's label by the rule, or None when the cues file has no rule."""
        if self.rule is None or not any(t.role == AGENT for t in turns):
            return None
        _, courtesy, curt, _ = agent_features(turns, 0.0, self)
        if curt >= self.rule.get("negative_when_curt_at_least", 1) and courtesy < self.rule.get(
                "unless_courtesy_per_turn_at_least", 0.5):
            return "negative"
        if courtesy > self.rule.get("positive_when_courtesy_per_turn_above", 0.0):
            return "positive"
        agent = [t for t in turns if t.role == AGENT]
        if sum(t.confidence for t in agent) / len(agent) < self.rule.get("unheard_below_confidence", 0.0):
            # Neither courtesy nor curtness heard in words the transcriber was unsure of: the words that would
            # show either are the ones it lost, so the agent gets the label most agents have (positive).
            return "positive"
        return "neutral"


def load_cues(path: Path) -> tuple[ClosingCues, AgentManner]:
    """Both phrase sets of the sentiment cues file, read once."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return ClosingCues.from_mapping(data), AgentManner.from_mapping(data)


def customer_features(turns: Sequence[TurnView], llm_score: float, cues: ClosingCues) -> list[float]:
    found, against = cues.phrases(turns)
    positive, negative = len(found), len(against)
    speaking = speaking_turns(turns, CUSTOMER)
    last = speaking[-1].normalised.split() if speaking else []
    closing = " ".join(t.normalised for t in speaking[-cues.closing_turns:])
    thanked = 1.0 if phrase_pattern("thank*").search(closing) or phrase_pattern("tesekkur*").search(closing) else 0.0
    return [llm_score, float(positive), float(negative), math.log1p(len(last)), thanked]


def agent_features(turns: Sequence[TurnView], llm_score: float, manner: AgentManner) -> list[float]:
    agent = [t for t in turns if t.role == AGENT]
    text = " ".join(t.normalised for t in agent)
    courtesy = sum(len(phrase_pattern(p).findall(text)) for p in manner.polite) / max(1, len(agent))
    curt = sum(len(phrase_pattern(p).findall(text)) for p in manner.rude)
    words = sum(len(t.text.split()) for t in agent) / max(1, len(agent))
    return [llm_score, courtesy, float(curt), math.log1p(words)]


@dataclass(frozen=True)
class LinearModel:
    """Multinomial logistic regression coefficients (as fitted by scikit-learn), applied without it."""

    classes: tuple[str, ...]
    features: tuple[str, ...]
    coef: tuple[tuple[float, ...], ...]
    intercept: tuple[float, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinearModel:
        model = cls(tuple(data["classes"]), tuple(data["features"]),
                    tuple(tuple(float(c) for c in row) for row in data["coef"]),
                    tuple(float(b) for b in data["intercept"]))
        if len(model.coef) != len(model.classes) or any(len(row) != len(model.features) for row in model.coef):
            raise ValueError("sentiment calibration: coefficient shape does not match classes x features")
        return model

    def to_dict(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "features": list(self.features),
                "coef": [list(row) for row in self.coef], "intercept": list(self.intercept)}

    def probabilities(self, x: Sequence[float]) -> dict[str, float]:
        logits = [b + sum(c * v for c, v in zip(row, x, strict=True)) for row, b in
                  zip(self.coef, self.intercept, strict=True)]
        top = max(logits)
        exps = [math.exp(v - top) for v in logits]
        total = sum(exps)
        return {label: e / total for label, e in zip(self.classes, exps, strict=True)}


@dataclass(frozen=True)
class SentimentCalibration:
    model: str
    prompt_version: str
    customer: LinearModel
    agent: LinearModel
    trained_on: Mapping[str, Any]

    @classmethod
    def load(cls, path: Path) -> SentimentCalibration:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(model=str(data["model"]), prompt_version=str(data["prompt_version"]),
                   customer=LinearModel.from_dict(data["customer"]), agent=LinearModel.from_dict(data["agent"]),
                   trained_on=dict(data.get("trained_on") or {}))

    def to_json(self) -> str:
        return json.dumps({"model": self.model, "prompt_version": self.prompt_version,
                           "customer": self.customer.to_dict(), "agent": self.agent.to_dict(),
                           "trained_on": dict(self.trained_on)}, indent=2)

    def applies_to(self, model: str | None, prompt_version: str) -> bool:
        """Coefficients only mean something for the LLM and prompt whose scores they were fitted on."""
        return model == self.model and prompt_version == self.prompt_version
