"""The HTTP API in process: uploads through to stored calls, job tracking, every query endpoint,
every ZIP defence, size and type checks, API keys on and off, error hygiene, the OpenAPI contract.

``create_app(ctx)`` behind httpx's ASGI transport (``tests/inprocess_app.py``), with the real stage
groups (Whisper tiny.en, analysis off) doing the transcription and the session's SecantusDB as the
store: no Ray. What needs Ray Serve itself (the deployments, their handles, the HTTP proxy) is in
tests/test_serve_ray.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.save import CallWriter
from pipeline.store.corrections import MongoCorrectionStore, close_corrections, open_corrections
from pipeline.store.embedded import free_port
from pipeline.store.store import CallStore
from tests.conftest import SAMPLES, make_settings
from tests.inprocess_app import InProcessApp
from tests.store_fixtures import make_analysis, make_record
from tests.upload_helpers import chunked_oversize_upload

API_KEY = "test-key-7f3a"
# Small limits so every defence can be hit with small files.
LIMITS = {
    "max_upload_bytes": 3 * 1024**2,
    "zip_max_entries": 6,
    "zip_max_total_bytes": 8 * 1024**2,
    "zip_max_ratio": 50.0,
}
SINGLE = "normal_service.ogg"
IN_ZIP = "callback_promise.ogg"


def wait_job(
    client: InProcessApp | httpx.Client, job_id: str, timeout_s: float = 150.0, prefix: str = ""
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = client.get(f"{prefix}/jobs/{job_id}").json()
        if body["status"] in ("done", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


def make_zip(entries: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def sample(name: str) -> bytes:
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"sample {name} is missing (samples/ is made by bench/synth.py)")
    return path.read_bytes()


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server(
    mongo_server: str, tmp_path_factory: pytest.TempPathFactory, transcript_pipeline: Any
) -> Iterator[InProcessApp]:
    home = tmp_path_factory.mktemp("api-home")
    settings = make_settings(
        home, store={"mongo_uri": mongo_server, "database": f"api_{uuid.uuid4().hex[:8]}"}, serve=LIMITS
    )
    app = InProcessApp(settings, transcript_pipeline.chains)
    try:
        yield app
    finally:
        app.store.db.client.drop_database(app.store.db.name)
        app.close()


@pytest.fixture(scope="module")
def client(server: InProcessApp) -> InProcessApp:
    return server


@pytest.fixture(scope="module")
def uploaded(client: InProcessApp) -> dict[str, Any]:
    """One sample call uploaded with metadata and processed to the end."""
    response = client.post(
        "/upload/audio/",
        files={"file": (SINGLE, sample(SINGLE), "application/octet-stream")},
        data={"agent_id": "AG900", "customer_id": "CU900", "call_time": "2026-11-20T10:15:00+00:00",
              "company": "Brightline Home Services", "agent_name": "Sarah", "language": "en-GB"},
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    job = wait_job(client, accepted["job_id"])
    return {"accepted": accepted, "job": job, "location": response.headers.get("location")}


@pytest.fixture(scope="module")
def secured(server: InProcessApp) -> Iterator[InProcessApp]:
    """A second app on the same database with API keys on."""
    serve_opts = server.settings.serve.model_copy(update={"api_keys": [API_KEY]})
    app = InProcessApp(server.settings.model_copy(update={"serve": serve_opts}), [], store=server.store)
    try:
        yield app
    finally:
        app.close()


# ---------------------------------------------------------------------- served pages


def test_ui_and_docs_are_served_locally(client: InProcessApp) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "callaudit" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for path in ("/docs", "/redoc"):
        html = client.get(path)
        assert html.status_code == 200
        assert "/static/" in html.text and "cdn" not in html.text.lower() and "googleapis" not in html.text
    for asset in ("/static/app.js", "/static/charts.js", "/static/style.css", "/static/swagger-ui-bundle.js"):
        assert client.get(asset).status_code == 200, asset
    spec = client.get("/openapi.json").json()
    for path in ("/upload/audio/", "/upload/zip/", "/jobs/{job_id}", "/calls", "/calls/{call_id}", "/stats"):
        assert path in spec["paths"], path
    assert client.get("/").headers["x-content-type-options"] == "nosniff"


def test_healthz_checks_store_and_llm(client: InProcessApp) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["store"]["ok"] is True
    assert body["llm"]["ok"] is None and "off" in body["llm"]["detail"]


# ---------------------------------------------------------------------- single upload


def test_single_upload_answers_202_with_a_job(client: InProcessApp, uploaded: dict[str, Any]) -> None:
    accepted = uploaded["accepted"]
    assert accepted["job_id"] and accepted["status_url"] == f"/jobs/{accepted['job_id']}"
    assert uploaded["location"] == accepted["status_url"]
    # The id under its old name, and the old path, for clients written before jobs had one name.
    assert accepted["task_id"] == accepted["job_id"]
    assert client.get(f"/results/{accepted['job_id']}/").json()["job_id"] == accepted["job_id"]
    assert accepted["files"] == [
        {"file": SINGLE, "status": "queued", "reason": None, "size_bytes": len(sample(SINGLE)), "format": "ogg"}
    ]


def test_single_upload_is_tracked_to_done(uploaded: dict[str, Any]) -> None:
    job = uploaded["job"]
    assert job["status"] == "done", job
    assert job["kind"] == "upload" and job["counts"]["done"] == 1 and job["finished_at"]
    (done,) = job["files"]
    assert done["status"] == "done" and done["record_id"] and done["call_url"] == f"/calls/{done['record_id']}"
    assert done["result"]["status"] == "ok" and done["result"]["agent_id"] == "AG900"


def test_stored_call_has_turns_by_role(client: InProcessApp, uploaded: dict[str, Any]) -> None:
    record_id = uploaded["job"]["files"][0]["record_id"]
    call = client.get(f"/calls/{record_id}").json()
    assert call["record_id"] == record_id and call["mode"] == "stereo"
    assert {t["role"] for t in call["turns"]} == {"agent", "customer"}
    assert all(t["text"].strip() for t in call["turns"])
    assert call["metadata"]["agent_id"] == "AG900" and call["metadata"]["customer_id"] == "CU900"
    # The names given with the upload are the transcription hints and the greeting check's names.
    assert call["metadata"]["extra"]["company"] == "Brightline Home Services"
    assert call["metadata"]["extra"]["agent_name"] == "Sarah"
    # The language given with the upload is used, not detected.
    assert call["metadata"]["extra"]["language"] == "en-GB" and call["language"] == "en"
    transcribe = next(s for s in call["stages"] if s["stage"] == "transcribe")
    assert transcribe["detail"]["language_from"] == "metadata"
    assert "Brightline" in " ".join(t["text"] for t in call["turns"] if t["role"] == "agent")
    assert call["metrics"]["duration_s"] > 30
    assert "_id" not in call


def test_unknown_job_and_call_are_404(client: InProcessApp) -> None:
    for path in ("/jobs/nope", "/results/nope/", "/results/nope", "/calls/nope", "/calls/nope/audio"):
        response = client.get(path)
        assert response.status_code == 404 and "'nope'" in response.json()["detail"], path


def test_reupload_reuses_the_stored_result(client: InProcessApp, uploaded: dict[str, Any]) -> None:
    response = client.post("/upload/audio/", files={"file": ("again.ogg", sample(SINGLE))})
    job = wait_job(client, response.json()["job_id"], timeout_s=30)
    (done,) = job["files"]
    assert done["status"] == "done" and "already processed" in done["reason"]
    assert done["record_id"] == uploaded["job"]["files"][0]["record_id"]


def test_undecodable_audio_fails_with_a_reason(client: InProcessApp) -> None:
    fake = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00garbage" * 64
    response = client.post("/upload/audio/", files={"file": ("broken.wav", fake)})
    assert response.status_code == 202
    job = wait_job(client, response.json()["job_id"], timeout_s=60)
    (failed,) = job["files"]
    assert job["status"] == "failed" and failed["status"] == "failed"
    assert failed["reason"] and "audio" in failed["reason"]


# ---------------------------------------------------------------------- type and size checks


def test_type_is_judged_by_content_not_name(client: InProcessApp) -> None:
    response = client.post("/upload/audio/", files={"file": ("call.wav", b"hello, this is not audio\n" * 20)})
    assert response.status_code == 415
    detail = response.json()["detail"]
    assert "not an audio recording" in detail and "text" in detail and ".wav" in detail


def test_audio_with_an_odd_name_is_accepted(client: InProcessApp) -> None:
    response = client.post("/upload/audio/", files={"file": ("recording.bin", sample(SINGLE))})
    assert response.status_code == 202 and response.json()["files"][0]["format"] == "ogg"


def test_zip_sent_as_audio_is_redirected(client: InProcessApp) -> None:
    response = client.post("/upload/audio/", files={"file": ("calls.zip", make_zip([("a.ogg", b"OggS")]))})
    assert response.status_code == 415 and "/upload/zip/" in response.json()["detail"]


def test_empty_file_is_refused(client: InProcessApp) -> None:
    response = client.post("/upload/audio/", files={"file": ("empty.wav", b"")})
    assert response.status_code == 400 and "empty" in response.json()["detail"]


def test_upload_over_the_size_limit_is_413(client: InProcessApp) -> None:
    big = b"OggS" + b"\x00" * (LIMITS["max_upload_bytes"] + 200_000)
    response = client.post("/upload/audio/", files={"file": ("big.ogg", big)})
    assert response.status_code == 413 and "MB" in response.json()["detail"]


def test_chunked_upload_over_the_limit_is_413(client: InProcessApp) -> None:
    """No Content-Length: the limit is enforced while the body streams in."""
    content, headers = chunked_oversize_upload()
    response = client.post("/upload/audio/", content=content, headers=headers)
    assert response.status_code == 413


def test_typed_form_fields_as_the_document_says(client: InProcessApp) -> None:
    """call_time is a date-time and direction an enum in the OpenAPI document; an empty field (what a
    browser sends for an untouched input) means "not given"."""
    spec = client.get("/openapi.json").json()["components"]["schemas"]["Body_upload_audio_upload_audio__post"]
    assert spec["properties"]["call_time"]["format"] == "date-time"
    assert spec["properties"]["direction"]["enum"] == ["inbound", "outbound"]
    wrong = client.post("/upload/audio/", files={"file": ("x.ogg", sample(SINGLE))}, data={"direction": "sideways"})
    assert wrong.status_code == 422 and wrong.json()["detail"].startswith("direction:")
    blank = client.post(
        "/upload/audio/", files={"file": ("blank.ogg", sample(SINGLE))}, data={"call_time": "", "direction": ""}
    )
    assert blank.status_code == 202, blank.text


def test_bad_metadata_is_422_with_a_readable_detail(client: InProcessApp) -> None:
    response = client.post(
        "/upload/audio/", files={"file": ("x.ogg", sample(SINGLE))}, data={"call_time": "next tuesday-ish"}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("call_time:")


# ---------------------------------------------------------------------- ZIP uploads and defences


def test_zip_upload_processes_good_entries_and_reports_the_rest(client: InProcessApp) -> None:
    archive = make_zip(
        [
            (f"calls/{IN_ZIP}", sample(IN_ZIP)),
            ("calls/notes.txt", b"agent notes, not a call\n"),
            ("calls/fake.wav", b"plain text with a .wav name\n"),
            ("inner.zip", make_zip([("x.ogg", b"OggS")])),
            ("../evil.wav", sample(SINGLE)),
        ]
    )
    response = client.post("/upload/zip/", files={"file": ("batch.zip", archive)}, data={"agent_id": "AG901"})
    assert response.status_code == 202, response.text
    files = {f["file"]: f for f in response.json()["files"]}
    assert files[f"calls/{IN_ZIP}"]["status"] == "queued"
    assert "text" in files["calls/notes.txt"]["reason"]
    assert "not an audio recording" in files["calls/fake.wav"]["reason"]
    assert "nested archives" in files["inner.zip"]["reason"]
    assert "traversal" in files["../evil.wav"]["reason"]

    job = wait_job(client, response.json()["job_id"])
    tracked = {f["file"]: f for f in job["files"]}
    assert job["status"] == "done" and job["counts"] == {"queued": 0, "running": 0, "done": 1, "failed": 4}
    good = tracked[f"calls/{IN_ZIP}"]
    assert good["status"] == "done" and good["result"]["agent_id"] == "AG901"
    assert tracked["inner.zip"]["status"] == "failed" and "nested" in tracked["inner.zip"]["reason"]
    call = client.get(f"/calls/{good['record_id']}").json()
    assert call["file_name"] == IN_ZIP and len(call["turns"]) >= 2


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("inner.zip", make_zip([("a.ogg", b"OggS")]), "nested archives"),
        ("inner.tar.gz", b"\x1f\x8b\x08\x00" + b"\x00" * 60, "nested archives"),
        ("../evil.ogg", b"OggS" + b"\x01" * 100, "traversal"),
        ("/etc/evil.ogg", b"OggS" + b"\x01" * 100, "absolute path"),
        ("report.pdf", b"%PDF-1.7\n" + b"x" * 100, "PDF"),
        ("readme.wav", b"just some words\n" * 10, "text"),
        ("empty.ogg", b"", "empty"),
        ("bomb.ogg", b"OggS" + b"\x00" * 2_000_000, "compression ratio"),
    ],
    ids=["nested-zip", "nested-gzip", "traversal", "absolute", "pdf", "text-as-wav", "empty", "ratio-bomb"],
)
def test_zip_entry_defences(client: InProcessApp, name: str, data: bytes, expected: str) -> None:
    response = client.post("/upload/zip/", files={"file": ("bad.zip", make_zip([(name, data)]))})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["detail"] == "no recording in the archive could be accepted"
    (refused,) = body["files"]
    assert refused["file"] == name and refused["status"] == "failed" and expected in refused["reason"]


def test_zip_symlink_entry_is_refused(client: InProcessApp) -> None:
    info = zipfile.ZipInfo("link.ogg")
    info.external_attr = (0o120777 << 16) | 0x20  # a symbolic link, as unzip would restore it
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, "/etc/passwd")
    response = client.post("/upload/zip/", files={"file": ("links.zip", buffer.getvalue())})
    assert response.status_code == 422 and "symbolic link" in response.json()["files"][0]["reason"]


def test_zip_with_too_many_entries_is_413(client: InProcessApp) -> None:
    entries = [(f"c{i}.ogg", b"OggS" + bytes([i]) * 50) for i in range(LIMITS["zip_max_entries"] + 1)]
    response = client.post("/upload/zip/", files={"file": ("many.zip", make_zip(entries))})
    assert response.status_code == 413 and "over the limit" in response.json()["detail"]


def test_zip_too_large_unpacked_is_413(client: InProcessApp) -> None:
    import random

    rng = random.Random(7)
    # Two-symbol noise: compresses about 7:1, under the ratio limit, yet unpacks past the total limit.
    chunk = bytes(rng.choice(b"ab") for _ in range(1_000_000))
    entries = [(f"part{i}.ogg", b"OggS" + chunk * 3) for i in range(3)]
    archive = make_zip(entries)
    assert len(archive) < LIMITS["max_upload_bytes"]
    response = client.post("/upload/zip/", files={"file": ("large.zip", archive)})
    assert response.status_code == 413 and "unpack" in response.json()["detail"]


def test_not_a_zip_is_415(client: InProcessApp) -> None:
    response = client.post("/upload/zip/", files={"file": ("calls.zip", sample(SINGLE))})
    assert response.status_code == 415 and "not a ZIP" in response.json()["detail"]


# ---------------------------------------------------------------------- queries


def test_jobs_lists_recent_jobs(client: InProcessApp, uploaded: dict[str, Any]) -> None:
    jobs = client.get("/jobs", params={"limit": 100}).json()
    mine = next(j for j in jobs if j["job_id"] == uploaded["accepted"]["job_id"])
    assert mine["status"] == "done" and mine["counts"]["done"] == 1 and mine["inputs"] == [SINGLE]


def test_calls_filters_and_paging(client: InProcessApp, uploaded: dict[str, Any]) -> None:
    record_id = uploaded["job"]["files"][0]["record_id"]
    by_agent = client.get("/calls", params={"agent_id": "AG900"}).json()
    assert by_agent["total"] == 1 and by_agent["items"][0]["record_id"] == record_id
    assert "turns" not in by_agent["items"][0]
    assert client.get("/calls", params={"agent_id": "nobody"}).json()["total"] == 0
    assert client.get("/calls", params={"customer": "CU900", "status": "ok"}).json()["total"] == 1
    window = {"time_from": "2026-11-20T00:00:00Z", "time_to": "2026-11-21T00:00:00Z"}
    assert record_id in [c["record_id"] for c in client.get("/calls", params=window).json()["items"]]

    call = client.get(f"/calls/{record_id}").json()
    word = max(call["turns"][0]["text"].split(), key=len).strip(".,!?")
    found = client.get("/calls", params={"text": word}).json()
    assert record_id in [c["record_id"] for c in found["items"]]

    everything = client.get("/calls", params={"page_size": 100}).json()
    assert everything["total"] >= 2
    first = client.get("/calls", params={"page_size": 1, "page": 1, "sort": "file_name"}).json()
    second = client.get("/calls", params={"page_size": 1, "page": 2, "sort": "file_name"}).json()
    assert first["pages"] == everything["total"] and len(first["items"]) == 1
    assert first["items"][0]["record_id"] != second["items"][0]["record_id"]

    assert client.get("/calls", params={"sort": "password"}).status_code == 400
    assert client.get("/calls", params={"page_size": 5000}).status_code == 422
    assert client.get("/calls", params={"sentiment": "furious"}).status_code == 422


def test_stats(client: InProcessApp, uploaded: dict[str, Any]) -> None:
    stats = client.get("/stats", params={"timezone": "Europe/Istanbul"}).json()
    assert set(stats) == {"overview", "categories", "agents", "daily"}
    assert stats["overview"]["calls"] >= 2 and stats["overview"]["by_status"]["ok"] >= 2
    agents = {a["agent_id"]: a for a in stats["agents"]}
    assert agents["AG900"]["calls"] == 1 and 0 < agents["AG900"]["talk_ratio"] < 1
    assert any(d["day"] == "2026-11-20" for d in stats["daily"])
    only = client.get("/stats", params={"agent_id": "AG900"}).json()
    assert only["overview"]["calls"] == 1
    assert client.get("/stats", params={"timezone": "Mars/Olympus"}).status_code == 400


def test_csv_export(client: InProcessApp, uploaded: dict[str, Any]) -> None:
    response = client.get("/calls/export", params={"agent_id": "AG900"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    lines = response.text.strip().splitlines()
    assert lines[0].startswith("record_id,") and len(lines) == 2
    assert uploaded["job"]["files"][0]["record_id"] in lines[1]
    jsonl = client.get("/calls/export", params={"format": "jsonl", "agent_id": "AG900"})
    assert jsonl.status_code == 200 and jsonl.text.count("\n") == 1 and '"turns"' in jsonl.text


def test_call_audio_is_served_with_ranges(client: InProcessApp, uploaded: dict[str, Any]) -> None:
    record_id = uploaded["job"]["files"][0]["record_id"]
    audio = client.get(f"/calls/{record_id}/audio")
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/ogg"
    assert audio.content == sample(SINGLE)
    part = client.get(f"/calls/{record_id}/audio", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100


def test_reanalyse_needs_analysis_on(client: InProcessApp, uploaded: dict[str, Any]) -> None:
    record_id = uploaded["job"]["files"][0]["record_id"]
    response = client.post(f"/calls/{record_id}/reanalyse")
    assert response.status_code == 409 and "analysis is turned off" in response.json()["detail"]
    assert client.post("/calls/nope/reanalyse").status_code == 404


# ---------------------------------------------------------------------- restart


def test_unfinished_uploads_are_taken_up_after_a_restart(mongo_server: str, tmp_path: Path) -> None:
    """A job left queued/running by a replica that died is resumed by the next one (its lifespan
    calls WorkQueue.resume); a file whose upload is gone is failed with a reason instead."""
    from pipeline.records import CallMetadata
    from pipeline.stage import CallState
    from pipeline.store.store import CallStore
    from serve_app.intake import UploadStore
    from serve_app.jobs import JobTracker
    from serve_app.work_queue import WorkItem, WorkQueue

    settings = make_settings(tmp_path, store={"mongo_uri": mongo_server, "database": f"resume_{uuid.uuid4().hex[:8]}"})
    store = CallStore(settings).connect()
    uploads = UploadStore(tmp_path / "uploads")
    data = sample(SINGLE)
    sha = hashlib.sha256(data).hexdigest()
    uploads.save(sha, "ogg", data)
    left = WorkItem("", "left.ogg", sha, "ogg", CallMetadata(agent_id="AG777"))
    gone = WorkItem("", "gone.ogg", "0" * 64, "ogg")
    jobs = JobTracker(store)
    job_id = jobs.create("upload", ["left.ogg", "gone.ogg"], (), {"files": [left.to_meta(), gone.to_meta()]})
    jobs.mark(job_id, "left.ogg", "running")  # the old replica was working on it when it died
    transcribed: list[str] = []

    async def fake_transcribe(row: dict[str, object]) -> str:
        record = CallState.from_row(row).record
        transcribed.append(record.file_name)
        return record.model_dump_json()

    async def restart() -> int:
        writer = CallWriter(settings, store)
        work_queue = WorkQueue(settings, uploads, jobs, writer, fake_transcribe, None)
        resumed = await work_queue.resume()
        for _ in range(200):
            view = jobs.view(job_id)
            if view is not None and view.status in ("done", "failed"):
                break
            await asyncio.sleep(0.1)
        await work_queue.stop()
        return resumed

    try:
        assert asyncio.run(restart()) == 1
        view = jobs.view(job_id)
        assert view is not None and view.status == "done" and transcribed == ["left.ogg"]
        files = {f.file: f for f in view.files}
        assert files["left.ogg"].status == "done" and files["gone.ogg"].status == "failed"
        assert "upload it again" in (files["gone.ogg"].reason or "")
        record = store.get_record(files["left.ogg"].record_id or "")
        assert record is not None and record.metadata.agent_id == "AG777"
        assert store.get_job(job_id, files=False)["status"] == "finished"  # type: ignore[index]
    finally:
        store.db.client.drop_database(store.db.name)
        store.close()


# ---------------------------------------------------------------------- reviewer corrections


@pytest.fixture(scope="module")
def reviewable(server: InProcessApp) -> Iterator[dict[str, str]]:
    """Calls stored straight into the app's database: one audited, one never analysed, one without speech."""
    store = CallStore(server.settings).connect()
    tag = uuid.uuid4().hex[:8]
    audited = make_analysis(category="Potential Customer", sentiment="neutral", compliance={"greeting": "pass"})
    records = {
        "audited": make_record(f"review-{tag}-a", agent="AG950", customer="CU950", analysis=audited),
        "plain": make_record(f"review-{tag}-b", agent="AG950", customer="CU951"),
        "silent": make_record(f"review-{tag}-c", agent="AG950", customer="CU952", turns=(), status="empty"),
    }
    try:
        assert not CallWriter(store.settings, store).save(list(records.values())).failed
        yield {name: record.record_id for name, record in records.items()}
    finally:
        store.close()


