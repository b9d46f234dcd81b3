"""The project stays ruff- and mypy-clean: the checks run with the tests, so a landing cannot drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

BIN = Path(sys.executable).parent


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / tool), *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    done = _run("ruff", "check", ".")
    assert done.returncode == 0, done.stdout[-4000:]


def test_mypy_finds_nothing() -> None:
    done = _run("mypy", "pipeline", "batch", "serve_app", "bench")
    assert done.returncode == 0, done.stdout[-4000:]
