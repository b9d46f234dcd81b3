"""pipeline.store against a real SecantusDB over TCP: writes, jobs, migrations, queries, export, spool."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from pipeline.records import SCHEMA_VERSION, CallRecord
from pipeline.store import (
    CallQuery,
    CallStore,
    EmbeddedMongo,
    SchemaTooNew,
    StoreUnavailable,
    agent_scorecards,
    category_distribution,
    count_calls,
    daily_trends,
    export_calls,
    find_calls,
    migrate,
    overview,
    search_transcripts,
    verify_callbacks,
)
from pipeline.store.__main__ import main as store_cli
from pipeline.store.documents import FLAT_FIELDS, STORE_LAYOUT, to_document
from pipeline.store.embedded import free_port
from tests.store_fixtures import T0, make_analysis, make_record, store_settings

# ---------------------------------------------------------------------- writes


def test_record_is_stored_with_schema_version_and_flattened_query_fields(store: CallStore) -> None:
    due = T0 + timedelta(days=1)
    record = make_record(
        "flat",
        analysis=make_analysis(
            category="Billing",
            sentiment="negative",
            score=-0.7,
            compliance={"greeting": "pass", "verify_identity": "fail", "closing": "not_applicable"},
            flags=["escalation"],
            callback_due=due,
        ),
    )
    store.upsert_records([record])

    doc = store.get_document(record.record_id)
    assert doc is not None
    assert doc["_id"] == record.record_id
    assert doc["schema_version"] == SCHEMA_VERSION and doc["store_layout"] == STORE_LAYOUT
    assert (doc["agent_id"], doc["customer_id"], doc["customer_key"]) == ("A1", "C1", "C1")
    assert doc["call_time"] == T0
    assert doc["category"] == "Billing"
    assert (doc["customer_sentiment"], doc["sentiment_score"]) == ("negative", -0.7)
    assert doc["failed_compliance_items"] == ["verify_identity"]
    assert (doc["compliance_passed"], doc["compliance_checked"]) == (1, 2)
    assert doc["flags"] == ["escalation"]
    assert doc["callback_due"] == due and doc["callback_status"] == "pending"
    assert doc["agent_talk_ratio"] == 0.5
    assert "customer: My internet has been down" in doc["transcript_text"]


def test_store_fields_never_collide_with_call_record_fields() -> None:
    assert set(CallRecord.model_fields).isdisjoint(FLAT_FIELDS)


def test_reprocessing_the_same_audio_upserts_and_never_duplicates(store: CallStore) -> None:
    first = store.upsert_records([make_record("same")])
    again = store.upsert_records([make_record("same", agent="A2")])

    assert (first.inserted, first.updated) == (1, 0)
    assert (again.inserted, again.updated) == (0, 1)
    assert store.calls.count_documents({}) == 1
    doc = store.get_document(make_record("same").record_id)
    assert doc is not None and doc["agent_id"] == "A2"
    # The first write time survives re-processing; the last write time moves.
    assert doc["first_stored_at"] <= doc["stored_at"]


def test_same_audio_under_a_new_pipeline_version_is_a_separate_record(store: CallStore) -> None:
    store.upsert_records([make_record("ver", pipeline_version="p1"), make_record("ver", pipeline_version="p2")])

    assert store.calls.count_documents({"audio_sha256": make_record("ver").audio_sha256}) == 2


def test_large_batch_is_written_in_several_bulk_writes(mongo_server: str, tmp_path: Path) -> None:
    settings = store_settings(tmp_path, mongo_server, write_batch_size=3)
    with CallStore(settings) as small_batches:
        result = small_batches.upsert_records([make_record(f"bulk{i}") for i in range(8)])
        assert result.inserted == 8 and not result.failed
        assert small_batches.calls.count_documents({}) == 8
        small_batches.db.client.drop_database(small_batches.db.name)


def test_a_batch_naming_one_recording_twice_stores_it_once(store: CallStore) -> None:
    result = store.upsert_records([make_record("twice"), make_record("twice", agent="A9")])

    assert result.inserted == 1
    assert store.calls.count_documents({}) == 1


def test_an_older_version_of_a_record_never_overwrites_a_newer_one(store: CallStore) -> None:
    newer = make_record("stale", agent="NEW", created_at=T0 + timedelta(hours=2))
    older = make_record("stale", agent="OLD", created_at=T0)
    store.upsert_records([newer])

    result = store.upsert_records([older])

    assert result.stale == [older.record_id] and result.written == 0
    doc = store.get_document(newer.record_id)
    assert doc is not None and doc["agent_id"] == "NEW"


def test_a_record_the_database_refuses_is_reported_and_set_aside_while_the_rest_is_written(store: CallStore) -> None:
    huge = make_record("huge", turns=[("customer", "blah " * 3_500_000)])  # over MongoDB's 16 MB limit
    fine = make_record("fine")

    result = store.upsert_records([huge, fine])

    assert result.inserted == 1 and list(result.failed) == [huge.record_id]
    assert "16777216" in result.failed[huge.record_id] or "too large" in result.failed[huge.record_id].lower()
    assert store.get_document(fine.record_id) is not None
    assert store.spool.pending_entries() == 0  # not retried forever...
    refused = list(store.spool.directory.glob("refused-*.jsonl"))
    assert len(refused) == 1 and huge.record_id in refused[0].read_text()  # ...but not lost either


def test_indexes_are_created_on_connect(store: CallStore) -> None:
    indexes = store.calls.index_information()
    for name in ("audio_pipeline", "agent_time", "customer_time", "call_time", "category", "flags", "callback_due"):
        assert name in indexes
    assert indexes["audio_pipeline"].get("unique") is True
    assert "job_id" in indexes and "job_status" in store.job_files.index_information()
    assert {"record_at", "at"} <= set(store.db["corrections"].index_information())


def test_skip_logic_counts_finished_records_but_not_failed_ones(store: CallStore) -> None:
    done, failed = make_record("done"), make_record("broken", status="failed")
    store.upsert_records([done, failed])

    assert store.has_record(done.audio_sha256, "p1")
    assert not store.has_record(failed.audio_sha256, "p1")
    assert not store.has_record(done.audio_sha256, "p2")
    assert store.known_audio([done.audio_sha256, failed.audio_sha256, "unknown"], "p1") == {done.audio_sha256}


def test_record_reads_back_as_the_record_that_was_stored(store: CallStore) -> None:
    record = make_record("roundtrip", analysis=make_analysis(compliance={"greeting": "fail"}, flags=["rude"]))
    store.upsert_records([record])

    loaded = store.get_record(record.record_id)

    assert loaded is not None
    assert loaded.model_dump(exclude={"created_at"}) == record.model_dump(exclude={"created_at"})
    assert store.get_record("no-such-record") is None


def test_record_without_analysis_or_metadata_stores_fine(store: CallStore) -> None:
    bare = make_record("bare", agent=None, customer=None, call_time=None, direction=None, talk_ratio=None, turns=())

    result = store.upsert_records([bare])

    assert result.inserted == 1
    doc = store.get_document(bare.record_id)
    assert doc is not None
    assert doc["category"] is None and doc["flags"] == [] and doc["callback_due"] is None
    assert doc["customer_key"] is None and doc["transcript_text"] == ""


# ---------------------------------------------------------------------- jobs


def test_jobs_record_per_file_status_and_count_each_file_once(store: CallStore) -> None:
    job_id = store.create_job("batch", ["/calls"])
    store.update_job_file(job_id, "/calls/a.wav", "processing")
    store.update_job_file(job_id, "/calls/a.wav", "done", record_id="rec-a")
    store.update_job_files(
        job_id,
        [("/calls/b.wav", "failed", "corrupt audio", None), ("/calls/c.d.$x.wav", "skipped", "already stored", None)],
    )
    store.update_job_file(job_id, "/calls/missing.wav", "missing", reason="manifest row has no matching file")
    store.finish_job(job_id, {"written": 1})

    job = store.get_job(job_id)

    assert job is not None
    assert job["status"] == "finished" and job["summary"] == {"written": 1}
    assert job["counts"] == {"done": 1, "failed": 1, "skipped": 1, "missing": 1}
    files = {f["file"]: f for f in job["files"]}
    assert files["/calls/a.wav"]["record_id"] == "rec-a"
    assert files["/calls/b.wav"]["reason"] == "corrupt audio"
    assert store.get_job("no-such-job") is None
    assert [j["_id"] for j in store.list_jobs()] == [job_id]


def test_records_remember_the_job_that_wrote_them(store: CallStore) -> None:
    job_id = store.create_job("upload", "a.wav")
    store.upsert_records([make_record("jobbed")], job_id=job_id)

    assert count_calls(store, CallQuery(job_id=job_id)) == 1


# ---------------------------------------------------------------------- schema versions


def test_documents_from_an_older_schema_version_are_upgraded_on_read_and_by_migrate(store: CallStore) -> None:
    # Written before schema_version existed: flat metadata, one transcript string, no flattened fields.
    store.calls.insert_one(
        {
            "_id": "0123456789abcdef01234567-p0",
            "audio_sha256": "0123456789abcdef01234567" + "0" * 40,
            "source": "/old/legacy.wav",
            "agent_id": "A7",
            "call_time": T0,
            "transcript": "customer: I need a refund",
        }
    )

    record = store.get_record("0123456789abcdef01234567-p0")
    assert record is not None
    assert record.pipeline_version == "p0" and record.file_name == "legacy.wav"
    assert record.metadata.agent_id == "A7" and record.turns[0].text == "customer: I need a refund"

    assert migrate(store, dry_run=True).migrated == 1
    report = migrate(store)

    assert report.migrated == 1 and not report.failed
    doc = store.get_document("0123456789abcdef01234567-p0")
    assert doc is not None and doc["schema_version"] == SCHEMA_VERSION and doc["store_layout"] == STORE_LAYOUT
    assert find_calls(store, CallQuery(agent_id="A7", text="refund")).total == 1
    assert migrate(store).scanned == 0


def test_a_document_from_a_newer_schema_is_refused_clearly_and_left_untouched(store: CallStore) -> None:
    store.calls.insert_one({"_id": "future-p9", "schema_version": SCHEMA_VERSION + 1, "store_layout": 0})

    with pytest.raises(SchemaTooNew, match="upgrade callaudit"):
        store.get_record("future-p9")
    report = migrate(store)

    assert "future-p9" in report.failed
    assert store.get_document("future-p9") == {
        "_id": "future-p9",
        "schema_version": SCHEMA_VERSION + 1,
        "store_layout": 0,
    }


# ---------------------------------------------------------------------- queries


def _seed(store: CallStore) -> dict[str, CallRecord]:
    day = timedelta(days=1)
    records = {
        "r1": make_record(
            "r1",
            agent="A1",
            customer="C1",
            call_time=T0,
            turns=[("agent", "Hello"), ("customer", "I want a REFUND for order #4411 ($19.99)")],
            analysis=make_analysis(
                category="Billing",
                sentiment="negative",
                compliance={"greeting": "pass", "verify_identity": "fail"},
                flags=["escalation"],
                agent_score=60,
                summary="=HYPERLINK(evil)",
            ),
            talk_ratio=0.6,
        ),
        "r2": make_record(
            "r2",
            agent="A1",
            customer="C2",
            call_time=T0 + timedelta(hours=3),
            turns=[("agent", "Hello"), ("customer", "My internet is slow")],
            analysis=make_analysis(
                category="Technical Support",
                sentiment="positive",
                compliance={"greeting": "pass", "verify_identity": "pass"},
                agent_score=90,
            ),
            talk_ratio=0.4,
        ),
        "r3": make_record(
            "r3",
            agent="A2",
            customer="C1",
            phone="+90 555 111 2233",
            call_time=T0 + day,
            turns=[("customer", "refund please, the internet bill is wrong")],
            analysis=make_analysis(
                category="Billing",
                sentiment="neutral",
                compliance={"greeting": "fail"},
                flags=["escalation", "rude_agent"],
                callback_due=T0 + 2 * day,
            ),
            talk_ratio=0.5,
        ),
        "r4": make_record(
            "r4", agent="A2", customer="C3", call_time=T0 + 2 * day, analysis=None, status="empty", turns=()
        ),
    }
    store.upsert_records(list(records.values()))
    return records


def _ids(page_items: list[dict[str, object]], records: dict[str, CallRecord]) -> set[str]:
    names = {r.record_id: name for name, r in records.items()}
    return {names[str(item["_id"])] for item in page_items}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (CallQuery(), {"r1", "r2", "r3", "r4"}),
        (CallQuery(time_from=T0 + timedelta(hours=1), time_to=T0 + timedelta(days=2)), {"r2", "r3"}),
        (CallQuery(time_from=datetime(2026, 3, 3, 9, 0)), {"r3", "r4"}),  # naive = UTC
        (CallQuery(agent_id="A1"), {"r1", "r2"}),
        (CallQuery(customer="C1"), {"r1", "r3"}),
        (CallQuery(customer="+90 (555) 111-22-33"), {"r3"}),
        (CallQuery(category="Billing"), {"r1", "r3"}),
        (CallQuery(flag="escalation"), {"r1", "r3"}),
        (CallQuery(flag="rude_agent", agent_id="A2"), {"r3"}),
        (CallQuery(sentiment="positive"), {"r2"}),
        (CallQuery(compliance_failed="verify_identity"), {"r1"}),
        (CallQuery(compliance_failed="greeting"), {"r3"}),
        (CallQuery(callback_status="pending"), {"r3"}),
        (CallQuery(callback_status="any"), {"r3"}),
        (CallQuery(callback_status="none"), {"r1", "r2", "r4"}),
        (CallQuery(status="empty"), {"r4"}),
    ],
)
def test_calls_can_be_filtered_by_every_field(store: CallStore, query: CallQuery, expected: set[str]) -> None:
    records = _seed(store)

    page = find_calls(store, query, page_size=100)

    assert _ids(page.items, records) == expected
    assert page.total == len(expected) == count_calls(store, query)


def test_keyword_search_is_case_insensitive_literal_and_needs_every_word(store: CallStore) -> None:
    records = _seed(store)

    assert _ids(search_transcripts(store, "refund").items, records) == {"r1", "r3"}
    assert _ids(search_transcripts(store, "REFUND internet").items, records) == {"r3"}
    # Regex characters are matched literally, not as patterns.
    assert _ids(search_transcripts(store, "($19.99)").items, records) == {"r1"}
    assert _ids(search_transcripts(store, "#4411").items, records) == {"r1"}
    assert search_transcripts(store, "r.fund").total == 0
    assert _ids(find_calls(store, CallQuery(text="internet", agent_id="A1")).items, records) == {"r2"}


def test_pages_are_stable_sorted_and_leave_heavy_fields_out(store: CallStore) -> None:
    records = _seed(store)

    first = find_calls(store, page=1, page_size=3, sort="-call_time")
    second = find_calls(store, page=2, page_size=3, sort="-call_time")

    assert [_ids([i], records).pop() for i in first.items] == ["r4", "r3", "r2"]
    assert [_ids([i], records).pop() for i in second.items] == ["r1"]
    assert (first.total, first.pages, first.has_more, second.has_more) == (4, 2, True, False)
    assert "turns" not in first.items[0] and "transcript_text" not in first.items[0]
    assert "turns" in find_calls(store, full=True).items[0]
    by_agent = find_calls(store, sort="agent_id,-call_time")
    assert [_ids([i], records).pop() for i in by_agent.items] == ["r2", "r1", "r4", "r3"]


def test_bad_paging_or_sort_is_refused_with_a_clear_message(store: CallStore) -> None:
    with pytest.raises(ValueError, match="cannot sort by 'transcript_text'"):
        find_calls(store, sort="transcript_text")
    with pytest.raises(ValueError, match="page_size"):
        find_calls(store, page_size=0)
    with pytest.raises(ValueError, match="page must be"):
        find_calls(store, page=0)


def test_agent_scorecards_sum_up_each_agents_calls(store: CallStore) -> None:
    _seed(store)
    verify_callbacks(store, now=T0 + timedelta(days=10))

    cards = {c["agent_id"]: c for c in agent_scorecards(store)}

    a1, a2 = cards["A1"], cards["A2"]
    assert a1["calls"] == 2 and a2["calls"] == 2
    assert a1["avg_sentiment"] == 0.0  # negative (-1) and positive (+1)
    assert a1["compliance_pass_rate"] == 0.75 and a1["compliance_checked"] == 4
    assert a1["talk_ratio"] == 0.5 and a1["avg_agent_score"] == 75.0
    assert a1["flagged_calls"] == 1 and a1["callbacks_promised"] == 0 and a1["callback_kept_rate"] is None
    assert a2["avg_sentiment"] == 0.0  # only r3 has a sentiment
    assert a2["compliance_pass_rate"] == 0.0
    # r3's promise: nobody called C1 after it, so it is overdue.
    assert (a2["callbacks_promised"], a2["callbacks_overdue"], a2["callbacks_kept"]) == (1, 1, 0)
    assert a2["callback_kept_rate"] == 0.0
    assert [c["agent_id"] for c in agent_scorecards(store, CallQuery(category="Billing"))] == ["A1", "A2"]


def test_category_distribution_counts_and_shares(store: CallStore) -> None:
    _seed(store)

    shares = {c["category"]: c for c in category_distribution(store)}

    assert shares["Billing"]["calls"] == 2 and shares["Billing"]["share"] == 0.5
    assert shares["Technical Support"]["calls"] == 1
    assert shares[None]["calls"] == 1  # the empty call has no analysis
    assert shares["Billing"]["avg_sentiment"] == -0.5


def test_daily_trends_group_by_the_calls_local_day(store: CallStore) -> None:
    _seed(store)

    utc_days = {d["day"]: d for d in daily_trends(store)}
    # 09:00 and 12:00 UTC on 2 March are still 2 March in New York; nothing moves a day in UTC-5.
    ny_days = {d["day"]: d["calls"] for d in daily_trends(store, timezone="America/New_York")}
    # In UTC+14 the calls at 09:00 and 12:00 UTC land on the next calendar day.
    kiritimati = {d["day"]: d["calls"] for d in daily_trends(store, timezone="Pacific/Kiritimati")}

    assert {k: v["calls"] for k, v in utc_days.items()} == {"2026-03-02": 2, "2026-03-03": 1, "2026-03-04": 1}
    assert utc_days["2026-03-02"]["flagged_calls"] == 1
    assert utc_days["2026-03-02"]["compliance_pass_rate"] == 0.75
    assert ny_days == {"2026-03-02": 2, "2026-03-03": 1, "2026-03-04": 1}
    assert kiritimati == {"2026-03-02": 1, "2026-03-03": 2, "2026-03-04": 1}


def test_overview_totals_statuses_flags_and_callbacks(store: CallStore) -> None:
    _seed(store)

    summary = overview(store)

    assert summary["calls"] == 4 and summary["by_status"] == {"ok": 3, "empty": 1}
    assert summary["flags"] == {"escalation": 2, "rude_agent": 1}
    assert summary["callbacks"] == {"pending": 1}


def test_export_writes_csv_rows_and_jsonl_documents(store: CallStore, tmp_path: Path) -> None:
    records = _seed(store)

    out = io.StringIO()
    count = export_calls(store, out, "csv", CallQuery(category="Billing"))
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    jsonl = tmp_path / "calls.jsonl"
    all_count = export_calls(store, jsonl, "jsonl")
    docs = [json.loads(line) for line in jsonl.read_text().splitlines()]

    assert count == 2 and [r["record_id"] for r in rows] == [records["r1"].record_id, records["r3"].record_id]
    assert rows[1]["flags"] == "escalation;rude_agent" and rows[1]["customer_phone"] == "+90 555 111 2233"
    assert rows[0]["summary"] == "'=HYPERLINK(evil)"  # spreadsheet formulas are neutralised
    assert rows[0]["call_time"] == "2026-03-02T09:00:00+00:00"
    assert all_count == 4 and len(docs) == 4
    assert docs[0]["turns"][1]["text"].startswith("I want a REFUND")
    with pytest.raises(ValueError, match="unknown export format"):
        export_calls(store, io.StringIO(), "xml")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- CLI


def _config(tmp_path: Path, settings_store: CallStore) -> Path:
    options = settings_store.options
    config = tmp_path / "settings.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "home": str(tmp_path),
                "store": {
                    "mongo_uri": options.mongo_uri,
                    "database": settings_store.db.name,
                    "spool_dir": str(settings_store.spool.directory),
                    "retry_attempts": 2,
                    "retry_backoff_s": 0.05,
                    "server_timeout_ms": 1000,
                },
            }
        )
    )
    return config


def test_cli_exports_reports_and_verifies(store: CallStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(store)
    config = _config(tmp_path, store)
    out = tmp_path / "billing.csv"

    assert (
        store_cli(["--config", str(config), "export", "--format", "csv", "--out", str(out), "--category", "Billing"])
        == 0
    )
    assert len(list(csv.DictReader(out.open()))) == 2
    assert store_cli(["--config", str(config), "stats"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["calls"] == 4 and stats["spooled_entries"] == 0
    assert store_cli(["--config", str(config), "verify-callbacks", "--now", "2026-03-20T00:00:00+00:00"]) == 0
    assert "1 overdue" in capsys.readouterr().out
    assert store_cli(["--config", str(config), "migrate"]) == 0
    assert store_cli(["--config", str(config), "job", "nope"]) == 1


# ---------------------------------------------------------------------- outage: retry, spool, replay


@pytest.fixture
def killable_server(tmp_path: Path) -> Iterator[EmbeddedMongo]:
    """A SecantusDB of this test's own, so the test can kill it without harming the others."""
    server = EmbeddedMongo(tmp_path / "own-db", start_timeout_s=60)
    server.start()
    yield server
    server.stop()


