"""Follow-up calls: a call's category seen across the customer's earlier calls.

The analysis of one call sees only that call. A customer who rings back about a complaint (the no-show
engineer came, the refund arrived, the fault is still there) often sounds like a new booking: times are
agreed, "that's sorted then". The QA rubric keeps such calls Complaint ("even if a fix is arranged"),
and over every labelled set so far a call following a Complaint call of the same customer with the
same company was itself Complaint in 20 of 22 cases (ten authors), while the single-call classifier
called 10 of them Potential Customer.

A ``FollowUpRule`` (the taxonomy's ``follow_ups``, data a user can change) says: a call whose own label
is one of ``replaces``, made within ``within_days`` after an earlier call of the same customer and
company whose label is ``after``, takes ``label``. "Earlier call" is the latest one before it that has a
label outside ``passes_over`` (a hang-up between the two does not break the chain), and its label is
its final one: a reviewer's correction first, then its own follow-up label, so a chain of follow-ups
inherits along. A reviewer's label on the call itself always wins.

This module is pure (no store): ``pipeline.follow_up_check`` reads the customer's calls from the store,
calls ``follow_up_labels`` and writes what changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any


@dataclass(frozen=True)
class FollowUpRule:
    after: str
    label: str
    replaces: tuple[str, ...]
    within_days: float = 30.0
    passes_over: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FollowUpRule:
        return cls(after=str(data["after"]), label=str(data.get("label", data["after"])),
                   replaces=tuple(str(x) for x in data.get("replaces") or ()),
                   within_days=float(data.get("within_days", 30.0)),
                   passes_over=tuple(str(x) for x in data.get("passes_over") or ()))

    @property
    def labels(self) -> set[str]:
        return {self.after, self.label, *self.replaces, *self.passes_over}


@dataclass(frozen=True)
class CallLabel:
    """What the rule needs of one stored call."""

    call_id: str
    customers: frozenset[str]  # the call's customer keys (CRM id, "tel:" + phone digits): one shared = same customer
    call_time: datetime | None
    own: str | None  # the flat label the call's own analysis gave (None: not analysed, failed)
    reviewed: str | None = None  # a reviewer's flat label: final, never replaced
    company: str | None = None  # as the telephony export names it; None matches any company
    audio: str | None = None  # the recording's hash: another processing of the same audio is not a follow-up


@dataclass(frozen=True)
class FollowUp:
    label: str
    of: str  # the earlier call's id
    rule: FollowUpRule


def follow_up_labels(calls: Iterable[CallLabel], rules: Sequence[FollowUpRule]) -> dict[str, FollowUp]:
    """The calls that take an earlier call's label, by call id (the others keep their own label)."""
    if not rules:
        return {}
    timed = sorted((c for c in calls if c.call_time is not None), key=lambda c: (_aware(c.call_time), c.call_id))
    final: dict[str, str | None] = {}
    found: dict[str, FollowUp] = {}
    for index, call in enumerate(timed):
        final[call.call_id] = call.reviewed or call.own
        if call.reviewed is not None or call.own is None:
            continue
        for rule in rules:
            if call.own not in rule.replaces:
                continue
            earlier = _earlier_call(timed[:index], call, rule, final)
            if earlier is not None and final[earlier.call_id] == rule.after:
                found[call.call_id] = FollowUp(rule.label, earlier.call_id, rule)
                final[call.call_id] = rule.label
                break
    return found


def _earlier_call(before: Sequence[CallLabel], call: CallLabel, rule: FollowUpRule,
                  final: Mapping[str, str | None]) -> CallLabel | None:
    """The latest call before ``call`` of the same customer and company, within the rule's days."""
    assert call.call_time is not None
    since = _aware(call.call_time) - timedelta(days=rule.within_days)
    for earlier in reversed(before):
        assert earlier.call_time is not None
        if _aware(earlier.call_time) < since:
            return None
        if _aware(earlier.call_time) >= _aware(call.call_time) or not (earlier.customers & call.customers):
            continue
        if call.audio is not None and earlier.audio == call.audio:
            continue
        if call.company and earlier.company and _company(call.company) != _company(earlier.company):
            continue
        label = final.get(earlier.call_id)
        if label is None or label in rule.passes_over:
            continue
        return earlier
    return None


def _company(name: str) -> str:
    return " ".join(name.casefold().split())


def _aware(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
