"""Evaluate the analyse stage on the labelled dev set (bench/devset/*.yaml) as text.

Each call script becomes a CallRecord (turn timings estimated from word counts), goes through
``Analyser`` exactly as in the pipeline, and its analysis is scored against the script's labels:

  category accuracy and macro-F1, subcategory accuracy (on calls labelled Unnecessary Call), callback
  promised precision/recall/F1, callback due exact-hour rate (true promises with a due time), compliance
  failure precision/recall (over call x item), customer-sentiment-at-end and agent-sentiment accuracy,
  seconds, LLM seconds and tokens per call.

``--baseline`` also runs the plain single JSON-schema prompt (prompts/baseline.yaml) on the same model,
``--learning K`` measures the learning-from-corrections loop: K-fold, the reviewer corrections of the
other folds (record_correction) train the classifier (CallClassifier, as in the stage), which labels
the held-out fold; compared with the classifier from seed examples only and with the LLM's own label.

Label conventions for due times follow the QA rubric (relabelled 2026-12): morning 10:00, noon 12:00,
afternoon 15:00, evening 18:00, a deadline day ("by Friday") 17:00, a day without a time 10:00, "later today"
+2 h, "in N hours" exact (settings can change these). bench/eval_rubric.py scores every rubric field.

Usage::

    python -m bench.eval_analysis --models qwen2.5-coder-1.5b [--baseline] [--learning 4] [--limit N]
    python -m bench.eval_analysis --backend ollama --models gemma3:4b --ollama-host http://127.0.0.1:11434
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bench.report_table import metrics_table
from pipeline import PIPELINE_VERSION
from pipeline.analysis.analyser import Analyser, turn_views
from pipeline.analysis.classifier import CallClassifier, classifier_text, corrections_store, record_correction
from pipeline.analysis.llm import LLMBackend, LLMError, LLMUsage, make_backend
from pipeline.analysis.prompts import Prompt
from pipeline.analysis.taxonomy import Taxonomy
from pipeline.analysis.text import compact_transcript
from pipeline.records import CallMetadata, CallRecord, Turn, make_record_id
from pipeline.settings import AnalysisSettings, Settings
from pipeline.stage import CallState

REPO = Path(__file__).resolve().parent.parent
DEVSET = REPO / "bench" / "devset"
OUT = REPO / "bench" / "out"
COMPLIANCE_ITEMS = ("greeting", "identity_verification", "disclosure", "prohibited_phrases", "further_help",
                    "closing")  # fmt: skip
WORDS_PER_SECOND = 2.6

log = logging.getLogger("bench.eval_analysis")


# ---------------------------------------------------------------------------------------------
# Dev set -> records
# ---------------------------------------------------------------------------------------------
@dataclass
class Script:
    id: str
    language: str
    call_time: datetime
    turns: list[dict[str, Any]]
    labels: dict[str, Any]
    agent_name: str | None = None
    company: str | None = None


def load_devset(folder: Path = DEVSET) -> list[Script]:
    scripts = []
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        scripts.append(Script(
            id=str(data["id"]), language=str(data.get("language", "en")),
            call_time=datetime.fromisoformat(str(data["call_time"])), turns=list(data.get("turns") or []),
            labels=dict(data.get("labels") or {}), agent_name=data.get("agent_name"), company=data.get("company"),
        ))
    return scripts


def script_to_record(script: Script, with_names: bool = False) -> CallRecord:
    """A record as the conversation stage would give it: ordered turns with roles and timings."""
    turns = []
    clock = 0.5
    for i, raw in enumerate(script.turns):
        clock += float(raw.get("pause", 0.4))
        duration = max(0.6, len(str(raw["text"]).split()) / WORDS_PER_SECOND)
        turns.append(Turn(index=i, role=str(raw["role"]), track=0 if raw["role"] == "agent" else 1,
                          start=round(clock, 2), end=round(clock + duration, 2), text=str(raw["text"])))
        clock += duration
    extra = {}
    if with_names:
        extra = {k: v for k, v in (("company", script.company), ("agent_name", script.agent_name)) if v}
    digest = f"{script.id:0<24}"[:24]
    return CallRecord(
        pipeline_version=PIPELINE_VERSION, record_id=make_record_id(digest, PIPELINE_VERSION), audio_sha256=digest,
        source=f"devset/{script.id}.yaml", file_name=f"{script.id}.yaml", language=script.language,
        metadata=CallMetadata(call_time=script.call_time, extra=extra), turns=turns,
    )


# ---------------------------------------------------------------------------------------------
# Predictions in one comparable shape
# ---------------------------------------------------------------------------------------------
@dataclass
class Prediction:
    id: str
    category: str | None
    subcategory: str | None
    customer_end: str | None
    agent: str | None
    callback: bool
    due: datetime | None
    compliance: dict[str, str]
    seconds: float
    # Process CPU time: with one LLM thread this is what the call costs on an idle core, whatever the
    # other processes on a shared machine are doing to the wall-clock time.
    cpu_seconds: float = 0.0
    llm_seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failed: bool = False
    scores: dict[str, float] = field(default_factory=dict)
    facts: dict[str, float] = field(default_factory=dict)
    llm_label: str | None = None
    llm_scores: dict[str, float] = field(default_factory=dict)
    customer_start: str | None = None
    sentiment_probs: dict[str, float] = field(default_factory=dict)


class AudioCalls:
    """Scripts rendered to stereo audio (bench.synth) and transcribed by the real pipeline (no analysis):
    the records the analyser would get from real recordings.

    Every third call is rendered as a noisy 8 kHz mu-law telephone line (band-limited, pink noise at
    15 dB SNR), the rest as clean 16 kHz WAV, so the score covers both kinds of line. Transcripts are
    cached under bench/out/audio_cache keyed by the script's bytes, the condition and the Whisper model:
    analysis settings can then be compared without transcribing again.
    """

    NOISY_EVERY = 3

    def __init__(self, settings: Settings, folder: Path, devset: Path, cache: Path | None = None) -> None:
        from pipeline.runner import CallPipeline

        self.settings = settings
        self._pipeline: CallPipeline | None = None
        self.folder = folder
        self.devset = devset
        self.cache = cache
        self.asr_seconds: dict[str, float] = {}
        self.conditions: dict[str, str] = {}

    @property
    def pipeline(self) -> Any:
        from pipeline.runner import CallPipeline

        if self._pipeline is None:
            self._pipeline = CallPipeline(self.settings, analyse=False)
        return self._pipeline

    def condition(self, script_id: str) -> str:
        number = int("".join(ch for ch in script_id if ch.isdigit()) or 0)
        return "noisy8k" if number % self.NOISY_EVERY == 0 else "clean"

    def record(self, script: Script, with_names: bool) -> CallRecord:
        import hashlib

        from bench.synth import CallScript, RenderOptions, render_call, write_call

        path = self.devset / f"{script.id}.yaml"
        condition = self.condition(script.id)
        self.conditions[script.id] = condition
        extra = {}
        if with_names:
            extra = {k: v for k, v in (("company", script.company), ("agent_name", script.agent_name)) if v}
        key = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        model = self.settings.transcribe.model
        cached = self.cache / f"{script.id}-{condition}-{model}-{key}.json" if self.cache else None
        if cached is not None and cached.exists():
            data = json.loads(cached.read_text(encoding="utf-8"))
            self.asr_seconds[script.id] = float(data["asr_seconds"])
            record = CallRecord.model_validate(data["record"])
            record.metadata = CallMetadata(call_time=script.call_time, extra=extra)
            return record
        options = (RenderOptions(fmt="mulaw8k", noise_snr_db=15.0) if condition == "noisy8k"
                   else RenderOptions(fmt="wav"))
        audio_path, _ = write_call(render_call(CallScript.load(path), options), self.folder)
        started = time.perf_counter()
        record = self.pipeline.process_file(audio_path, CallMetadata(call_time=script.call_time, extra=extra))
        self.asr_seconds[script.id] = time.perf_counter() - started
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps({"asr_seconds": self.asr_seconds[script.id],
                                          "record": record.model_dump(mode="json")}), encoding="utf-8")
        return record


class CachedAnswers(LLMBackend):
    """Wraps a backend and replays its earlier answers for the same (model, system, user, schema, tier).

    For comparing settings that do not change what the LLM is asked (classifier, thresholds, rules):
    the LLM's answer and its recorded cost are replayed, so seconds per call stay the measured ones.
    Delete bench/out/llm_cache (or pass --no-cache) to measure afresh.
    """

    def __init__(self, inner: LLMBackend, folder: Path) -> None:
        self.inner = inner
        self.name = inner.name
        self.folder = folder
        self.hits = 0
        self._warm_for: str | None = None

    def _key(self, system: str, user: str, schema: Mapping[str, Any], tier: str) -> str:
        import hashlib

        blob = json.dumps([self.inner.model_for(tier), system, user, schema, tier], sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]

    def _replayed(self, key: str, ask: Callable[[], tuple[dict[str, Any], LLMUsage]]
                  ) -> tuple[dict[str, Any], LLMUsage]:
        """The answer cached under ``key``, else ``ask()``'s, cached."""
        path = self.folder / f"{key}.json"
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            self.hits += 1
            return data["value"], LLMUsage(**data["usage"])
        value, usage = ask()
        self.folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"value": value, "usage": usage.__dict__}), encoding="utf-8")
        return value, usage

    def complete_json(
        self, system: str, user: str, schema: Mapping[str, Any], tier: str = "fast"
    ) -> tuple[dict[str, Any], LLMUsage]:
        def ask() -> tuple[dict[str, Any], LLMUsage]:
            if self._warm_for is not None:  # warm only when a real call is needed
                self.inner.warm(self._warm_for)
                self._warm_for = None
            return self.inner.complete_json(system, user, schema, tier)

        return self._replayed(self._key(system, user, schema, tier), ask)

    def follow_up(
        self, system: str, user: str, answer: str, question: str, schema: Mapping[str, Any], tier: str = "fast"
    ) -> tuple[dict[str, Any], LLMUsage]:
        conversation = "\n".join((user, answer, question))
        return self._replayed(self._key(system, conversation, schema, tier),
                              lambda: self.inner.follow_up(system, user, answer, question, schema, tier))

    def model_for(self, tier: str) -> str:
        return self.inner.model_for(tier)

    def warm(self, system: str) -> None:
        self._warm_for = system

    def close(self) -> None:
        self.inner.close()


