"""Review flags: configurable rules (YAML) over a finished analysis, each flag with its reason."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.analysis_schema import Analysis, ReviewFlag


@dataclass
class CallSignals:
    """What flags may look at besides the analysis: ASR confidence and silences from the record."""

    asr_confidence: float | None = None
    longest_silence_s: float | None = None


@dataclass
class FlagRule:
    name: str
    rule: str
    severity: str = "medium"
    enabled: bool = True
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class FlagConfig:
    version: str
    rules: list[FlagRule]

    @classmethod
    def load(cls, path: Path) -> FlagConfig:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        rules = []
        for raw in data.get("flags") or []:
            params = {k: v for k, v in raw.items() if k not in {"name", "rule", "severity", "enabled"}}
            rule = FlagRule(str(raw["name"]), str(raw["rule"]), str(raw.get("severity", "medium")),
                            bool(raw.get("enabled", True)), params)
            if rule.rule not in _RULES:
                raise ValueError(f"flag {rule.name!r}: unknown rule {rule.rule!r}; known: {sorted(_RULES)}")
            rules.append(rule)
        return cls(version=str(data.get("version", "unversioned")), rules=rules)


def evaluate_flags(config: FlagConfig, analysis: Analysis, signals: CallSignals) -> list[ReviewFlag]:
    flags = []
    for rule in config.rules:
        if not rule.enabled:
            continue
        reason = _RULES[rule.rule](rule.params, analysis, signals)
        if reason:
            flags.append(ReviewFlag(name=rule.name, reason=reason, severity=rule.severity))
    return flags


def _list(params: dict[str, Any], key: str) -> list[str]:
    return [str(v) for v in params.get(key) or []]


def _customer_sentiment(params: dict[str, Any], a: Analysis, s: CallSignals) -> str | None:
    if a.sentiment is None:
        return None
    labels = set(_list(params, "labels") or ["negative"])
    for phase in _list(params, "phases") or ["end"]:
        point = a.sentiment.customer.at(phase)  # type: ignore[arg-type]
        if point is not None and point.label in labels:
            quote = f": \"{point.evidence.quote[:80]}\"" if point.evidence else ""
            return f"customer sentiment at the {phase} is {point.label}{quote}"
    return None


def _agent_sentiment(params: dict[str, Any], a: Analysis, s: CallSignals) -> str | None:
    if a.sentiment is None:
        return None
    if a.sentiment.agent.label in set(_list(params, "labels") or ["negative"]):
        return f"agent's tone is {a.sentiment.agent.label}"
    return None


def _compliance_failure(params: dict[str, Any], a: Analysis, s: CallSignals) -> str | None:
    wanted = set(_list(params, "items"))
    failed = [i for i in a.compliance if i.status == "fail" and (not wanted or i.id in wanted)]
    if not failed:
        return None
    return "; ".join(f"{i.id}: {i.reason}" for i in failed)


def _compliance_review(params: dict[str, Any], a: Analysis, s: CallSignals) -> str | None:
    unsure = [i for i in a.compliance if i.status == "needs_review"]
    return "; ".join(f"{i.id}: {i.reason}" for i in unsure) or None


def _low_confidence(params: dict[str, Any], a: Analysis, s: CallSignals) -> str | None:
    below = float(params.get("below", 0.5))
    if a.category_confidence is not None and a.category_confidence < below and not a.empty_call:
        return f"category '{a.subcategory or a.category}' has confidence {a.category_confidence:.2f} < {below}"
    return None


def _callback_promised(params: dict[str, Any], a: Analysis, s: CallSignals) -> str | None:
    cb = a.callback
    if not cb.promised:
        return None
    due = cb.due.strftime("%Y-%m-%d %H:%M") if cb.due else "no time given"
    return f"{cb.by or 'agent'} promised a callback ({due})"


def _callback_without_due(params: dict[str, Any], a: Analysis, s: CallSignals) -> str | None:
    if a.callback.promised and a.callback.due is None:
        return "callback promised without a time"
    return None


def _low_asr(params: dict[str, Any], a: Analysis, s: CallSignals) -> str | None:
    below = float(params.get("below", 0.6))
    if s.asr_confidence is not None and s.asr_confidence < below:
        return f"mean word confidence {s.asr_confidence:.2f} < {below}: the transcript may be wrong"
    return None


def _empty_call(params: dict[str, Any], a: Analysis, s: CallSignals) -> str | None:
    return "no speech from the caller" if a.empty_call else None


def _category(params: dict[str, Any], a: Analysis, s: CallSignals) -> str | None:
    categories = set(_list(params, "categories"))
    subcategories = set(_list(params, "subcategories"))
    if (a.category and a.category in categories) or (a.subcategory and a.subcategory in subcategories):
        return f"classified as {a.subcategory or a.category}"
    return None


def _long_silence(params: dict[str, Any], a: Analysis, s: CallSignals) -> str | None:
    above = float(params.get("above_s", 30.0))
    if s.longest_silence_s is not None and s.longest_silence_s > above:
        return f"silence of {s.longest_silence_s:.0f} s (> {above:.0f} s)"
    return None


def _incomplete(params: dict[str, Any], a: Analysis, s: CallSignals) -> str | None:
    return None if a.complete else "the LLM part of the analysis is missing"


_RULES: dict[str, Callable[[dict[str, Any], Analysis, CallSignals], str | None]] = {
    "customer_sentiment": _customer_sentiment,
    "agent_sentiment": _agent_sentiment,
    "compliance_failure": _compliance_failure,
    "compliance_needs_review": _compliance_review,
    "low_classification_confidence": _low_confidence,
    "callback_promised": _callback_promised,
    "callback_without_due": _callback_without_due,
    "low_asr_confidence": _low_asr,
    "empty_call": _empty_call,
    "category": _category,
    "long_silence": _long_silence,
    "analysis_incomplete": _incomplete,
}


def known_rules() -> Sequence[str]:
    return sorted(_RULES)
