"""The pipeline's stage order, written once: three groups every way in runs in this order.

    audio       diarize (mono only) -> VAD -> enhance            needs the PCM, CPU models
    transcript  transcribe -> turns + metrics (audio dropped)     Whisper: the GPU when there is one
    analysis    PII, rules, LLM, classifier, flags                no audio: can re-run on stored calls

A group is the unit a way in places on its workers: ``CallPipeline`` runs them back to back in one
process, the batch job gives each its own Ray Data actor pool, the Serve app runs audio + transcript
in the Transcriber deployment and analysis in the Analyser deployment, and re-analysis runs the
analysis group alone. Adding a stage is one line here; every way in picks it up.

Decoding is not in a group: it makes the call state from bytes (``pipeline.audio.Decoder``), and each
way in reads its bytes differently (a path, an upload, an archive member).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pipeline.conversation import ConversationBuilder
from pipeline.diarize import Diarizer
from pipeline.enhance import Enhancer
from pipeline.settings import Settings
from pipeline.stage import Stage, StageChain
from pipeline.transcribe import Transcriber
from pipeline.vad import VoiceActivityDetector

GroupName = Literal["audio", "transcript", "analysis"]


@dataclass(frozen=True)
class StageGroup:
    """Stages that run back to back on one worker; ``drop_audio``: no later group needs the PCM."""

    name: GroupName
    stages: tuple[type[Stage], ...]
    drop_audio: bool = False

    def chain(self, settings: Settings) -> StageChain:
        """The group's stages with their models loaded (once per worker)."""
        return StageChain(settings, self.stages, drop_audio=self.drop_audio)


AUDIO = StageGroup("audio", (Diarizer, VoiceActivityDetector, Enhancer))
TRANSCRIPT = StageGroup("transcript", (Transcriber, ConversationBuilder), drop_audio=True)


def analysis_group() -> StageGroup:
    # Imported on use: the analysis package pulls in the LLM client and the classifier, which a
    # transcripts-only run (``analysis.enabled: false``) never needs.
    from pipeline.analysis.analyser import Analyser

    return StageGroup("analysis", (Analyser,))


def stage_groups(settings: Settings, *, analyse: bool = True) -> list[StageGroup]:
    """Every group in pipeline order; the analysis group only when analysis is on."""
    groups = [AUDIO, TRANSCRIPT]
    if analyse and settings.analysis.enabled:
        groups.append(analysis_group())
    return groups


def stage_names(groups: Sequence[StageGroup]) -> list[str]:
    return [stage.name for group in groups for stage in group.stages]