def predict_with_analyser(analyser: Analyser, script: Script, with_names: bool,
                          audio: AudioCalls | None = None) -> Prediction:
    record = audio.record(script, with_names) if audio else script_to_record(script, with_names)
    started, cpu_started = time.perf_counter(), time.process_time()
    record = analyser.run(CallState(record=record)).record
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    a = record.analysis
    if a is None:
        return Prediction(script.id, None, None, None, None, False, None, {}, seconds, cpu_seconds, failed=True)
    end = a.sentiment.customer.at("end") if a.sentiment else None
    return Prediction(
        id=script.id, category=a.category, subcategory=a.subcategory,
        customer_end=end.label if end else None, agent=a.sentiment.agent.label if a.sentiment else None,
        callback=a.callback.promised, due=a.callback.due.replace(tzinfo=None) if a.callback.due else None,
        compliance={i.id: i.status for i in a.compliance}, seconds=seconds, cpu_seconds=cpu_seconds,
        llm_seconds=a.llm.seconds,
        prompt_tokens=a.llm.prompt_tokens, completion_tokens=a.llm.completion_tokens,
        failed=record.analysis_status != "done",
        scores=dict(a.classification.scores) if a.classification else {},
        facts=dict(a.classification.facts) if a.classification else {},
        llm_label=a.classification.llm_label if a.classification else None,
        llm_scores=dict(a.classification.llm_scores) if a.classification else {},
        customer_start=(a.sentiment.customer.at("start").label  # type: ignore[union-attr]
                        if a.sentiment and a.sentiment.customer.at("start") else None),
        sentiment_probs={"customer_end": end.score if end else 0.0,
                         "agent": a.sentiment.agent.score if a.sentiment else 0.0},
    )