def test_results_are_spooled_while_the_database_is_down_and_replayed_by_the_command(
    killable_server: EmbeddedMongo, tmp_path: Path
) -> None:
    uri = killable_server.uri
    assert uri
    port = int(uri.split(":")[2].split("/")[0])
    settings = store_settings(tmp_path, uri, server_timeout_ms=300, outage_cooldown_s=60, auto_replay=False)
    with CallStore(settings) as store:
        job_id = store.create_job("batch", ["/calls"])
        before = store.upsert_records([make_record(f"before{i}") for i in range(3)], job_id=job_id)
        assert before.inserted == 3

        killable_server.kill()  # the database dies mid-run
        during = store.upsert_records([make_record(f"during{i}") for i in range(4)], job_id=job_id)
        store.update_job_file(job_id, "/calls/during0.wav", "done", record_id=make_record("during0").record_id)
        store.finish_job(job_id, {"written": 7})
        # Still inside the cool-down: no more waiting on the dead server, straight to the spool.
        later = store.upsert_records([make_record("during4")], job_id=job_id)

        assert (during.spooled, during.written, later.spooled) == (4, 0, 1)
        assert store.spool.pending_entries() == 7  # 5 records + 2 job updates, safe on disk

    killable_server.stop()
    killable_server.port = port
    killable_server.start()
    config = tmp_path / "settings.yaml"
    config.write_text(yaml.safe_dump({"home": str(tmp_path), "store": json.loads(settings.store.model_dump_json())}))

    assert store_cli(["--config", str(config), "replay-spool"]) == 0

    with CallStore(settings) as store:
        assert store.calls.count_documents({}) == 8
        assert store.calls.count_documents({"job_id": job_id}) == 8
        job = store.get_job(job_id)
        assert job is not None and job["status"] == "finished" and job["counts"] == {"done": 1}
        assert store.spool.pending_entries() == 0 and not store.spool.files()


