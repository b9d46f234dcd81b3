"""``python -m serve_app``: start Ray (unless one runs), the embedded database (unless a MongoDB URI is
set), Serve and the app; print the URL; stop everything on Ctrl-C.

Settings come from the environment (``CALLAUDIT_SERVE__PORT=8080``...), ``.env`` or ``--config``;
the flags below override the most common ones.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from pipeline.settings import Settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m serve_app", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="YAML settings file")
    parser.add_argument("--host", help="address to bind (a non-loopback address needs API keys)")
    parser.add_argument("--port", type=int)
    parser.add_argument("--model", help="Whisper model (e.g. base, tiny.en, large-v3)")
    parser.add_argument("--no-analysis", action="store_true", help="transcripts and metrics only, no LLM")
    return parser.parse_args(argv)


def load_settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, dict[str, Any]] = {}
    if args.host:
        overrides.setdefault("serve", {})["host"] = args.host
    if args.port:
        overrides.setdefault("serve", {})["port"] = args.port
    if args.model:
        overrides.setdefault("transcribe", {})["model"] = args.model
    if args.no_analysis:
        overrides.setdefault("analysis", {})["enabled"] = False
    return Settings.with_overrides(overrides, args.config)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(parse_args(argv))
    except ValueError as err:
        print(f"invalid settings: {err}", file=sys.stderr)
        return 2
    from serve_app.launcher import start_local

    print("starting callaudit (Ray, database, Serve; first start loads the models)...", flush=True)
    server = start_local(settings)
    keys = "API key required (X-API-Key)" if settings.serve.api_keys else "no API key (loopback only)"
    print(f"callaudit is running at {server.url}/  (API docs: {server.url}/docs, {keys}); Ctrl-C stops it", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    print("stopping...", flush=True)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
