"""Transcription with faster-whisper, per track, on VAD speech regions only.

Speech regions are padded and merged (``feed_regions``) before Whisper sees them: Silero's tight
regions (100 ms pad, 300 ms gaps) cut word edges, and Whisper decodes better with a little context.
``feed: clips`` (default) groups them into windows of up to 30 s, decoded by faster-whisper's
``BatchedInferencePipeline`` when ``batched`` (many windows through the model at once, on CPU as on
GPU) or sequentially with temperature fallback; ``feed: concat`` glues the regions into one stream
(as faster-whisper's own ``vad_filter`` does) and maps timestamps back.

Language comes from the call's metadata when it names one (``transcribe.language_field``), else is
detected per track, among ``transcribe.languages`` when set (not at all when that lists one language),
on up to 30 s of that track's speech; a track with too little speech takes the language of the track
with the most, or the default. On CPU a call's tracks are transcribed at once (``parallel_tracks``),
each on its share of the threads: one Whisper model, several CTranslate2 workers.
Names from settings and from the call's metadata are passed as hotwords (a custom vocabulary) on the
first Whisper window of a track (``hint_scope``), and a guard drops what Whisper makes up on silence,
noise and hold music. ``seek: windows`` (not the default) decodes each window of up to 30 s of speech
once, without timestamp tokens, instead of Whisper's overlapping seeking.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from pipeline.models import resolve_whisper
from pipeline.records import CallMetadata, Segment, SpeechRegion, Track, Word
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
        self.workers, threads = track_workers(self.device, opts.cpu_threads, opts.parallel_tracks)
        self.model = WhisperModel(
            self.model_ref,
            device=self.device,
            compute_type=compute_type,
            cpu_threads=threads,
            num_workers=self.workers,
            download_root=str(settings.models_cache / "hub"),
        )
        self.compute_type = compute_type
        # Encoder outputs of the first window of a track's speech, computed for its language and reused by
        # its transcription (and by the hint-free second decoding), which starts with the same window.
        self._encoded: OrderedDict[bytes, Any] = OrderedDict()
        self._encoded_lock = threading.Lock()
        self._encode = self.model.encode
        self.model.encode = self._encode_once
        # Hotwords on the first window of a track only (`hint_scope`): get_prompt is called once per window.
        self._local = threading.local()
        self._get_prompt_inner = self.model.get_prompt
        self.model.get_prompt = self._get_prompt
        if opts.seek == "windows":
            # faster-whisper has no option for it: its module-level get_end is routed through _get_end (a
            # pass-through outside `_whole_windows`), and only in processes that asked for `seek: windows`.
            _install_get_end()
        self.batched = opts.batched is True or (opts.batched == "auto" and self.device == "cuda")
        self._batched_pipeline = BatchedInferencePipeline(self.model) if self.batched else None
        unknown = [code for code in opts.languages if code not in _whisper_languages()]
        if unknown:
            raise ValueError(f"transcribe.languages: not Whisper language codes: {unknown}")

    def model_name(self) -> str:
        return f"faster-whisper:{self.settings.transcribe.model}"

    def model_version(self) -> str:
        from importlib.metadata import version

        mode = "batched" if self.batched else "sequential"
        return f"{version('faster-whisper')}/{self.device}/{self.compute_type}/{mode}"

    # -- language ---------------------------------------------------------------------------------

    def detect_language(self, samples: np.ndarray, regions: Sequence[SpeechRegion]) -> tuple[str, float]:
        """The most likely language of this speech among `transcribe.languages` (any when empty).

        The probability is Whisper's, renormalised over the allowed languages.
        """
        opts = self.settings.transcribe
        if not self.model.model.is_multilingual:
            return "en", 1.0
        rate = self.settings.audio.sample_rate
        if opts.feed == "concat" and self._batched_pipeline is None:
            # The first 30 s of exactly what transcription will decode: its encoder output is kept for it.
            chunks, speech = self.fed_speech(samples, regions)
            if speech.size == 0:
                return self.default_language(), 0.0
            windows = self.seek_windows(chunks)
            all_probs = self._first_window_languages(speech, windows[0]["end"] if windows else None)
        else:
            speech = _concat_regions(samples, regions, rate, limit_s=_DETECT_MAX_S)
            if speech.size == 0:
                return self.default_language(), 0.0
            _, _, all_probs = self.model.detect_language(speech)
        allowed = [(code, p) for code, p in all_probs if not opts.languages or code in opts.languages]
        if not allowed:
            return self.default_language(), 0.0
        total = sum(p for _, p in allowed) or 1.0
        code, probability = max(allowed, key=lambda pair: pair[1])
        return str(code), float(probability) / total

    def _first_window_languages(self, speech: np.ndarray, end_s: float | None = None) -> list[tuple[str, float]]:
        """Whisper's language probabilities on the first window of `speech` (ending at end_s when the
        windows are set, `seek: windows`), that window cut and padded as faster-whisper's sequential
        decoding cuts it (so its encoder output is found again there)."""
        from faster_whisper.audio import pad_or_trim

        extractor = self.model.feature_extractor
        features = extractor(speech)
        frames = min(extractor.nb_max_frames, features.shape[-1] - 1)
        if end_s is not None:
            frames = min(frames, round(end_s * self.model.frames_per_second))
        window = pad_or_trim(features[:, :frames])
        encoded = self._encode(window)
        with self._encoded_lock:
            self._encoded[_window_key(window)] = encoded
            while len(self._encoded) > _ENCODED_KEPT:
                self._encoded.popitem(last=False)
        results = self.model.model.detect_language(encoded)[0]
        return [(token[2:-2], float(p)) for token, p in results]

    def _encode_once(self, features: np.ndarray) -> Any:
        """WhisperModel.encode, answering from the windows encoded for language detection."""
        if features.ndim == 2:
            with self._encoded_lock:
                hit = self._encoded.get(_window_key(features))
            if hit is not None:
                return hit
        return self._encode(features)

    def default_language(self) -> str:
        opts = self.settings.transcribe
        return opts.language or (opts.languages[0] if opts.languages else "en")

    def metadata_language(self, metadata: CallMetadata) -> str | None:
        """The language the call's metadata names (`transcribe.language_field`), if Whisper has it and
        `transcribe.languages` allows it; else None (then it is detected)."""
        opts = self.settings.transcribe
        value = metadata.extra.get(opts.language_field, "") if opts.language_field else ""
        if not value.strip():
            return None
        code = whisper_language(value)
        allowed = opts.languages or (None if self.model.model.is_multilingual else ["en"])
        if code is None or (allowed and code not in allowed):
            log.warning("metadata language %r ignored: not one of %s", value, opts.languages or "Whisper's languages")
            return None
        return code

    def track_languages(self, state: CallState) -> dict[int, tuple[str, float]]:
        """Language per speaking track: set, from the call's metadata, or detected where there is enough
        speech (borrowed otherwise)."""
        assert state.tracks is not None
        opts = self.settings.transcribe
        speaking = [t for t in state.record.tracks if t.speech_regions]
        given, _ = self.given_language(state.record.metadata)
        if given is not None:
            return {t.index: (given, 1.0) for t in speaking}
        enough = [t for t in speaking if t.speech_seconds >= opts.language_min_speech_s]
        tracks = state.tracks
        detected = self._each(lambda t: self.detect_language(tracks[t.index], t.speech_regions), enough)
        found = {t.index: pair for t, pair in zip(enough, detected, strict=True)}
        if found:
            # Both parties of a call speak one language: a channel Whisper is unsure about (an English
            # customer on a noisy line came out Welsh) or that said too little ("yes", "okay") takes the
            # language of the channel it is surest about.
            fallback = max(found.values(), key=lambda pair: pair[1])
            found = {i: pair if pair[1] >= opts.language_min_probability else fallback for i, pair in found.items()}
        elif opts.languages and len(opts.languages) == 1:
            fallback = (opts.languages[0], 1.0)
        else:  # nobody said much: detect on the most speech there is, within the allowed languages
            main = max(speaking, key=lambda t: t.speech_seconds)
            fallback = self.detect_language(state.tracks[main.index], main.speech_regions)
        return {t.index: found.get(t.index, fallback) for t in speaking}

    def given_language(self, metadata: CallMetadata) -> tuple[str | None, str]:
        """The language every track takes without detection, if any, and where it comes from: "settings"
        (`language`, or `languages` listing one: detection could only answer that), "metadata", else
        (None, "detected")."""
        opts = self.settings.transcribe
        if opts.language:
            return opts.language, "settings"
        from_metadata = self.metadata_language(metadata)
        if from_metadata is not None:
            return from_metadata, "metadata"
        if len(opts.languages) == 1:
            return opts.languages[0], "settings"
        return None, "detected"

    def language_source(self, metadata: CallMetadata) -> str:
        return self.given_language(metadata)[1]

    def _each(self, work: Callable[[Any], _T], items: Sequence[Any]) -> list[_T]:
        """work(item) for every item, on as many threads as the model has workers (in order)."""
        if self.workers < 2 or len(items) < 2:
            return [work(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(items)), thread_name_prefix="whisper") as pool:
            return list(pool.map(work, items))

    # -- hints ------------------------------------------------------------------------------------

    def hints(self, metadata: CallMetadata) -> list[str]:
        """Names Whisper should expect: settings' vocabulary plus this call's metadata fields."""
        opts = self.settings.transcribe
        names = [*opts.vocabulary, *(metadata.extra.get(field, "") for field in opts.hint_fields)]
        return list(dict.fromkeys(n.strip() for n in names if n and n.strip()))

    # -- transcription ----------------------------------------------------------------------------

    def transcribe_track(
        self,
        samples: np.ndarray,
        regions: Sequence[SpeechRegion],
        language: str,
        hints: Sequence[str] = (),
    ) -> list[Segment]:
        """The track's speech regions (padded and merged as `fed_regions` does) decoded at once."""
        if not regions:
            return []
        return self.decode_fed(samples, self.fed_regions(samples, regions), language, hints)

    def decode_fed(
        self, samples: np.ndarray, fed: Sequence[SpeechRegion], language: str, hints: Sequence[str] = ()
    ) -> list[Segment]:
        """Decode these already padded and merged regions of the track (timestamps in track time)."""
        if not fed:
            return []
        opts = self.settings.transcribe
        rate = self.settings.audio.sample_rate
        # A finished sentence: bare names as the prompt made Whisper skip them when the call opened
        # with them ("Brightline Home Services, Sarah speaking" came out as "Sarah speaking").
        hint_text = f"Glossary: {', '.join(hints)}." if hints else None
        common: dict[str, Any] = {
            "language": language,
            "beam_size": opts.beam_size,
            "word_timestamps": opts.word_timestamps,
            "initial_prompt": hint_text if opts.hint_mode == "prompt" and hint_text else opts.initial_prompt,
            "hotwords": hint_text if opts.hint_mode == "hotwords" else None,
            "temperature": list(opts.temperatures),
            "best_of": opts.best_of,
            "compression_ratio_threshold": opts.compression_ratio_threshold,
            "log_prob_threshold": opts.log_prob_threshold,
            "no_speech_threshold": opts.no_speech_threshold,
        }
        if opts.feed == "clips":
            clips = group_clips(fed, opts.window_s)
            if self._batched_pipeline is not None:
                segments, _ = self._batched_pipeline.transcribe(
                    samples, clip_timestamps=clips, batch_size=opts.batch_size, **common
                )
            else:
                stamps = [t for c in clips for t in (c["start"], c["end"])]
                segments, _ = self.model.transcribe(
                    samples,
                    vad_filter=False,
                    clip_timestamps=stamps,
                    condition_on_previous_text=opts.condition_on_previous_text,
                    **common,
                )
            return self.guarded(to_segments(segments))

        from faster_whisper.transcribe import restore_speech_timestamps

        chunks, speech = self.glued(samples, fed)
        if self._batched_pipeline is not None:
            # The glued speech cut at region boundaries into windows of up to 30 s, decoded together.
            lengths = [(c["end"] - c["start"]) / rate for c in chunks]
            windows = group_clips(_glued_regions(lengths), opts.window_s)
            segments, _ = self._batched_pipeline.transcribe(
                speech, clip_timestamps=windows, batch_size=opts.batch_size, without_timestamps=False, **common
            )
        else:
            windows = self.seek_windows(chunks)
            segments, _ = self.model.transcribe(
                speech,
                vad_filter=False,
                condition_on_previous_text=opts.condition_on_previous_text,
                clip_timestamps=[t for w in windows for t in (w["start"], w["end"])] if windows else "0",
                without_timestamps=bool(windows),
                **common,
            )
            if windows:
                with _whole_windows():
                    return self.guarded(to_segments(restore_speech_timestamps(segments, chunks, rate)))
        return self.guarded(to_segments(restore_speech_timestamps(segments, chunks, rate)))

    def seek_windows(self, chunks: Sequence[dict[str, int]]) -> list[dict[str, float]]:
        """`seek: windows`: the glued speech's windows (seconds of the glued stream), cut at region
        boundaries, of up to `window_s` each; [] for Whisper's own seeking."""
        opts = self.settings.transcribe
        if opts.seek != "windows" or not opts.word_timestamps:
            return []
        rate = self.settings.audio.sample_rate
        return group_clips(_glued_regions([(c["end"] - c["start"]) / rate for c in chunks]), opts.window_s)

    def fed_regions(self, samples: np.ndarray, regions: Sequence[SpeechRegion]) -> list[SpeechRegion]:
        """The VAD regions padded and merged as Whisper is fed them (`clip_pad_s`, `clip_merge_gap_s`)."""
        opts = self.settings.transcribe
        duration = samples.size / self.settings.audio.sample_rate
        return feed_regions(regions, opts.clip_pad_s, opts.clip_merge_gap_s, duration)

    def glued(self, samples: np.ndarray, fed: Sequence[SpeechRegion]) -> tuple[list[dict[str, int]], np.ndarray]:
        """The fed regions as sample ranges and their speech glued into one stream."""
        rate = self.settings.audio.sample_rate
        chunks = [{"start": int(r.start * rate), "end": int(r.end * rate)} for r in fed]
        if not chunks:
            return chunks, np.zeros(0, dtype=np.float32)
        return chunks, np.concatenate([samples[c["start"] : c["end"]] for c in chunks]).astype(np.float32)

    def fed_speech(
        self, samples: np.ndarray, regions: Sequence[SpeechRegion]
    ) -> tuple[list[dict[str, int]], np.ndarray]:
        """The padded, merged regions (as sample ranges) and their speech glued into one stream."""
        return self.glued(samples, self.fed_regions(samples, regions))

    def transcribe_hinted(
        self,
        samples: np.ndarray,
        regions: Sequence[SpeechRegion],
        language: str,
        hints: Sequence[str],
        notes: list[str] | None = None,
    ) -> list[Segment]:
        """Transcribe with the hints; if Whisper then left speech without words, also without them.

        With `hint_scope: opening` (sequential `feed: concat`) the hints reach Whisper's first window only
        (the first 30 s of the track's speech, where the greeting names the company and the agent); the
        later windows are decoded as without hints. A prompt holding the names made Whisper skip a greeting that said
        exactly those names ("Thank you for calling Brightline Home Services, this is Sarah") or stop
        before the last sentence; so when the hinted windows leave 1.5 s or more of speech without words,
        those regions are decoded again without hints and the version that leaves less speech uncovered
        by words is kept (the whole track with `hint_scope: track`, the opening's regions otherwise).
        """
        if not regions:
            return []
        fed = self.fed_regions(samples, regions)
        opts = self.settings.transcribe
        # One window at a time, in the order of the glued speech: sequential decoding of `feed: concat`.
        sequential = opts.feed == "concat" and self._batched_pipeline is None
        opening = bool(hints) and opts.hint_scope == "opening" and sequential
        with self._hint_windows(1 if opening else None):
            hinted = self.decode_fed(samples, fed, language, hints)
        if not hints:
            return hinted
        head = opening_regions(fed, _CLIP_MAX_S) if opening else fed
        missed = uncovered_s(head, hinted)
        if missed < _UNCOVERED_MAX_S:
            return hinted
        plain = self.decode_fed(samples, head, language, ())
        kept = missed <= uncovered_s(head, plain)
        if notes is not None:  # how often the second decoding runs, and which version it keeps
            notes.append("hinted_kept" if kept else "plain_kept")
        if kept:
            return hinted
        if head is fed:
            return plain
        return plain + segments_from(hinted, head[-1].end)

    @contextlib.contextmanager
    def _hint_windows(self, windows: int | None) -> Iterator[None]:
        """Within this block (this thread), hotwords reach only the first `windows` windows of a decoding
        (None: every window)."""
        self._local.hint_windows = windows
        try:
            yield
        finally:
            self._local.hint_windows = None

    def _get_prompt(self, *args: Any, **kwargs: Any) -> Any:
        """WhisperModel.get_prompt (called once per window), without hotwords past the hinted windows."""
        left = getattr(self._local, "hint_windows", None)
        if left is not None and kwargs.get("hotwords"):
            if left <= 0:
                kwargs["hotwords"] = None
            self._local.hint_windows = left - 1
        return self._get_prompt_inner(*args, **kwargs)

    def guarded(self, segments: list[Segment]) -> list[Segment]:
        """Drop text Whisper made up rather than heard (see `is_hallucination`)."""
        if not self.settings.transcribe.guard:
            return segments
        return [s for s in segments if not is_hallucination(s, self.settings.transcribe.no_speech_threshold)]

    def process(self, state: CallState) -> CallState:
        assert state.tracks is not None
        record = state.record
        speaking = [t for t in record.tracks if t.speech_regions]
        if not speaking:
            return state
        languages = self.track_languages(state)
        main = max(speaking, key=lambda t: t.speech_seconds)
        record.language, probability = languages[main.index]
        record.language_probability = round(probability, 4)
        hints = self.hints(record.metadata) if self.settings.transcribe.hint_mode != "off" else []
        tracks = state.tracks
        notes: list[str] = []

        def transcribe(track: Track) -> list[Segment]:
            try:
                return self.transcribe_hinted(
                    tracks[track.index], track.speech_regions, languages[track.index][0],
                    hints if track.role != "customer" else [], notes,
                )  # fmt: skip
            except RuntimeError as err:  # CTranslate2 raises RuntimeError for OOM and bad input
                raise StageError("transcription_failed", f"transcribing the {track.role} track failed: {err}") from err

        for track, segments in zip(speaking, self._each(transcribe, speaking), strict=True):
            language, probability = languages[track.index]
            track.segments = segments
            track.language, track.language_probability = language, round(probability, 4)
        state.scratch[f"{self.name}_detail"] = {
            "language": record.language,
            "language_from": self.language_source(record.metadata),
            "track_languages": {t.role: languages[t.index][0] for t in speaking},
            "hints": len(hints),
            "hint_redecodes": notes,
            "speech_seconds": round(sum(t.speech_seconds for t in speaking), 2),
        }
        return state


