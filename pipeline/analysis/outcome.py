"""Deterministic call outcomes that decide a label outright: a visit booked on the call, and the rubric's other
clear cases (a business asking to join, a thank-you call, "call me later", an item under warranty).

Whether a job was booked is the one fact that separates a Potential Customer from a caller who only
mentioned prices, a fee or a warranty, and agents state it in a small set of fixed ways ("I've booked
you in for Thursday", "you're all booked", "randevunuz oluşturuldu"). Offers ("shall I book you in?")
are not bookings, and a customer who backs out in the next turn cancels it. The rules are tried in the
taxonomy file's order (``outcomes``) and the first that holds decides; their phrases and labels are data,
so users adapt them to their scripts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.analysis.text import AGENT, CUSTOMER, TurnView, find_phrase


@dataclass(frozen=True)
class OutcomeRule:
    """Agent phrases that state an outcome, and the label it decides unless another label is clear."""

    key: str
    label: str
    agent_phrases: tuple[str, ...]
    customer_cancels: tuple[str, ...] = ()
    # The customer accepting a time, price or next step ("go ahead with the premium plan", "Tuesday at
    # eight works, see you then") states the same outcome from the other side.
    customer_phrases: tuple[str, ...] = ()
    # Labels the classifier keeps against this outcome when it ranks them first (a revisit booked to
    # put right a complaint is still a complaint).
    unless: tuple[str, ...] = ()
    # A customer's acceptance does not state the outcome when the agent's turn before it offered one of
    # these ("Shall I give you a ring in ten minutes?" / "Yes, go on then" accepts a call, not a purchase).
    not_accepting: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, key: str, data: Mapping[str, Any]) -> OutcomeRule:
        return cls(key=key, label=str(data["label"]),
                   agent_phrases=tuple(str(p) for p in data.get("agent_phrases") or ()),
                   customer_cancels=tuple(str(p) for p in data.get("customer_cancels") or ()),
                   customer_phrases=tuple(str(p) for p in data.get("customer_phrases") or ()),
                   unless=tuple(str(label) for label in data.get("unless") or ()),
                   not_accepting=tuple(str(p) for p in data.get("not_accepting") or ()))


@dataclass(frozen=True)
class OutcomeHit:
    rule: OutcomeRule
    turn: TurnView
    phrase: str


def find_outcome(rule: OutcomeRule, turns: Sequence[TurnView]) -> OutcomeHit | None:
    """The last agent turn stating the outcome that the customer did not take back."""
    found: OutcomeHit | None = None
    offer: TurnView | None = None  # the agent's last turn so far
    for i, turn in enumerate(turns):
        if turn.role == CUSTOMER and rule.customer_phrases:
            phrase = find_phrase(turn.normalised, rule.customer_phrases)
            if offer is not None and rule.not_accepting and find_phrase(offer.normalised, rule.not_accepting):
                phrase = None  # accepting the agent's other offer (a call back), not a purchase
            if phrase is not None and not find_phrase(turn.normalised, rule.customer_cancels):
                found = OutcomeHit(rule, turn, phrase)
            elif find_phrase(turn.normalised, rule.customer_cancels) and found is not None:
                found = None
            continue
        if turn.role != AGENT:
            continue
        offer = turn
        phrase = find_phrase(turn.normalised, rule.agent_phrases)
        if phrase is None:
            continue
        reply = next((t for t in turns[i + 1:] if t.role == CUSTOMER), None)
        if reply is not None and find_phrase(reply.normalised, rule.customer_cancels):
            found = None  # backed out: an earlier booking does not stand either
            continue
        found = OutcomeHit(rule, turn, phrase)
    return found


def apply_outcomes(
    rules: Sequence[OutcomeRule], turns: Sequence[TurnView], scores: Mapping[str, float]
) -> tuple[str, OutcomeHit] | None:
    """The label an outcome decides, unless the scores already make one of its exceptions clear."""
    for rule in rules:
        hit = find_outcome(rule, turns)
        if hit is None:
            continue
        top = max(scores, key=lambda k: scores[k]) if scores else None
        if top in rule.unless:
            continue
        return rule.label, hit
    return None
