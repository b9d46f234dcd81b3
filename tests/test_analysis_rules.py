"""Deterministic parts of the analysis: empty calls, review flags, taxonomy, analysis flat fields."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from pipeline.analysis.analyser import is_empty_call, keywords_of
from pipeline.analysis.flags import CallSignals, FlagConfig, evaluate_flags
from pipeline.analysis.sentiment import build_sentiment, satisfaction
from pipeline.analysis.taxonomy import Taxonomy
from pipeline.analysis.text import TurnView, compact_transcript
from pipeline.analysis_schema import Analysis, CallbackResult, Classification, ComplianceItemResult
from pipeline.records import CallMetrics
from pipeline.settings import AnalysisSettings


def _turns(*lines: tuple[str, str]) -> list[TurnView]:
    return [TurnView(index=i, role=role, text=text, start=i * 4.0, end=i * 4.0 + 3) for i, (role, text) in
            enumerate(lines)]


SETTINGS = AnalysisSettings()


def test_call_with_no_speech_at_all_is_empty() -> None:
    empty, reason = is_empty_call([], CallMetrics(duration_s=12.0), SETTINGS)
    assert empty and "speech" in reason


def test_caller_saying_only_hello_and_can_you_hear_me_is_empty() -> None:
    turns = _turns(("agent", "Brightline, Kate speaking, how can I help?"), ("customer", "Hello? Hello?"),
                   ("agent", "Hello, can you hear me?"), ("customer", "Alo, duyuyor musunuz?"),
                   ("agent", "It seems we have a bad line, please call back. Bye now."))
    empty, reason = is_empty_call(turns, None, SETTINGS)
    assert empty and "0 meaningful words" in reason


def test_agent_talking_alone_is_empty() -> None:
    turns = _turns(("agent", "Good morning, Brightline, Tom speaking."), ("agent", "Hello? Is anyone there?"))
    assert is_empty_call(turns, None, SETTINGS)[0]


def test_a_short_real_request_is_not_empty() -> None:
    turns = _turns(("agent", "Brightline, how can I help?"), ("customer", "My boiler is leaking water."))
    assert not is_empty_call(turns, None, SETTINGS)[0]


def test_taxonomy_flat_labels_map_back_to_category_and_subcategory() -> None:
    taxonomy = Taxonomy.load(SETTINGS.taxonomy_file)
    assert "Empty Call" not in taxonomy.label_names  # decided by rule, never offered to the LLM
    assert {"Potential Customer", "Price Research", "Uncertain"} <= set(taxonomy.label_names)
    assert taxonomy.split("Price Research") == ("Unnecessary Call", "Price Research")
    assert taxonomy.split("Potential Customer") == ("Potential Customer", None)
    assert taxonomy.flat("Unnecessary Call", "Complaint") == "Complaint"
    assert taxonomy.topics_of("the boiler has no hot water and the radiator is cold")[0] == "heating"


def test_long_transcripts_keep_their_start_and_end() -> None:
    turns = _turns(*[("customer" if i % 2 else "agent", f"turn number {i} " + "words " * 30) for i in range(60)])
    text = compact_transcript(turns, 2000)
    assert len(text) <= 2100 and "[0] Agent" in text and "[59] Customer" in text and "omitted" in text


def test_keywords_favour_repeated_customer_words() -> None:
    turns = _turns(("customer", "The boiler is leaking, the boiler pressure drops"), ("agent", "Boiler pressure?"))
    assert keywords_of(turns)[:2] == ["boiler", "pressure"]


def _analysis(**overrides: object) -> Analysis:
    turns = _turns(("customer", "This is terrible, nobody came!"), ("agent", "Sorry."),
                   ("customer", "I'm still angry."))
    values: dict[str, object] = {
        "category": "Unnecessary Call", "subcategory": "Complaint", "category_confidence": 0.9,
        "classification": Classification(category="Unnecessary Call", subcategory="Complaint", confidence=0.9),
        "sentiment": build_sentiment(turns, "negative", "negative", "neutral"),
        "compliance": [ComplianceItemResult(id="greeting", status="fail", reason="opening lacks the agent's name"),
                       ComplianceItemResult(id="closing", status="pass")],
        "callback": CallbackResult(promised=True, due=datetime(2026, 11, 21, 9), status="pending", by="agent"),
    }
    values.update(overrides)
    return Analysis(**values)


@pytest.fixture(scope="module")
def flag_config() -> FlagConfig:
    return FlagConfig.load(SETTINGS.flags_file)


def test_flags_fire_with_their_reasons(flag_config: FlagConfig) -> None:
    flags = {f.name: f.reason for f in evaluate_flags(flag_config, _analysis(), CallSignals(asr_confidence=0.45))}
    assert set(flags) >= {"negative_sentiment", "compliance_failure", "callback_promised", "complaint",
                          "low_asr_confidence"}
    assert "greeting" in flags["compliance_failure"]
    assert "2026-11-21 09:00" in flags["callback_promised"]
    assert "rude_agent" not in flags and "empty_call" not in flags


def test_low_confidence_and_missing_due_time_flags(flag_config: FlagConfig) -> None:
    analysis = _analysis(category_confidence=0.3,
                         callback=CallbackResult(promised=True, status="pending"))
    names = {f.name for f in evaluate_flags(flag_config, analysis, CallSignals())}
    assert {"low_classification_confidence", "callback_without_due_time"} <= names


def test_flags_can_be_switched_off_in_yaml(tmp_path: Path) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text("flags:\n  - {name: complaint, rule: category, subcategories: [Complaint], enabled: false}\n"
                    "  - {name: unhappy, rule: customer_sentiment, phases: [start], labels: [negative]}\n")
    names = [f.name for f in evaluate_flags(FlagConfig.load(path), _analysis(), CallSignals())]
    assert names == ["unhappy"]


def test_unknown_flag_rule_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text("flags:\n  - {name: x, rule: no_such_rule}\n")
    with pytest.raises(ValueError, match="no_such_rule"):
        FlagConfig.load(path)


def test_flat_fields_are_exactly_what_the_store_indexes() -> None:
    flat = _analysis().flat_fields()
    assert set(flat) == {"category", "subcategory", "flags", "customer_sentiment", "agent_sentiment",
                         "failed_compliance_items", "callback_due", "callback_window_end", "callback_status",
                         "callback_promised"}
    assert flat["customer_sentiment"] == "negative" and flat["failed_compliance_items"] == ["greeting"]
    assert flat["callback_due"] == datetime(2026, 11, 21, 9) and flat["callback_status"] == "pending"


def test_trajectory_shows_started_angry_ended_satisfied() -> None:
    turns = _turns(("customer", "I'm furious, water everywhere!"), ("agent", "Booking now."),
                   ("customer", "Thank you so much."))
    sentiment = build_sentiment(turns, "negative", "positive", "positive")
    start, end = sentiment.customer.at("start"), sentiment.customer.at("end")
    assert start is not None and end is not None
    assert (start.label, end.label) == ("negative", "positive")
    assert start.evidence is not None and start.evidence.turn == 0 and end.evidence.turn == 2  # type: ignore[union-attr]
    assert satisfaction(sentiment) >= 4


def test_sentiment_thresholds_turn_probabilities_into_labels() -> None:
    turns = _turns(("customer", "Okay, thanks."), ("agent", "You're welcome."))
    probs = {"customer_start": {"positive": 0.5, "neutral": 0.5, "negative": 0.0},
             "customer_end": {"positive": 0.55, "neutral": 0.45, "negative": 0.0},
             "agent": {"positive": 0.3, "neutral": 0.6, "negative": 0.1}}
    thresholds = {"customer": (-0.35, 0.6), "agent": (-0.55, -0.15)}
    result = build_sentiment(turns, "positive", "positive", "neutral", probs, thresholds=thresholds)
    # A polite "okay, thanks" scoring 0.55 stays neutral; an agent leaning neither way is positive.
    assert result.customer.at("end").label == "neutral"  # type: ignore[union-attr]
    assert result.agent.label == "positive"
    # Without probabilities (an Ollama server that gives none) the model's own labels stand.
    plain = build_sentiment(turns, "positive", "positive", "neutral", thresholds=thresholds)
    assert plain.customer.at("end").label == "positive" and plain.agent.label == "neutral"  # type: ignore[union-attr]


def test_a_company_profile_tells_the_llm_what_the_company_sells_and_is_picked_per_queue(tmp_path: Path) -> None:
    from pipeline.analysis.analyser import Analyser
    from pipeline.records import CallMetadata, CallRecord
    from pipeline.settings import Settings

    settings = Settings(home=tmp_path, analysis={"enabled": False, "companies": [
        {"name": "Northfield Broadband", "sector": "internet provider", "sells": "fibre broadband plans",
         "queues": ["sales"]},
        {"name": "Acme Insurance", "sector": "insurer", "sells": "home and car policies", "queues": ["claims"]},
    ]})
    analyser = Analyser(settings)

    def record(queue: str) -> CallRecord:
        return CallRecord(pipeline_version="t", record_id="r", audio_sha256="a", source="s", file_name="f",
                          metadata=CallMetadata(queue=queue))

    profile = analyser.company_for(record("claims"))
    assert profile is not None and profile.name == "Acme Insurance"
    assert "Acme Insurance, insurer which sells home and car policies" in analyser.system_prompt_for(profile)
    assert analyser.company_for(record("unknown")) is None
    assert "home-services" in analyser.system_prompt_for(None)  # the prompt's default business


def test_the_exported_company_and_sector_describe_the_business_to_the_llm(tmp_path: Path) -> None:
    from pipeline.analysis.analyser import Analyser
    from pipeline.records import CallMetadata, CallRecord
    from pipeline.settings import Settings

    def record(**extra: str) -> CallRecord:
        return CallRecord(pipeline_version="t", record_id="r", audio_sha256="a", source="s", file_name="f",
                          metadata=CallMetadata(extra=extra))

    analyser = Analyser(Settings(home=tmp_path, analysis={"enabled": False, "business_from_metadata": True}))
    bank = analyser.company_for(record(company="Merrow & Pike Bank", sector="bank (mortgages, credit cards)"))
    assert bank is not None
    prompt = analyser.system_prompt_for(bank)
    assert "Merrow & Pike Bank, bank (mortgages, credit cards)" in prompt and "home-services" not in prompt
    assert analyser.company_for(record(company="Merrow & Pike Bank")) is None  # no sector: the default business
    off = Analyser(Settings(home=tmp_path, analysis={"enabled": False}))  # the default: one shared prompt
    assert off.company_for(record(company="Merrow & Pike Bank", sector="bank")) is None


def test_a_call_dropped_on_the_customers_first_words_ends_in_the_mood_it_started(tmp_path: Path) -> None:
    from collections.abc import Mapping
    from typing import Any

    from pipeline.analysis.analyser import Analyser
    from pipeline.analysis.llm import LLMBackend, LLMUsage
    from pipeline.records import CallRecord, Turn
    from pipeline.settings import Settings
    from pipeline.stage import CallState

    class UpsetReader(LLMBackend):
        """Stands for the 1.5B model reading a caller cut off mid-sentence as upset at the end."""

        name = "fixed"

        def model_for(self, tier: str) -> str:
            return "fixed-1"

        def complete_json(self, system: str, user: str, schema: Mapping[str, Any],
                          tier: str = "fast") -> tuple[dict[str, Any], LLMUsage]:
            return ({"turn": 1, "label": "Uncertain", "customer_start": "neutral", "customer_end": "negative",
                     "agent": "positive", "callback": -1}, LLMUsage("fixed", "fixed-1"))

    lines = [("agent", "Good afternoon, Merrow and Pike, Zainab speaking. Calls are recorded. How can I help?"),
             ("customer", "Hi, yeah, um, I was just wondering about the thing with the account, the one that, when "
                          "it goes under, the—"),
             ("agent", "Is it about your overdraft, or...? Hello?")]
    turns = [Turn(index=i, role=r, track=0 if r == "agent" else 1, start=i * 5.0, end=i * 5.0 + 4, text=t)
             for i, (r, t) in enumerate(lines)]
    record = CallRecord(pipeline_version="t", record_id="r", audio_sha256="a", source="s", file_name="f", turns=turns)
    settings = Settings(home=tmp_path, analysis={"sentiment_calibration_file": None, "warm_up": False})
    analysed = Analyser(settings, backend=UpsetReader()).run(CallState(record=record)).record
    assert analysed.analysis is not None and analysed.analysis.sentiment is not None
    end = analysed.analysis.sentiment.customer.at("end")
    assert end is not None and end.label == "neutral"