def test_correction_changes_the_stored_call_and_records_the_review(
    client: InProcessApp, server: InProcessApp, reviewable: dict[str, str]
) -> None:
    call_id = reviewable["audited"]
    labels = {"category": "Unnecessary Call", "subcategory": "Complaint", "customer_sentiment": "negative"}
    response = client.post(f"/calls/{call_id}/correction", json={**labels, "reviewer": "qa-lead"})
    assert response.status_code == 200, response.text
    call = response.json()
    assert call["record_id"] == call_id and call == client.get(f"/calls/{call_id}").json()
    analysis = call["analysis"]
    assert (call["category"], call["subcategory"], call["customer_sentiment"]) == tuple(labels.values())
    assert analysis["classification"]["source"] == "reviewer" and analysis["category_confidence"] == 1.0
    review = analysis["review"]
    assert review["reviewer"] == "qa-lead" and review["fields"] == sorted(labels)
    assert time.time() - datetime.fromisoformat(review["at"]).timestamp() < 120
    assert {"complaint", "negative_sentiment"} <= set(call["flags"])  # flags evaluated again
    listed = client.get("/calls", params={"agent_id": "AG950", "category": "Unnecessary Call"}).json()
    assert [c["record_id"] for c in listed["items"]] == [call_id]

    # Saved where every worker reads corrections: MongoDB, since the app runs with a mongo_uri.
    corrections = open_corrections(server.settings)
    try:
        assert isinstance(corrections, MongoCorrectionStore)
        saved = corrections.get(call_id)
        assert saved is not None and saved.labels == labels and saved.reviewer == "qa-lead"
        assert saved.text and "internet" in saved.text  # the customer's words: what the classifier learns from
    finally:
        close_corrections(corrections)

    # A sub-category alone implies its category; the latest correction wins.
    again = client.post(f"/calls/{call_id}/correction", json={"subcategory": "Price Research"})
    assert again.status_code == 200, again.text
    updated = again.json()
    assert (updated["category"], updated["subcategory"], updated["customer_sentiment"]) == (
        "Unnecessary Call", "Price Research", "negative"
    )
    assert "complaint" not in updated["flags"] and updated["analysis"]["review"]["reviewer"] is None


