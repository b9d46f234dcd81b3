"""The analyse stage's plumbing with a real (small) model: SmolLM2-135M through llama.cpp in-process.

SmolLM2 is too weak to judge calls, so these tests assert on shape, provenance and failure handling,
not on labels (the Qwen tests in test_analysis_quality.py do that). The one fake, FakeNonsenseLLM,
stands for a fault no real model here produces on demand: an answer that is not JSON.
"""

from __future__ import annotations

import functools
import json
import socket
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.analysis.analyser import Analyser, reanalyse
from pipeline.analysis.llm import (
    EmbeddedLLM,
    LLMBackend,
    LLMInvalidOutput,
    LLMUsage,
    OllamaLLM,
    TokenLogprob,
    enum_choice_probs,
    make_backend,
    parse_json_object,
    strip_think,
)
from pipeline.analysis_schema import Analysis
from pipeline.records import CallMetadata, CallRecord, Turn
from pipeline.settings import Settings
from pipeline.stage import CallState

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / ".cache" / "callaudit" / "models"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_for(home: Path, **llm: object) -> Settings:
    values: dict[str, object] = {"backend": "embedded", "embedded_model": "smollm2-135m", "max_tokens": 256}
    values.update(llm)
    return Settings(home=home, models_dir=MODELS, llm=values,
                    analysis={"classifier": "off"})


@functools.cache
def shared_smol() -> EmbeddedLLM:
    """One SmolLM2 for every analysis test module: each extra llama.cpp server costs load time, and
    several servers in one process is not what production runs."""
    settings = settings_for(Path(tempfile.mkdtemp(prefix="smol-")))
    return EmbeddedLLM(settings.llm, settings.models_cache)


@pytest.fixture(scope="module")
def smol() -> EmbeddedLLM:
    return shared_smol()


@pytest.fixture(scope="module")
def smol_analyser(smol: EmbeddedLLM, tmp_path_factory: pytest.TempPathFactory) -> Analyser:
    return Analyser(settings_for(tmp_path_factory.mktemp("smol-home")), backend=smol)


def callback_record() -> CallRecord:
    lines = [
        ("agent", "Good afternoon, Brightline Home Services, Sarah speaking, calls are recorded. How can I help?"),
        ("customer", "Hi, the engineer said someone would call about the oven part. My number is 07700 900123."),
        ("agent", "Sorry about that. The part isn't confirmed yet. I'll call you back tomorrow morning at ten."),
        ("customer", "Okay, tomorrow at ten then. Thanks."),
        ("agent", "Is there anything else I can help with? ... Thanks for calling, goodbye."),
    ]
    turns = [Turn(index=i, role=r, track=int(r == "customer"), start=i * 5.0, end=i * 5.0 + 4.5, text=t)
             for i, (r, t) in enumerate(lines)]
    return CallRecord(pipeline_version="test", record_id="cb-test", audio_sha256="0" * 64, source="test",
                      file_name="cb.wav", metadata=CallMetadata(call_time=datetime(2026, 11, 20, 16, 40)), turns=turns)


def test_embedded_backend_answers_schema_valid_json_with_usage(smol: EmbeddedLLM) -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["mood", "why"],
              "properties": {"mood": {"type": "string", "enum": ["positive", "neutral", "negative"]},
                             "why": {"type": "string", "maxLength": 40}}}
    value, usage = smol.complete_json("Answer in JSON.", "Customer: this is the worst service ever!", schema)
    assert set(value) == {"mood", "why"} and value["mood"] in {"positive", "neutral", "negative"}
    assert len(value["why"]) <= 40
    assert usage.backend == "embedded" and usage.model == "smollm2-135m"
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.raw.startswith('{"mood":')  # compact JSON: no whitespace tokens to pay for