def test_spooled_results_are_replayed_automatically_once_the_database_is_back(
    killable_server: EmbeddedMongo, tmp_path: Path
) -> None:
    uri = killable_server.uri
    assert uri
    port = int(uri.split(":")[2].split("/")[0])
    settings = store_settings(tmp_path, uri, server_timeout_ms=300, outage_cooldown_s=0)
    with CallStore(settings) as store:
        killable_server.kill()
        assert store.upsert_records([make_record("lost0"), make_record("lost1")]).spooled == 2

        killable_server.stop()
        killable_server.port = port
        killable_server.start()
        result = store.upsert_records([make_record("after")])

        assert result.inserted == 1
        assert store.calls.count_documents({}) == 3
        assert not store.spool.files()


def test_a_spooled_write_older_than_the_stored_record_is_dropped_as_stale(store: CallStore) -> None:
    older = make_record("race", agent="OLD", created_at=T0)
    newer = make_record("race", agent="NEW", created_at=T0 + timedelta(minutes=5))
    store.spool.append([{"kind": "call", "doc": to_document(older)}])
    store.upsert_records([newer])

    report = store.replay_spool()

    assert report.stale == 1 and report.calls == 0
    doc = store.get_document(newer.record_id)
    assert doc is not None and doc["agent_id"] == "NEW"


