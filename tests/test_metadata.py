"""Call metadata from file names and manifest CSVs, and its path into the store."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.metadata import NOTE_KEY, SOURCE_KEY, MetadataResolver, load_manifest, parse_call_time
from pipeline.settings import Settings
from pipeline.store import CallQuery, CallStore, find_calls
from tests.store_fixtures import make_record

PATTERN = (
    r"(?P<agent_id>AG\d+)_(?P<customer_id>CU\d+)_(?P<call_time>\d{8}T\d{6})_(?P<direction>in|out)"
    r"(?:_(?P<queue>[a-z]+))?(?:_(?P<site>[A-Z]{3}))?"
)


def settings_with(tmp_path: Path, **store: object) -> Settings:
    return Settings(home=tmp_path, store=store)


def test_filename_pattern_fills_every_field(tmp_path: Path) -> None:
    resolver = MetadataResolver(settings_with(tmp_path, filename_pattern=PATTERN))

    meta = resolver.resolve("/data/2024/AG042_CU1001_20240131T101500_in_billing_IST.wav")

    assert meta.agent_id == "AG042" and meta.customer_id == "CU1001"
    assert meta.call_time == datetime(2024, 1, 31, 10, 15, tzinfo=timezone.utc)
    assert meta.direction == "inbound" and meta.queue == "billing"
    assert meta.extra["site"] == "IST" and meta.extra[SOURCE_KEY] == "filename"
    assert NOTE_KEY not in meta.extra


def test_call_time_uses_the_configured_format_and_zone(tmp_path: Path) -> None:
    resolver = MetadataResolver(
        settings_with(
            tmp_path,
            filename_pattern=r"(?P<call_time>\d{2}\.\d{2}\.\d{4}-\d{4})_(?P<customer_phone>\+?\d+)",
            call_time_format="%d.%m.%Y-%H%M",
            call_time_zone="Europe/Istanbul",
        )
    )

    meta = resolver.resolve("31.01.2024-1015_+905551112233.mp3")

    assert meta.call_time == datetime(2024, 1, 31, 7, 15, tzinfo=timezone.utc)  # Istanbul is UTC+3
    assert meta.customer_phone == "+905551112233"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-31T10:15:00Z", datetime(2024, 1, 31, 10, 15, tzinfo=timezone.utc)),
        ("2024-01-31T12:15:00+02:00", datetime(2024, 1, 31, 10, 15, tzinfo=timezone.utc)),
        ("20240131T101500", datetime(2024, 1, 31, 10, 15, tzinfo=timezone.utc)),
        ("20240131-101500", datetime(2024, 1, 31, 10, 15, tzinfo=timezone.utc)),
        ("2024-01-31_10-15-00", datetime(2024, 1, 31, 10, 15, tzinfo=timezone.utc)),
        ("1706696100", datetime(2024, 1, 31, 10, 15, tzinfo=timezone.utc)),
    ],
)
def test_call_times_in_common_forms_are_read(text: str, expected: datetime) -> None:
    assert parse_call_time(text) == expected


def test_unreadable_values_are_left_empty_with_a_note(tmp_path: Path) -> None:
    resolver = MetadataResolver(
        settings_with(tmp_path, filename_pattern=r"(?P<agent_id>A\d+)_(?P<call_time>[^_]+)_(?P<direction>\w+)\.")
    )

    meta, notes = resolver.resolve_with_notes("A7_yesterday_sideways.wav")

    assert meta.agent_id == "A7" and meta.call_time is None and meta.direction is None
    assert any("'yesterday'" in n for n in notes) and any("'sideways'" in n for n in notes)
    assert "yesterday" in meta.extra[NOTE_KEY]


def test_file_with_no_metadata_gets_empty_metadata_and_a_recorded_note(tmp_path: Path) -> None:
    resolver = MetadataResolver(settings_with(tmp_path, filename_pattern=PATTERN))

    meta, notes = resolver.resolve_with_notes("/data/random-name.wav")

    assert (meta.agent_id, meta.customer_id, meta.call_time) == (None, None, None)
    assert meta.extra[SOURCE_KEY] == "none"
    assert "does not match store.filename_pattern" in meta.extra[NOTE_KEY]
    assert notes[0] == "no call metadata found"


def test_with_no_source_configured_the_note_says_how_to_configure_one(tmp_path: Path) -> None:
    meta = MetadataResolver(settings_with(tmp_path)).resolve("x.wav")

    assert "store.filename_pattern or store.manifest_file" in meta.extra[NOTE_KEY]


def test_bad_pattern_is_refused_when_settings_load(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        settings_with(tmp_path, filename_pattern="(?P<agent_id>[A-Z+")
    with pytest.raises(ValidationError, match="no named groups"):
        settings_with(tmp_path, filename_pattern=r"\d+_\d+")


def write_manifest(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.csv"
    path.write_text(text)
    return path


def test_manifest_rows_match_by_path_or_name_and_fill_metadata(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path / "batch",
        "File,Agent,Customer,Phone,Start_Time,Direction,Queue,Campaign\n"
        "calls/a.wav,AG1,CU1,+90 555 000 0001,2024-02-01 09:30:00,outbound,retention,spring\n"
        "b.wav,AG2,,, 2024-02-01T10:00:00Z,IN,,\n",
    )
    resolver = MetadataResolver(settings_with(tmp_path, manifest_file=manifest))

    a = resolver.resolve(tmp_path / "batch" / "calls" / "a.wav")
    b = resolver.resolve("/uploads/tmp123/b.wav")  # an upload keeps only the file name

    assert (a.agent_id, a.customer_id, a.customer_phone) == ("AG1", "CU1", "+90 555 000 0001")
    assert a.call_time == datetime(2024, 2, 1, 9, 30, tzinfo=timezone.utc)
    assert (a.direction, a.queue, a.extra["campaign"], a.extra[SOURCE_KEY]) == (
        "outbound",
        "retention",
        "spring",
        "manifest",
    )
    assert (b.agent_id, b.customer_id, b.direction) == ("AG2", None, "inbound")


def test_manifest_values_win_over_the_file_name_but_blank_cells_do_not_erase(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, "file,agent_id,customer_id\nAG042_CU1001_20240131T101500_in.wav,AG999,\n")
    resolver = MetadataResolver(settings_with(tmp_path, filename_pattern=PATTERN, manifest_file=manifest))

    meta = resolver.resolve("AG042_CU1001_20240131T101500_in.wav")

    assert meta.agent_id == "AG999"  # the manifest corrected it
    assert meta.customer_id == "CU1001"  # blank in the manifest: the file name's value stays
    assert meta.extra[SOURCE_KEY] == "filename+manifest"


def test_manifest_rows_with_no_matching_file_are_reported(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, "file,agent\none.wav,A1\ntwo.wav,A2\nsub/three.wav,A3\n")
    resolver = MetadataResolver(settings_with(tmp_path, manifest_file=manifest))

    resolver.resolve(tmp_path / "one.wav")

    assert [r.file for r in resolver.unmatched_rows()] == ["two.wav", "sub/three.wav"]
    assert [r.file for r in resolver.unmatched_rows([tmp_path / "sub" / "three.wav"])] == ["one.wav", "two.wav"]
    assert resolver.unmatched_warnings()[0] == "manifest.csv line 3: no recording named 'two.wav'"


def test_manifest_problems_become_warnings_not_failures(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path,
        "file;agent;call_time\n"
        "a.wav;A1;2024-01-01T10:00:00\n"
        ";A2;2024-01-01T11:00:00\n"
        "a.wav;A3;2024-01-01T12:00:00\n"
        "b.wav;A4;not a time;extra\n",
    )
    resolver = MetadataResolver(settings_with(tmp_path, manifest_file=manifest))

    a = resolver.resolve(tmp_path / "a.wav")
    b, notes = resolver.resolve_with_notes(tmp_path / "b.wav")

    warnings = resolver.warnings
    assert any("line 3: no file name" in w for w in warnings)
    assert any("'a.wav' is also on line 2; line 4 is used" in w for w in warnings)
    assert any("line 5: 4 cells for 3 columns" in w for w in warnings)
    assert a.agent_id == "A3"
    assert b.agent_id == "A4" and b.call_time is None and any("not a time" in n for n in notes)


def test_same_file_name_in_two_folders_is_told_apart_by_path(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, "file,agent\nmon/call.wav,A1\ntue/call.wav,A2\n")
    resolver = MetadataResolver(settings_with(tmp_path, manifest_file=manifest))

    assert resolver.resolve(tmp_path / "tue" / "call.wav").agent_id == "A2"
    assert resolver.resolve("/elsewhere/mon/call.wav").agent_id == "A1"
    unknown, notes = resolver.resolve_with_notes("/elsewhere/call.wav")
    assert unknown.agent_id is None and "lines 2, 3 all name 'call.wav'" in notes[-1]


def test_manifest_without_a_file_column_is_refused_with_its_columns_listed(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, "agent,customer\nA1,C1\n")

    with pytest.raises(ValueError, match=r"no file column.*its columns are: agent, customer"):
        load_manifest(manifest)
    with pytest.raises(ValueError, match="cannot read the manifest"):
        load_manifest(tmp_path / "missing.csv")


def test_metadata_from_file_names_and_manifest_is_queryable_in_the_store(store: CallStore, tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path, "file,customer_phone,queue\nAG042_CU1001_20240131T101500_in.wav,+1 555 0100,vip\n"
    )
    resolver = MetadataResolver(settings_with(tmp_path, filename_pattern=PATTERN, manifest_file=manifest))
    files = ["AG042_CU1001_20240131T101500_in.wav", "AG043_CU2002_20240201T080000_out.wav", "unnamed.wav"]
    records = []
    for name in files:
        record = make_record(name.removesuffix(".wav"))
        record.metadata = resolver.resolve(f"/in/{name}")
        records.append(record)
    store.upsert_records(records)

    vip = find_calls(store, CallQuery(queue="vip")).items
    by_phone = find_calls(store, CallQuery(customer="+1 (555) 0100")).items
    outbound = find_calls(store, CallQuery(direction="outbound", agent_id="AG043")).items
    no_meta = store.get_record(records[2].record_id)

    assert [d["file_name"] for d in vip] == ["AG042_CU1001_20240131T101500_in.wav"]
    assert [d["customer_id"] for d in by_phone] == ["CU1001"]
    assert [d["call_time"] for d in outbound] == [datetime(2024, 2, 1, 8, 0, tzinfo=timezone.utc)]
    assert no_meta is not None and no_meta.metadata.extra[SOURCE_KEY] == "none"