def test_analyser_fills_every_field_and_redacts_pii(smol_analyser: Analyser) -> None:
    record = smol_analyser.run(CallState(record=callback_record())).record
    assert record.analysis_status == "done", record.errors
    a = record.analysis
    assert a is not None and a.complete
    assert a.category in smol_analyser.taxonomy.categories
    assert a.classification is not None and a.classification.evidence and a.classification.justification
    assert a.sentiment is not None and a.sentiment.customer.at("start") and a.sentiment.customer.at("end")
    assert {i.id for i in a.compliance} >= {"greeting", "identity_verification", "disclosure",
                                            "prohibited_phrases", "further_help", "closing"}
    assert a.callback.promised and a.callback.due is not None
    assert a.callback.due == datetime(2026, 11, 21, 10, 0, tzinfo=a.callback.due.tzinfo)
    assert a.summary and a.keywords and a.customer_satisfaction and a.agent_performance
    assert "callback_promised" in {f.name for f in a.flags}
    assert a.model == "smollm2-135m" and a.prompt_version and a.taxonomy_version
    assert a.llm.calls >= 1 and a.llm.prompt_tokens > 0
    assert [p.kind for p in a.pii] == ["phone"] and "[PHONE]" in record.turns[1].text
    assert "07700" not in record.transcript_text
    assert record.stage("analyse") is not None and record.stage("analyse").model == "smollm2-135m"  # type: ignore[union-attr]
    assert set(a.flat_fields()) == {"category", "subcategory", "flags", "customer_sentiment", "agent_sentiment",
                                    "failed_compliance_items", "callback_due", "callback_window_end",
                                    "callback_status", "callback_promised"}
    # The record round-trips through JSON (the store and Ray rows carry it that way).
    assert CallRecord.model_validate_json(record.model_dump_json()).analysis == a


