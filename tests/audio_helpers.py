"""Real audio for tests: encode arrays with PyAV's real encoders, cut speech from the sample calls."""

from __future__ import annotations

import io
import json
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
from av.audio.stream import AudioStream

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

# (container, codec, sample format, file suffix)
FORMATS: dict[str, tuple[str, str, str, str]] = {
    "wav_pcm16": ("wav", "pcm_s16le", "s16", ".wav"),
    "wav_mulaw_8k": ("wav", "pcm_mulaw", "s16", ".wav"),
    "wav_alaw_8k": ("wav", "pcm_alaw", "s16", ".wav"),
    "mp3": ("mp3", "libmp3lame", "fltp", ".mp3"),
    "m4a_aac": ("ipod", "aac", "fltp", ".m4a"),
    "ogg_opus": ("ogg", "libopus", "s16", ".ogg"),
    "flac": ("flac", "flac", "s16", ".flac"),
}


def encode(samples: np.ndarray, rate: int, fmt: str) -> bytes:
    """Encode (channels, n) float32 audio into a real file of the given format."""
    container_name, codec, sample_fmt, _ = FORMATS[fmt]
    if fmt.endswith("_8k"):
        rate_out = 8000
    elif codec == "libopus":
        rate_out = 48000
    else:
        rate_out = rate
    channels = samples.shape[0]
    layout = "stereo" if channels == 2 else "mono"
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_name) as container:
        # add_stream is typed for every stream kind; an audio codec gives an AudioStream.
        stream = cast(AudioStream, container.add_stream(codec, rate=rate_out, layout=layout))
        stream.format = sample_fmt
        resampler = av.AudioResampler(format=sample_fmt, layout=layout, rate=rate_out)
        frame_size = 960 if codec == "libopus" else 1024
        frames = []
        for start in range(0, samples.shape[1], frame_size):
            chunk = np.ascontiguousarray(samples[:, start : start + frame_size].astype(np.float32))
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            frames.extend(resampler.resample(frame))
        frames.extend(resampler.resample(None))
        for frame in frames:
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def tones(rate: int = 16000, seconds: float = 2.0, left_hz: float = 440.0, right_hz: float = 1000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.stack([0.5 * np.sin(2 * np.pi * left_hz * t), 0.5 * np.sin(2 * np.pi * right_hz * t)]).astype(np.float32)


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


def load_sample(name: str, rate: int = 16000) -> np.ndarray:
    """A shipped sample call as (channels, n) float32 at rate."""
    from pipeline.audio import decode_audio

    audio, _, _ = decode_audio((SAMPLES / name).read_bytes(), rate, 3600)
    return audio


def sample_reference(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{Path(name).stem}.ref.json").read_text())
