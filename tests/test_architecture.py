"""The shape of the code as checked contracts: layers import downward, the stage order lives in one place.

The layer contracts are import-linter's (``[tool.importlinter]`` in pyproject.toml): ``pipeline``
imports neither ``batch`` nor ``serve_app``; the two ways in do not import each other; inside
``pipeline`` the save path sits above the analysis, which sits above the store; and no package or
module of ``pipeline`` is in an import cycle with a sibling (``if TYPE_CHECKING`` imports included).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import grimp
import pytest

from pipeline.settings import Settings
from pipeline.stage import CallState, Stage
from tests.conftest import REPO, SAMPLES

# The stage modules: only pipeline.stage_groups (and the stages' own package) may name them.
STAGE_MODULES = {
    "pipeline.diarize",
    "pipeline.vad",
    "pipeline.enhance",
    "pipeline.transcribe",
    "pipeline.conversation",
    "pipeline.analysis.analyser",
}


def test_the_layer_contracts_hold() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:]
    assert "4 kept, 0 broken" in done.stdout, done.stdout[-2000:]


def test_no_way_in_names_a_stage_class() -> None:
    """Batch and Serve get their stages from the groups, so they cannot drift from the pipeline's order."""
    graph = grimp.build_graph("pipeline", "batch", "serve_app")
    for way_in in ("batch", "serve_app"):
        for module in graph.find_children(way_in) | {way_in}:
            stages = graph.find_modules_directly_imported_by(module) & STAGE_MODULES
            assert not stages, f"{module} imports stage modules {sorted(stages)}: use pipeline.stage_groups"


class Stamp(Stage):
    """A trivial stage: it notes that it ran (how a new stage is added: one line in stage_groups)."""

    name: ClassVar[str] = "stamp"
    needs_audio: ClassVar[bool] = False

    def process(self, state: CallState) -> CallState:
        state.scratch["stamp_detail"] = {"turns_seen": len(state.record.turns)}
        return state


def test_a_stage_added_to_a_group_runs_in_every_way_in(
    fast_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The change this test makes with monkeypatch is the whole change a new stage needs:

        -TRANSCRIPT = StageGroup("transcript", (Transcriber, ConversationBuilder), drop_audio=True)
        +TRANSCRIPT = StageGroup("transcript", (Transcriber, ConversationBuilder, Stamp), drop_audio=True)
    """
    from pipeline import stage_groups
    from pipeline.runner import CallPipeline
    from serve_app.deployments import TranscriberDeployment

    stamped = stage_groups.StageGroup("transcript", (*stage_groups.TRANSCRIPT.stages, Stamp), drop_audio=True)
    monkeypatch.setattr(stage_groups, "TRANSCRIPT", stamped)
    groups = stage_groups.stage_groups(fast_settings, analyse=False)
    assert stage_groups.stage_names(groups) == ["diarize", "vad", "enhance", "transcribe", "conversation", "stamp"]

    # Plain Python.
    record = CallPipeline(fast_settings, analyse=False).process_file(SAMPLES / "callback_promise.ogg")
    stamp = record.stage("stamp")
    assert stamp is not None and stamp.status == "ok" and stamp.detail["turns_seen"] == len(record.turns) > 0

    # The Serve Transcriber deployment's replica class (the same object Serve runs, without Ray).
    replica = TranscriberDeployment.func_or_class(fast_settings)
    assert [s.name for chain in replica.chains for s in chain.stages][-1] == "stamp"

    # The batch job builds one actor pool per group from the same list (pipeline.stage_groups).
    from batch.job import pool_options

    assert [g.name for g in groups] == ["audio", "transcript"]
    assert all(pool_options(g, fast_settings, 0.0)["batch_size"] >= 1 for g in groups)

    # And taken out again, nothing of it is left.
    monkeypatch.undo()
    names = stage_groups.stage_names(stage_groups.stage_groups(fast_settings, analyse=False))
    assert "stamp" not in names