def test_correcting_a_call_that_was_never_analysed(client: InProcessApp, reviewable: dict[str, str]) -> None:
    body = {"agent_sentiment": "negative", "callback_promised": True, "compliance": {"greeting": "fail"},
            "reviewer": "qa-2"}
    response = client.post(f"/calls/{reviewable['plain']}/correction", json=body)
    assert response.status_code == 200, response.text
    call = response.json()
    assert call["agent_sentiment"] == "negative" and call["failed_compliance_items"] == ["greeting"]
    assert call["analysis"]["callback"]["promised"] is True and call["analysis"]["review"]["reviewer"] == "qa-2"
    assert {"rude_agent", "compliance_failure", "callback_promised"} <= set(call["flags"])


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"category": "Refunds"}, "category", "unknown category 'Refunds'"),
        ({"category": "Unnecessary Call", "subcategory": "Refund"}, "subcategory", "is not a sub-category of"),
        ({"category": "Potential Customer", "subcategory": "Complaint"}, "subcategory", "has no sub-categories"),
        ({"category": "Unnecessary Call"}, "subcategory", "needs a sub-category"),
        ({"subcategory": "Refund"}, "subcategory", "unknown sub-category"),
        ({"customer_sentiment": "furious"}, "customer_sentiment", "'negative'"),
        ({"compliance": {"greeting": "pass", "bribery": "fail"}}, "compliance", "unknown checklist item(s) bribery"),
        ({"catgory": "Uncertain"}, "catgory", "Extra inputs"),
        ({}, "request", "nothing to correct"),
    ],
    ids=["category", "subcategory", "no-subcategories", "subcategory-missing", "subcategory-alone", "sentiment",
         "compliance", "typo", "empty"],
)
def test_invalid_corrections_are_422_and_change_nothing(
    client: InProcessApp, reviewable: dict[str, str], body: dict[str, Any], field: str, words: str
) -> None:
    call_id = reviewable["audited"]
    before = client.get(f"/calls/{call_id}").json()
    response = client.post(f"/calls/{call_id}/correction", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"{field}:") and words in detail, detail
    assert client.get(f"/calls/{call_id}").json()["stored_at"] == before["stored_at"]


