"""A call back about a complaint stays a Complaint: the taxonomy's follow-up rules across a customer's calls.

The rule itself is pure (``pipeline.analysis.follow_ups``); the check on the stored calls runs after every
save (``pipeline.save.CallWriter``) on a real MongoDB-wire server, and must keep a reviewer's label first and
go back to a call's own label when the call it followed is relabelled.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pipeline.analysis.follow_ups import CallLabel, FollowUpRule, follow_up_labels
from pipeline.analysis.taxonomy import Taxonomy
from pipeline.analysis_schema import Analysis, Classification
from pipeline.records import CallRecord
from pipeline.save import CallWriter
from pipeline.settings import Settings
from pipeline.store import CallStore
from tests.store_fixtures import T0, make_record

RULE = FollowUpRule(after="Complaint", label="Complaint", replaces=("Potential Customer",), within_days=30,
                    passes_over=("Empty Call", "Uncertain"))
DAY = timedelta(days=1)
COMPLAINT = ("Unnecessary Call", "Complaint")
BOOKING = ("Potential Customer", None)


def _call(call_id: str, own: str | None, when: datetime, *, customer: str = "C1", reviewed: str | None = None,
          company: str | None = None, audio: str | None = None) -> CallLabel:
    return CallLabel(call_id=call_id, customers=frozenset({customer}), call_time=when, own=own, reviewed=reviewed,
                     company=company, audio=audio or call_id)


def test_a_booking_after_a_complaint_of_the_same_customer_is_a_complaint() -> None:
    found = follow_up_labels([_call("b", "Potential Customer", T0 + DAY), _call("a", "Complaint", T0)], [RULE])
    assert set(found) == {"b"} and found["b"].label == "Complaint" and found["b"].of == "a"


def test_the_label_passes_along_a_chain_of_follow_ups_and_past_hang_ups() -> None:
    calls = [_call("a", "Complaint", T0), _call("b", "Potential Customer", T0 + DAY),
             _call("hang-up", "Empty Call", T0 + 2 * DAY), _call("c", "Potential Customer", T0 + 3 * DAY)]
    found = follow_up_labels(calls, [RULE])
    assert (found["b"].of, found["c"].of) == ("a", "b") and "hang-up" not in found


def test_a_call_later_between_the_complaint_and_the_follow_up_does_not_end_the_thread(tmp_path: Path) -> None:
    """The company rings back about the complaint, the customer is busy ("ring me tomorrow"), the next
    morning's call arranges the fix: still the complaint (the shipped taxonomy's rule)."""
    rules = Taxonomy.load(Settings(home=tmp_path).analysis.taxonomy_file).follow_ups
    calls = [_call("a", "Complaint", T0), _call("busy", "Call Later", T0 + DAY / 4),
             _call("fix", "Potential Customer", T0 + DAY)]
    found = follow_up_labels(calls, rules)
    assert set(found) == {"fix"} and found["fix"].of == "a"


def test_other_customers_companies_old_calls_and_other_labels_are_left_alone() -> None:
    calls = [
        _call("a", "Complaint", T0, company="Northfield Broadband"),
        _call("other customer", "Potential Customer", T0 + DAY, customer="C2"),
        _call("other company", "Potential Customer", T0 + DAY, company="Acme Pest Control"),
        _call("price question", "Price Research", T0 + DAY),  # not a label the rule replaces
        _call("two months on", "Potential Customer", T0 + 60 * DAY, customer="C3"),
        _call("c3 complaint", "Complaint", T0, customer="C3"),
    ]
    assert follow_up_labels(calls, [RULE]) == {}


def test_a_reviewers_label_wins_on_the_call_and_decides_for_the_calls_after_it() -> None:
    calls = [_call("a", "Complaint", T0, reviewed="Potential Customer"), _call("b", "Potential Customer", T0 + DAY)]
    assert follow_up_labels(calls, [RULE]) == {}
    calls = [_call("a", "Potential Customer", T0, reviewed="Complaint"),
             _call("b", "Potential Customer", T0 + DAY, reviewed="Potential Customer"),
             _call("c", "Potential Customer", T0 + DAY + DAY)]
    found = follow_up_labels(calls, [RULE])
    assert set(found) == set()  # c follows b, whose reviewed label is a booking


def test_the_same_recording_processed_twice_is_not_its_own_follow_up() -> None:
    calls = [_call("a-p1", "Complaint", T0, audio="same"), _call("a-p2", "Potential Customer", T0, audio="same"),
             _call("a-p3", "Potential Customer", T0 + timedelta(minutes=1), audio="same")]
    assert follow_up_labels(calls, [RULE]) == {}


def test_the_shipped_taxonomy_has_the_complaint_follow_up_rule(tmp_path: Path) -> None:
    taxonomy = Taxonomy.load(Settings(home=tmp_path).analysis.taxonomy_file)
    assert [(r.after, r.label, r.replaces) for r in taxonomy.follow_ups] == [
        ("Complaint", "Complaint", ("Potential Customer",))
    ]


# ------------------------------------------------------------------ on the stored calls, through the save path


def _analysed(name: str, label: tuple[str, str | None], when: datetime, **kwargs: object) -> CallRecord:
    category, subcategory = label
    analysis = Analysis(category=category, subcategory=subcategory, classification=Classification(
        category=category, subcategory=subcategory, confidence=0.8, source="llm"))
    return make_record(name, call_time=when, analysis=analysis, **kwargs)  # type: ignore[arg-type]


def _label(store: CallStore, record_id: str) -> tuple[str | None, str | None, str | None, list[str]]:
    doc = store.get_document(record_id)
    assert doc is not None
    analysis = doc["analysis"]
    assert (analysis["category"], analysis["subcategory"]) == (doc["category"], doc["subcategory"])
    return doc["category"], doc["subcategory"], analysis.get("follow_up_of"), list(doc["flags"])


def test_a_stored_follow_up_becomes_a_complaint_with_its_flag_and_goes_back_when_the_first_call_is_corrected(
    store: CallStore,
) -> None:
    writer = CallWriter(store.settings, store)
    complaint = _analysed("no-show complaint", COMPLAINT, T0)
    follow_up = _analysed("engineer rebooked", BOOKING, T0 + DAY)
    other = _analysed("another customer's booking", BOOKING, T0 + DAY, customer="C2")
    saved = writer.save([complaint, follow_up, other])
    assert saved.follow_ups.changed == [follow_up.record_id]
    category, subcategory, of, flags = _label(store, follow_up.record_id)
    assert (category, subcategory, of) == (*COMPLAINT, complaint.record_id) and "complaint" in flags
    assert _label(store, other.record_id)[:3] == (*BOOKING, None)
    stored = store.get_record(follow_up.record_id)
    assert stored is not None and stored.analysis is not None and stored.analysis.classification is not None
    assert stored.analysis.classification.category == "Potential Customer"  # the call's own answer is kept

    # A reviewer says the first call was a booking after all: the follow-up goes back to its own label.
    writer.correct(complaint, {"category": "Potential Customer", "subcategory": None}, reviewer="qa-lead")
    category, subcategory, of, flags = _label(store, follow_up.record_id)
    assert (category, subcategory, of) == (*BOOKING, None) and "complaint" not in flags


def test_a_follow_up_saved_before_the_call_it_follows_is_relabelled_when_that_call_arrives(store: CallStore) -> None:
    writer = CallWriter(store.settings, store)
    follow_up = _analysed("refund arrived", BOOKING, T0 + DAY, phone="+44 7700 900123", customer=None)
    writer.save([follow_up])
    assert _label(store, follow_up.record_id)[:3] == (*BOOKING, None)
    # The complaint comes in a later batch, matched on the phone's digits however they are written.
    complaint = _analysed("slow refund", COMPLAINT, T0, phone="+447700900123", customer=None)
    writer.save([complaint])
    assert _label(store, follow_up.record_id)[:3] == (*COMPLAINT, complaint.record_id)


def test_a_reviewers_label_on_the_follow_up_itself_is_never_replaced_and_survives_re_analysis(
    store: CallStore,
) -> None:
    writer = CallWriter(store.settings, store)
    complaint = _analysed("broken boiler", COMPLAINT, T0)
    follow_up = _analysed("new boiler quote", BOOKING, T0 + DAY)
    writer.save([complaint, follow_up])
    stored = store.get_record(follow_up.record_id)
    assert stored is not None
    writer.correct(stored, {"category": "Potential Customer", "subcategory": None}, reviewer="qa-lead")
    assert _label(store, follow_up.record_id)[:3] == (*BOOKING, None)
    writer.save([_analysed("new boiler quote", BOOKING, T0 + DAY)])  # re-analysis of the same recording
    assert _label(store, follow_up.record_id)[:3] == (*BOOKING, None)


def test_the_follow_ups_command_relabels_calls_written_without_the_save_path(
    store: CallStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Records a spool replay writes skip the save path's checks; ``python -m pipeline follow-ups`` catches up."""
    from pipeline.__main__ import main

    complaint = _analysed("leaking roof", COMPLAINT, T0)
    follow_up = _analysed("roofer booked", BOOKING, T0 + DAY)
    store.upsert_records([complaint, follow_up])  # as the spool replay writes them
    assert _label(store, follow_up.record_id)[:3] == (*BOOKING, None)
    for key, value in {"CALLAUDIT_HOME": str(store.settings.home),
                       "CALLAUDIT_STORE__MONGO_URI": str(store.settings.store.mongo_uri),
                       "CALLAUDIT_STORE__DATABASE": store.settings.store.database}.items():
        monkeypatch.setenv(key, value)
    assert main(["follow-ups"]) == 0
    assert json.loads(capsys.readouterr().out) == {"checked": 2, "follow_ups": 1, "relabelled": [follow_up.record_id]}
    assert _label(store, follow_up.record_id)[:3] == (*COMPLAINT, complaint.record_id)
