"""Store fixtures: a real SecantusDB over TCP for the whole session, and a fresh database per test.

Listed in ``tests/conftest.py`` ``pytest_plugins``. ``make_record`` builds CallRecords directly
(turns, metadata, an analysis in the analysis stage's shape) so store tests need no audio or models.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from pipeline.analysis_schema import Analysis
from pipeline.records import AudioInfo, CallMetadata, CallMetrics, CallRecord, RoleMetrics, Turn, make_record_id
from pipeline.settings import Settings
from pipeline.store import CallStore, EmbeddedMongo

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
DEFAULT_TURNS = (
    ("agent", "Good morning, thank you for calling. How can I help?"),
    ("customer", "My internet has been down since yesterday."),
)


def store_settings(home: Path, uri: str | None, *, database: str | None = None, **store: Any) -> Settings:
    """Settings for store tests: fast retries, a spool under ``home``; ``store`` overrides StoreSettings fields."""
    values: dict[str, Any] = {
        "mongo_uri": uri,
        "database": database or f"t_{uuid4().hex[:12]}",
        "spool_dir": home / "spool",
        "data_dir": home / "db",
        "retry_attempts": 2,
        "retry_backoff_s": 0.05,
        "server_timeout_ms": 2000,
    }
    values.update(store)
    return Settings(home=home, store=values)


def make_analysis(
    *,
    category: str | None = "Technical Support",
    sentiment: str | None = "neutral",
    score: float | None = None,
    compliance: dict[str, str] | None = None,
    flags: Sequence[str] = (),
    callback_due: datetime | None = None,
    callback_promised: bool | None = None,
    agent_score: int | None = None,
    summary: str | None = None,
) -> Analysis:
    payload: dict[str, Any] = {
        "category": category,
        "summary": summary,
        "compliance": [{"id": k, "status": v} for k, v in (compliance or {}).items()],
        "flags": [{"name": f, "reason": "test"} for f in flags],
        "callback": {
            "promised": callback_promised if callback_promised is not None else callback_due is not None,
            "due": callback_due,
        },
    }
    if sentiment is not None:
        customer: dict[str, Any] = {"label": sentiment}
        if score is not None:
            customer["score"] = score
        payload["sentiment"] = {"customer": customer}
    if agent_score is not None:
        payload["agent_performance"] = {"score": agent_score}
    return Analysis.model_validate(payload)


def make_record(
    name: str,
    *,
    agent: str | None = "A1",
    customer: str | None = "C1",
    phone: str | None = None,
    call_time: datetime | None = T0,
    direction: str | None = "inbound",
    turns: Sequence[tuple[str, str]] = DEFAULT_TURNS,
    analysis: Analysis | None = None,
    talk_ratio: float | None = 0.5,
    duration_s: float = 60.0,
    status: str = "ok",
    pipeline_version: str = "p1",
    audio: str | None = None,
    created_at: datetime | None = None,
) -> CallRecord:
    """A record as the pipeline would produce it; ``audio`` names the recording (default: ``name``)."""
    sha = hashlib.sha256((audio or name).encode()).hexdigest()
    metrics = None
    if talk_ratio is not None:
        metrics = CallMetrics(
            duration_s=duration_s,
            per_role={"agent": RoleMetrics(talk_ratio=talk_ratio), "customer": RoleMetrics(talk_ratio=1 - talk_ratio)},
        )
    extra: dict[str, Any] = {}
    if created_at is not None:
        extra["created_at"] = created_at
    return CallRecord(
        pipeline_version=pipeline_version,
        record_id=make_record_id(sha, pipeline_version),
        audio_sha256=sha,
        source=f"/calls/{name}.wav",
        file_name=f"{name}.wav",
        status=status,
        audio=AudioInfo(duration_s=duration_s, channels=2, sample_rate=8000),
        metadata=CallMetadata(
            agent_id=agent,
            customer_id=customer,
            customer_phone=phone,
            call_time=call_time,
            direction=direction,
        ),
        turns=[
            Turn(index=i, role=role, track=0 if role == "agent" else 1, start=i * 5.0, end=i * 5.0 + 4.0, text=text)
            for i, (role, text) in enumerate(turns)
        ],
        metrics=metrics,
        analysis=analysis,
        analysis_status="done" if analysis is not None else "not_run",
        **extra,
    )


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of a SecantusDB started for this test session (127.0.0.1, free port, on-disk storage)."""
    server = EmbeddedMongo(tmp_path_factory.mktemp("mongo"), start_timeout_s=60)
    uri = server.start()
    yield uri
    server.stop()


@pytest.fixture
def store(mongo_server: str, tmp_path: Path) -> Iterator[CallStore]:
    """A connected CallStore on a database of its own, dropped afterwards."""
    settings = store_settings(tmp_path, mongo_server)
    call_store = CallStore(settings).connect()
    try:
        yield call_store
    finally:
        call_store.db.client.drop_database(call_store.db.name)
        call_store.close()