def test_correction_of_an_unknown_or_untranscribed_call(client: InProcessApp, reviewable: dict[str, str]) -> None:
    unknown = client.post("/calls/nope/correction", json={"category": "Uncertain"})
    assert unknown.status_code == 404 and "'nope'" in unknown.json()["detail"]
    silent = client.post(f"/calls/{reviewable['silent']}/correction", json={"category": "Uncertain"})
    assert silent.status_code == 409 and "no transcript" in silent.json()["detail"]


def test_a_correction_survives_reanalysis_through_the_api(server: InProcessApp, reviewable: dict[str, str]) -> None:
    """POST /calls/{id}/reanalyse rewrites the call through the work queue and the one save path: the
    reviewer's labels stay. The app here runs the real analysis group; its LLM address answers
    nothing, so the analysis is rules only ("pending"), as after an outage."""
    from pipeline.stage_groups import analysis_group

    settings = server.settings.model_copy(
        update={
            "analysis": server.settings.analysis.model_copy(update={"enabled": True, "classifier": "off"}),
            "llm": server.settings.llm.model_copy(
                update={"backend": "ollama", "ollama_host": f"http://127.0.0.1:{free_port()}"}
            ),
        }
    )
    app = InProcessApp(settings, [], store=server.store, analysis=analysis_group().chain(settings))
    try:
        call_id = reviewable["plain"]
        corrected = app.post(f"/calls/{call_id}/correction", json={"category": "Uncertain", "reviewer": "qa-3"})
        assert corrected.status_code == 200, corrected.text
        queued = app.post(f"/calls/{call_id}/reanalyse")
        assert queued.status_code == 202, queued.text
        job = wait_job(app, queued.json()["job_id"], timeout_s=60)
        assert job["status"] == "done", job
        call = app.get(f"/calls/{call_id}").json()
        assert call["analysis_status"] == "pending" and call["category"] == "Uncertain"
        assert call["analysis"]["reviewed"] and call["analysis"]["review"]["reviewer"] == "qa-3"
    finally:
        app.close()


