"""Batch inputs in object storage, against a real S3 API server on loopback (moto in server mode).

The job's own pyarrow S3 client talks HTTP to the server exactly as it would to AWS; only the
endpoint differs (``batch.s3_endpoint_url``). Real Ray, tiny.en, analysis off.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.settings import Settings
from pipeline.store import CallStore
from tests.audio_helpers import encode, load_sample
from tests.conftest import REPO, SAMPLES, make_settings
from tests.s3_server import CREDENTIALS, S3Server

DAY = "2026-12-06"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    # Credentials from the environment, as on a laptop; the Ray workers this module starts inherit them.
    os.environ.update(CREDENTIALS)
    server = S3Server(tmp_path_factory.mktemp("s3")).start()
    yield server
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module", autouse=True)
def ray_session() -> Iterator[None]:
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()


def _settings(home: Path, s3: S3Server, uri: str, database: str, **overrides: Any) -> Settings:
    return make_settings(
        home,
        store={"mongo_uri": uri, "database": database, "spool_dir": home / "spool", "retry_backoff_s": 0.05},
        batch={"s3_endpoint_url": s3.url, "progress_every_s": 1.0, **overrides.pop("batch", {})},
        **overrides,
    )


def _calls(count: int, offset: int = 0, seconds: float = 8.0) -> list[bytes]:
    """Real speech, distinct per call (different cut points), short so tiny.en is quick."""
    audio = load_sample("normal_service.ogg")
    out = []
    for i in range(offset, offset + count):
        start = int(i * 0.41 * 16000)
        cut = np.ascontiguousarray(audio[:, start : start + int(seconds * 16000)])
        out.append(encode(cut, 16000, "wav_pcm16"))
    return out


def _zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_planning_lists_objects_and_reads_no_audio(s3: S3Server, tmp_path: Path) -> None:
    from batch.inputs import plan_inputs

    fs = s3.filesystem()
    fs.create_dir("plan")
    good = (SAMPLES / "noisy_8khz.wav").read_bytes()
    for i in range(40):
        s3.put(f"plan/{DAY}/agent{i % 3}/call_{i:03d}.wav", b"RIFF" + os.urandom(200))
    s3.put(f"plan/{DAY}/notes.txt", b"not a recording, not listed as one")
    s3.put(
        f"plan/{DAY}/upload.zip",
        _zip_of({"day/a.wav": good, "readme.txt": b"not audio", "../escape.wav": good, "nested.zip": _zip_of({})}),
    )
    s3.put(
        "plan/manifests/day.csv",
        (
            "file,agent_id,customer_id,call_time,direction\n"
            f"s3://plan/{DAY}/agent0/call_000.wav,agent-7,cust-1,2026-12-06T09:30:00+00:00,inbound\n"
            f"../{DAY}/agent1/call_001.wav,agent-8,cust-2,2026-12-06T09:40:00+00:00,outbound\n"
            f"s3://plan/{DAY}/agent1/missing.wav,agent-9,cust-3,2026-12-06T09:50:00+00:00,inbound\n"
        ).encode(),
    )
    settings = make_settings(tmp_path, batch={"s3_endpoint_url": s3.url})

    s3.start_recording()
    plan = plan_inputs([f"s3://plan/{DAY}/", "s3://plan/manifests/day.csv", "s3://plan/nothing-here/"], settings)
    requests = s3.stop_recording()

    names = {f.name for f in plan.files}
    assert len([n for n in names if n.endswith(".wav")]) == 41  # 40 objects + the ZIP's good entry
    assert f"s3://plan/{DAY}/upload.zip/day/a.wav" in names
    assert "nested" in plan.rejected[f"s3://plan/{DAY}/upload.zip/nested.zip"]
    assert "traversal" in plan.rejected[f"s3://plan/{DAY}/upload.zip/../escape.wav"]
    assert "not an audio file" in plan.rejected[f"s3://plan/{DAY}/upload.zip/readme.txt"]
    assert "does not exist" in plan.rejected["s3://plan/manifests/day.csv:4"]
    assert "no such" in plan.rejected["s3://plan/nothing-here/"]
    by_name = {f.name: f for f in plan.files}
    first = by_name[f"s3://plan/{DAY}/agent0/call_000.wav"]
    assert first.metadata is not None and first.metadata.agent_id == "agent-7"
    second = by_name[f"s3://plan/{DAY}/agent1/call_001.wav"]
    assert second.metadata is not None and second.metadata.direction == "outbound"
    assert first.size == 204 and first.mtime_ns > 0

    # The driver listed; the only objects it opened are the manifest and the ZIP (ranged reads of its
    # directory and entry headers), never a recording.
    gets = [r["url"].split("?")[0] for r in requests if r["method"] == "GET" and "list-type" not in r["url"]]
    opened = {url.rsplit("/", 1)[-1] for url in gets}
    assert opened and opened <= {"day.csv", "upload.zip"}, opened
    ranges = [r["headers"].get("Range", "") for r in requests if r["url"].split("?")[0].endswith("upload.zip")]
    assert ranges and all(r.startswith("bytes=") for r in ranges if r)

    # Globs: '*' stays inside a folder, '**' spans folders.
    top = plan_inputs([f"s3://plan/{DAY}/*.wav"], settings)
    assert not top.files and top.rejected
    deep = plan_inputs([f"s3://plan/{DAY}/**/call_00?.wav"], settings)
    assert len(deep.files) == 10


def _job(settings: Settings, inputs: list[str], on_progress: Any = None) -> tuple[Any, dict[str, Any]]:
    from batch.job import BatchJob

    with CallStore(settings) as store:
        summary = BatchJob(settings, store, on_progress=on_progress).run(inputs)
        files = {f["file"]: f for f in store.job_files.find({"job_id": summary.job_id})}
    return summary, files


@pytest.mark.slow
def test_job_reads_a_bucket_skips_reruns_and_survives_the_bucket_vanishing(
    s3: S3Server, mongo_server: str, tmp_path: Path
) -> None:
    fs = s3.filesystem()
    fs.create_dir("nightly")
    prefix = f"nightly/calls/{DAY}"
    calls = _calls(5)
    for i, data in enumerate(calls[:3]):
        s3.put(f"{prefix}/call_{i}.wav", data)
    s3.put(f"{prefix}/notes.txt", b"junk next to the calls: not a recording, not listed as one")
    s3.put(f"{prefix}/upload.zip", _zip_of({"zipped.wav": calls[3], "readme.txt": b"junk"}))
    settings = _settings(tmp_path / "home", s3, mongo_server, "s3_nightly")
    # A manifest elsewhere names two of the calls by URI with their call metadata.
    fs.create_dir("exports")
    s3.put(
        "exports/telephony/day.csv",
        (
            "file,agent_id,customer_id,direction\n"
            f"s3://{prefix}/call_0.wav,agent-7,cust-1,inbound\n"
            f"s3://{prefix}/call_1.wav,agent-8,cust-2,outbound\n"
        ).encode(),
    )
    source = [f"s3://{prefix}/", "s3://exports/telephony/day.csv"]
    lines: list[str] = []

    summary, files = _job(settings, source, lines.append)
    assert (summary.files, summary.ok + summary.empty, summary.failed, summary.rejected) == (4, 4, 0, 1)
    assert files[f"s3://{prefix}/upload.zip/zipped.wav"]["status"] == "done"
    assert "not an audio file" in files[f"s3://{prefix}/upload.zip/readme.txt"]["reason"]
    with CallStore(settings) as store:
        job = store.jobs.find_one({"_id": summary.job_id})
        stored = {d["_id"]: (d["job_id"], d["status"]) for d in store.calls.find({}, {"job_id": 1, "status": 1})}
        agents = {d["file_name"]: d.get("agent_id") for d in store.calls.find({}, {"file_name": 1, "agent_id": 1})}
    assert agents["call_0.wav"] == "agent-7" and agents["call_1.wav"] == "agent-8" and agents["call_2.wav"] is None
    assert job is not None and job["progress"]["done"] == 4 and job["progress"]["total"] == 4
    assert job["progress"]["audio_hours"] > 0 and job["progress"]["audio_hours_per_hour"] > 0
    assert any("4/4 files (4 done, 0 failed, 0 skipped)" in line for line in lines), lines
    assert len(stored) == 4

    # A re-run skips every finished object from the listing alone: no worker reads anything.
    again, files_again = _job(settings, source)
    assert (again.skipped, again.ok, again.failed) == (4, 0, 0) and not again.stage_seconds
    assert files_again[f"s3://{prefix}/call_0.wav"]["reason"] == "already processed by this pipeline version"

    # New objects arrive, then the bucket disappears after listing, while the job runs.
    s3.put(f"{prefix}/call_3.wav", calls[4])

    def delete_bucket(message: str) -> None:
        lines.append(message)
        if "files listed" in message:
            fs.delete_dir("nightly")

    gone, files_gone = _job(settings, source, delete_bucket)
    assert (gone.skipped, gone.unreadable, gone.failed, gone.ok) == (4, 1, 1, 0)
    reason = files_gone[f"s3://{prefix}/call_3.wav"]["reason"]
    assert "the bucket 'nightly' does not exist" in reason, reason
    assert any("could not be read" in line for line in lines)
    with CallStore(settings) as store:
        after = {d["_id"]: (d["job_id"], d["status"]) for d in store.calls.find({}, {"job_id": 1, "status": 1})}
    assert after == stored  # nothing lost, nothing written for the unreadable files

    # The bucket is back (rewritten: new mtimes, so no fingerprint matches): the workers hash each
    # object and skip the ones whose audio is stored; only the new call is processed.
    fs.create_dir("nightly")
    for i, data in enumerate(calls[:3]):
        s3.put(f"{prefix}/call_{i}.wav", data)
    s3.put(f"{prefix}/call_3.wav", calls[4])
    back, files_back = _job(settings, source)
    assert (back.ok + back.empty, back.skipped) == (1, 3)
    assert "same audio" in files_back[f"s3://{prefix}/call_0.wav"]["reason"]
    with CallStore(settings) as store:
        assert store.calls.count_documents({}) == 5  # the 4 records from before and the new call


@pytest.mark.slow
def test_killed_driver_is_resumed_by_the_same_command(s3: S3Server, mongo_server: str, tmp_path: Path) -> None:
    import ray

    from batch.job import init_ray

    s3.filesystem().create_dir("resume")
    prefix = f"resume/calls/{DAY}"
    for i, data in enumerate(_calls(6, offset=10)):
        s3.put(f"{prefix}/call_{i}.wav", data)
    settings = _settings(tmp_path / "home", s3, mongo_server, "s3_resume")
    # The driver below joins this Ray, as `ray job submit` drivers join a cluster: killing it
    # leaves the cluster up, the head node's situation after a lost driver.
    init_ray(settings)
    env = {
        **os.environ,
        "RAY_ADDRESS": ray.get_runtime_context().gcs_address,
        "CALLAUDIT_HOME": str(tmp_path / "home"),
        "CALLAUDIT_MODELS_DIR": str(REPO / ".cache" / "callaudit" / "models"),
        "CALLAUDIT_TRANSCRIBE__MODEL": "tiny.en",
        "CALLAUDIT_TRANSCRIBE__CPU_THREADS": "1",
        "CALLAUDIT_STORE__MONGO_URI": mongo_server,
        "CALLAUDIT_STORE__DATABASE": "s3_resume",
        "CALLAUDIT_STORE__WRITE_BATCH_SIZE": "1",
        "CALLAUDIT_BATCH__TRANSCRIBE_BATCH_SIZE": "1",
        "CALLAUDIT_BATCH__S3_ENDPOINT_URL": s3.url,
        "CALLAUDIT_BATCH__PROGRESS_EVERY_S": "1",
    }
    command = [sys.executable, "-m", "batch", "run", f"s3://{prefix}/", "--no-analysis"]
    log_path = tmp_path / "first.log"
    with open(log_path, "wb") as log_file:
        first = subprocess.Popen(command, env=env, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        with CallStore(settings) as store:
            deadline = time.monotonic() + 240
            while store.calls.count_documents({}) < 2 and time.monotonic() < deadline and first.poll() is None:
                time.sleep(0.2)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
            before = {d["_id"]: d["job_id"] for d in store.calls.find({}, {"job_id": 1})}
            interrupted = store.jobs.find_one({"kind": "batch"}, sort=[("created_at", -1)])
    finally:
        if first.poll() is None:
            first.kill()
    assert 2 <= len(before) < 6, f"the driver should die mid-job: {log_path.read_text()[-2000:]}"
    assert interrupted is not None and interrupted["status"] == "running"
    assert "files (" in log_path.read_text() and "audio h/h" in log_path.read_text()

    second = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=400)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resumes the interrupted job {interrupted['_id']}" in second.stderr
    with CallStore(settings) as store:
        after = {d["_id"]: d["job_id"] for d in store.calls.find({}, {"job_id": 1})}
        old = store.jobs.find_one({"_id": interrupted["_id"]})
        new = store.jobs.find_one({"_id": {"$ne": interrupted["_id"]}, "kind": "batch"})
        new_files = list(store.job_files.find({"job_id": new["_id"]})) if new else []
    assert len(after) == 6
    # What the killed driver stored was skipped, not stored again (its records still name its job).
    assert {rid: after[rid] for rid in before} == before
    assert new is not None and new["meta"]["resumes"] == interrupted["_id"] and new["status"] == "finished"
    assert old is not None and old["status"] == "interrupted" and old["resumed_by"] == new["_id"]
    statuses = sorted(f["status"] for f in new_files)
    assert statuses.count("skipped") >= len(before) and statuses.count("done") == 6 - statuses.count("skipped")
    assert new["progress"]["total"] == 6 and new["progress"]["done"] + new["progress"]["skipped"] == 6
