"""Cross-call callback verification: kept, overdue, pending, unverifiable, across several calls."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from pipeline.save import CallWriter
from pipeline.store import CallQuery, CallStore, count_calls, migrate, verify_callbacks
from pipeline.store.documents import CALLBACK_OVERDUE_FLAG
from tests.store_fixtures import T0, make_analysis, make_record, store_settings

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


def test_a_promise_with_no_stated_time_stays_pending_until_any_later_follow_up(store: CallStore) -> None:
    # "Someone will ring you": the QA rubric has no due time for it, so it is never overdue.
    made = promise(analysis=make_analysis(callback_promised=True))
    store.upsert_records([made])
    report = verify_callbacks(store, now=T0 + 500 * HOUR)
    doc = status_of(store, made.record_id)
    assert doc["callback_due"] is None and doc["callback_promised"] is True
    assert (report.checked, report.pending, report.overdue) == (1, 1, 0)
    assert doc["callback_status"] == "pending" and CALLBACK_OVERDUE_FLAG not in doc["flags"]

    weeks_later = make_record("weeks-later", call_time=T0 + 400 * HOUR)
    store.upsert_records([weeks_later])
    verify_callbacks(store, now=T0 + 500 * HOUR)
    doc = status_of(store, made.record_id)
    assert doc["callback_status"] == "kept" and doc["callback_kept_by"] == weeks_later.record_id


def test_a_promise_with_no_stated_time_gets_a_due_time_when_one_is_configured(
    mongo_server: str, tmp_path: Path
) -> None:
    settings = store_settings(tmp_path, mongo_server, callback_default_due_hours=24)
    with CallStore(settings) as configured:
        made = promise(analysis=make_analysis(callback_promised=True))
        configured.upsert_records([made])
        verify_callbacks(configured, now=T0 + 30 * HOUR)
        doc = status_of(configured, made.record_id)
        configured.db.client.drop_database(configured.db.name)
    assert doc["callback_due"] == T0 + 24 * HOUR
    assert doc["callback_status"] == "overdue"


def test_a_follow_up_inside_the_window_of_a_day_without_a_time_keeps_the_promise(store: CallStore) -> None:
    # "I'll ring you tomorrow": due 10:00 but the rubric's window runs to 18:00, so a call at 19:30 (grace 2 h)
    # keeps it, while a call at 20:30 is too late.
    tomorrow_10 = T0 + 25 * HOUR
    window_end = tomorrow_10 + 8 * HOUR
    analysis = make_analysis(callback_due=tomorrow_10)
    analysis.callback.window_end = window_end
    made = promise(analysis=analysis)
    late_evening = make_record("late-evening", call_time=window_end + 90 * timedelta(minutes=1))
    store.upsert_records([made, late_evening])
    verify_callbacks(store, now=window_end + 10 * HOUR)
    doc = status_of(store, made.record_id)
    assert doc["callback_window_end"] == window_end
    assert doc["callback_status"] == "kept"

    other = promise("other-customer", customer="C9", analysis=analysis.model_copy(deep=True))
    too_late = make_record("too-late", customer="C9", call_time=window_end + 150 * timedelta(minutes=1))
    store.upsert_records([other, too_late])
    verify_callbacks(store, now=window_end + 10 * HOUR)
    assert status_of(store, other.record_id)["callback_status"] == "overdue"


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


def test_migrating_a_layout_one_promise_drops_the_invented_due_time(store: CallStore) -> None:
    # Layout 1 gave a promise with no time said a due time 24 h after the call, which turned it overdue.
    made = promise("no-time", analysis=make_analysis(callback_promised=True))
    store.upsert_records([made])
    store.calls.update_one(
        {"_id": made.record_id},
        {"$set": {"store_layout": 1, "callback_due": T0 + 24 * HOUR, "callback_status": "overdue",
                  "flags": [CALLBACK_OVERDUE_FLAG]},
         "$unset": {"callback_promised": "", "callback_window_end": ""}},
    )

    assert migrate(store).migrated == 1
    verify_callbacks(store, now=T0 + 100 * HOUR)

    doc = status_of(store, made.record_id)
    assert doc["store_layout"] == 2 and doc["callback_promised"] is True and doc["callback_due"] is None
    assert doc["callback_status"] == "pending" and CALLBACK_OVERDUE_FLAG not in doc["flags"]
