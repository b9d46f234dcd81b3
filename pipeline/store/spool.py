"""A local, append-only spool for writes the database could not take, and their replay.

When MongoDB stays unreachable after the retries, the store appends each pending write to
``<spool_dir>/pending-<host>-<pid>.jsonl`` (one file per process, so concurrent Ray workers never
interleave lines) and flushes it to disk before reporting the write as spooled. Every spooled
write is idempotent (an upsert keyed by _id, guarded against overwriting newer data), so replaying
an entry twice, or after a crash half-way through a replay, is harmless.

Replay claims a file by renaming it to ``replaying-...`` (atomic, so two replayers never take the
same file and the writer simply starts a new pending file), applies its entries in order, and deletes
it only when every entry is in the database. Lines that cannot be parsed (a torn last line after a
crash) are moved to ``rejected-<...>.jsonl`` for a person to look at, never dropped; records the
database refuses for good (over 16 MB, say) are kept in ``refused-<...>.jsonl`` rather than retried.

Entry shapes (MongoDB Extended JSON, so dates survive the round trip)::

    {"kind": "call", "doc": <calls document>}
    {"kind": "op", "collection": "jobs" | "job_files", "filter": {...}, "update": {...}, "upsert": true}
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import Any

from bson import json_util
from bson.json_util import JSONMode, JSONOptions

log = logging.getLogger(__name__)

_DUMP_OPTIONS = JSONOptions(json_mode=JSONMode.RELAXED)
_LOAD_OPTIONS = JSONOptions(json_mode=JSONMode.RELAXED, tz_aware=True, tzinfo=timezone.utc)


@dataclass
class SpoolFile:
    path: Path
    entries: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


@dataclass
class ReplayReport:
    files: int = 0
    calls: int = 0
    ops: int = 0
    stale: int = 0
    rejected_lines: int = 0
    failed: list[str] = field(default_factory=list)
    remaining_files: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed and self.remaining_files == 0


class Spool:
    """Append-only JSONL files under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()

    @property
    def pending_path(self) -> Path:
        return self.directory / f"pending-{socket.gethostname()}-{os.getpid()}.jsonl"

    def append(self, entries: list[dict[str, Any]]) -> Path:
        """Write entries and fsync them: once this returns they survive a crash of this process."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = "".join(json_util.dumps(e, json_options=_DUMP_OPTIONS) + "\n" for e in entries)
        path = self.pending_path
        with self._lock, path.open("a", encoding="utf-8") as fh:
            fh.write(lines)
            fh.flush()
            os.fsync(fh.fileno())
        return path

    def set_aside(self, entries: list[dict[str, Any]]) -> Path:
        """Keep writes the database refused for good (e.g. a document over 16 MB) for a person to look at.

        They go to ``refused-*.jsonl``, which replay never picks up: retrying cannot make them fit.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"refused-{socket.gethostname()}-{os.getpid()}.jsonl"
        lines = "".join(json_util.dumps(e, json_options=_DUMP_OPTIONS) + "\n" for e in entries)
        with self._lock, path.open("a", encoding="utf-8") as fh:
            fh.write(lines)
            fh.flush()
            os.fsync(fh.fileno())
        return path

    def files(self) -> list[Path]:
        """Files waiting for replay, oldest first (left-over ``replaying`` files from a crash included)."""
        if not self.directory.exists():
            return []
        found = [*self.directory.glob("replaying-*.jsonl"), *self.directory.glob("pending-*.jsonl")]
        return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))

    def pending_entries(self) -> int:
        total = 0
        for path in self.files():
            with contextlib.suppress(OSError), path.open("rb") as fh:
                total += sum(1 for line in fh if line.strip())
        return total

    def rejected_files(self) -> list[Path]:
        return sorted(self.directory.glob("rejected-*.jsonl")) if self.directory.exists() else []

    def claim(self) -> Iterator[SpoolFile]:
        """Yield each spool file, renamed to ``replaying-...`` and parsed; call ``done()`` after applying it."""
        for path in self.files():
            if path.name.startswith("pending-"):
                target = path.with_name("replaying-" + path.name.removeprefix("pending-"))
                if target.exists():
                    # A crashed replay left an older file of the same name: keep both, apart.
                    target = target.with_name(f"{target.stem}-{os.getpid()}-{id(path)}.jsonl")
                try:
                    path.rename(target)
                except FileNotFoundError:
                    continue  # another replayer took it
                path = target
            yield self._parse(path)

    def _parse(self, path: Path) -> SpoolFile:
        spool_file = SpoolFile(path)
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    entry = json_util.loads(line, json_options=_LOAD_OPTIONS)
                except ValueError:
                    spool_file.rejected.append(line)
                    continue
                if isinstance(entry, dict) and entry.get("kind") in {"call", "op"}:
                    spool_file.entries.append(entry)
                else:
                    spool_file.rejected.append(line)
        return spool_file

    def done(self, spool_file: SpoolFile) -> None:
        """Every entry of this file is in the database: set its unreadable lines aside and delete it."""
        if spool_file.rejected:
            rejected = self.directory / f"rejected-{spool_file.path.stem}.jsonl"
            with rejected.open("a", encoding="utf-8") as fh:
                fh.writelines(line if line.endswith("\n") else line + "\n" for line in spool_file.rejected)
            log.warning(
                "%d unreadable spool line(s) from %s kept in %s", len(spool_file.rejected), spool_file.path, rejected
            )
        spool_file.path.unlink(missing_ok=True)
