"""Shared fixtures: settings for tests, models loaded once per session, real audio helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.settings import Settings

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"

pytest_plugins: list[str] = ["tests.store_fixtures"]


def make_settings(tmp_home: Path, **overrides: object) -> Settings:
    """Fast settings: tiny.en, one CPU thread, caches shared with the repo's model cache."""
    values: dict[str, object] = {
        "home": tmp_home,
        "models_dir": REPO / ".cache" / "callaudit" / "models",
        "transcribe": {"model": "tiny.en", "cpu_threads": 1},
        "analysis": {"enabled": False},
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("callaudit-home")


@pytest.fixture(scope="session")
def fast_settings(session_home: Path) -> Settings:
    return make_settings(session_home)


@pytest.fixture(scope="session")
def transcript_pipeline(fast_settings: Settings):  # type: ignore[no-untyped-def]
    """The audio pipeline (no LLM), models loaded once for the whole session."""
    from pipeline.runner import CallPipeline

    return CallPipeline(fast_settings, analyse=False)