class PlainBaseline:
    """One JSON-schema prompt asking for every field, no rules, no definitions: the issue-7 baseline."""

    def __init__(self, settings: Settings, backend: LLMBackend) -> None:
        self.backend = backend
        self.taxonomy = Taxonomy.load(settings.analysis.taxonomy_file)
        self.prompt = Prompt.load(settings.analysis.prompts_dir, "baseline")
        cats = self.taxonomy.categories
        subs = [label.subcategory for label in self.taxonomy.labels if label.subcategory]
        self.labels = "; ".join(
            f"{c}" + (f" (subcategories: {', '.join(s for s in subs if self.taxonomy.split(s)[0] == c)})"
                      if any(self.taxonomy.split(s)[0] == c for s in subs) else "") for c in cats)
        sentiment = {"type": "string", "enum": ["positive", "neutral", "negative"]}
        status = {"type": "string", "enum": ["pass", "fail", "not_applicable"]}
        self.schema = {
            "type": "object",
            "properties": {
                "category": {"type": "string", "enum": cats},
                "subcategory": {"type": "string", "enum": [*subs, "none"]},
                "customer_sentiment_end": sentiment,
                "agent_sentiment": sentiment,
                "callback_promised": {"type": "boolean"},
                "callback_due": {"type": "string", "maxLength": 25},
                "compliance": {"type": "object", "properties": {k: status for k in COMPLIANCE_ITEMS},
                               "required": list(COMPLIANCE_ITEMS), "additionalProperties": False},
            },
            "required": ["category", "subcategory", "customer_sentiment_end", "agent_sentiment", "callback_promised",
                         "callback_due", "compliance"],
            "additionalProperties": False,
        }

    def predict(self, script: Script) -> Prediction:
        record = script_to_record(script)
        transcript = compact_transcript(turn_views(record.turns), 6000)
        system = Prompt.fill(self.prompt.system, labels=self.labels)
        user = Prompt.fill(self.prompt.user, transcript=transcript, call_time=script.call_time.isoformat())
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            value, usage = self.backend.complete_json(system, user, self.schema)
        except LLMError:
            return Prediction(script.id, None, None, None, None, False, None, {}, time.perf_counter() - started,
                              time.process_time() - cpu_started, failed=True)
        due = None
        try:
            due = datetime.fromisoformat(str(value.get("callback_due"))) if value.get("callback_promised") else None
        except ValueError:
            due = None
        sub = value.get("subcategory")
        return Prediction(
            id=script.id, category=value.get("category"), subcategory=None if sub in (None, "none") else sub,
            customer_end=value.get("customer_sentiment_end"), agent=value.get("agent_sentiment"),
            callback=bool(value.get("callback_promised")), due=due.replace(tzinfo=None) if due else None,
            compliance=dict(value.get("compliance") or {}), seconds=time.perf_counter() - started,
            cpu_seconds=time.process_time() - cpu_started,
            llm_seconds=usage.seconds, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
        )


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------
def _f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def score(scripts: Sequence[Script], predictions: Sequence[Prediction]) -> dict[str, Any]:
    by_id = {p.id: p for p in predictions}
    pairs = [(s, by_id[s.id]) for s in scripts if s.id in by_id]
    n = len(pairs)
    cat_ok = sum(p.category == s.labels["category"] for s, p in pairs)
    categories = sorted({s.labels["category"] for s, _ in pairs})
    f1s = []
    for c in categories:
        tp = sum(p.category == c and s.labels["category"] == c for s, p in pairs)
        fp = sum(p.category == c and s.labels["category"] != c for s, p in pairs)
        fn = sum(p.category != c and s.labels["category"] == c for s, p in pairs)
        f1s.append(_f1(tp, fp, fn)[2])
    unnecessary = [(s, p) for s, p in pairs if s.labels["category"] == "Unnecessary Call"]
    sub_ok = sum(p.subcategory == s.labels.get("subcategory") for s, p in unnecessary)
    cb_tp = sum(p.callback and bool(s.labels["callback"]["promised"]) for s, p in pairs)
    cb_fp = sum(p.callback and not s.labels["callback"]["promised"] for s, p in pairs)
    cb_fn = sum(not p.callback and bool(s.labels["callback"]["promised"]) for s, p in pairs)
    cb_p, cb_r, cb_f1 = _f1(cb_tp, cb_fp, cb_fn)
    with_due = [(s, p) for s, p in pairs if s.labels["callback"]["promised"] and s.labels["callback"].get("due")]
    due_ok = 0
    for s, p in with_due:
        truth = datetime.fromisoformat(str(s.labels["callback"]["due"]))
        if p.due is not None and p.due.date() == truth.date() and p.due.hour == truth.hour:
            due_ok += 1
    c_tp = c_fp = c_fn = 0
    item_ok = item_n = 0
    for s, p in pairs:
        for item, truth in (s.labels.get("compliance") or {}).items():
            pred = p.compliance.get(item)
            item_n += 1
            item_ok += pred == truth
            c_tp += pred == "fail" and truth == "fail"
            c_fp += pred == "fail" and truth != "fail"
            c_fn += pred != "fail" and truth == "fail"
    c_p, c_r, c_f1 = _f1(c_tp, c_fp, c_fn)
    cust_ok = sum(p.customer_end == s.labels["customer_sentiment_end"] for s, p in pairs)
    agent_ok = sum(p.agent == s.labels["agent_sentiment"] for s, p in pairs)
    return {
        "calls": n,
        "category_accuracy": cat_ok / n if n else 0.0,
        "category_macro_f1": statistics.fmean(f1s) if f1s else 0.0,
        "subcategory_accuracy": sub_ok / len(unnecessary) if unnecessary else 0.0,
        "callback_precision": cb_p, "callback_recall": cb_r, "callback_f1": cb_f1,
        "callback_false_positives": cb_fp,
        "due_exact_hour": due_ok / len(with_due) if with_due else 0.0,
        "compliance_fail_precision": c_p, "compliance_fail_recall": c_r, "compliance_fail_f1": c_f1,
        "compliance_item_accuracy": item_ok / item_n if item_n else 0.0,
        "customer_sentiment_end_accuracy": cust_ok / n if n else 0.0,
        "agent_sentiment_accuracy": agent_ok / n if n else 0.0,
        "seconds_per_call": statistics.fmean(p.seconds for _, p in pairs) if pairs else 0.0,
        "cpu_seconds_per_call": statistics.fmean(p.cpu_seconds for _, p in pairs) if pairs else 0.0,
        "llm_seconds_per_call": statistics.fmean(p.llm_seconds for _, p in pairs) if pairs else 0.0,
        "prompt_tokens_per_call": statistics.fmean(p.prompt_tokens for _, p in pairs) if pairs else 0.0,
        "completion_tokens_per_call": statistics.fmean(p.completion_tokens for _, p in pairs) if pairs else 0.0,
        "failed_calls": sum(p.failed for _, p in pairs),
    }


