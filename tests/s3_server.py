"""A real S3 API server on loopback for tests and benches: moto in server mode, in its own process.

It speaks the S3 REST protocol over HTTP like AWS does, so the job's own pyarrow S3 client talks to
it unchanged (endpoint from ``batch.s3_endpoint_url``, credentials from the environment). Its request
recorder shows which requests a client made (tests use it to prove the driver read no audio).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

# Moto accepts any credentials; pyarrow (like every AWS SDK) wants some to sign requests with.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "callaudit-test", "AWS_SECRET_ACCESS_KEY": "callaudit-test-secret"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class S3Server:
    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.recording = work_dir / "moto_requests.jsonl"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> S3Server:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MOTO_RECORDER_FILEPATH": str(self.recording)}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.work_dir / "moto.log", "wb"),  # noqa: SIM115 - lives as long as the server
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"moto server exited: {(self.work_dir / 'moto.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1).close()
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("moto server did not answer within 60 s")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None

    def filesystem(self) -> pafs.S3FileSystem:
        """An admin client (may create and delete buckets), separate from the job's own."""
        return pafs.S3FileSystem(
            endpoint_override=self.url,
            region="us-east-1",
            access_key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            allow_bucket_creation=True,
            allow_bucket_deletion=True,
        )

    def put(self, key: str, data: bytes) -> None:
        with self.filesystem().open_output_stream(key) as out:
            out.write(data)

    def _recorder(self, action: str) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/recorder/{action}", method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def start_recording(self) -> None:
        self._recorder("reset-recording")
        self._recorder("start-recording")

    def stop_recording(self) -> list[dict[str, Any]]:
        """The requests made since ``start_recording``: method, url, headers."""
        self._recorder("stop-recording")
        if not self.recording.exists():
            return []
        return [json.loads(line) for line in self.recording.read_text().splitlines() if line.strip()]
