"""Decode/split: every recorder format, the channel→role map, and bad input never crashing."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest

from pipeline.audio import Decoder
from pipeline.settings import Settings
from tests.audio_helpers import FORMATS, dominant_hz, encode, tones
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def decoder(tmp_path_factory: pytest.TempPathFactory) -> Decoder:
    return Decoder(make_settings(tmp_path_factory.mktemp("home")))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_recorder_format_decodes_to_16k_tracks_keeping_channel_order(decoder: Decoder, fmt: str) -> None:
    data = encode(tones(), 16000, fmt)
    state = decoder.decode(f"call{FORMATS[fmt][3]}", data)
    record = state.record
    assert record.status == "ok", record.errors
    assert record.mode == "stereo"
    assert record.diarization == "channels"
    assert [t.role for t in record.tracks] == ["agent", "customer"]
    assert state.tracks is not None and state.tracks.shape[0] == 2
    assert abs(state.tracks.shape[1] / 16000 - 2.0) < 0.1
    # Left stays left and right stays right through every codec.
    assert abs(dominant_hz(state.tracks[0], 16000) - 440) < 5
    assert abs(dominant_hz(state.tracks[1], 16000) - 1000) < 5
    assert record.audio.codec is not None and record.audio.duration_s == pytest.approx(2.0, abs=0.1)


def test_channel_role_map_from_settings_assigns_roles(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, audio={"channel_roles": {0: "customer", 1: "agent"}})
    state = Decoder(settings).decode("call.wav", encode(tones(), 16000, "wav_pcm16"))
    assert [t.role for t in state.record.tracks] == ["customer", "agent"]
    assert state.tracks is not None and abs(dominant_hz(state.tracks[1], 16000) - 1000) < 5


def test_channel_role_map_refuses_duplicate_roles(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="own role"):
        make_settings(tmp_path, audio={"channel_roles": {0: "agent", 1: "agent"}})


def test_mono_recording_is_one_mixed_track(decoder: Decoder) -> None:
    state = decoder.decode("mono.flac", encode(tones()[:1], 16000, "flac"))
    assert state.record.mode == "mono"
    assert len(state.record.tracks) == 1 and state.record.tracks[0].role == "mixed"


def test_stereo_file_with_identical_channels_is_treated_as_mono(decoder: Decoder) -> None:
    left = tones()[0]
    state = decoder.decode("dup.wav", encode(np.stack([left, left]), 16000, "wav_pcm16"))
    assert state.record.mode == "mono"
    assert "identical" in state.record.stages[-1].detail["note"]


def test_silent_stereo_is_an_empty_call_not_an_error(decoder: Decoder) -> None:
    state = decoder.decode("silent.wav", encode(np.zeros((2, 16000 * 3), np.float32), 16000, "wav_pcm16"))
    assert state.record.status == "empty"
    assert all(t.silent for t in state.record.tracks)
    assert state.record.errors == []


def test_one_silent_channel_is_marked_and_the_call_goes_on(decoder: Decoder) -> None:
    audio = tones()
    audio[1] = 0.0
    state = decoder.decode("half.wav", encode(audio, 16000, "wav_pcm16"))
    assert state.record.status == "ok"
    assert [t.silent for t in state.record.tracks] == [False, True]


def _wav_header_only() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"")
    return buffer.getvalue()


def _unknown_codec_wav() -> bytes:
    # A valid RIFF/WAVE header whose format tag (0x7A7A) names no codec FFmpeg knows.
    data = b"\x00\x01" * 8000
    fmt = (
        (0x7A7A).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
        + (16000).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    )  # fmt: skip
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt + b"data" + len(data).to_bytes(4, "little") + data
    return b"RIFF" + len(body).to_bytes(4, "little") + body


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("zero.wav", b"", "empty_file"),
        ("notes.txt", b"Call notes: customer asked about pricing.\n" * 20, "not_audio"),
        ("random.mp3", bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8)), "not_audio"),
        ("header_only.wav", _wav_header_only(), "corrupt_audio"),
        ("weird_codec.wav", _unknown_codec_wav(), None),
    ],
)
def test_bad_input_gives_a_failed_record_with_a_reason(
    decoder: Decoder, name: str, data: bytes, code: str | None
) -> None:
    record = decoder.decode(name, data).record
    assert record.status == "failed"
    assert len(record.errors) == 1
    error = record.errors[0]
    assert error.stage == "decode"
    if code is not None:
        assert error.code == code
    else:
        assert error.code in {"unsupported_codec", "corrupt_audio", "not_audio", "no_audio_stream"}
    assert "Traceback" not in error.message and len(error.message) > 10


def test_truncated_file_keeps_what_decoded_and_says_so(decoder: Decoder) -> None:
    data = encode(tones(seconds=4.0), 16000, "mp3")
    state = decoder.decode("cut.mp3", data[: len(data) // 2])
    record = state.record
    assert record.status == "ok"
    assert 1.0 < record.audio.duration_s < 3.5


def test_recording_over_the_duration_limit_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, audio={"max_duration_s": 1.0})
    record = Decoder(settings).decode("long.wav", encode(tones(seconds=3.0), 16000, "wav_pcm16")).record
    assert record.status == "failed"
    assert record.errors[0].code == "too_long"
    assert "limit" in record.errors[0].message


def test_missing_file_is_reported_not_raised(decoder: Decoder, tmp_path: Path) -> None:
    record = decoder.decode(str(tmp_path / "nope.wav")).record
    assert record.status == "failed" and record.errors[0].code == "unreadable_file"


def test_same_bytes_give_the_same_record_id(decoder: Decoder) -> None:
    data = encode(tones(), 16000, "wav_pcm16")
    first, second = decoder.decode("a.wav", data).record, decoder.decode("b.wav", data).record
    assert first.record_id == second.record_id and first.audio_sha256 == second.audio_sha256


def test_decoder_batch_interface_round_trips_rows(decoder: Decoder) -> None:
    from pipeline.stage import CallState

    data = encode(tones(), 16000, "wav_pcm16")
    out = decoder({"path": ["x.wav", "bad.wav"], "bytes": [data, b"junk"]})
    states = [CallState.from_row({k: v[i] for k, v in out.items()}) for i in range(2)]
    assert states[0].record.status == "ok" and states[0].tracks is not None
    assert states[0].tracks.shape == (2, 32000)
    assert states[1].record.status == "failed" and states[1].tracks is None


def test_settings_are_used_not_globals(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, audio={"sample_rate": 8000})  # type: ignore[arg-type]
    state = Decoder(settings).decode("call.wav", encode(tones(), 16000, "wav_pcm16"))
    assert state.tracks is not None and state.tracks.shape[1] == 16000


def test_command_line_overrides_replace_one_field_and_keep_the_rest_of_the_config_section(tmp_path: Path) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text("transcribe:\n  model: tiny.en\n  beam_size: 3\n", encoding="utf-8")
    settings = Settings.with_overrides({"transcribe": {"language": "en"}}, config)
    assert (settings.transcribe.model, settings.transcribe.beam_size, settings.transcribe.language) == (
        "tiny.en", 3, "en")
    assert Settings.with_overrides({}, config).transcribe.beam_size == 3
