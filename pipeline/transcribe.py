"""Transcription with faster-whisper, per track, on VAD speech regions only.

CPU path: the speech regions of a track are concatenated (as faster-whisper's own ``vad_filter``
does, but with our Silero regions, so silence is never decoded) and timestamps mapped back.
GPU path: ``BatchedInferencePipeline`` over clips of up to 30 s built from the same regions, so
many clips run through the encoder at once.
Language is detected once per call on the track with the most speech and used for every track:
short customer replies ("yes", "okay") are too short to detect reliably on their own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from pipeline.models import resolve_whisper
from pipeline.records import Segment, SpeechRegion, Word
from pipeline.settings import Settings
from pipeline.stage import CallState, Stage, StageError

log = logging.getLogger(__name__)

_CLIP_MAX_S = 30.0
_DETECT_MAX_S = 30.0
_SPLIT_GAP_S = 0.5


def cuda_available() -> bool:
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    except Exception:  # a broken CUDA install must not stop CPU work
        return False


def group_clips(regions: Sequence[SpeechRegion], max_s: float = _CLIP_MAX_S) -> list[dict[str, float]]:
    """Join neighbouring regions into clips no longer than max_s (Whisper's window)."""
    clips: list[dict[str, float]] = []
    for region in regions:
        start, end = region.start, region.end
        while end - start > max_s:  # a monologue longer than the window is cut, not truncated
            clips.append({"start": start, "end": start + max_s})
            start += max_s
        if clips and end - clips[-1]["start"] <= max_s and start >= clips[-1]["end"]:
            clips[-1]["end"] = end
        else:
            clips.append({"start": start, "end": end})
    return clips


class Transcriber(Stage):
    name = "transcribe"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        opts = settings.transcribe
        self.device = ("cuda" if cuda_available() else "cpu") if opts.device == "auto" else opts.device
        compute_type = opts.compute_type
        if compute_type == "auto":
            compute_type = "float16" if self.device == "cuda" else "int8"
        self.model_ref = resolve_whisper(opts.model, settings.models_cache)
        self.model = WhisperModel(
            self.model_ref,
            device=self.device,
            compute_type=compute_type,
            cpu_threads=opts.cpu_threads,
            download_root=str(settings.models_cache / "hub"),
        )
        self.compute_type = compute_type
        self.batched = opts.batched is True or (opts.batched == "auto" and self.device == "cuda")
        self._batched_pipeline = BatchedInferencePipeline(self.model) if self.batched else None

    def model_name(self) -> str:
        return f"faster-whisper:{self.settings.transcribe.model}"

    def model_version(self) -> str:
        from importlib.metadata import version

        mode = "batched" if self.batched else "sequential"
        return f"{version('faster-whisper')}/{self.device}/{self.compute_type}/{mode}"

    # -- language ---------------------------------------------------------------------------------

    def detect_language(self, samples: np.ndarray, regions: Sequence[SpeechRegion]) -> tuple[str, float]:
        if not self.model.model.is_multilingual:
            return "en", 1.0
        rate = self.settings.audio.sample_rate
        speech = _concat_regions(samples, regions, rate, limit_s=_DETECT_MAX_S)
        if speech.size == 0:
            return "en", 0.0
        language, probability, _ = self.model.detect_language(speech)
        return str(language), float(probability)

    # -- transcription ----------------------------------------------------------------------------

    def transcribe_track(self, samples: np.ndarray, regions: Sequence[SpeechRegion], language: str) -> list[Segment]:
        if not regions:
            return []
        opts = self.settings.transcribe
        rate = self.settings.audio.sample_rate
        common: dict[str, Any] = {
            "language": language,
            "beam_size": opts.beam_size,
            "word_timestamps": opts.word_timestamps,
            "initial_prompt": opts.initial_prompt,
        }
        if self._batched_pipeline is not None:
            segments, _ = self._batched_pipeline.transcribe(
                samples,
                clip_timestamps=group_clips(regions),
                batch_size=opts.batch_size,
                **common,
            )
            return _to_segments(segments)

        from faster_whisper.transcribe import restore_speech_timestamps

        chunks = [{"start": int(r.start * rate), "end": int(r.end * rate)} for r in regions]
        speech = np.concatenate([samples[c["start"] : c["end"]] for c in chunks]).astype(np.float32)
        segments, _ = self.model.transcribe(
            speech,
            vad_filter=False,
            condition_on_previous_text=opts.condition_on_previous_text,
            **common,
        )
        return _to_segments(restore_speech_timestamps(segments, chunks, rate))

    def process(self, state: CallState) -> CallState:
        assert state.tracks is not None
        record = state.record
        speaking = [t for t in record.tracks if t.speech_regions]
        if not speaking:
            return state
        language = self.settings.transcribe.language
        probability = 1.0
        if language is None:
            main = max(speaking, key=lambda t: t.speech_seconds)
            language, probability = self.detect_language(state.tracks[main.index], main.speech_regions)
        record.language, record.language_probability = language, round(probability, 4)
        for track in speaking:
            try:
                track.segments = self.transcribe_track(state.tracks[track.index], track.speech_regions, language)
            except RuntimeError as err:  # CTranslate2 raises RuntimeError for OOM and bad input
                raise StageError("transcription_failed", f"transcribing the {track.role} track failed: {err}") from err
            track.language, track.language_probability = language, record.language_probability
        state.scratch[f"{self.name}_detail"] = {
            "language": language,
            "speech_seconds": round(sum(t.speech_seconds for t in speaking), 2),
        }
        return state


def _concat_regions(samples: np.ndarray, regions: Iterable[SpeechRegion], rate: int, limit_s: float) -> np.ndarray:
    pieces, total = [], 0
    for region in regions:
        piece = samples[int(region.start * rate) : int(region.end * rate)]
        pieces.append(piece)
        total += piece.size
        if total >= limit_s * rate:
            break
    return np.concatenate(pieces)[: int(limit_s * rate)] if pieces else np.zeros(0, dtype=np.float32)


def _to_segments(raw: Iterable[Any], split_gap_s: float = _SPLIT_GAP_S) -> list[Segment]:
    segments: list[Segment] = []
    for seg in raw:
        text = seg.text.strip()
        if not text:
            continue
        words = [
            Word(
                start=round(w.start, 3),
                end=round(w.end, 3),
                text=w.word.strip(),
                probability=round(w.probability, 4),
            )
            for w in (seg.words or [])
            if w.word.strip()
        ]
        base = {"avg_logprob": round(seg.avg_logprob, 4), "no_speech_prob": round(seg.no_speech_prob, 4)}
        if not words:
            segments.append(Segment(start=round(seg.start, 3), end=round(seg.end, 3), text=text, **base))
            continue
        # Whisper decodes concatenated speech, so one segment can span two turns with the other
        # party talking in between: split it where the restored word times leave a real gap.
        group = [words[0]]
        for word in words[1:]:
            if word.start - group[-1].end >= split_gap_s:
                segments.append(_segment_of(group, base))
                group = []
            group.append(word)
        segments.append(_segment_of(group, base))
    return segments


def _segment_of(words: list[Word], base: dict[str, float]) -> Segment:
    return Segment(start=words[0].start, end=words[-1].end, text=" ".join(w.text for w in words), words=words, **base)