def errors(scripts: Sequence[Script], predictions: Sequence[Prediction]) -> list[str]:
    """One line per wrong field, for reading what went wrong."""
    by_id = {p.id: p for p in predictions}
    lines = []
    for s in scripts:
        p = by_id.get(s.id)
        if p is None:
            continue
        want = s.labels
        if (p.category, p.subcategory) != (want["category"], want.get("subcategory")):
            wanted = want.get("subcategory") or want["category"]
            lines.append(f"{s.id} label: {p.subcategory or p.category} (want {wanted})")
        if p.customer_end != want["customer_sentiment_end"]:
            lines.append(f"{s.id} customer_end: {p.customer_end} (want {want['customer_sentiment_end']})")
        if p.agent != want["agent_sentiment"]:
            lines.append(f"{s.id} agent: {p.agent} (want {want['agent_sentiment']})")
        cb = want["callback"]
        if p.callback != bool(cb["promised"]):
            lines.append(f"{s.id} callback: {p.callback} (want {cb['promised']})")
        elif cb["promised"] and cb.get("due"):
            truth = datetime.fromisoformat(str(cb["due"]))
            if p.due is None or (p.due.date(), p.due.hour) != (truth.date(), truth.hour):
                lines.append(f"{s.id} due: {p.due} (want {truth})")
        for item, truth in (want.get("compliance") or {}).items():
            if p.compliance.get(item) != truth:
                lines.append(f"{s.id} compliance.{item}: {p.compliance.get(item)} (want {truth})")
    return lines


