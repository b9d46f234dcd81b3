"""Voice activity detection per track with Silero VAD v6.

The model is the Silero v6 ONNX file bundled with faster-whisper, run by its numpy/onnxruntime
wrapper: the same model as the ``silero-vad`` package, 3x faster on our samples (0.27 s vs 0.86 s
for 2 x 81 s of audio, regions within 30 ms of each other) and without torch in the hot path.

Speech regions drive everything downstream: only speech is enhanced and transcribed, and talk
time, silences and overtalk are measured from them, per channel, which gives exact speaker
attribution on dual-channel calls.
"""

from __future__ import annotations

import numpy as np

from pipeline.records import SpeechRegion
from pipeline.settings import Settings
from pipeline.stage import CallState, Stage


class VoiceActivityDetector(Stage):
    name = "vad"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        from faster_whisper.vad import VadOptions, get_vad_model

        opts = settings.vad
        self._options = VadOptions(
            threshold=opts.threshold,
            min_speech_duration_ms=opts.min_speech_ms,
            min_silence_duration_ms=opts.min_silence_ms,
            speech_pad_ms=opts.speech_pad_ms,
        )
        get_vad_model()  # load once, now, rather than on the first call

    def model_name(self) -> str:
        return "silero-vad-v6"

    def model_version(self) -> str:
        from importlib.metadata import version

        return f"onnx/faster-whisper-{version('faster-whisper')}"

    def regions(self, samples: np.ndarray) -> list[SpeechRegion]:
        from faster_whisper.vad import get_speech_timestamps

        rate = self.settings.audio.sample_rate
        if samples.size < rate // 10:
            return []
        # faster-whisper's VAD works at 16 kHz; Settings keeps audio at that rate by default.
        stamps = get_speech_timestamps(np.ascontiguousarray(samples, dtype=np.float32), self._options, rate)
        return [SpeechRegion(start=round(s["start"] / rate, 3), end=round(s["end"] / rate, 3)) for s in stamps]

    def process(self, state: CallState) -> CallState:
        assert state.tracks is not None
        for track, samples in zip(state.record.tracks, state.tracks, strict=True):
            track.speech_regions = [] if track.silent else self.regions(samples)
            track.speech_seconds = round(sum(r.end - r.start for r in track.speech_regions), 3)
        if state.record.status != "failed" and all(not t.speech_regions for t in state.record.tracks):
            state.record.status = "empty"
        return state
