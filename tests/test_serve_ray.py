"""The API on a real Ray Serve instance: only what needs Serve itself.

The Ingress reaching the Transcriber deployment through its handle (an audio upload and a ZIP
through to stored calls), Serve's HTTP proxy streaming a chunked body into the size limit, and
/healthz from a replica. Everything else about the API runs in process (tests/test_serve_api.py).
``serve_session`` is shared with tests/test_ui.py so a session running both starts the app once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.store.embedded import free_port
from serve_app.launcher import LocalServer, start_local
from tests.conftest import make_settings
from tests.test_serve_api import IN_ZIP, LIMITS, SINGLE, make_zip, sample, wait_job
from tests.upload_helpers import chunked_oversize_upload

pytestmark = pytest.mark.slow

_SHARED: dict[str, Any] = {}


@contextmanager
def serve_session(mongo_uri: str, home: Path) -> Iterator[LocalServer]:
    """One local Ray + Serve app for every test module that asks, stopped after the last one."""
    if "server" not in _SHARED:
        settings = make_settings(
            home,
            store={"mongo_uri": mongo_uri, "database": f"serve_{uuid.uuid4().hex[:8]}"},
            serve={"port": free_port(), "ray_num_cpus": 4, **LIMITS},
        )
        _SHARED["server"] = start_local(settings, ready_timeout_s=240)
        _SHARED["users"] = 0
    _SHARED["users"] += 1
    server: LocalServer = _SHARED["server"]
    try:
        yield server
    finally:
        _SHARED["users"] -= 1
        if _SHARED["users"] == 0:
            _SHARED.clear()
            server.stop()


@pytest.fixture(scope="module")
def client(mongo_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with serve_session(mongo_server, tmp_path_factory.mktemp("serve-home")) as server, httpx.Client(
        base_url=server.url, timeout=60.0
    ) as http:
        yield http


def test_uploads_go_through_the_transcriber_deployment_to_stored_calls(client: httpx.Client) -> None:
    response = client.post(
        "/upload/audio/",
        files={"file": (SINGLE, sample(SINGLE), "application/octet-stream")},
        data={"agent_id": "AG900", "customer_id": "CU900", "call_time": "2026-11-20T10:15:00+00:00"},
    )
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["job_id"])
    assert job["status"] == "done", job
    (done,) = job["files"]
    call = client.get(f"/calls/{done['record_id']}").json()
    assert {t["role"] for t in call["turns"]} == {"agent", "customer"}
    assert call["metadata"]["agent_id"] == "AG900"
    assert {s["stage"] for s in call["stages"]} >= {"decode", "vad", "transcribe", "conversation"}

    archive = make_zip([(f"calls/{IN_ZIP}", sample(IN_ZIP)), ("calls/notes.txt", b"not a call\n")])
    response = client.post("/upload/zip/", files={"file": ("batch.zip", archive)}, data={"agent_id": "AG901"})
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["job_id"])
    assert job["counts"] == {"queued": 0, "running": 0, "done": 1, "failed": 1}


def test_the_proxy_streams_a_chunked_body_into_the_size_limit(client: httpx.Client) -> None:
    content, headers = chunked_oversize_upload()
    response = client.post("/upload/audio/", content=content, headers=headers)
    assert response.status_code == 413


def test_healthz_from_a_replica(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["store"]["ok"] is True
    assert body["llm"]["ok"] is None and "off" in body["llm"]["detail"]
