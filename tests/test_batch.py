"""The Ray Data batch job end to end: real Ray, real models (tiny.en), a real MongoDB-wire server."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
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

pytestmark = pytest.mark.slow

GOOD = ["callback_promise.ogg", "empty_call.wav", "noisy_8khz.wav"]


@pytest.fixture(scope="module", autouse=True)
def ray_session() -> Iterator[None]:
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()


def _settings(home: Path, uri: str, database: str, **overrides: Any) -> Settings:
    return make_settings(
        home,
        store={"mongo_uri": uri, "database": database, "spool_dir": home / "spool", "retry_backoff_s": 0.05},
        **overrides,
    )


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "calls"
    folder.mkdir()
    for name in GOOD:
        shutil.copy(SAMPLES / name, folder / name)
    (folder / "corrupt.mp3").write_bytes((SAMPLES / "angry_complaint.mp3").read_bytes()[:400])
    (folder / "notes.wav").write_bytes(b"this is not audio, just a text file named .wav\n" * 30)
    (folder / "zero.ogg").write_bytes(b"")
    return folder


def _run(settings: Settings, args: list[str], reprocess: bool = False) -> Any:
    from batch.job import BatchJob

    with CallStore(settings) as store:
        summary = BatchJob(settings, store).run(args, reprocess=reprocess)
        docs = list(store.calls.find({}, {"record_id": 1, "status": 1, "errors": 1, "source": 1, "turns": 1}))
        files = list(store.job_files.find({"job_id": summary.job_id}))
    return summary, docs, files


def test_job_stores_every_good_file_once_and_every_bad_one_with_its_reason(
    inputs: Path, mongo_server: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path / "home", mongo_server, "batch_main")
    summary, docs, files = _run(settings, [str(inputs)])

    assert summary.files == 6
    assert summary.ok + summary.empty == 3 and summary.failed == 3
    by_name = {Path(d["source"]).name: d for d in docs}
    assert len(docs) == len({d["record_id"] for d in docs}) == 6
    assert by_name["callback_promise.ogg"]["status"] == "ok" and by_name["callback_promise.ogg"]["turns"]
    assert by_name["empty_call.wav"]["status"] == "empty"
    codes = {name: by_name[name]["errors"][0]["code"] for name in ("corrupt.mp3", "notes.wav", "zero.ogg")}
    assert codes == {"corrupt.mp3": "corrupt_audio", "notes.wav": "not_audio", "zero.ogg": "empty_file"}
    statuses = {Path(f["file"]).name: (f["status"], f["reason"]) for f in files}
    assert statuses["callback_promise.ogg"][0] == "done"
    assert statuses["notes.wav"][0] == "failed" and "not a recording" in statuses["notes.wav"][1]
    assert summary.audio_hours > 0 and summary.stage_seconds["transcribe"] > 0

    # A second run skips everything already processed and writes nothing twice.
    again, docs_after, files_after = _run(settings, [str(inputs)])
    assert again.skipped == 3 and again.ok == 0 and again.empty == 0
    assert len(docs_after) == 6
    assert {f["status"] for f in files_after if Path(f["file"]).name in GOOD} == {"skipped"}


def test_zip_and_manifest_inputs_report_junk_entries_and_attach_metadata(mongo_server: str, tmp_path: Path) -> None:
    settings = _settings(tmp_path / "home", mongo_server, "batch_zip")
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("day1/noisy.wav", (SAMPLES / "noisy_8khz.wav").read_bytes())
        zf.writestr("readme.txt", "not audio")
        zf.writestr("../escape.wav", (SAMPLES / "noisy_8khz.wav").read_bytes())
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w") as nested:
            nested.writestr("a.wav", b"RIFF")
        zf.writestr("nested.zip", inner.getvalue())
    calls = tmp_path / "manifest"
    calls.mkdir()
    shutil.copy(SAMPLES / "empty_call.wav", calls / "e.wav")
    (calls / "manifest.csv").write_text(
        "file,agent_id,customer_id,call_time,direction\n"
        "e.wav,agent-7,cust-42,2026-11-20T09:30:00+00:00,inbound\n"
        "missing.wav,agent-7,cust-43,2026-11-20T09:40:00+00:00,inbound\n"
    )
    summary, docs, files = _run(settings, [str(archive), str(calls / "manifest.csv")])

    statuses = {f["file"]: (f["status"], f.get("reason") or "") for f in files}
    assert statuses[f"{archive}/day1/noisy.wav"][0] == "done"
    assert "not an audio file" in statuses[f"{archive}/readme.txt"][1]
    assert "traversal" in statuses[f"{archive}/../escape.wav"][1]
    assert "nested" in statuses[f"{archive}/nested.zip"][1]
    assert any("missing.wav" in reason for _, reason in statuses.values())
    with CallStore(settings) as store:
        manifest_doc = store.calls.find_one({"agent_id": "agent-7"})
    assert manifest_doc is not None and manifest_doc["customer_id"] == "cust-42"
    assert summary.rejected == 4 and len(docs) == 2


def _distinct_calls(folder: Path, count: int) -> None:
    """Real speech, made distinct per file (different cut points) so each has its own record."""
    folder.mkdir(parents=True, exist_ok=True)
    audio = load_sample("normal_service.ogg")
    for i in range(count):
        cut = audio[:, int(i * 0.37 * 16000) : int((20 + i * 0.37) * 16000)]
        (folder / f"call_{i:02d}.wav").write_bytes(encode(np.ascontiguousarray(cut), 16000, "wav_pcm16"))


def test_killing_a_transcription_worker_mid_job_loses_nothing(mongo_server: str, tmp_path: Path) -> None:
    import ray
    from ray.util.state import list_actors

    from pipeline.cluster import init_ray

    folder = tmp_path / "many"
    _distinct_calls(folder, 6)
    settings = _settings(tmp_path / "home", mongo_server, "batch_kill", batch={"transcribe_batch_size": 1})
    init_ray(settings)
    result: dict[str, Any] = {}
    runner = threading.Thread(
        target=lambda: result.update(zip(("summary", "docs", "files"), _run(settings, [str(folder)]), strict=True))
    )
    runner.start()
    killed = None
    deadline = time.monotonic() + 240
    while killed is None and time.monotonic() < deadline and runner.is_alive():
        for actor in list_actors(filters=[("state", "=", "ALIVE")], detail=True):
            # Ray Data names every pool worker alike; the transcriber is the one with Whisper loaded.
            if "StageChain" in (actor.class_name or "") and actor.pid and _loaded_whisper(actor.pid):
                os.kill(actor.pid, signal.SIGKILL)
                killed = actor.pid
                break
        time.sleep(0.5)
    runner.join(timeout=600)
    assert killed is not None, "no transcription actor was seen alive to kill"
    summary, docs = result["summary"], result["docs"]
    assert summary.ok == 6 and summary.failed == 0
    assert len(docs) == len({d["record_id"] for d in docs}) == 6
    assert ray.is_initialized()


def _loaded_whisper(pid: int) -> bool:
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False
    return "ctranslate2" in maps


def test_job_runs_on_a_two_node_cluster(mongo_server: str, tmp_path: Path) -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
    folder = tmp_path / "two"
    _distinct_calls(folder, 3)
    token = tmp_path / "ray_token"
    token.write_text("callaudit-test-token-" + os.urandom(8).hex())
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "CALLAUDIT_HOME": str(tmp_path / "home"),
        "CALLAUDIT_MODELS_DIR": str(REPO / ".cache" / "callaudit" / "models"),
        "CALLAUDIT_TRANSCRIBE__MODEL": "tiny.en",
        "CALLAUDIT_TRANSCRIBE__CPU_THREADS": "1",
        "CALLAUDIT_ANALYSIS__ENABLED": "false",
        "CALLAUDIT_STORE__MONGO_URI": mongo_server,
        "CALLAUDIT_STORE__DATABASE": "batch_two_nodes",
    }
    port = _free_port()
    ray_bin = str(Path(sys.executable).parent / "ray")
    # Ray's socket paths must fit in 107 bytes: pytest's tmp_path is too deep for them.
    temp = Path(tempfile.mkdtemp(prefix="ray2n-", dir="/tmp"))
    head = [ray_bin, "start", "--head", "--node-ip-address=127.0.0.2", f"--port={port}", "--num-cpus=1",
            "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"]  # fmt: skip
    worker = [ray_bin, "start", f"--address=127.0.0.2:{port}", "--node-ip-address=127.0.0.3", "--num-cpus=1",
              "--disable-usage-stats"]  # fmt: skip
    try:
        subprocess.run(head, env=env, check=True, capture_output=True, timeout=120)
        subprocess.run(worker, env=env, check=True, capture_output=True, timeout=120)
        job = subprocess.run(
            [sys.executable, "-m", "batch", "run", str(folder), "--no-analysis"],
            env={**env, "RAY_ADDRESS": f"127.0.0.2:{port}"},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert job.returncode == 0, job.stderr[-3000:]
        assert "3 ok" in job.stdout, job.stdout
        with CallStore(_settings(tmp_path / "home", mongo_server, "batch_two_nodes")) as store:
            docs = list(store.calls.find({}, {"stages": 1}))
        assert len(docs) == 3
        used = {run["detail"].get("node") for doc in docs for run in doc["stages"]}
        assert {"127.0.0.2", "127.0.0.3"} <= used, f"stages ran on {used}: both nodes should have worked"
    finally:
        _stop_test_cluster(("127.0.0.2", "127.0.0.3", str(temp)))
        shutil.rmtree(temp, ignore_errors=True)


def _stop_test_cluster(markers: tuple[str, ...]) -> None:
    """Stop only this test's Ray processes (``ray stop`` would stop every Ray on the machine)."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().decode(errors="ignore")
            except OSError:
                continue
            if any(marker in cmdline for marker in markers):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(proc.name), signum)
        time.sleep(2)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        return int(s.getsockname()[1])
