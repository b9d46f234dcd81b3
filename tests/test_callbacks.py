"""Cross-call callback verification: kept, overdue, pending, unverifiable, across several calls."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pipeline.save import CallWriter
from pipeline.store import CallQuery, CallStore, count_calls, verify_callbacks
from pipeline.store.documents import CALLBACK_OVERDUE_FLAG
from tests.store_fixtures import T0, make_analysis, make_record

HOUR = timedelta(hours=1)
DUE = T0 + 24 * HOUR  # the promise: "we'll call you back by tomorrow 09:00"


def promise(name: str = "promise", **kwargs: Any) -> Any:
    kwargs.setdefault("analysis", make_analysis(flags=["needs_follow_up"], callback_due=DUE))
    return make_record(name, **kwargs)


def status_of(store: CallStore, record_id: str) -> dict[str, Any]:
    doc = store.get_document(record_id)
    assert doc is not None
    return doc


def test_a_later_call_with_the_customer_before_the_due_time_keeps_the_promise(store: CallStore) -> None:
    made = promise()
    follow_up = make_record("follow-up", call_time=T0 + 20 * HOUR, direction="outbound")
    store.upsert_records([made, follow_up])

    report = verify_callbacks(store, now=T0 + 48 * HOUR)

    doc = status_of(store, made.record_id)
    assert (report.checked, report.kept) == (1, 1)
    assert doc["callback_status"] == "kept"
    assert doc["callback_kept_by"] == follow_up.record_id and doc["callback_kept_at"] == T0 + 20 * HOUR
    assert CALLBACK_OVERDUE_FLAG not in doc["flags"]


def test_a_call_inside_the_grace_period_still_counts(store: CallStore) -> None:
    made = promise()
    store.upsert_records([made, make_record("late-but-ok", call_time=DUE + 90 * timedelta(minutes=1))])

    verify_callbacks(store, now=DUE + 10 * HOUR)

    assert status_of(store, made.record_id)["callback_status"] == "kept"  # grace is 2 h


def test_no_call_by_the_due_time_plus_grace_is_overdue_and_flagged(store: CallStore) -> None:
    made = promise()
    earlier = make_record("earlier", call_time=T0 - 5 * HOUR)  # before the promise: does not count
    too_late = make_record("too-late", call_time=DUE + 3 * HOUR)  # after due + grace: does not count
    other_customer = make_record("other", customer="C2", call_time=T0 + 2 * HOUR)
    store.upsert_records([made, earlier, too_late, other_customer])

    report = verify_callbacks(store, now=DUE + 3 * HOUR)

    doc = status_of(store, made.record_id)
    assert report.overdue == 1 and report.overdue_ids == [made.record_id]
    assert doc["callback_status"] == "overdue" and doc["callback_kept_by"] is None
    assert doc["flags"] == ["needs_follow_up", CALLBACK_OVERDUE_FLAG]
    assert count_calls(store, CallQuery(flag=CALLBACK_OVERDUE_FLAG)) == 1
    assert count_calls(store, CallQuery(callback_status="overdue")) == 1


def test_a_promise_still_inside_its_window_is_pending(store: CallStore) -> None:
    made = promise()
    store.upsert_records([made])

    report = verify_callbacks(store, now=DUE + HOUR)  # past due, but inside the 2 h grace

    assert report.pending == 1
    assert status_of(store, made.record_id)["callback_status"] == "pending"


def test_several_customers_and_calls_get_each_their_own_verdict(store: CallStore) -> None:
    kept = promise("kept", customer="K")
    overdue = promise("overdue", customer="O", call_time=T0 - 48 * HOUR)
    pending = promise("pending", customer="P", analysis=make_analysis(callback_due=DUE + 72 * HOUR))
    chain = promise("chain", customer="K", call_time=T0 + 5 * HOUR, analysis=make_analysis(callback_due=DUE + HOUR))
    store.upsert_records(
        [kept, overdue, pending, chain, make_record("k-follow-up", customer="K", call_time=T0 + 10 * HOUR)]
    )

    report = verify_callbacks(store, now=DUE + 5 * HOUR)

    assert (report.checked, report.kept, report.overdue, report.pending) == (4, 2, 1, 1)
    assert status_of(store, kept.record_id)["callback_kept_by"] == chain.record_id  # the first later call
    assert status_of(store, chain.record_id)["callback_status"] == "kept"
    assert status_of(store, overdue.record_id)["callback_status"] == "overdue"
    assert status_of(store, pending.record_id)["callback_status"] == "pending"


def test_a_follow_up_processed_after_the_verdict_turns_overdue_into_kept(store: CallStore) -> None:
    made = promise()
    store.upsert_records([made])
    verify_callbacks(store, now=DUE + 10 * HOUR)
    assert status_of(store, made.record_id)["callback_status"] == "overdue"

    # The batch that brings the follow-up runs the check for its customers (the one save path).
    CallWriter(store.settings, store).save([make_record("arrives-late", call_time=T0 + 3 * HOUR)])

    doc = status_of(store, made.record_id)
    assert doc["callback_status"] == "kept" and CALLBACK_OVERDUE_FLAG not in doc["flags"]


def test_reprocessing_the_promising_call_keeps_its_verdict(store: CallStore) -> None:
    made = promise()
    store.upsert_records([made])
    verify_callbacks(store, now=DUE + 10 * HOUR)

    store.upsert_records([promise()])  # same audio, same due time: re-processed

    doc = status_of(store, made.record_id)
    assert doc["callback_status"] == "overdue" and CALLBACK_OVERDUE_FLAG in doc["flags"]


def test_the_same_recording_under_another_pipeline_version_is_not_a_follow_up(store: CallStore) -> None:
    made = promise()
    rerun = promise(pipeline_version="p2", call_time=T0 + HOUR)  # same audio, later "call time"
    store.upsert_records([made, rerun])

    verify_callbacks(store, now=DUE + 10 * HOUR)

    assert status_of(store, made.record_id)["callback_status"] == "overdue"


def test_customers_are_matched_by_phone_digits_when_ids_are_missing(store: CallStore) -> None:
    made = promise(customer=None, phone="+90 555 111 22 33")
    follow_up = make_record("by-phone", customer="CRM-7", phone="+905551112233", call_time=T0 + 2 * HOUR)
    store.upsert_records([made, follow_up])

    verify_callbacks(store, now=DUE + 10 * HOUR)

    assert status_of(store, made.record_id)["callback_status"] == "kept"


def test_a_promise_without_customer_or_call_time_is_unverifiable_never_overdue(store: CallStore) -> None:
    anonymous = promise("anonymous", customer=None)
    undated = promise("undated", call_time=None)
    store.upsert_records([anonymous, undated, make_record("any", call_time=T0 + HOUR)])

    report = verify_callbacks(store, now=DUE + 100 * HOUR)

    assert report.unverifiable == 2 and report.overdue == 0
    assert status_of(store, anonymous.record_id)["callback_status"] == "unverifiable"


def test_a_promise_with_no_stated_time_gets_the_default_window(store: CallStore) -> None:
    made = promise(analysis=make_analysis(callback_promised=True))
    store.upsert_records([made])

    doc = status_of(store, made.record_id)

    assert doc["callback_due"] == T0 + 24 * HOUR  # store.callback_default_due_hours


def test_verification_can_be_limited_to_some_customers(store: CallStore) -> None:
    c1, c2 = promise("c1", customer="C1"), promise("c2", customer="C2")
    store.upsert_records([c1, c2])

    report = verify_callbacks(store, now=DUE + 10 * HOUR, customers={"C2"})

    assert report.checked == 1
    assert status_of(store, c1.record_id)["callback_status"] == "pending"  # not looked at
    assert status_of(store, c2.record_id)["callback_status"] == "overdue"


def test_the_promising_side_must_make_the_follow_up_call(store: CallStore) -> None:
    by_agent = make_analysis(callback_due=DUE)
    by_agent.callback.by = "agent"
    agent_promise = make_record("agent-promise", analysis=by_agent, direction="inbound")
    customer_rings_again = make_record("customer-rings-again", call_time=T0 + 5 * HOUR, direction="inbound")
    store.upsert_records([agent_promise, customer_rings_again])
    verify_callbacks(store, now=T0 + 48 * HOUR)
    # The customer chasing us is not the agent calling back (QA rubric): still overdue.
    assert status_of(store, agent_promise.record_id)["callback_status"] == "overdue"

    store.upsert_records([make_record("agent-calls", call_time=T0 + 6 * HOUR, direction="outbound")])
    verify_callbacks(store, now=T0 + 48 * HOUR)
    assert status_of(store, agent_promise.record_id)["callback_status"] == "kept"
