"""What every stage shares: the per-call state, batch (de)serialisation and error capture.

A stage is a small class: ``__init__(settings)`` loads its models once; ``process(state)`` handles
one call; ``__call__(batch)`` handles a batch of rows as Ray Data passes them (a dict of columns).
So the same object works from plain Python, a Ray Data actor pool or a Serve deployment.

Rows carry the record as JSON and the audio as 16-bit PCM bytes, which Arrow stores as a plain
binary column (half the size of float32, and far below Whisper's own precision needs).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from pipeline.records import CallRecord, StageRun
from pipeline.settings import Settings

log = logging.getLogger(__name__)

RECORD_COLUMN = "record"
PCM_COLUMN = "pcm"
TRACKS_COLUMN = "n_tracks"


class StageError(Exception):
    """A failure to report on the record: ``code`` is stable, ``message`` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class CallState:
    """One call in flight: its record so far and, while audio stages run, its tracks."""

    record: CallRecord
    # (n_tracks, n_samples) float32 in [-1, 1] at settings.audio.sample_rate; None once not needed.
    tracks: np.ndarray | None = None
    scratch: dict[str, Any] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        if self.tracks is None or self.tracks.size == 0:
            pcm, n_tracks = b"", 0
        else:
            clipped = np.clip(self.tracks, -1.0, 1.0)
            pcm = (clipped * 32767.0).astype("<i2").tobytes()
            n_tracks = int(self.tracks.shape[0])
        return {RECORD_COLUMN: self.record.model_dump_json(), PCM_COLUMN: pcm, TRACKS_COLUMN: n_tracks}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CallState:
        record = CallRecord.model_validate_json(row[RECORD_COLUMN])
        pcm = row.get(PCM_COLUMN) or b""
        n_tracks = int(row.get(TRACKS_COLUMN) or 0)
        tracks = None
        if n_tracks and len(pcm):
            samples = np.frombuffer(bytes(pcm), dtype="<i2").astype(np.float32) / 32767.0
            tracks = samples.reshape(n_tracks, -1)
        return cls(record=record, tracks=tracks)


def batch_rows(batch: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Rows of a column batch (lists or numpy arrays, as Ray Data gives them)."""
    columns = list(batch)
    if not columns:
        return
    size = len(batch[columns[0]])
    for i in range(size):
        yield {name: _plain(batch[name][i]) for name in columns}


def rows_to_batch(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {}
    for row in rows:
        for name in row:
            columns.setdefault(name, [])
    for row in rows:
        for name, values in columns.items():
            values.append(row.get(name))
    return columns


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


class Stage:
    """Base for stages that transform a CallState.

    ``fatal``: a failure here fails the call (no transcript without audio); a non-fatal stage
    records its error and lets the call go on (e.g. enhancement falls back to the raw audio).
    ``needs_audio``: skipped when an earlier stage failed or the call has no audio.
    """

    name: ClassVar[str] = "stage"
    fatal: ClassVar[bool] = True
    needs_audio: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # Subclasses implement this.
    def process(self, state: CallState) -> CallState:
        raise NotImplementedError

    def model_name(self) -> str | None:
        return None

    def model_version(self) -> str | None:
        return None

    def should_run(self, state: CallState) -> bool:
        if state.record.status == "failed":
            return False
        return not (self.needs_audio and state.tracks is None)

    def run(self, state: CallState) -> CallState:
        """process() with timing, provenance and error capture: never raises for one bad call."""
        if not self.should_run(state):
            return state
        started = time.perf_counter()
        run = StageRun(stage=self.name, model=self.model_name(), version=self.model_version())
        try:
            state = self.process(state)
        except StageError as err:
            run.status = "failed"
            state.record.add_error(self.name, err.code, err.message)
            if self.fatal:
                state.record.status = "failed"
        except Exception as err:  # one bad call must not fail the batch
            log.exception("stage %s failed on %s", self.name, state.record.source)
            run.status = "failed"
            state.record.add_error(self.name, "internal_error", f"{type(err).__name__}: {err}"[:500])
            if self.fatal:
                state.record.status = "failed"
        run.seconds = round(time.perf_counter() - started, 4)
        run.detail.update(state.scratch.pop(f"{self.name}_detail", {}))
        state.record.stages = [s for s in state.record.stages if s.stage != self.name] + [run]
        return state

    def process_many(self, states: Sequence[CallState]) -> list[CallState]:
        """Batch entry point for plain Python; stages with real batching (GPU) override it."""
        return [self.run(s) for s in states]

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[Any]]:
        states = [CallState.from_row(row) for row in batch_rows(batch)]
        return rows_to_batch([s.to_row() for s in self.process_many(states)])


class StageChain:
    """Several stages run back to back inside one worker (one Ray Data actor, one Serve replica).

    ``drop_audio`` frees the PCM column once no later stage needs it, so it never crosses the
    network to the next pool.
    """

    def __init__(self, settings: Settings, stages: Sequence[type[Stage]], drop_audio: bool = False) -> None:
        self.stages = [stage(settings) for stage in stages]
        self.drop_audio = drop_audio
        self.node = _ray_node_ip()

    def run(self, state: CallState) -> CallState:
        """One call through every stage of the chain (plain Python)."""
        return self.process_many([state])[0]

    def process_many(self, states: Sequence[CallState]) -> list[CallState]:
        out = list(states)
        for stage in self.stages:
            out = stage.process_many(out)
            if self.node:
                # Which machine ran a stage: what a platform engineer asks first about a bad record.
                for state in out:
                    run = state.record.stage(stage.name)
                    if run is not None:
                        run.detail["node"] = self.node
        if self.drop_audio:
            for state in out:
                state.tracks = None
        return out

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[Any]]:
        states = [CallState.from_row(row) for row in batch_rows(batch)]
        return rows_to_batch([s.to_row() for s in self.process_many(states)])


def _ray_node_ip() -> str | None:
    ray = sys.modules.get("ray")  # not imported here: plain Python runs must not pay for importing Ray
    if ray is None:
        return None
    try:
        if ray.is_initialized():
            return str(ray.util.get_node_ip_address())
    except Exception:  # outside Ray, or Ray not importable: no node to name
        return None
    return None
