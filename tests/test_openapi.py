"""The API's own OpenAPI document, tried by schemathesis (property-based) against the app in process.

Every check schemathesis 4 runs by default, so a schema-valid request must be accepted, every status
the API answers must be documented and every body must match its schema. One check is off:
``ignored_auth``. The document declares the API key schemes, and a server with no keys configured
(the loopback default, see README) answers without one; the keys themselves are tested in
tests/test_serve_api.py. Upload bodies are recordings and ZIPs, judged by content: bytes a schema
cannot tell from audio are refused with 415, which the document lists, so that status is expected.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup

from pipeline.store.store import CallStore
from serve_app.app import create_app
from serve_app.app_context import AppContext
from tests.conftest import make_settings
from tests.store_fixtures import make_analysis, make_record

CONFIG = {
    "checks": {"ignored_auth": {"enabled": False}},
    "operations": [
        {
            "include-path-regex": "^/upload/",
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", 401, 403, 404, 409, 415, 429]}},
        }
    ],
}
EXAMPLES = 40
STORED = "spec-call"


@pytest.fixture(scope="module")
def app(mongo_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home: Path = tmp_path_factory.mktemp("openapi")
    settings = make_settings(home, store={"mongo_uri": mongo_server, "database": f"oas_{uuid.uuid4().hex[:8]}"})
    store = CallStore(settings).connect()
    # A stored call, so that the operations on one call reach their handlers, not only their 404s.
    store.upsert_records([make_record(STORED, analysis=make_analysis())])

    async def no_transcription(row: dict[str, object]) -> str:
        raise RuntimeError("the spec run does not transcribe")  # the worker fails the file with a reason

    ctx = AppContext.create(settings, transcribe=no_transcription, store=store)
    try:
        yield create_app(ctx)
    finally:
        store.db.client.drop_database(store.db.name)
        store.close()


def test_the_api_keeps_its_openapi_document(app: Any) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=SchemathesisConfig.from_dict(CONFIG))
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,  # the same examples on every run: a suite that fails, fails again
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            if "call_id" in (case.path_parameters or {}):
                # Unknown ids answer 404 (documented); the stored call takes the bodies to the handler.
                case.path_parameters["call_id"] = make_record(STORED).record_id
            case.call_and_validate()

        try:
            run()
        except (Exception, FailureGroup) as err:  # every operation is tried; failures reported together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(err)[:1500]}")
    assert not failures, "\n\n".join(failures)
