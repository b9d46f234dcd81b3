"""The whole pipeline for plain Python: load every stage once, run calls through them in order.

The batch job and the Serve app use the same stage classes, wired through Ray instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from pipeline.audio import Decoder
from pipeline.conversation import ConversationBuilder
from pipeline.diarize import Diarizer
from pipeline.enhance import Enhancer
from pipeline.records import CallMetadata, CallRecord
from pipeline.settings import Settings
from pipeline.stage import CallState, Stage
from pipeline.transcribe import Transcriber
from pipeline.vad import VoiceActivityDetector

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = {
    ".wav",
    ".mp3",
    ".m4a",
    ".aac",
    ".ogg",
    ".opus",
    ".oga",
    ".flac",
    ".wma",
    ".amr",
    ".webm",
    ".mp4",
    ".gsm",
}


def audio_stages(settings: Settings) -> list[Stage]:
    """Stages that need the audio, in order (decode excluded: it makes the state)."""
    return [Diarizer(settings), VoiceActivityDetector(settings), Enhancer(settings), Transcriber(settings)]


def make_analyser(settings: Settings) -> Stage | None:
    if not settings.analysis.enabled:
        return None
    from pipeline.analysis.analyser import Analyser

    return Analyser(settings)


class CallPipeline:
    def __init__(self, settings: Settings, analyse: bool = True) -> None:
        self.settings = settings
        self.decoder = Decoder(settings)
        self.audio_stages = audio_stages(settings)
        self.conversation = ConversationBuilder(settings)
        self.analyser = make_analyser(settings) if analyse else None

    def run_state(self, state: CallState) -> CallRecord:
        for stage in self.audio_stages:
            state = stage.run(state)
        state.tracks = None  # audio is not needed past transcription; free it early
        state = self.conversation.run(state)
        if self.analyser is not None:
            state = self.analyser.run(state)
        return state.record

    def process_file(self, path: str | Path, metadata: CallMetadata | None = None) -> CallRecord:
        return self.run_state(self.decoder.decode(str(path), metadata=metadata))

    def process_bytes(self, name: str, data: bytes, metadata: CallMetadata | None = None) -> CallRecord:
        return self.run_state(self.decoder.decode(name, data, metadata))

    def process_files(
        self, paths: Iterable[str | Path], on_done: Callable[[int, CallRecord], None] | None = None
    ) -> Iterator[CallRecord]:
        for i, path in enumerate(paths):
            record = self.process_file(path)
            if on_done:
                on_done(i, record)
            yield record


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files named directly are kept whatever their suffix (they get a clear error if not audio);
    folders contribute their audio files, sorted."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES))
        else:
            files.append(path)
    return files