# ---------------------------------------------------------------------------------------------
# Learning from corrections (K-fold)
# ---------------------------------------------------------------------------------------------
def learning_curve(scripts: Sequence[Script], predictions: Sequence[Prediction], settings: Settings,
                   folds: int) -> dict[str, Any]:
    """Label accuracy of the classifier from seed examples only, and with the reviewer corrections of the
    other K-1 folds (recorded through record_correction, trained by CallClassifier as in the stage)."""
    taxonomy = Taxonomy.load(settings.analysis.taxonomy_file)
    by_id = {p.id: p for p in predictions}
    usable = [s for s in scripts if s.id in by_id and s.labels["category"] != "Empty Call"]
    texts = {s.id: classifier_text(turn_views(script_to_record(s).turns)) for s in usable}
    truth = {s.id: taxonomy.flat(s.labels["category"], s.labels.get("subcategory")) for s in usable}
    cfg = settings.analysis

    counts = {"llm": 0, "seed": 0, "corrected": 0, "cat_seed": 0, "cat_corrected": 0, "sub_n": 0,
              "sub_seed": 0, "sub_corrected": 0}
    with tempfile.TemporaryDirectory() as tmp:
        seed_only = CallClassifier.from_settings(Path(tmp), taxonomy, cfg)
        seed_only.train([])
        seed_pred = {s.id: _top(seed_only.predict(texts[s.id])) for s in usable}
    corrected_pred: dict[str, str] = {}
    for k in range(folds):
        test = [s for i, s in enumerate(usable) if i % folds == k]
        train = [s for i, s in enumerate(usable) if i % folds != k]
        with tempfile.TemporaryDirectory() as tmp:
            trained = corrected_classifier(train, Path(tmp), taxonomy, cfg)
            for s in test:
                corrected_pred[s.id] = _top(trained.predict(texts[s.id]))
    for s in usable:
        p = by_id[s.id]
        counts["llm"] += p.llm_label == truth[s.id]
        counts["seed"] += seed_pred[s.id] == truth[s.id]
        counts["corrected"] += corrected_pred[s.id] == truth[s.id]
        counts["cat_seed"] += taxonomy.split(seed_pred[s.id])[0] == s.labels["category"]
        counts["cat_corrected"] += taxonomy.split(corrected_pred[s.id])[0] == s.labels["category"]
        if s.labels["category"] == "Unnecessary Call":
            counts["sub_n"] += 1
            counts["sub_seed"] += seed_pred[s.id] == truth[s.id]
            counts["sub_corrected"] += corrected_pred[s.id] == truth[s.id]
    n = len(usable)
    return {
        "folds": folds, "calls_without_empty": n, "corrections_per_fold": round(n * (folds - 1) / folds),
        "label_accuracy_llm_label": counts["llm"] / n if n else 0.0,
        "label_accuracy_seed_classifier": counts["seed"] / n if n else 0.0,
        "label_accuracy_with_corrections": counts["corrected"] / n if n else 0.0,
        "category_accuracy_seed_classifier": counts["cat_seed"] / n if n else 0.0,
        "category_accuracy_with_corrections": counts["cat_corrected"] / n if n else 0.0,
        "subcategory_accuracy_seed_classifier": counts["sub_seed"] / counts["sub_n"] if counts["sub_n"] else 0.0,
        "subcategory_accuracy_with_corrections": (counts["sub_corrected"] / counts["sub_n"]
                                                  if counts["sub_n"] else 0.0),
    }