def test_taxonomy_lists_what_a_correction_may_use(client: InProcessApp) -> None:
    taxonomy = client.get("/taxonomy").json()
    categories = {c["name"]: c["subcategories"] for c in taxonomy["categories"]}
    assert categories["Potential Customer"] == [] and "Complaint" in categories["Unnecessary Call"]
    assert taxonomy["sentiments"] == ["positive", "neutral", "negative"]
    assert "greeting" in {item["id"] for item in taxonomy["compliance"]}
    paths = client.get("/openapi.json").json()["paths"]
    assert "post" in paths["/calls/{call_id}/correction"] and "get" in paths["/taxonomy"]


# ---------------------------------------------------------------------- auth and CORS


def test_api_key_off_on_loopback(client: InProcessApp) -> None:
    assert client.get("/calls").status_code == 200


def test_api_key_required_when_configured(secured: InProcessApp) -> None:
    http = secured
    missing = http.get("/calls")
    assert missing.status_code == 401 and "API key" in missing.json()["detail"]
    assert http.get("/calls", headers={"X-API-Key": "wrong"}).status_code == 401
    assert http.get("/calls", headers={"X-API-Key": API_KEY}).status_code == 200
    assert http.get("/calls", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
    assert http.get("/stats", headers={"X-API-Key": API_KEY}).status_code == 200
    upload = http.post("/upload/audio/", files={"file": ("x.ogg", sample(SINGLE))})
    assert upload.status_code == 401
    assert http.get("/jobs/whatever").status_code == 401
    assert http.post("/calls/whatever/correction", json={"category": "Uncertain"}).status_code == 401
    assert http.get("/taxonomy").status_code == 401
    # Probes and the pages themselves carry no data.
    assert http.get("/healthz").status_code == 200
    assert http.get("/").status_code == 200


def test_cors_is_off_by_default(client: InProcessApp) -> None:
    preflight = client.options(
        "/calls", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    plain = client.get("/calls", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in plain.headers


# ---------------------------------------------------------------------- hygiene (keep last)


def test_responses_never_leak_tracebacks_or_paths(server: InProcessApp) -> None:
    assert len(server.responses) > 30
    home = str(server.settings.home)
    leaks = ("Traceback", 'File "/', "site-packages", home, "/tmp/", "/work/", "/root/")
    for url, status, text in ((str(r.request.url), r.status_code, r.text) for r in server.responses):
        if url.endswith(".js") or url.endswith(".css"):
            continue
        for leak in leaks:
            assert leak not in text, f"{url} ({status}) leaks {leak!r}"