def test_the_disclosure_question_follows_the_audit_when_the_identity_rules_found_none(
        smol: EmbeddedLLM, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    settings.analysis.ask_disclosure = True
    record = Analyser(settings, backend=smol).run(CallState(record=callback_record())).record
    a = record.analysis
    assert a is not None and a.complete
    identity = next(i for i in a.compliance if i.id == "identity_verification")
    # The rules saw no disclosure, so the model was asked once more; its answer decides the item's source.
    assert a.llm.calls == 2
    assert (identity.status == "not_applicable") == (identity.source == "rule")
    assert identity.source == "rule" or "the LLM heard account details" in identity.reason


class FakeNonsenseLLM(LLMBackend):
    """Stands for a model that answers with something that is not JSON (cannot be caused on demand)."""

    name = "fake-nonsense"

    def __init__(self) -> None:
        self.calls = 0

    def model_for(self, tier: str) -> str:
        return "nonsense-1"

    def complete_json(self, system: str, user: str, schema: Mapping[str, Any],
                      tier: str = "fast") -> tuple[dict[str, Any], LLMUsage]:
        self.calls += 1
        return parse_json_object("Sure! Here is what I think about this call: it went fine."), LLMUsage(
            "fake", "nonsense-1")


def test_invalid_output_gets_one_repair_attempt_then_fails_keeping_the_transcript(tmp_path: Path) -> None:
    fake = FakeNonsenseLLM()
    analyser = Analyser(settings_for(tmp_path), backend=fake)
    original = callback_record()
    record = analyser.run(CallState(record=original.model_copy(deep=True))).record
    assert fake.calls == 2
    assert record.analysis_status == "failed"
    assert [e.code for e in record.errors if e.stage == "analyse"] == ["llm_invalid_output"]
    assert len(record.turns) == len(original.turns)
    assert record.analysis is not None and not record.analysis.complete
    assert record.analysis.callback.promised  # the rules' findings are kept
    assert "analysis_incomplete" in {f.name for f in record.analysis.flags}


def test_unreachable_ollama_leaves_analysis_pending_and_reanalyse_completes_it(
    tmp_path: Path, smol_analyser: Analyser
) -> None:
    offline = Analyser(settings_for(tmp_path, backend="ollama", ollama_host=f"http://127.0.0.1:{closed_port()}",
                                    ollama_timeout_s=2.0))
    assert isinstance(offline.backend, OllamaLLM)
    pending = offline.run(CallState(record=callback_record())).record
    assert pending.analysis_status == "pending"
    assert [e.code for e in pending.errors] == ["llm_unavailable"]
    assert pending.analysis is not None and pending.analysis.callback.promised
    assert "[PHONE]" in pending.turns[1].text

    done = reanalyse(pending, smol_analyser)
    assert done.analysis_status == "done" and not done.errors
    assert done.analysis is not None and done.analysis.complete and done.analysis.llm.calls >= 1
    assert done.turns == pending.turns  # nothing re-transcribed, PII stays redacted
    assert [p.kind for p in done.analysis.pii] == ["phone"]  # spans survive the re-run


def test_empty_call_is_decided_without_the_llm(tmp_path: Path) -> None:
    # An unreachable LLM: any attempt to use it would leave the analysis pending.
    analyser = Analyser(settings_for(tmp_path, backend="ollama", ollama_host=f"http://127.0.0.1:{closed_port()}"))
    turns = [Turn(index=0, role="agent", track=0, start=0.5, end=3.0, text="Brightline, Tom speaking, hello?"),
             Turn(index=1, role="customer", track=1, start=4.0, end=4.6, text="Hello? Hello?")]
    record = CallRecord(pipeline_version="t", record_id="empty", audio_sha256="1" * 64, source="t", file_name="e",
                        turns=turns)
    record = analyser.run(CallState(record=record)).record
    assert record.analysis_status == "done"
    a = record.analysis
    assert a is not None and a.empty_call and a.category == "Empty Call" and a.classification is not None
    assert a.classification.source == "rule" and a.llm.calls == 0
    assert "empty_call" in {f.name for f in a.flags}


def test_a_pocket_dial_the_agent_names_is_an_empty_call_whatever_the_caller_mumbled(tmp_path: Path) -> None:
    analyser = Analyser(settings_for(tmp_path, backend="ollama", ollama_host=f"http://127.0.0.1:{closed_port()}"))
    turns = [Turn(index=0, role="agent", track=0, start=0.5, end=3.0, text="Harwell Pest Control, Dan speaking."),
             Turn(index=1, role="customer", track=1, start=4.0, end=9.0,
                  text="no I told him the blue one, the blue one, we'll get the bus after the shops then"),
             Turn(index=2, role="agent", track=0, start=10.0, end=14.0,
                  text="Hello? I think you might have called us by accident. I'm going to end the call now. Bye.")]
    record = CallRecord(pipeline_version="t", record_id="pocket", audio_sha256="2" * 64, source="t", file_name="p",
                        turns=turns)
    a = analyser.run(CallState(record=record)).record.analysis
    assert a is not None and a.category == "Empty Call" and a.llm.calls == 0
    assert a.classification is not None and "by accident" in a.classification.justification


def test_disabled_analysis_is_skipped(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, analysis={"enabled": False})
    record = Analyser(settings).run(CallState(record=callback_record())).record
    assert record.analysis_status == "skipped" and record.analysis is None


def test_auto_backend_falls_back_to_embedded_when_ollama_does_not_answer(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, backend="auto", ollama_host=f"http://127.0.0.1:{closed_port()}")
    backend = make_backend(settings)
    try:
        assert isinstance(backend, EmbeddedLLM) and backend.model_for("deep") == "smollm2-135m"
    finally:
        backend.close()


def test_think_blocks_and_chatter_around_json_are_removed() -> None:
    answer = '<think>The caller is angry, so negative.</think>\n```json\n{"mood": "negative"}\n```'
    assert parse_json_object(answer) == {"mood": "negative"}
    assert strip_think("<think>never finished") == ""
    with pytest.raises(LLMInvalidOutput):
        parse_json_object('{"mood": "neg')


def test_enum_probabilities_come_from_token_logprobs() -> None:
    # Tokens as llama.cpp reports them: the value's first token carries the choice.
    tokens = [TokenLogprob('{"', []), TokenLogprob("mood", []), TokenLogprob('":"', []),
              TokenLogprob("neg", [("neg", -0.2), ("neutral", -1.9), ("pos", -3.0), ("%", -4.0)]),
              TokenLogprob("ative", []), TokenLogprob('"}', [])]
    content = "".join(t.token for t in tokens)
    assert json.loads(content) == {"mood": "negative"}
    schema = {"properties": {"mood": {"enum": ["positive", "neutral", "negative"]}}}
    probs = enum_choice_probs(content, tokens, schema)["mood"]
    assert max(probs, key=lambda k: probs[k]) == "negative"
    assert abs(sum(probs.values()) - 1.0) < 1e-3 and probs["neutral"] > probs["positive"] > 0


def test_analysis_model_has_no_dependency_on_the_record_module() -> None:
    import ast

    import pipeline.analysis_schema as schema_module

    tree = ast.parse(Path(schema_module.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and m.startswith("pipeline")}
    assert Analysis().flat_fields()["callback_promised"] is False


def test_reanalyse_command_completes_pending_records_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.__main__ import main

    offline = Analyser(settings_for(tmp_path, backend="ollama", ollama_host=f"http://127.0.0.1:{closed_port()}"))
    pending = offline.run(CallState(record=callback_record())).record
    path = tmp_path / "records.jsonl"
    path.write_text(pending.model_dump_json() + "\n")
    for key, value in {"HOME": str(tmp_path), "MODELS_DIR": str(MODELS), "LLM__BACKEND": "embedded",
                       "LLM__EMBEDDED_MODEL": "smollm2-135m", "LLM__MAX_TOKENS": "256",
                       "ANALYSIS__CLASSIFIER": "off"}.items():
        monkeypatch.setenv(f"CALLAUDIT_{key}", value)
    assert main(["reanalyse", str(path), "--only-pending"]) == 0
    [record] = [CallRecord.model_validate_json(line) for line in path.read_text().splitlines()]
    assert record.analysis_status == "done" and record.analysis is not None and record.analysis.complete