_UNCOVERED_MAX_S = 1.5
_seeking = threading.local()


@contextlib.contextmanager
def _whole_windows() -> Iterator[None]:
    """Within this block (this thread), faster-whisper's sequential decoding moves on to the end of each
    window instead of back to the last word's end (which, for a window decoded without timestamp tokens,
    only re-encodes its trailing silence as one more window: `seek: windows`).

    faster-whisper asks `get_end` twice per window when words are timed: first for where to seek to (here
    answered None: stay at the window's end), then for the last speech time (answered truly).
    """
    _seeking.calls = 0
    try:
        yield
    finally:
        _seeking.calls = None


def _install_get_end() -> None:
    """Route faster-whisper's `get_end` through `_get_end` (once per process; unchanged outside
    `_whole_windows`)."""
    import faster_whisper.transcribe as fwt

    global _real_get_end
    if fwt.get_end is not _get_end:
        _real_get_end = fwt.get_end
        fwt.get_end = _get_end


_real_get_end: Callable[[list[dict[str, Any]]], float | None]


def _get_end(segments: list[dict[str, Any]]) -> float | None:
    calls = getattr(_seeking, "calls", None)
    if calls is not None:
        _seeking.calls = calls + 1
        if calls % 2 == 0:
            return None
    return _real_get_end(segments)


