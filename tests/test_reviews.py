"""A reviewer's correction survives every path that rewrites a call.

The paths: batch re-analysis (``python -m batch run DIR --reanalyse``), re-processing
(``--reprocess``), a new pipeline version (a new record id for the same audio), and the save path
itself (``pipeline.save.CallWriter``) that all of them, the Serve app and corrections go through.
Real parts: SecantusDB, Ray, tiny.en; the LLM is an Ollama address nothing listens on (analysis
pending), which is a fault a real deployment meets and which keeps these tests off the LLM.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline import PIPELINE_VERSION
from pipeline.records import CallMetrics, CallRecord, RoleMetrics, make_record_id
from pipeline.save import CallWriter
from pipeline.settings import Settings
from pipeline.stage import CallState
from pipeline.store import CallStore
from tests.conftest import REPO, SAMPLES
from tests.store_fixtures import make_analysis, make_record

MODELS = REPO / ".cache" / "callaudit" / "models"
COMPLAINT = {"category": "Unnecessary Call", "subcategory": "Complaint"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(home: Path, mongo_server: str, database: str) -> dict[str, str]:
    """The settings of these tests as a person would set them: CALLAUDIT_* variables."""
    return {
        "CALLAUDIT_HOME": str(home),
        "CALLAUDIT_MODELS_DIR": str(MODELS),
        "CALLAUDIT_TRANSCRIBE__MODEL": "tiny.en",
        "CALLAUDIT_TRANSCRIBE__CPU_THREADS": "1",
        "CALLAUDIT_STORE__MONGO_URI": mongo_server,
        "CALLAUDIT_STORE__DATABASE": database,
        "CALLAUDIT_STORE__SPOOL_DIR": str(home / "spool"),
        "CALLAUDIT_LLM__BACKEND": "ollama",
        "CALLAUDIT_LLM__OLLAMA_HOST": f"http://127.0.0.1:{_closed_port()}",
        "CALLAUDIT_ANALYSIS__CLASSIFIER": "off",
    }


@pytest.fixture
def reviewed_env(tmp_path: Path, mongo_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for key, value in _env(tmp_path / "home", mongo_server, f"rev_{uuid.uuid4().hex[:10]}").items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    yield settings
    with CallStore(settings) as store:
        store.db.client.drop_database(store.db.name)


def _stored_call(path: Path, **kwargs: Any) -> CallRecord:
    """A record of the real file at ``path`` as this pipeline version stores it."""
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    record = make_record(path.stem, pipeline_version=PIPELINE_VERSION, **kwargs)
    return record.model_copy(
        update={"audio_sha256": sha, "record_id": make_record_id(sha, PIPELINE_VERSION), "source": str(path)}
    )


def _unintelligible(path: Path) -> CallRecord:
    """A Turkish call on a bad line: 18 s of caller speech, not one word transcribed (status empty)."""
    record = _stored_call(path, turns=(), status="empty")
    record.metrics = CallMetrics(duration_s=30.0, per_role={"customer": RoleMetrics(talk_seconds=18.0)})
    return record


def _review(store: CallStore, record_id: str) -> tuple[str | None, str | None, bool]:
    record = store.get_record(record_id)
    assert record is not None and record.analysis is not None
    return record.analysis.category, record.analysis.subcategory, record.analysis.reviewed


@pytest.mark.slow
def test_corrections_survive_batch_reanalysis_and_reprocessing(reviewed_env: Settings, tmp_path: Path) -> None:
    """Issue 14's QA run in two files: a Turkish call judged unintelligible (Uncertain by rule) and a
    normal one, both corrected from the command line, then ``batch run --reanalyse``, then
    ``batch run --reprocess``: both keep the reviewer's labels every time."""
    from batch.__main__ import main as batch
    from pipeline.__main__ import main as pipeline_cli
    from pipeline.stage_groups import analysis_group

    settings = reviewed_env
    calls = tmp_path / "calls"
    calls.mkdir()
    shutil.copy(SAMPLES / "noisy_8khz.wav", calls / "turkish_bad_line.wav")
    shutil.copy(SAMPLES / "callback_promise.ogg", calls / "normal.ogg")
    analysis = analysis_group().chain(settings)
    turkish = analysis.run(CallState(record=_unintelligible(calls / "turkish_bad_line.wav"))).record
    normal = analysis.run(CallState(record=_stored_call(calls / "normal.ogg"))).record
    assert turkish.analysis is not None and turkish.analysis.category == "Uncertain"
    assert turkish.analysis.classification is not None and turkish.analysis.classification.source == "rule"
    with CallStore(settings) as store:
        assert not CallWriter(settings, store).save([turkish, normal]).failed

    for record in (turkish, normal):
        assert pipeline_cli(["correct", record.record_id, "--category", COMPLAINT["category"],
                             "--subcategory", COMPLAINT["subcategory"], "--reviewer", "qa-lead"]) == 0
    with CallStore(settings) as store:
        # The command line puts the correction on the stored call, as the API does.
        assert _review(store, turkish.record_id) == ("Unnecessary Call", "Complaint", True)

    assert batch(["run", str(calls), "--reanalyse"]) == 0
    with CallStore(settings) as store:
        for record in (turkish, normal):
            assert _review(store, record.record_id) == ("Unnecessary Call", "Complaint", True), record.source
            stored = store.get_record(record.record_id)
            assert stored is not None and stored.analysis is not None and stored.analysis.review is not None
            assert stored.analysis.review.reviewer == "qa-lead"
        # The unintelligible call was analysed again (not skipped), like every stored call with audio.
        job = store.job_files.find_one({"record_id": turkish.record_id, "job_id": {"$regex": "^reanalyse-"}})
        assert job is not None and job["status"] == "done"

    # Re-processing the audio (transcripts only) rewrites both records: the reviews stay.
    assert batch(["run", str(calls), "--reprocess", "--no-analysis"]) == 0
    with CallStore(settings) as store:
        for record in (turkish, normal):
            assert _review(store, record.record_id) == ("Unnecessary Call", "Complaint", True), record.source