def test_a_torn_spool_line_is_set_aside_not_lost(store: CallStore) -> None:
    path = store.spool.append([{"kind": "call", "doc": to_document(make_record("whole"))}])
    with path.open("a") as fh:
        fh.write('{"kind": "call", "doc": {"_id": "trunc')  # a crash in the middle of an append

    report = store.replay_spool()

    assert report.calls == 1 and report.rejected_lines == 1
    rejected = store.spool.rejected_files()
    assert len(rejected) == 1 and "trunc" in rejected[0].read_text()
    assert not store.spool.files()


def test_reads_fail_with_a_message_that_names_the_server(tmp_path: Path) -> None:
    settings = store_settings(tmp_path, f"mongodb://127.0.0.1:{free_port()}/", server_timeout_ms=200)
    with CallStore(settings) as store:
        assert not store.available  # connect() found it down and went on, spooling
        with pytest.raises(StoreUnavailable, match=r"did not answer after 2 attempts.*Is it running"):
            find_calls(store)
        assert store.upsert_records([make_record("offline")]).spooled == 1


def test_embedded_server_is_shared_by_a_second_store_on_the_same_data_folder(tmp_path: Path) -> None:
    first = EmbeddedMongo(tmp_path / "shared")
    uri = first.start()
    try:
        second = EmbeddedMongo(tmp_path / "shared")
        assert second.start() == uri and not second.owned
        second.stop()  # not its server: must leave it running
        with CallStore(store_settings(tmp_path, None, data_dir=tmp_path / "shared")) as store:
            assert store.uri.startswith(uri.split("?")[0])
            assert store.upsert_records([make_record("shared")]).inserted == 1
    finally:
        first.stop()
    assert not (tmp_path / "shared" / "embedded.json").exists()