_ENCODED_KEPT = 8  # windows: a call's tracks, a few calls at once at most


def _window_key(features: np.ndarray) -> bytes:
    data = np.ascontiguousarray(features)
    return hashlib.blake2b(data.tobytes(), digest_size=16).digest() + str(data.shape).encode()


_T = TypeVar("_T")


def track_workers(device: str, cpu_threads: int, parallel_tracks: int | str) -> tuple[int, int]:
    """(CTranslate2 workers, threads per worker) for a call's tracks on this device.

    On CPU the threads (cpu_threads, or the cores this process may use when 0) are shared among the
    tracks transcribed at once; "auto" transcribes 2 at once when there are at least 2 threads. One
    worker keeps cpu_threads as given (0 = CTranslate2 decides). On GPU one worker: the batched
    pipeline keeps the device busy.
    """
    if device != "cpu":
        return 1, cpu_threads
    total = cpu_threads or _usable_cores()
    workers = (2 if total >= 2 else 1) if parallel_tracks == "auto" else int(parallel_tracks)
    if workers == 1:
        return 1, cpu_threads
    return workers, max(1, total // workers)


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def whisper_language(value: str) -> str | None:
    """A Whisper language code from a code or a locale tag ("en", "EN", "en-US", "tr_TR"), else None."""
    code = re.split(r"[-_]", value.strip().lower(), maxsplit=1)[0]
    return code if code in _whisper_languages() else None


def uncovered_s(regions: Sequence[SpeechRegion], segments: Sequence[Segment]) -> float:
    """Seconds of speech in stretches of 1.5 s or more that no transcribed word covers."""
    words = sorted((w.start, w.end) for s in segments for w in s.words)
    total = 0.0
    for region in regions:
        cursor = region.start
        for start, end in words:
            if end <= region.start or start >= region.end:
                continue
            if start - cursor >= _UNCOVERED_MAX_S:
                total += start - cursor
            cursor = max(cursor, end)
        if region.end - cursor >= _UNCOVERED_MAX_S:
            total += region.end - cursor
    return total


def opening_regions(fed: Sequence[SpeechRegion], window_s: float = _CLIP_MAX_S) -> list[SpeechRegion]:
    """The regions Whisper's first window reaches once the regions are glued end to end: those that start
    within the first window_s seconds of speech (at least the first)."""
    out: list[SpeechRegion] = []
    cursor = 0.0
    for region in fed:
        if out and cursor >= window_s:
            break
        out.append(region)
        cursor += region.end - region.start
    return out


def segments_from(segments: Sequence[Segment], start: float) -> list[Segment]:
    """The segments' words from `start` on (a segment that straddles it keeps its later words)."""
    out: list[Segment] = []
    for seg in segments:
        if seg.start >= start:
            out.append(seg)
        elif seg.end > start and seg.words:
            later = [w for w in seg.words if w.start >= start]
            if later:
                base = {"avg_logprob": seg.avg_logprob, "no_speech_prob": seg.no_speech_prob}
                # The segment's own text from its first kept word on keeps the words' spacing.
                cut = seg.text.find(later[0].text, sum(len(w.text) for w in seg.words[: len(seg.words) - len(later)]))
                text = seg.text[cut:] if cut >= 0 else " ".join(w.text for w in later)
                out.append(Segment(start=later[0].start, end=later[-1].end, text=text, words=later, **base))
    return out


def _glued_regions(lengths: Sequence[float]) -> list[SpeechRegion]:
    """Where each region lies once the regions are glued end to end."""
    out, cursor = [], 0.0
    for length in lengths:
        out.append(SpeechRegion(start=cursor, end=cursor + length))
        cursor += length
    return out


def feed_regions(
    regions: Sequence[SpeechRegion], pad_s: float, merge_gap_s: float, duration_s: float
) -> list[SpeechRegion]:
    """Pad each region (within the track) and merge those whose gap is under merge_gap_s."""
    out: list[SpeechRegion] = []
    for region in regions:
        start, end = max(0.0, region.start - pad_s), min(duration_s, region.end + pad_s)
        if out and start - out[-1].end < merge_gap_s:
            out[-1] = SpeechRegion(start=out[-1].start, end=max(out[-1].end, end))
        else:
            out.append(SpeechRegion(start=round(start, 3), end=round(end, 3)))
    return out


# What Whisper writes on silence and music: subtitle credits from its training data, never said on a call...
_CREDITS = (
    "thank you for watching", "thanks for watching", "subtitles by", "subscribe", "amara.org", "transcribed by",
    "captions by", "izlediğiniz için teşekkür", "altyazı", "abone ol",
)  # fmt: skip
# ...a lone web address (a credit such as "www.beadaholique.com", tiny.en's output on the Debian hold music
# when its temperature fallback samples), which a caller may say, so only dropped with the same doubt...
_WEB_ADDRESS_ONLY = re.compile(
    r"^(?:https?://)?(?:www\s*\.\s*)?[\w-]+(?:\s*\.\s*[\w-]+)*\s*\.\s*(?:com|org|net|co|uk|tr|io|tv|info)\b[\w./ -]*$"
)
# ...and short sign-offs, which callers do say: only dropped when Whisper also doubted there was speech.
# Speech runs at 2 to 5 words a second; a doubted segment of 4+ words at over 8 a second was not heard.
_RUSHED_MIN_WORDS, _RUSHED_WORDS_PER_S = 4, 8.0
_SIGN_OFFS = {"thank you", "thank you very much", "thanks", "bye", "you", "so", "okay", "teşekkürler"}


def is_hallucination(segment: Segment, no_speech_threshold: float | None = 0.6) -> bool:
    """Text Whisper made up rather than heard.

    Symbols without a letter (what it writes for music); Whisper's own silence rule (non-speech and
    unsure of the text; applied here to every path, the batched one included); subtitle credits or a lone
    web address heard with any doubt; doubted text with more words than its time allows; a lone sign-off
    ("Thank you.") on audio Whisper half thought was not speech (what tiny.en wrote on the Debian hold
    music); or a segment that only repeats itself.
    """
    text = segment.text.strip().lower()
    if not any(c.isalnum() for c in text):
        return True
    unsure = segment.avg_logprob < -1.0
    if no_speech_threshold is not None and segment.no_speech_prob > no_speech_threshold and unsure:
        return True
    words = [w.probability for w in segment.words]
    mean_word = sum(words) / len(words) if words else float(np.exp(segment.avg_logprob))
    doubted = segment.no_speech_prob > 0.2 or mean_word < 0.7
    if doubted and (any(p in text for p in _CREDITS) or _WEB_ADDRESS_ONLY.match(text.rstrip("."))):
        return True
    # More words than the time allows: Whisper's word timings squeeze text it makes up at the end of a
    # stream into a fraction of a second (20 words in 0.6 s after the last greeting of a call).
    rate = len(words) / max(segment.end - segment.start, 0.1)
    if doubted and unsure and len(words) >= _RUSHED_MIN_WORDS and rate > _RUSHED_WORDS_PER_S:
        return True
    bare = re.sub(r"[^\w\s]", "", text).strip()
    if bare in _SIGN_OFFS and segment.no_speech_prob > 0.3 and unsure:
        return True
    encoded = text.encode("utf-8")
    return len(encoded) > 60 and len(encoded) / max(1, len(zlib.compress(encoded))) > 2.4


@functools.cache
def _whisper_languages() -> frozenset[str]:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return frozenset(_LANGUAGE_CODES)


def _concat_regions(samples: np.ndarray, regions: Iterable[SpeechRegion], rate: int, limit_s: float) -> np.ndarray:
    pieces, total = [], 0
    for region in regions:
        piece = samples[int(region.start * rate) : int(region.end * rate)]
        pieces.append(piece)
        total += piece.size
        if total >= limit_s * rate:
            break
    return np.concatenate(pieces)[: int(limit_s * rate)] if pieces else np.zeros(0, dtype=np.float32)


def to_segments(raw: Iterable[Any], split_gap_s: float = _SPLIT_GAP_S) -> list[Segment]:
    """Our segments from faster-whisper's (with their words), split where the words leave a gap of split_gap_s."""
    segments: list[Segment] = []
    for seg in raw:
        text = seg.text.strip()
        if not text:
            continue
        spoken = [w for w in (seg.words or []) if w.word.strip()]
        words = [
            Word(start=round(w.start, 3), end=round(w.end, 3), text=w.word.strip(), probability=round(w.probability, 4))
            for w in spoken
        ]
        base = {"avg_logprob": round(seg.avg_logprob, 4), "no_speech_prob": round(seg.no_speech_prob, 4)}
        if not words:
            segments.append(Segment(start=round(seg.start, 3), end=round(seg.end, 3), text=text, **base))
            continue
        # A word Whisper wrote without a leading space belongs to the one before it ("forty" "-nine",
        # "o" "'clock", "Yahoo" ".com", "İstanbul" "'a"): the text keeps it attached, as Whisper's own
        # segment text does, so numbers, times and addresses read as they were said.
        attached = [k > 0 and not w.word.startswith(" ") for k, w in enumerate(spoken)]
        # Whisper decodes concatenated speech, so one segment can span two turns with the other
        # party talking in between: split it where the restored word times leave a real gap.
        first = 0
        for k in range(1, len(words)):
            if words[k].start - words[k - 1].end >= split_gap_s:
                segments.append(_segment_of(words[first:k], base, attached[first:k]))
                first = k
        segments.append(_segment_of(words[first:], base, attached[first:]))
    return segments


def _segment_of(words: list[Word], base: dict[str, float], attached: Sequence[bool]) -> Segment:
    """A segment of these words; attached[k] joins word k to the one before it without a space."""
    text = "".join(w.text if k == 0 or attached[k] else " " + w.text for k, w in enumerate(words))
    return Segment(start=words[0].start, end=words[-1].end, text=text, words=words, **base)