def test_a_correction_survives_a_new_pipeline_version(store: CallStore) -> None:
    writer = CallWriter(store.settings, store)
    old = make_record("versioned", pipeline_version="p1", analysis=make_analysis(category="Technical Support"))
    writer.save([old])
    _, saved = writer.correct(old, {"customer_sentiment": "negative", **COMPLAINT}, reviewer="rev-1")
    assert not saved.failed
    # The same recording through a newer pipeline: a new record id, a fresh (unreviewed) analysis.
    new = make_record("versioned", pipeline_version="p2", analysis=make_analysis(category="Technical Support"))
    assert new.record_id != old.record_id and new.audio_sha256 == old.audio_sha256
    saved = writer.save([new])
    assert saved.reviews_kept == [new.record_id]
    stored = store.get_record(new.record_id)
    assert stored is not None and stored.analysis is not None
    assert (stored.analysis.category, stored.analysis.subcategory) == ("Unnecessary Call", "Complaint")
    assert stored.analysis.reviewed and stored.analysis.review is not None
    assert stored.analysis.review.reviewer == "rev-1"
    assert stored.analysis.sentiment is not None and stored.analysis.sentiment.customer.label == "negative"


def test_later_corrections_of_one_recording_merge_field_by_field(store: CallStore) -> None:
    writer = CallWriter(store.settings, store)
    first = make_record("merged", pipeline_version="p1", analysis=make_analysis())
    writer.save([first])
    writer.correct(first, COMPLAINT, reviewer="rev-1")
    second = make_record("merged", pipeline_version="p2", analysis=make_analysis())
    writer.save([second])
    writer.correct(second, {"customer_sentiment": "positive"}, reviewer="rev-2")
    # A third rewrite (re-analysis of p2) brings a machine label again; both reviewers' fields stay.
    writer.save([make_record("merged", pipeline_version="p2", analysis=make_analysis(sentiment="negative"))])
    stored = store.get_record(second.record_id)
    assert stored is not None and stored.analysis is not None and stored.analysis.sentiment is not None
    assert stored.analysis.category == "Unnecessary Call" and stored.analysis.sentiment.customer.label == "positive"
    assert stored.analysis.review is not None and stored.analysis.review.reviewer == "rev-2"


def test_a_rewrite_without_analysis_keeps_the_review(store: CallStore) -> None:
    """``--reprocess --no-analysis`` brings a record with no analysis at all: the reviewer's labels stay."""
    writer = CallWriter(store.settings, store)
    call = make_record("transcript-only", analysis=make_analysis())
    writer.save([call])
    writer.correct(call, COMPLAINT)
    writer.save([make_record("transcript-only")])  # analysis None, as a transcripts-only run makes it
    assert _review(store, call.record_id) == ("Unnecessary Call", "Complaint", True)


def test_the_save_path_sets_job_file_status_and_checks_callbacks(store: CallStore) -> None:
    from datetime import timedelta

    from tests.store_fixtures import T0

    writer = CallWriter(store.settings, store)
    job = store.create_job("batch", ["promise", "follow-up", "broken"])
    promise = make_record("promise", analysis=make_analysis(callback_due=T0 + timedelta(hours=24)))
    follow_up = make_record("follow-up", call_time=T0 + timedelta(hours=3))
    broken = make_record("broken", status="failed", turns=())
    broken.add_error("decode", "not_audio", "the file is not a recording")
    saved = writer.save([promise, follow_up, broken], job_id=job, files=["promise", "follow-up", "broken"])
    assert saved.callbacks.checked == 1 and saved.callbacks.kept == 1
    files = {f["file"]: f for f in store.get_job(job)["files"]}  # type: ignore[index]
    assert files["promise"]["status"] == "done" and files["follow-up"]["status"] == "done"
    assert files["broken"]["status"] == "failed" and "not a recording" in files["broken"]["reason"]
    # What an export reads back is what was stored, the callback verdict included.
    doc = store.get_document(promise.record_id)
    assert doc is not None and doc["callback_status"] == "kept"
