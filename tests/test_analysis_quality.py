"""Audit quality on the sample calls with the packaged Qwen2.5-Coder-1.5B, embedded and through Ollama.

The same assertions run twice: once with llama.cpp in-process, once through the official ``ollama``
client talking to a real Ollama-API server (``ollama-proxy`` from ollama-proxy-plus, in front of the
OpenAI-compatible HTTP server that xllamacpp runs for the loaded model). Assertions are the robust
ones: the complaint call is negative and flagged, the callback call has a due time the next morning.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import httpx
import pytest

from pipeline.analysis.analyser import Analyser
from pipeline.analysis.llm import EmbeddedLLM, OllamaLLM, make_backend, ollama_ready, used_tiers
from pipeline.records import CallMetadata, CallRecord, Turn
from pipeline.settings import Settings
from pipeline.stage import CallState

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
MODELS = REPO / ".cache" / "callaudit" / "models"
QWEN = "qwen2.5-coder-1.5b"
PROXIED = f"local/{QWEN}"


def sample_record(name: str) -> CallRecord:
    """A sample call as the conversation stage gives it, from its reference timings and texts."""
    ref = json.loads((SAMPLES / f"{name}.ref.json").read_text())
    turns = [Turn(index=i, role=t["role"], track=0 if t["role"] == "agent" else 1, start=t["start"], end=t["end"],
                  text=t["text"]) for i, t in enumerate(ref["turns"])]
    return CallRecord(pipeline_version="test", record_id=f"{name}-test", audio_sha256=name.ljust(64, "0"),
                      source=f"samples/{name}", file_name=name,
                      metadata=CallMetadata(call_time=datetime.fromisoformat(ref["call_time"])), turns=turns)


def settings_for(home: Path, **llm: object) -> Settings:
    values: dict[str, object] = {"backend": "embedded", "embedded_model": QWEN}
    values.update(llm)
    return Settings(home=home, models_dir=MODELS, llm=values)


@pytest.fixture(scope="module")
def qwen(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedLLM:
    settings = settings_for(tmp_path_factory.mktemp("qwen"))
    return EmbeddedLLM(settings.llm, settings.models_cache)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ollama_host(qwen: EmbeddedLLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Ollama-API server: ollama-proxy on 127.0.0.1 routing local/* to xllamacpp's HTTP API."""
    port = _free_port()
    env = {**os.environ, "PROVIDERS_LOCAL_BASE_URL": f"{qwen.http_address}/v1",
           "PROVIDERS_LOCAL_API_KEY": qwen.http_api_key, "EXTRA_MODELS": PROXIED}
    workdir = tmp_path_factory.mktemp("proxy")  # no stray .env or ollama-proxy.yaml gets read
    proxy = subprocess.Popen(
        [sys.executable, "-m", "ollama_proxy", "--host", "127.0.0.1", "--port", str(port)],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    host = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{host}/api/version", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proxy.poll() is not None or time.monotonic() > deadline:
                pytest.fail("ollama-proxy did not start")
            time.sleep(0.3)
        yield host
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)


@pytest.fixture(scope="module", params=["embedded", "ollama"])
def analyser(request: pytest.FixtureRequest, qwen: EmbeddedLLM, tmp_path_factory: pytest.TempPathFactory) -> Analyser:
    home = tmp_path_factory.mktemp(f"home-{request.param}")
    if request.param == "embedded":
        return Analyser(settings_for(home), backend=qwen)
    host = request.getfixturevalue("ollama_host")
    settings = settings_for(home, backend="ollama", ollama_host=host, fast_model=PROXIED, deep_model=PROXIED,
                            ollama_timeout_s=300.0)
    analyser = Analyser(settings)
    assert isinstance(analyser.backend, OllamaLLM)
    return analyser


def test_complaint_call_is_negative_flagged_and_classified_as_complaint(analyser: Analyser) -> None:
    record = analyser.run(CallState(record=sample_record("angry_complaint"))).record
    assert record.analysis_status == "done", record.errors
    a = record.analysis
    assert a is not None and a.sentiment is not None
    assert a.sentiment.customer.at("end").label == "negative"  # type: ignore[union-attr]
    assert a.sentiment.customer.at("start").label == "negative"  # type: ignore[union-attr]
    assert (a.category, a.subcategory) == ("Unnecessary Call", "Complaint")
    flags = {f.name for f in a.flags}
    assert {"negative_sentiment", "complaint"} <= flags
    assert a.classification is not None and a.classification.evidence
    assert a.classification.evidence[0].quote in record.turns[a.classification.evidence[0].turn].text  # type: ignore[index]
    assert a.customer_satisfaction is not None and a.customer_satisfaction <= 2
    assert a.summary and a.customer_need


def test_callback_call_has_a_pending_callback_due_the_next_morning(analyser: Analyser) -> None:
    record = analyser.run(CallState(record=sample_record("callback_promise"))).record
    assert record.analysis_status == "done", record.errors
    a = record.analysis
    assert a is not None
    assert a.callback.promised and a.callback.status == "pending" and a.callback.by == "agent"
    assert a.callback.due is not None
    assert a.callback.due.date() == date(2026, 11, 21) and a.callback.due.hour == 10
    assert "callback_promised" in {f.name for f in a.flags}
    assert a.category in {"Potential Customer", "Unnecessary Call"}
    assert a.sentiment is not None and a.sentiment.customer.at("end").label != "negative"  # type: ignore[union-attr]
    assert a.flat_fields()["callback_due"] == a.callback.due
    assert a.llm.model in {QWEN, PROXIED} and a.llm.completion_tokens > 0


def test_auto_picks_ollama_when_the_server_has_the_model(ollama_host: str, tmp_path: Path) -> None:
    assert isinstance(make_backend(settings_for(tmp_path, backend="auto", ollama_host=ollama_host,
                                                fast_model=PROXIED, deep_model=PROXIED)), OllamaLLM)


def test_auto_does_not_pick_ollama_when_it_lacks_a_model(ollama_host: str, tmp_path: Path) -> None:
    # (Building the embedded fallback is covered in test_analysis_llm; a second llama.cpp server in
    # this process after the HTTP traffic above is not something production does.)
    settings = settings_for(tmp_path, backend="auto", ollama_host=ollama_host, fast_model=PROXIED,
                            deep_model="deepseek-r1:14b", tier_for={"audit": "fast", "repair": "deep"})
    assert not ollama_ready(settings.llm, used_tiers(settings.llm))
    assert ollama_ready(settings.llm, ["fast"])
