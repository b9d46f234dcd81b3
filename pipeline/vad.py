"""Voice activity detection per track with Silero VAD (ONNX, CPU; ~0.5% of real time).

Speech regions drive everything downstream: only speech is enhanced and transcribed, and talk
time, silences and overtalk are measured from them, per channel, which gives exact speaker
attribution on dual-channel calls.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.records import SpeechRegion
from pipeline.settings import Settings
from pipeline.stage import CallState, Stage


class VoiceActivityDetector(Stage):
    name = "vad"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        from silero_vad import load_silero_vad

        # One thread: VAD is cheap and the other core is busy transcribing.
        torch.set_num_threads(1)
        self._model = load_silero_vad(onnx=True)

    def model_name(self) -> str:
        return "silero-vad"

    def model_version(self) -> str:
        from importlib.metadata import version

        return version("silero-vad")

    def regions(self, samples: np.ndarray) -> list[SpeechRegion]:
        from silero_vad import get_speech_timestamps

        opts = self.settings.vad
        rate = self.settings.audio.sample_rate
        if samples.size < rate // 10:
            return []
        stamps = get_speech_timestamps(
            torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)),
            self._model,
            threshold=opts.threshold,
            sampling_rate=rate,
            min_speech_duration_ms=opts.min_speech_ms,
            min_silence_duration_ms=opts.min_silence_ms,
            speech_pad_ms=opts.speech_pad_ms,
        )
        return [SpeechRegion(start=round(s["start"] / rate, 3), end=round(s["end"] / rate, 3)) for s in stamps]

    def process(self, state: CallState) -> CallState:
        assert state.tracks is not None
        for track, samples in zip(state.record.tracks, state.tracks, strict=True):
            track.speech_regions = [] if track.silent else self.regions(samples)
            track.speech_seconds = round(sum(r.end - r.start for r in track.speech_regions), 3)
        if state.record.status != "failed" and all(not t.speech_regions for t in state.record.tracks):
            state.record.status = "empty"
        return state
