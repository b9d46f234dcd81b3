"""The call taxonomy as data: categories, sub-categories, definitions, cue words and seed examples.

The LLM and the classifier both choose among *flat labels*: every sub-category of a category that has
them, plus every category without sub-categories ("Potential Customer", "Uncertain"). A flat label maps
back to (category, subcategory). Rule-only labels ("Empty Call") are never offered to the LLM.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.analysis.follow_ups import FollowUpRule
from pipeline.analysis.outcome import OutcomeRule
from pipeline.analysis.text import norm, phrase_pattern

EMPTY_CALL = "Empty Call"
UNCERTAIN = "Uncertain"


@dataclass(frozen=True)
class Label:
    """One choosable label: a sub-category, or a category without sub-categories."""

    name: str
    category: str
    subcategory: str | None
    definition: str
    cues: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    rule_only: bool = False


@dataclass(frozen=True)
class Fact:
    """A yes/no question the LLM answers about the call before choosing a label."""

    key: str
    question: str


@dataclass(frozen=True)
class DecideRule:
    """If every condition holds ("fact" true, "not fact" false), the label is one of ``labels``."""

    when: tuple[str, ...]
    labels: tuple[str, ...]

    def holds(self, facts: Mapping[str, float], threshold: float) -> bool:
        for condition in self.when:
            negated = condition.startswith("not ")
            key = condition[4:].strip() if negated else condition.strip()
            if key not in facts:
                return False
            if (facts[key] >= threshold) == negated:
                return False
        return True


@dataclass
class Taxonomy:
    version: str
    labels: list[Label]
    topics: dict[str, list[str]] = field(default_factory=dict)
    category_definitions: dict[str, str] = field(default_factory=dict)
    facts: list[Fact] = field(default_factory=list)
    decide_rules: list[DecideRule] = field(default_factory=list)
    fact_threshold: float = 0.5
    outcomes: list[OutcomeRule] = field(default_factory=list)
    # Cross-call rules: a follow-up of a Complaint call stays Complaint (pipeline.analysis.follow_ups).
    follow_ups: list[FollowUpRule] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Taxonomy:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Taxonomy:
        labels: list[Label] = []
        definitions: dict[str, str] = {}
        for cat in data.get("categories") or []:
            name = str(cat["name"])
            definitions[name] = str(cat.get("definition", "")).strip()
            subs = cat.get("subcategories") or []
            if not subs:
                labels.append(_label(cat, name, None))
            for sub in subs:
                labels.append(_label(sub, name, str(sub["name"])))
        names = [label.name for label in labels]
        if len(set(names)) != len(names):
            raise ValueError(f"taxonomy label names must be unique, got {names}")
        if not labels:
            raise ValueError("taxonomy has no categories")
        topics = {str(k): [str(w) for w in v] for k, v in (data.get("topics") or {}).items()}
        facts = [Fact(str(f["key"]), " ".join(str(f["question"]).split())) for f in data.get("facts") or []]
        rules = []
        fact_keys = {f.key for f in facts}
        for raw in data.get("decide") or []:
            when = tuple(str(c) for c in raw.get("when") or ())
            chosen = raw.get("labels") or ([raw["label"]] if raw.get("label") else [])
            rule = DecideRule(when, tuple(str(x) for x in chosen))
            unknown_facts = {c.removeprefix("not ").strip() for c in when} - fact_keys
            unknown_labels = set(rule.labels) - set(names)
            if unknown_facts or unknown_labels or not rule.labels:
                raise ValueError(f"taxonomy decide rule {raw}: unknown facts {sorted(unknown_facts)} "
                                 f"or labels {sorted(unknown_labels)}")
            rules.append(rule)
        outcomes = [OutcomeRule.from_dict(str(key), raw) for key, raw in (data.get("outcomes") or {}).items()]
        for outcome in outcomes:
            unknown_labels = ({outcome.label} | set(outcome.unless)) - set(names)
            if unknown_labels:
                raise ValueError(f"taxonomy outcome {outcome.key!r}: unknown labels {sorted(unknown_labels)}")
        follow_ups = [FollowUpRule.from_dict(raw) for raw in data.get("follow_ups") or ()]
        for follow_up in follow_ups:
            unknown_labels = follow_up.labels - set(names)
            if unknown_labels:
                raise ValueError(f"taxonomy follow-up rule after {follow_up.after!r}: unknown labels "
                                 f"{sorted(unknown_labels)}")
        return cls(version=str(data.get("version", "unversioned")), labels=labels, topics=topics,
                   category_definitions=definitions, facts=facts, decide_rules=rules,
                   fact_threshold=float(data.get("fact_threshold", 0.5)), outcomes=outcomes,
                   follow_ups=follow_ups)

    def decide(
        self, facts: Mapping[str, float], scores: Mapping[str, float]
    ) -> tuple[str, DecideRule] | None:
        """The label the facts point to (first matching rule), the best-scored one if it allows several."""
        for rule in self.decide_rules:
            if rule.holds(facts, self.fact_threshold):
                best = max(rule.labels, key=lambda name: scores.get(name, 0.0))
                return best, rule
        return None

    def describe_facts_for_llm(self) -> str:
        return "\n".join(f'- "{fact.key}": {fact.question}' for fact in self.facts)

    @property
    def llm_labels(self) -> list[Label]:
        return [label for label in self.labels if not label.rule_only]

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.llm_labels]

    def label(self, name: str) -> Label | None:
        return next((label for label in self.labels if label.name == name), None)

    def split(self, flat: str) -> tuple[str, str | None]:
        """(category, subcategory) of a flat label; unknown names are returned as a category."""
        label = self.label(flat)
        if label is None:
            return flat, None
        return label.category, label.subcategory

    def flat(self, category: str | None, subcategory: str | None) -> str | None:
        """The flat label of a (category, subcategory) pair, or None when it is not in the taxonomy."""
        for label in self.labels:
            if label.category == category and label.subcategory == subcategory:
                return label.name
        if subcategory is not None and self.label(subcategory) is not None:
            return subcategory
        return None

    @property
    def categories(self) -> list[str]:
        return list(dict.fromkeys(label.category for label in self.labels))

    def topics_of(self, text: str) -> list[str]:
        """Topic names whose words occur in the text, most mentioned first."""
        normalised = norm(text)
        counts: dict[str, int] = {}
        for topic, terms in self.topics.items():
            hits = sum(len(phrase_pattern(term).findall(normalised)) for term in terms)
            if hits:
                counts[topic] = hits
        return sorted(counts, key=lambda name: -counts[name])

    def describe_for_llm(self) -> str:
        """The label list with definitions, as the LLM reads it (in the cached system prompt)."""
        lines = []
        for label in self.llm_labels:
            parent = f" (a kind of {label.category})" if label.subcategory else ""
            cue = f" Typical words: {', '.join(label.cues[:6])}." if label.cues else ""
            lines.append(f"- {label.name}{parent}: {label.definition}{cue}")
        return "\n".join(lines)


def _label(node: dict[str, Any], category: str, subcategory: str | None) -> Label:
    return Label(
        name=subcategory or category,
        category=category,
        subcategory=subcategory,
        definition=" ".join(str(node.get("definition", "")).split()),
        cues=tuple(str(c) for c in node.get("cues") or ()),
        examples=tuple(str(e) for e in node.get("examples") or ()),
        rule_only=bool(node.get("rule_only", False)),
    )
