"""The embedded default: a local MongoDB-wire server (SecantusDB) when no MongoDB URI is configured.

SecantusDB runs as a child process (``secantusd-py``) rather than in-process so that its threads and
WiredTiger cache never compete with the pipeline's GIL, and so that Ray workers, the Serve app and
the CLI, each in their own process, can share one server: the first one to start it writes
``<data_dir>/embedded.json`` (pid, port) and the others connect to that server instead of starting a
second one on the same files (WiredTiger would refuse: one process per data folder).

Only the process that started the server stops it. A server left behind by a killed process is
found through ``embedded.json`` and reused, so nothing is ever orphaned for long.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

INFO_FILE = "embedded.json"
STORAGE_SUBDIR = "secantus"
LOG_FILE = "secantusd.log"
# WiredTiger's message when another process already holds the data folder.
_LOCKED_MARKERS = ("already being managed by another process", "WiredTiger.lock")


class EmbeddedStartError(RuntimeError):
    """The embedded database could not be started; the message says why and what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ping(uri: str, timeout_s: float = 1.0) -> bool:
    """True when a MongoDB-wire server at ``uri`` answers ``ping``."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    ms = max(1, int(timeout_s * 1000))
    client: MongoClient[dict[str, object]] = MongoClient(
        uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms, directConnection=True
    )
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _server_command() -> list[str]:
    exe = shutil.which("secantusd-py") or str(Path(sys.executable).with_name("secantusd-py"))
    if not Path(exe).exists():
        raise EmbeddedStartError(
            "The embedded database needs the 'secantusdb' package (command 'secantusd-py'), which is not "
            "installed. Install it (pip install secantusdb==0.7.0b3) or set CALLAUDIT_STORE__MONGO_URI to a "
            "real MongoDB."
        )
    return [exe]


class EmbeddedMongo:
    """Start (or join) a SecantusDB server whose data lives under ``data_dir``.

    ``port=0`` picks a free port. ``start()`` returns the URI; ``stop()`` stops the server only if this
    object started it. Usable as a context manager.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        start_timeout_s: float = 30.0,
        stop_timeout_s: float = 20.0,
        sync_on_commit: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.sync_on_commit = sync_on_commit
        self.uri: str | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def owned(self) -> bool:
        """Whether this object started the server (and so is the one to stop it)."""
        return self._process is not None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def info_path(self) -> Path:
        return self.data_dir / INFO_FILE

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    def start(self) -> str:
        if self.uri is not None:
            return self.uri
        self.data_dir.mkdir(parents=True, exist_ok=True)
        running = self._running_server()
        if running:
            log.info("using the embedded database already running at %s", running)
            self.uri = running
            return running
        return self._spawn()

    def _running_server(self) -> str | None:
        """URI of a live server that another process started on this data folder, if any."""
        try:
            info = json.loads(self.info_path.read_text())
            pid, uri = int(info["pid"]), str(info["uri"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not _pid_alive(pid):
            return None
        return uri if ping(uri, timeout_s=2.0) else None

    def _spawn(self) -> str:
        port = self.port or free_port(self.host)
        uri = f"mongodb://{self.host}:{port}/?directConnection=true"
        # An empty config file: without --config SecantusDB would pick up any secantusd.toml lying in the
        # working directory or home folder and could end up somewhere other than data_dir.
        config = self.data_dir / "secantusd.toml"
        if not config.exists():
            config.write_text("# callaudit starts SecantusDB with command-line flags only.\n")
        cmd = [
            *_server_command(),
            "--config",
            str(config),
            "--host",
            self.host,
            "--port",
            str(port),
            "--storage-path",
            str(self.data_dir / STORAGE_SUBDIR),
            "--log-level",
            "WARNING",
        ]
        if self.sync_on_commit:
            # Without it SecantusDB acknowledges writes before they reach its journal, and a crash loses
            # the last ones (seen here: a kill -9 right after a bulk write lost the whole batch). Call
            # records are large and few per second, so the fsync per commit costs little.
            cmd.append("--sync-on-commit")
        log_file = self.log_path.open("ab")
        try:
            # Own session: a Ctrl-C in the terminal reaches only our process, which then stops the server
            # cleanly after flushing its own writes, instead of killing both at once.
            process = subprocess.Popen(
                cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        finally:
            log_file.close()
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                return self._after_early_exit(code)
            if ping(uri, timeout_s=0.5):
                self._process = process
                self.uri = uri
                self._write_info(process.pid, uri)
                # The server runs in its own session, so it would outlive a program that forgets to stop it.
                atexit.register(self.stop)
                log.info("started the embedded database (SecantusDB) at %s, data in %s", uri, self.data_dir)
                return uri
            time.sleep(0.1)
        self._terminate(process)
        raise EmbeddedStartError(
            f"The embedded database did not answer within {self.start_timeout_s:.0f} s "
            f"(log: {self.log_path}). Check the log, or set CALLAUDIT_STORE__MONGO_URI to a real MongoDB."
        )

    def _after_early_exit(self, code: int) -> str:
        tail = self._log_tail()
        if any(marker in tail for marker in _LOCKED_MARKERS):
            # Lost a start race with another process: use the server it started.
            deadline = time.monotonic() + self.start_timeout_s
            while time.monotonic() < deadline:
                running = self._running_server()
                if running:
                    self.uri = running
                    return running
                time.sleep(0.2)
            raise EmbeddedStartError(
                f"The data folder {self.data_dir / STORAGE_SUBDIR} is locked by another process that does not "
                "answer as a database. Stop that process (see 'embedded.json' there for its pid) or choose "
                "another CALLAUDIT_STORE__DATA_DIR."
            )
        if "Address already in use" in tail or "Errno 98" in tail:
            raise EmbeddedStartError(
                f"Port {self.port} is already in use, so the embedded database cannot listen there. "
                "Set CALLAUDIT_STORE__EMBEDDED_PORT=0 to pick a free port."
            )
        last = tail.strip().splitlines()[-1] if tail.strip() else "no output"
        raise EmbeddedStartError(
            f"The embedded database exited at start (exit code {code}): {last}. Full log: {self.log_path}"
        )

    def _log_tail(self, size: int = 4000) -> str:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - size))
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _write_info(self, pid: int, uri: str) -> None:
        tmp = self.info_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": pid, "uri": uri, "started_at": time.time()}))
        tmp.replace(self.info_path)

    def _terminate(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is not None:
            return
        # SIGTERM lets SecantusDB drain connections and close WiredTiger (a checkpoint); that takes a few
        # seconds. SIGKILL only if it hangs: WiredTiger's journal still recovers the data on next start.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("the embedded database did not stop within %.0f s; killing it", self.stop_timeout_s)
            process.kill()
            process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server if this object started it; a joined server is left to its owner."""
        process, self._process = self._process, None
        self.uri = None
        if process is None:
            return
        atexit.unregister(self.stop)
        self._terminate(process)
        with contextlib.suppress(OSError):
            info = json.loads(self.info_path.read_text())
            if int(info.get("pid", -1)) == process.pid:
                self.info_path.unlink()
        log.info("stopped the embedded database")

    def kill(self) -> None:
        """Kill the server abruptly (tests: a database that dies mid-run)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)

    def __enter__(self) -> EmbeddedMongo:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
