"""The whole pipeline for plain Python: load every stage group once, run calls through them in order.

The batch job and the Serve app run the same groups (``pipeline.stage_groups``), wired through Ray.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from pipeline.audio import Decoder
from pipeline.formats import AUDIO_SUFFIXES
from pipeline.records import CallMetadata, CallRecord
from pipeline.settings import Settings
from pipeline.stage import CallState, Stage, StageChain
from pipeline.stage_groups import stage_groups

log = logging.getLogger(__name__)



class CallPipeline:
    """Decode, then every stage group of ``pipeline.stage_groups`` in order, in this process."""

    def __init__(self, settings: Settings, analyse: bool = True) -> None:
        self.settings = settings
        self.decoder = Decoder(settings)
        self.groups = stage_groups(settings, analyse=analyse)
        self.chains: list[StageChain] = [group.chain(settings) for group in self.groups]

    def stage(self, name: str) -> Stage:
        """The loaded stage of that name (e.g. ``"transcribe"``), to share its model or inspect it."""
        for chain in self.chains:
            for stage in chain.stages:
                if stage.name == name:
                    return stage
        raise KeyError(f"no stage {name!r} in this pipeline")

    def replace_stage(self, name: str, stage: Stage) -> None:
        """Use an already loaded stage in place of this pipeline's own (benchmarks share one Whisper)."""
        for chain in self.chains:
            chain.stages = [stage if s.name == name else s for s in chain.stages]

    def run_state(self, state: CallState) -> CallRecord:
        for chain in self.chains:
            state = chain.run(state)
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