def corrected_classifier(reviewed: Iterable[Script], home: Path, taxonomy: Taxonomy,
                         cfg: AnalysisSettings) -> CallClassifier:
    """A classifier under ``home`` retrained after a reviewer corrected the category of every script in
    ``reviewed`` (through record_correction, as the API does)."""
    for script in reviewed:
        record = script_to_record(script)
        record_correction(record.record_id, {"category": script.labels["category"],
                                             "subcategory": script.labels.get("subcategory")},
                          home=home, text=classifier_text(turn_views(record.turns)))
    classifier = CallClassifier.from_settings(home, taxonomy, cfg)
    classifier.retrain_if_stale(corrections_store(home))
    return classifier


def _top(probs: dict[str, float]) -> str:
    return max(probs, key=lambda k: probs[k]) if probs else ""


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
ROWS = (
    ("category_accuracy", "category accuracy", "{:.0%}"),
    ("category_macro_f1", "category macro-F1", "{:.2f}"),
    ("subcategory_accuracy", "subcategory accuracy", "{:.0%}"),
    ("callback_f1", "callback promised F1", "{:.2f}"),
    ("callback_false_positives", "callback false positives", "{:d}"),
    ("due_exact_hour", "callback due exact hour", "{:.0%}"),
    ("compliance_fail_precision", "compliance-failure precision", "{:.2f}"),
    ("compliance_fail_recall", "compliance-failure recall", "{:.2f}"),
    ("customer_sentiment_end_accuracy", "customer sentiment at end", "{:.0%}"),
    ("agent_sentiment_accuracy", "agent sentiment", "{:.0%}"),
    ("seconds_per_call", "seconds per call (wall, shared CPU)", "{:.1f}"),
    ("cpu_seconds_per_call", "CPU seconds per call (1 thread)", "{:.1f}"),
    ("llm_seconds_per_call", "LLM seconds per call", "{:.1f}"),
    ("prompt_tokens_per_call", "prompt tokens per call", "{:.0f}"),
    ("completion_tokens_per_call", "completion tokens per call", "{:.0f}"),
    ("failed_calls", "failed/pending analyses", "{:d}"),
)


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = metrics_table(results, ROWS)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    scripts = load_devset(Path(args.devset))
    if args.only:
        wanted = set(args.only.split(","))
        scripts = [s for s in scripts if s.id in wanted]
    if args.limit:
        scripts = scripts[: args.limit]
    skipped = []
    if args.audio and args.audio_skip_languages:
        # No offline voice speaks these languages so that Whisper recognises them (README, "What does not
        # work here"): their rendered audio would test the voice, not the pipeline.
        languages = set(args.audio_skip_languages.split(","))
        skipped = [s.id for s in scripts if s.language in languages]
        scripts = [s for s in scripts if s.language not in languages]
    results: dict[str, dict[str, Any]] = {}
    details: dict[str, Any] = {}
    for model in [m for m in args.models.split(",") if m]:
        with tempfile.TemporaryDirectory() as tmp:
            llm: dict[str, Any] = {"backend": args.backend, "embedded_threads": args.threads}
            if args.backend == "ollama":
                llm.update(ollama_host=args.ollama_host, fast_model=model, deep_model=model)
            else:
                llm.update(embedded_model=model)
            analysis = json.loads(args.analysis) if args.analysis else {}
            settings = Settings(home=Path(tmp), models_dir=REPO / ".cache" / "callaudit" / "models", llm=llm,
                                analysis=analysis,
                                transcribe={"model": args.transcribe_model, "cpu_threads": args.threads})
            backend = make_backend(settings)
            if not args.no_cache:
                backend = CachedAnswers(backend, OUT / "llm_cache")
            analyser = Analyser(settings, backend=backend)
            started = time.perf_counter()
            analyser.warm_up()
            warm_s = time.perf_counter() - started
            predictions = []
            cache = None if args.no_cache else OUT / "audio_cache"
            audio = AudioCalls(settings, Path(tmp) / "audio", Path(args.devset), cache) if args.audio else None
            for i, script in enumerate(scripts):
                pred = predict_with_analyser(analyser, script, args.with_names, audio)
                predictions.append(pred)
                print(f"[{model}] {i + 1}/{len(scripts)} {script.id} {pred.subcategory or pred.category} "
                      f"{pred.seconds:.1f}s", file=sys.stderr, flush=True)
            name = f"{args.backend}:{model}" + (" (audio)" if audio else "")
            results[name] = {**score(scripts, predictions), "warm_up_seconds": round(warm_s, 1)}
            if skipped:
                results[name]["skipped_scripts"] = skipped
            if audio is not None:
                results[name]["asr_seconds_per_call"] = statistics.fmean(audio.asr_seconds.values())
                for condition in sorted(set(audio.conditions.values())):
                    subset = [s for s in scripts if audio.conditions.get(s.id) == condition]
                    picked = score(subset, predictions)
                    results[name][f"by_condition_{condition}"] = {
                        k: picked[k] for k in ("calls", "category_accuracy", "subcategory_accuracy", "callback_f1",
                                               "compliance_fail_recall", "customer_sentiment_end_accuracy",
                                               "agent_sentiment_accuracy")}
            details[name] = {"errors": errors(scripts, predictions),
                             "predictions": [p.__dict__ for p in predictions]}
            if args.learning:
                results[name]["learning"] = learning_curve(scripts, predictions, settings, args.learning)
            if args.baseline:
                baseline = PlainBaseline(settings, backend)
                base_preds = []
                for i, script in enumerate(scripts):
                    pred = baseline.predict(script)
                    base_preds.append(pred)
                    print(f"[baseline {model}] {i + 1}/{len(scripts)} {script.id} {pred.seconds:.1f}s",
                          file=sys.stderr, flush=True)
                bname = f"plain-prompt:{model}"
                results[bname] = score(scripts, base_preds)
                details[bname] = {"errors": errors(scripts, base_preds),
                                  "predictions": [p.__dict__ for p in base_preds]}
            backend.close()
    return {"results": results, "details": details}


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devset", default=str(DEVSET))
    parser.add_argument("--backend", choices=["embedded", "ollama"], default="embedded")
    parser.add_argument("--models", default="qwen2.5-coder-1.5b")
    parser.add_argument("--ollama-host", default="http://127.0.0.1:11434")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--baseline", action="store_true", help="also run the plain single-prompt baseline")
    parser.add_argument("--learning", type=int, default=0, help="K folds for the corrections experiment")
    parser.add_argument("--with-names", action="store_true", help="pass company/agent names as call metadata")
    parser.add_argument("--audio", action="store_true",
                        help="render each script to stereo audio and transcribe it with the pipeline first")
    parser.add_argument("--transcribe-model", default="base", help="Whisper model for --audio")
    parser.add_argument("--audio-skip-languages", default="tr",
                        help="--audio: script languages left out (no offline voice Whisper recognises)")
    parser.add_argument("--no-cache", action="store_true", help="ignore cached transcripts and LLM answers")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--only", default="", help="comma-separated script ids")
    parser.add_argument("--analysis", default="", help='AnalysisSettings overrides as JSON, e.g. {"ask_facts": true}')
    parser.add_argument("--out", default=str(OUT / "eval_analysis.json"))
    args = parser.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.WARNING)
    report = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(table(report["results"]))
    for name, result in report["results"].items():
        if "learning" in result:
            print(f"{name} learning from corrections: {json.dumps(result['learning'])}")
    print(f"\nfull report: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
