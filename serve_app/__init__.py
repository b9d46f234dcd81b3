"""callaudit's web service: a Ray Serve application with a FastAPI ingress, job tracking and a web UI.

Start it with ``python -m serve_app`` (starts Ray, the embedded database when no MongoDB URI is set,
and Serve; prints the URL), or on a running Ray cluster with ``serve run serve_app:app``.
``app`` is built on first access, from settings read from the environment / ``CALLAUDIT_CONFIG``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["app", "build_app", "create_app"]


def __getattr__(name: str) -> Any:
    # Lazy: importing serve_app (tests, the batch job) must not read settings or import Ray Serve.
    if name == "app":
        from serve_app.app import app_builder

        return app_builder()
    if name in ("build_app", "create_app"):
        from serve_app import app as module

        return getattr(module, name)
    raise AttributeError(f"module 'serve_app' has no attribute {name!r}")
