"""The analyse stage: turns in, audit out (category, sentiment, compliance, callback, flags, PII).

Order of work for one call, cheapest and most exact first:

1. PII is redacted from the turns (stored transcript and LLM input alike), positions kept.
2. Empty calls are decided by rule: no caller speech beyond greetings and "can you hear me".
3. Rules: compliance checklist, callback promise and due time, keywords and topics.
4. One structured LLM call (schema-constrained, shared system prompt kept in the KV cache, filled
   field by field) answers what needs judgement: the turn that shows why the caller called (evidence
   first), optionally the taxonomy's yes/no facts and a "need" phrase, the LLM's label, customer
   sentiment at start and end, agent tone, the turn of a callback promise.
5. The label comes from the classifier (taxonomy seed examples + reviewer corrections; measured far
   better than the 1.5B model's own label on the dev set) unless settings say otherwise; reviewer
   corrections of this very call override everything.

Failures keep the transcript: an unreachable LLM leaves ``analysis_status="pending"`` (re-run with
``reanalyse``), output that stays invalid after one repair attempt leaves ``"failed"`` with the reason.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline.analysis.callbacks import CallbackSettings, analyse_callback
from pipeline.analysis.classifier import (
    CallClassifier,
    CorrectionStore,
    classifier_text,
    text_index,
)
from pipeline.analysis.compliance import (
    CallFacts,
    Checklist,
    call_dropped,
    check_call,
    line_checked,
    no_contact_said,
)
from pipeline.analysis.flags import CallSignals, FlagConfig, evaluate_flags
from pipeline.analysis.llm import LLMBackend, LLMError, LLMInvalidOutput, LLMUnavailable, LLMUsage, make_backend
from pipeline.analysis.outcome import apply_outcomes
from pipeline.analysis.pii import redact_turns
from pipeline.analysis.prompts import Prompt
from pipeline.analysis.sentiment import (
    LABELS,
    ClosingCues,
    agent_performance,
    build_sentiment,
    calm_negative_end,
    satisfaction,
    score_of,
    speaking_turns,
    start_label,
    unsure_negative_end,
)
from pipeline.analysis.sentiment_model import (
    AgentManner,
    SentimentCalibration,
    agent_features,
    customer_features,
    load_cues,
)
from pipeline.analysis.taxonomy import EMPTY_CALL, UNCERTAIN, Fact, Taxonomy
from pipeline.analysis.text import (
    AGENT,
    CUSTOMER,
    LINE_FORMAT,
    TurnView,
    canonical_role,
    compact_transcript,
    meaningful_words,
    norm,
)
from pipeline.analysis_schema import (
    Analysis,
    CallbackResult,
    Classification,
    ComplianceItemResult,
    Evidence,
    LLMCallInfo,
    PiiSpan,
    Review,
    SentimentPoint,
    SentimentResult,
)
from pipeline.records import CallMetrics, CallRecord, Turn
from pipeline.settings import AnalysisSettings, CompanyProfile, Settings
from pipeline.stage import CallState, Stage

log = logging.getLogger(__name__)

_STOPWORDS = frozenset(
    [
        "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "because",
        "been", "before", "being", "but", "by", "can", "could", "did", "do", "does", "doing", "done", "for", "from",
        "get", "got", "had", "has", "have", "he", "her", "here", "him", "his", "how", "i", "if", "in", "into", "is",
        "it", "its", "just", "know", "like", "me", "more", "my", "no", "not", "now", "of", "off", "ok", "okay", "on",
        "one", "or", "our", "out", "please", "right", "see", "she", "so", "some", "than", "thank", "thanks", "that",
        "the", "their", "them", "then", "there", "these", "they", "this", "to", "too", "up", "us", "very", "was",
        "we", "well", "were", "what", "when", "where", "which", "who", "why", "will", "with", "would", "yeah", "yes",
        "you", "your", "yours", "sure", "hello", "hi", "good", "morning", "afternoon", "evening", "bye", "call",
        "calling", "called", "really", "maybe", "think", "need", "want", "wanted", "going", "back", "today",
        "tomorrow", "much", "also", "only", "still", "there's", "it's", "i'm", "that's", "don't", "can't", "let",
        "um", "uh", "oh", "sorry", "great", "fine", "alright", "something", "anything", "else", "help", "time",
        "number", "name", "ve", "ben", "bir", "bu", "da", "de", "mi", "mu", "ne", "icin", "ile", "cok", "evet",
        "hayir", "tamam", "var", "yok", "ama", "gibi", "daha", "sonra", "simdi", "size", "sizi", "bana", "beni",
        "merhaba", "iyi", "gunler", "tesekkur", "ederim", "ederiz", "olur", "peki", "efendim"
    ]
)


_NUMBER_WORDS = frozenset([
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "twenty", "thirty", "forty", "fifty", "hundred", "thousand", "first", "second", "third", "iki", "dört",
    "beş", "altı", "yedi", "sekiz", "dokuz", "yirmi", "otuz", "yüz", "bin",
])


class AuditAnswer(BaseModel):
    """The LLM's part of the audit, validated before use (the taxonomy's yes/no facts come as extras)."""

    model_config = ConfigDict(extra="allow")

    turn: int
    need: str = ""
    label: str
    customer_start: Literal["positive", "neutral", "negative"]
    customer_end: Literal["positive", "neutral", "negative"]
    agent: Literal["positive", "neutral", "negative"]
    callback: int

    def fact(self, key: str) -> bool | None:
        value = (self.model_extra or {}).get(key)
        return value if isinstance(value, bool) else None


def local_reference(record: CallRecord, tz_name: str) -> datetime:
    """The call's time in the analysis time zone: metadata.call_time, else when the record was made."""
    tz = ZoneInfo(tz_name)
    when = record.metadata.call_time or record.created_at
    return when.replace(tzinfo=tz) if when.tzinfo is None else when.astimezone(tz)


def turn_views(turns: Sequence[Turn]) -> list[TurnView]:
    return [
        TurnView(index=t.index, role=canonical_role(t.role), text=t.text, start=t.start, end=t.end,
                 confidence=t.confidence)
        for t in turns
    ]


def speech_seconds(turns: Sequence[TurnView], metrics: CallMetrics | None) -> float:
    if metrics is not None and metrics.talk_seconds > 0:
        return metrics.talk_seconds
    return sum(max(0.0, t.end - t.start) for t in turns if t.text.strip())


def is_empty_call(
    turns: Sequence[TurnView], metrics: CallMetrics | None, settings: AnalysisSettings
) -> tuple[bool, str]:
    """Empty Call by rule: (almost) no speech at all, or the caller said nothing that could be a request."""
    speech = speech_seconds(turns, metrics)
    if speech < settings.empty_call_max_speech_s:
        return True, f"{speech:.1f} s of speech in the call"
    caller_words = [w for t in turns if t.role == CUSTOMER for w in meaningful_words(t.text)]
    if len(caller_words) <= settings.empty_call_max_words:
        said = " ".join(caller_words) or "nothing but greetings"
        return True, f"the caller said {said!r} ({len(caller_words)} meaningful words)"
    return False, ""


def is_unintelligible(
    turns: Sequence[TurnView], metrics: CallMetrics | None, settings: AnalysisSettings
) -> tuple[bool, str]:
    """The caller's channel has speech but transcription found (almost) no words in it: a language the
    model does not know, a very bad line. That is not an empty call: the purpose cannot be told."""
    role = (metrics.per_role.get(CUSTOMER) if metrics is not None else None)
    if role is None or role.talk_seconds < settings.unintelligible_min_speech_s:
        return False, ""
    caller_words = sum(len(t.text.split()) for t in turns if t.role == CUSTOMER)
    if caller_words / role.talk_seconds >= settings.unintelligible_max_words_per_s:
        return False, ""
    return True, (f"the caller spoke for {role.talk_seconds:.0f} s but only {caller_words} words could be "
                  "transcribed (unknown language or a very bad line)")


def asr_confidence(turns: Sequence[Turn]) -> float | None:
    weighted = [(t.confidence, max(1, len(t.text.split()))) for t in turns if t.text.strip()]
    total = sum(w for _, w in weighted)
    return round(sum(c * w for c, w in weighted) / total, 3) if total else None


def keywords_of(turns: Sequence[TurnView], limit: int = 8) -> list[str]:
    """Most repeated content words (customer words count double: they carry the topic)."""
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    # Capitalised mid-sentence words are names (people, the company), not what the call was about.
    names = {m.group(1).lower() for t in turns for m in re.finditer(r"(?<=[a-z,] )([A-Z][a-z]+)", t.text)}
    for turn in turns:
        for word in re.findall(r"[^\W\d_][\w'-]{2,}", turn.text.lower()):
            key = word.strip("'-")
            if key in _STOPWORDS or key in names or len(key) < 4 or "'" in key or key in _NUMBER_WORDS:
                continue
            counts[key] += 2 if turn.role == CUSTOMER else 1
            first.setdefault(key, len(first))
    ranked = sorted(counts, key=lambda w: (-counts[w], first[w]))
    return [w for w in ranked if counts[w] >= 2][:limit] or ranked[:limit]


class Analyser(Stage):
    """LLM audit of one call's turns. Never needs audio; never fails the call."""

    name = "analyse"
    fatal = False
    needs_audio = False

    def __init__(
        self,
        settings: Settings,
        backend: LLMBackend | None = None,
        classifier: CallClassifier | None = None,
    ) -> None:
        super().__init__(settings)
        cfg = settings.analysis
        self.cfg = cfg
        self.taxonomy = Taxonomy.load(cfg.taxonomy_file)
        self.checklist = Checklist.load(cfg.compliance_file)
        self.flag_config = FlagConfig.load(cfg.flags_file)
        self.prompt = Prompt.load(cfg.prompts_dir, cfg.prompt)
        self.cues: ClosingCues | None = None
        self.manner: AgentManner | None = None
        if cfg.sentiment_cues_file:
            self.cues, self.manner = load_cues(cfg.sentiment_cues_file)
        self.calibration = (SentimentCalibration.load(cfg.sentiment_calibration_file)
                            if cfg.sentiment_calibration_file and Path(cfg.sentiment_calibration_file).exists()
                            else None)
        self.callback_cfg = CallbackSettings(
            day_part_hours=dict(cfg.callback_day_part_hours), default_hour=cfg.callback_default_hour,
            later_today_hours=cfg.callback_later_today_hours, soon_minutes=cfg.callback_soon_minutes,
            deadline_hour=cfg.callback_deadline_hour, window_end_hours=dict(cfg.callback_window_end_hours),
            window_minutes=dict(cfg.callback_window_minutes),
        )
        self.system_prompt = self.system_prompt_for(None)
        self.backend: LLMBackend | None = backend
        self.backend_error: str | None = None
        self._warm = False
        if cfg.enabled and self.backend is None:
            try:
                self.backend = make_backend(settings)
            except Exception as err:  # the stage still redacts and runs its rules; the LLM part waits
                self.backend_error = f"{type(err).__name__}: {err}"
                log.warning("analysis LLM unavailable: %s", self.backend_error)
        self.classifier = classifier
        if self.classifier is None and cfg.enabled and cfg.classifier != "off":
            self.classifier = CallClassifier.from_settings(settings.home, self.taxonomy, cfg)
        # The corrections store the settings pick (file, or MongoDB shared by a cluster); imported here
        # because pipeline.store.corrections imports this package.
        from pipeline.store.corrections import open_corrections

        self.corrections = open_corrections(settings)
        self.texts = text_index(settings.home)

    def company_for(self, record: CallRecord) -> CompanyProfile | None:
        """The configured company profile for this call: by queue, else by the exported company name, else
        the only one configured."""
        profiles = self.cfg.companies
        queue = record.metadata.queue
        exported = norm(record.metadata.extra.get("company", "")).strip()
        for profile in profiles:
            if queue and queue in profile.queues:
                return profile
        for profile in profiles:
            if exported and exported in {norm(n).strip() for n in [profile.name, *profile.aliases]}:
                return profile
        unqueued = [p for p in profiles if not p.queues]
        if len(unqueued) == 1:
            return unqueued[0]
        return self.company_from_metadata(record)

    def company_from_metadata(self, record: CallRecord) -> CompanyProfile | None:
        """The company as the telephony export names it (``company``, ``sector``, ``sells`` columns) when no
        configured profile matches: the LLM then judges the call for that business (a bank, an ISP, a
        clinic), not the prompt's default one."""
        if not self.cfg.business_from_metadata:
            return None
        extra = record.metadata.extra
        name, sector = str(extra.get("company") or "").strip(), str(extra.get("sector") or "").strip()
        if not (name and sector):
            return None
        return CompanyProfile(name=name, sector=sector, sells=str(extra.get("sells") or "").strip())

    def system_prompt_for(self, company: CompanyProfile | None) -> str:
        business = company.describe() if company else " ".join(self.prompt.extra.get("business", "a company").split())
        text = Prompt.fill(
            self.prompt.system, business=business,
            labels=self.taxonomy.describe_for_llm(), facts=self.taxonomy.describe_facts_for_llm(),
            need=self.prompt.extra.get("need", "") if self.cfg.ask_need else "",
        )
        return re.sub(r"\n[ \t]+\n", "\n", text)  # an unused snippet's empty line

    # Stage provenance -------------------------------------------------------------------------
    def model_name(self) -> str | None:
        return self.backend.model_for(self._tier()) if self.backend else None

    def model_version(self) -> str | None:
        return self.prompt.version

    def _tier(self) -> str:
        return self.settings.llm.tier_for.get("audit", "fast")

    # The stage --------------------------------------------------------------------------------
    def process(self, state: CallState) -> CallState:
        record = state.record
        if not self.cfg.enabled:
            record.analysis_status = "skipped"
            return state
        try:
            return self._process(state)
        except Exception:
            # Stage.run records the error; the status must not claim the analysis ran or is waiting.
            record.analysis_status = "failed"
            raise

    def _process(self, state: CallState) -> CallState:
        record = state.record
        started = time.perf_counter()
        record.errors = [e for e in record.errors if e.stage != self.name]  # a re-run starts clean
        pii: list[PiiSpan] = []
        company = self.company_for(record)
        company_names = [v for k, v in record.metadata.extra.items() if k == "company"]
        if company is not None:
            company_names += [company.name, *company.aliases]
        if self.cfg.redact_pii:
            record.turns, pii = redact_turns(record.turns, self.cfg.pii_kinds,
                                             company_names if self.cfg.pii_keep_company_addresses else ())
            if record.analysis is not None:
                pii = pii or record.analysis.pii  # already redacted by an earlier run: keep its spans
        turns = turn_views(record.turns)
        reference = local_reference(record, self.cfg.timezone)
        empty, empty_reason = is_empty_call(turns, record.metrics, self.cfg)
        unintelligible, unintelligible_reason = (is_unintelligible(turns, record.metrics, self.cfg) if empty
                                                 else (False, ""))
        empty = empty and not unintelligible
        nobody = no_contact_said(turns, self.checklist) if not empty and not unintelligible else None
        if nobody is not None:  # the rubric's pocket dial: the caller's words were never meant for us
            empty, empty_reason = True, f'the agent said nobody was on the line ("{nobody}")'

        analysis = Analysis(
            empty_call=empty,
            prompt_version=self.prompt.version,
            taxonomy_version=self.taxonomy.version,
            compliance_version=self.checklist.version,
            pii=pii,
            keywords=keywords_of(turns),
            topics=self.taxonomy.topics_of(" ".join(t.text for t in turns)),
        )
        facts = CallFacts(turns=turns, pii=pii, empty=empty, company_names=company_names,
                          agent_names=[v for k, v in record.metadata.extra.items() if k == "agent_name"])
        analysis.compliance = check_call(self.checklist, facts)
        status: Literal["done", "pending", "failed"] = "done"
        answer: AuditAnswer | None = None
        usage: list[LLMUsage] = []
        retries = 0

        if unintelligible:
            analysis.classification = Classification(
                category=UNCERTAIN, confidence=0.9, source="rule",
                justification=f"Uncertain: {unintelligible_reason}.",
                evidence=[t.evidence() for t in turns[:2]],
            )
            analysis.sentiment = build_sentiment(turns, "neutral", "neutral", "neutral")
            analysis.summary = f"Purpose unknown: {unintelligible_reason}."
        elif empty:
            analysis.classification = Classification(
                category=EMPTY_CALL, confidence=1.0, source="rule", justification=f"Empty call: {empty_reason}.",
                evidence=[t.evidence() for t in turns[:2]],
            )
            analysis.sentiment = build_sentiment(turns, "neutral", "neutral", "neutral")
            analysis.summary = f"Empty call: {empty_reason}."
        elif self.backend is None:
            status = "pending"
            record.add_error(self.name, "llm_unavailable", self.backend_error or "no LLM backend")
        else:
            try:
                system_prompt = self.system_prompt_for(company)
                answer, usage, retries = self._ask(turns, system_prompt)
            except LLMUnavailable as err:
                status = "pending"
                record.add_error(self.name, err.code, str(err)[:500])
            except LLMError as err:
                status = "failed"
                record.add_error(self.name, err.code, str(err)[:500])

        if answer is not None:
            self._apply_answer(analysis, answer, usage, turns)
            usage += self._ask_disclosure(analysis, facts, turns, usage, system_prompt)
        callback_turn = answer.callback if (answer is not None and self.cfg.llm_callbacks) else None
        analysis.callback = analyse_callback(turns, reference, self.callback_cfg, callback_turn)
        if answer is None and not empty and not unintelligible:
            analysis.complete = False
        self._finish(analysis, record, turns)
        analysis.llm = _llm_info(self.backend, usage, retries)
        analysis.model = analysis.llm.model

        correction = self.corrections.get(record.record_id) if hasattr(self.corrections, "get") else None
        if correction is not None:
            apply_correction(analysis, correction.labels, self.taxonomy, reviewer=correction.reviewer, at=correction.at)
            analysis.flags = evaluate_flags(self.flag_config, analysis, self._signals(record))

        record.analysis = analysis
        record.analysis_status = status
        state.scratch[f"{self.name}_detail"] = {
            "analysis_status": status,
            "llm_seconds": round(analysis.llm.seconds, 3),
            "prompt_tokens": analysis.llm.prompt_tokens,
            "completion_tokens": analysis.llm.completion_tokens,
            "seconds": round(time.perf_counter() - started, 3),
        }
        return state

    # LLM --------------------------------------------------------------------------------------
    def schema(self, turns: Sequence[TurnView]) -> dict[str, Any]:
        top = max([t.index for t in turns] or [0])
        sentiment = {"type": "string", "enum": list(LABELS)}
        # Order matters: evidence (turn, need, facts) comes before the decisions that lean on it.
        properties: dict[str, Any] = {"turn": {"type": "integer", "minimum": -1, "maximum": top}}
        if self.cfg.ask_need:
            properties["need"] = {"type": "string", "minLength": 3, "maxLength": self.cfg.need_max_chars}
        for fact in self.facts:
            properties[fact.key] = {"type": "boolean"}
        properties.update({
            "label": {"type": "string", "enum": self.taxonomy.label_names},
            "customer_start": sentiment,
            "customer_end": sentiment,
            "agent": sentiment,
            "callback": {"type": "integer", "minimum": -1, "maximum": top},
        })
        return {"type": "object", "properties": properties, "required": list(properties),
                "additionalProperties": False}

    def user_message(self, turns: Sequence[TurnView]) -> str:
        transcript = compact_transcript(turns, self.cfg.max_transcript_chars,
                                        self.prompt.extra.get("line_format") or LINE_FORMAT)
        return Prompt.fill(self.prompt.user, transcript=transcript)

    def warm_up(self) -> None:
        if self.backend is not None and not self._warm and self.cfg.warm_up:
            self._warm = True
            try:
                self.backend.warm(self.system_prompt)
            except LLMError as err:
                log.warning("LLM warm-up failed: %s", err)

    def _score_versions(self) -> list[str]:
        """Prompt versions whose choice probabilities this prompt's match (the prompt's ``scores_as``)."""
        return [self.prompt.version, *self.prompt.extra.get("scores_as", "").split()]

    def _ask(self, turns: Sequence[TurnView], system_prompt: str) -> tuple[AuditAnswer, list[LLMUsage], int]:
        assert self.backend is not None
        self.warm_up()
        schema = self.schema(turns)
        user = self.user_message(turns)
        usages: list[LLMUsage] = []
        last_error = ""
        for attempt in range(2):
            message = user if attempt == 0 else user + "\n\n" + Prompt.fill(self.prompt.repair, error=last_error)
            # The repair attempt may go to another tier (e.g. the deep model) via tier_for["repair"].
            tier = self._tier() if attempt == 0 else self.settings.llm.tier_for.get("repair", self._tier())
            try:
                value, usage = self.backend.complete_json(system_prompt, message, schema, tier)
                usages.append(usage)
                answer = AuditAnswer.model_validate(value)
                problem = self._check_answer(answer, turns)
                if problem is None:
                    return answer, usages, attempt
                last_error = problem
            except LLMInvalidOutput as err:
                last_error = str(err)
            except ValidationError as err:
                last_error = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())[:400]
        raise LLMInvalidOutput(f"LLM answer invalid after one repair attempt: {last_error}")

    def _ask_disclosure(self, analysis: Analysis, facts: CallFacts, turns: Sequence[TurnView],
                        usage: Sequence[LLMUsage], system_prompt: str) -> list[LLMUsage]:
        """When the identity item found no disclosure by its phrases, ask the LLM whether the agent disclosed an
        existing customer's details (the item's ``llm_question``) and judge the item again with its answer."""
        item = next((i for i in self.checklist.items if i.check == "verification_order" and i.enabled), None)
        current = next((r for r in analysis.compliance if item is not None and r.id == item.id), None)
        question = str(item.options.get("llm_question") or "") if item is not None else ""
        if (not self.cfg.ask_disclosure or self.backend is None or not usage or current is None or not question
                or current.status != "not_applicable" or facts.empty or not facts.agent_turns):
            return []
        schema = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
                  "required": ["answer"], "additionalProperties": False}
        try:
            value, asked = self.backend.follow_up(system_prompt, self.user_message(turns), usage[-1].raw,
                                                  question, schema, self._tier())
        except LLMError as err:  # the rules' answer stands; the audit is not lost over an extra question
            log.warning("disclosure question not answered: %s", err)
            return []
        probs = asked.choice_probs.get("answer") or {str(value.get("answer")): 1.0}
        facts.llm_disclosure = float(probs.get("yes", 0.0))
        rechecked = {r.id: r for r in check_call(self.checklist, facts)}
        analysis.compliance = [rechecked.get(r.id, r) if r.id == current.id else r for r in analysis.compliance]
        return [asked]

    def _check_answer(self, answer: AuditAnswer, turns: Sequence[TurnView]) -> str | None:
        if self.taxonomy.label(answer.label) is None or self.taxonomy.label(answer.label).rule_only:  # type: ignore[union-attr]
            return f"label must be one of {self.taxonomy.label_names}, got {answer.label!r}"
        indexes = {t.index for t in turns} | {-1}
        if answer.turn not in indexes or answer.callback not in indexes:
            return f"turn numbers must be turns of the transcript or -1, got {answer.turn}/{answer.callback}"
        missing = [f.key for f in self.facts if answer.fact(f.key) is None]
        if missing:
            return f"answer true or false for {', '.join(missing)}"
        return None

    def _apply_answer(
        self, analysis: Analysis, answer: AuditAnswer, usage: Sequence[LLMUsage], turns: Sequence[TurnView]
    ) -> None:
        probs = usage[-1].choice_probs if usage else {}
        by_index = {t.index: t for t in turns}
        evidence_turn = by_index.get(answer.turn)
        evidence = [evidence_turn.evidence()] if evidence_turn else []
        label_probs = dict(probs.get("label") or {})
        llm_scores = label_probs or {answer.label: _guess_confidence()}
        facts = {
            f.key: float((probs.get(f.key) or {}).get("true", 1.0 if answer.fact(f.key) else 0.0))
            for f in self.facts
        }
        llm = {name: float(llm_scores.get(name, 0.0)) for name in self.taxonomy.label_names}
        scores, source, rule_text, confidence = self._decide_label(llm, facts, turns)
        flat = max(scores, key=lambda k: scores[k])
        outcome = apply_outcomes(self.taxonomy.outcomes, turns, scores) if self.cfg.outcome_rules else None
        if outcome is not None and outcome[0] != flat:
            # An exact statement of the outcome ("you're booked in for Tuesday") beats a guess.
            flat, hit = outcome
            source, rule_text = f"{source}+rule", f"outcome '{hit.rule.key}': agent said \"{hit.phrase.strip()}\""
            confidence = _outcome_confidence
            evidence = [*evidence, hit.turn.evidence()]
        elif outcome is not None:
            rule_text = f"outcome '{outcome[1].rule.key}' agrees"
        category, subcategory = self.taxonomy.split(flat)
        definition = self.taxonomy.label(flat).definition if self.taxonomy.label(flat) else ""  # type: ignore[union-attr]
        quote = f' Evidence (turn {evidence_turn.index}): "{evidence_turn.text[:160]}".' if evidence_turn else ""
        reasons = [answer.need.strip().rstrip(".")] if answer.need.strip() else []
        if facts:
            said = [k for k, p in facts.items() if p >= self.taxonomy.fact_threshold]
            reasons.append(f"Facts: {', '.join(said) or 'none'}" + (f" (rule: {rule_text})" if rule_text else ""))
        if source == "classifier":
            reasons.append(f"Classifier (seed examples + {self.classifier.n_corrections if self.classifier else 0} "
                           f"reviewed calls); the LLM said {answer.label}")
        analysis.classification = Classification(
            category=category, subcategory=subcategory, confidence=round(float(confidence(flat)), 3),
            justification=f"{'. '.join(reasons)}. {flat}: {definition}{quote}".strip(),
            source=source, evidence=evidence, scores={k: round(v, 4) for k, v in scores.items() if v >= 0.005},
            facts={k: round(v, 3) for k, v in facts.items()}, rule=rule_text, llm_label=answer.label,
            llm_scores={k: round(v, 4) for k, v in llm_scores.items() if v >= 0.005},
        )
        analysis.customer_need = answer.need.strip() or _need_from_evidence(evidence_turn, turns)
        analysis.sentiment = self._sentiment(turns, answer, probs, subcategory or category)

    def _sentiment(self, turns: Sequence[TurnView], answer: AuditAnswer,
                   probs: Mapping[str, Mapping[str, float]], label: str | None = None) -> SentimentResult:
        result = self._sentiment_labels(turns, answer, probs, label)
        start, end = result.customer.at("start"), result.customer.at("end")
        if (start is not None and end is not None and start.label != end.label
                and (call_dropped(turns, self.checklist.farewell_phrases()) or line_checked(turns, self.checklist))
                and len(speaking_turns(turns, CUSTOMER)) <= self.cfg.dropped_call_same_mood_turns):
            # The line went while the customer was still on their first words: their last turn is their
            # opening, so the end is the start's mood (the LLM reads a cut-off as upset).
            result.customer = result.customer.relabelled(start.label, phases={"end"})
        end = result.customer.at("end")
        if end is not None and end.label == "negative" and self.cues is not None:
            instead = unsure_negative_end(turns, self.cues, self.cfg.unsure_end_confidence)
            if instead is None and label in self.cfg.calm_labels:
                instead = calm_negative_end(turns, self.cues)
            if instead is not None:
                result.customer = result.customer.relabelled(instead, phases={"end"})
        if end is not None and end.label == "positive" and self.cues is not None and self.cues.plain_goodbye(turns):
            # "No, that's it. Thanks." after an uneventful call: the rubric's neutral goodbye, however well the
            # call went (the model reads the call's outcome into the last words).
            result.customer = result.customer.relabelled("neutral", phases={"end"})
        by_words = self.manner.label(turns) if self.manner is not None and self.cfg.agent_sentiment_from == "manner" \
            else None
        if by_words is not None and by_words != result.agent.label:
            # The agent's courtesy or curtness over the whole call decides (the rubric's definition); the
            # 1.5B model's score hardly separates polite from matter-of-fact. Its score stays as evidence.
            result.agent = result.agent.relabelled(by_words)
        return result

    def _sentiment_labels(self, turns: Sequence[TurnView], answer: AuditAnswer,
                          probs: Mapping[str, Mapping[str, float]], label: str | None = None) -> SentimentResult:
        if self.cfg.customer_start_from == "cues":
            # The opening's mood from its words (the LLM's start label leans positive); probabilities
            # for it are dropped so no threshold turns it back into the LLM's.
            start = start_label(turns, answer.customer_start, self.cues,
                                upset_by_default=label in self.cfg.start_negative_labels,
                                calm_by_default=label in self.cfg.calm_labels)
            answer = answer.model_copy(update={"customer_start": start})
            probs = {k: v for k, v in probs.items() if k != "customer_start"}
        calibration = self.calibration
        if (calibration is not None and self.cues is not None and self.manner is not None
                and any(calibration.applies_to(self.model_name(), v) for v in self._score_versions())):
            customer = calibration.customer.probabilities(customer_features(
                turns, score_of(answer.customer_end, probs.get("customer_end")), self.cues))
            agent = calibration.agent.probabilities(agent_features(
                turns, score_of(answer.agent, probs.get("agent")), self.manner))
            # Labels are the calibrated model's; scores become its P(positive) - P(negative).
            return build_sentiment(turns, answer.customer_start, max(customer, key=lambda k: customer[k]),
                                   max(agent, key=lambda k: agent[k]),
                                   {**probs, "customer_end": customer, "agent": agent},
                                   thresholds={"customer_start": self.cfg.sentiment_thresholds.get(
                                       "customer_start", (-0.25, 0.25))})
        cue, _ = self.cues.score(turns) if self.cues is not None else (0.0, [])
        return build_sentiment(turns, answer.customer_start, answer.customer_end, answer.agent, probs,
                               thresholds=self.cfg.sentiment_thresholds, end_cue=self.cfg.sentiment_cue_weight * cue)

    @property
    def facts(self) -> list[Fact]:
        """The yes/no facts the LLM is asked (only when configured: each costs decoding time)."""
        return self.taxonomy.facts if (self.cfg.ask_facts or self.cfg.label_from == "facts") else []

    def _decide_label(
        self, llm: dict[str, float], facts: Mapping[str, float], turns: Sequence[TurnView]
    ) -> tuple[dict[str, float], Any, str | None, Callable[[str], float]]:
        """Label scores, who decided, the facts rule that fired, and how to read a label's confidence."""
        mode = self.cfg.label_from
        predicted = self._classify(turns) if mode in ("classifier", "blend") else {}
        if mode == "classifier" and predicted:
            scores = {name: predicted.get(name, 0.0) for name in self.taxonomy.label_names}
            return scores, "classifier", None, lambda flat: _margin(scores, flat)
        if mode == "blend" and predicted:
            assert self.classifier is not None
            weight = classifier_weight(self.classifier.n_corrections, self.cfg)
            scores = {k: (1 - weight) * llm.get(k, 0.0) + weight * predicted.get(k, 0.0) for k in llm}
            return scores, "llm+classifier", None, lambda flat: scores[flat]
        if mode == "facts" and facts:
            decided = self.taxonomy.decide(facts, llm)
            if decided is not None:
                label, rule = decided
                certainty = _rule_certainty(rule.when, facts)
                scores = {name: (1 - certainty) * p for name, p in llm.items()}
                scores[label] = scores.get(label, 0.0) + certainty
                return scores, "llm+rule", f"{' and '.join(rule.when)} -> {label}", lambda flat: scores[flat]
        return llm, "llm", None, lambda flat: llm[flat]

    def _classify(self, turns: Sequence[TurnView]) -> dict[str, float]:
        """The trained classifier's label probabilities (retrained first if corrections came in)."""
        if self.classifier is None:
            return {}
        try:
            self.classifier.retrain_if_stale(self.corrections)
            return self.classifier.predict(classifier_text(turns))
        except Exception as err:  # the classifier is an aid: never lose the LLM's answer over it
            log.warning("classifier unavailable: %s", err)
            return {}

    # Everything after the labels --------------------------------------------------------------
    def _finish(self, analysis: Analysis, record: CallRecord, turns: Sequence[TurnView]) -> None:
        if analysis.classification is not None:
            analysis.category = analysis.classification.category
            analysis.subcategory = analysis.classification.subcategory
            analysis.category_confidence = analysis.classification.confidence
            analysis.evidence = analysis.classification.evidence
        failed = analysis.failed_compliance_items
        checked = sum(1 for i in analysis.compliance if i.status != "not_applicable")
        metrics = record.metrics
        if analysis.sentiment is not None and not analysis.empty_call and analysis.complete:
            analysis.customer_satisfaction = satisfaction(analysis.sentiment)
        analysis.agent_performance = agent_performance(
            analysis.sentiment if analysis.complete else None, failed, checked,
            interruptions=_interruptions(metrics, AGENT),
            long_silences=len(metrics.dead_air) if metrics else 0,
        )
        if analysis.summary is None:
            analysis.summary = _summary(analysis)
        analysis.flags = evaluate_flags(self.flag_config, analysis, self._signals(record))
        if self.classifier is not None and not analysis.empty_call:
            try:
                self.texts.put(record.record_id, classifier_text(turns))
            except OSError as err:
                log.warning("could not index call text for corrections: %s", err)

    def _signals(self, record: CallRecord) -> CallSignals:
        return CallSignals(
            asr_confidence=asr_confidence(record.turns),
            longest_silence_s=record.metrics.longest_silence_s if record.metrics else None,
        )


def _interruptions(metrics: CallMetrics | None, role: str) -> int:
    role_metrics = metrics.per_role.get(role) if metrics else None
    return role_metrics.interruptions if role_metrics else 0


def classifier_weight(n_corrections: int, cfg: AnalysisSettings) -> float:
    """Seed weight with no corrections, rising towards the ceiling as reviewers correct calls."""
    learned = cfg.classifier_max_weight * n_corrections / (n_corrections + cfg.classifier_half_weight_corrections)
    return max(cfg.classifier_seed_weight, learned)


def _need_from_evidence(evidence_turn: TurnView | None, turns: Sequence[TurnView]) -> str | None:
    """The caller's own words for why they called: the first sentence of the turn the LLM pointed at
    (or of the caller's first real turn), when the LLM is not asked to phrase the need itself."""
    turn = evidence_turn if evidence_turn is not None and evidence_turn.role == CUSTOMER else next(
        (t for t in turns if t.role == CUSTOMER and len(meaningful_words(t.text)) >= 3), None)
    if turn is None:
        return None
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", turn.text.strip()) if s.strip()]
    # Skip a bare greeting ("Hi Sarah.") so the need itself is quoted.
    chosen = next((s for s in sentences if len(meaningful_words(s)) >= 3), sentences[0] if sentences else "")
    return f'"{chosen[:157] + "..." if len(chosen) > 160 else chosen}"' if chosen else None


def _outcome_confidence(_flat: str) -> float:
    # Phrase rules are exact but not infallible (a booking can be for a different job than the one
    # the call is about), so they do not claim certainty.
    return 0.95


def _margin(scores: Mapping[str, float], flat: str) -> float:
    """Confidence as the winner's share of the top two: a linear model over many labels spreads its
    probability thinly, so the margin over the runner-up says more than the raw probability."""
    ranked = sorted(scores.values(), reverse=True)
    second = ranked[1] if len(ranked) > 1 else 0.0
    top = scores.get(flat, 0.0)
    return top / (top + second) if top + second > 0 else 0.0


def _guess_confidence() -> float:
    # Without log-probabilities there is no real confidence; a fixed middling value keeps flags honest.
    return 0.7


def _rule_certainty(conditions: Sequence[str], facts: Mapping[str, float]) -> float:
    """How sure the facts behind a rule are: the weakest condition's probability."""
    values = []
    for condition in conditions:
        negated = condition.startswith("not ")
        p = facts.get(condition.removeprefix("not ").strip(), 0.5)
        values.append(1 - p if negated else p)
    return min(values) if values else 0.5


def _summary(analysis: Analysis) -> str:
    parts = []
    if analysis.customer_need:
        need = analysis.customer_need.strip()
        parts.append(f"Caller: {need}" if need.startswith('"') else need.rstrip(".") + ".")
    label = analysis.subcategory or analysis.category
    if label:
        parts.append(f"Outcome: {label}.")
    cb = analysis.callback
    if cb.promised:
        when = cb.due.strftime("%a %d %b %H:%M") if cb.due else "no time agreed"
        parts.append(f"Callback promised by {cb.by or 'agent'} ({when}).")
    if analysis.sentiment is not None and analysis.complete:
        start = analysis.sentiment.customer.at("start")
        end = analysis.sentiment.customer.at("end")
        if start and end:
            moved = f"{start.label} to {end.label}" if start.label != end.label else end.label
            parts.append(f"Customer {moved}; agent {analysis.sentiment.agent.label}.")
    if analysis.failed_compliance_items:
        parts.append(f"Compliance failed: {', '.join(analysis.failed_compliance_items)}.")
    if not analysis.complete:
        parts.append("LLM analysis pending.")
    return " ".join(parts)


def _llm_info(backend: LLMBackend | None, usage: Sequence[LLMUsage], retries: int) -> LLMCallInfo:
    if not usage:
        return LLMCallInfo(backend=backend.name if backend else None,
                           model=backend.model_for("fast") if backend else None)
    return LLMCallInfo(
        backend=usage[-1].backend,
        model=usage[-1].model,
        calls=len(usage),
        seconds=round(sum(u.seconds for u in usage), 3),
        prompt_tokens=sum(u.prompt_tokens for u in usage),
        completion_tokens=sum(u.completion_tokens for u in usage),
        cached_tokens=sum(u.cached_tokens for u in usage),
        retries=retries,
    )


def apply_correction(analysis: Analysis, labels: Mapping[str, Any], taxonomy: Taxonomy | None = None, *,
                     reviewer: str | None = None, at: str | datetime | None = None) -> Analysis:
    """Put a reviewer's labels on an analysis (in place); the machine's answer stays in ``classification``.

    ``analysis.review`` records who (``reviewer``), when (``at``, the correction's time; now if not
    given) and which fields.
    """
    changed: list[str] = []
    if "category" in labels or "subcategory" in labels:
        category = labels.get("category", analysis.category)
        subcategory = labels.get("subcategory", analysis.subcategory if "category" not in labels else None)
        analysis.category, analysis.subcategory = category, subcategory
        analysis.category_confidence = 1.0
        if analysis.classification is not None:
            analysis.classification = analysis.classification.model_copy(
                update={"category": category, "subcategory": subcategory, "confidence": 1.0, "source": "reviewer"}
            )
        else:
            analysis.classification = Classification(category=str(category), subcategory=subcategory,
                                                      confidence=1.0, source="reviewer")
        analysis.empty_call = category == EMPTY_CALL
        changed += ["category", "subcategory"]
    if ("customer_sentiment" in labels or "agent_sentiment" in labels) and analysis.sentiment is None:
        analysis.sentiment = SentimentResult()
    if "customer_sentiment" in labels and analysis.sentiment is not None:
        label = labels["customer_sentiment"]
        customer = analysis.sentiment.customer
        customer.label, customer.score = label, _score_for(label, customer.score)
        end = customer.at("end")
        if end is not None:
            end.label, end.score = label, _score_for(label, end.score)
        else:  # the label is the customer's at the end of the call (what flags and the store read)
            customer.trajectory.append(SentimentPoint(phase="end", label=label, score=_score_for(label, None)))
        changed.append("customer_sentiment")
    if "agent_sentiment" in labels and analysis.sentiment is not None:
        agent = analysis.sentiment.agent
        agent.label, agent.score = labels["agent_sentiment"], _score_for(labels["agent_sentiment"], agent.score)
        for point in agent.trajectory:
            point.label, point.score = labels["agent_sentiment"], _score_for(labels["agent_sentiment"], point.score)
        changed.append("agent_sentiment")
    if "callback_promised" in labels or "callback_due" in labels:
        promised = bool(labels.get("callback_promised", analysis.callback.promised))
        due = labels.get("callback_due", analysis.callback.due if promised else None)
        if isinstance(due, str):
            due = datetime.fromisoformat(due)
        analysis.callback = CallbackResult(
            promised=promised, by=analysis.callback.by if promised else None,
            to=analysis.callback.to if promised else None, due=due if promised else None,
            # A due time the reviewer set is the deadline; the window found for an unchanged due time stays.
            window_end=analysis.callback.window_end if promised and due == analysis.callback.due else None,
            status="pending" if promised else "none", source="reviewer", evidence=analysis.callback.evidence,
        )
        changed += ["callback_promised", "callback_due"]
    if "compliance" in labels:
        by_id = {item.id: item for item in analysis.compliance}
        for item_id, status in dict(labels["compliance"]).items():
            if item_id in by_id:
                by_id[item_id].status = status
                by_id[item_id].source = "reviewer"
            else:
                analysis.compliance.append(ComplianceItemResult(id=item_id, status=status, source="reviewer"))
        changed.append("compliance")
    analysis.reviewed = True
    analysis.corrected_fields = sorted(set(analysis.corrected_fields) | set(changed))
    analysis.review = Review(reviewer=reviewer, at=_review_time(at), fields=sorted(labels))
    return analysis


def _score_for(label: str, score: float | None) -> float:
    """A score that agrees with a reviewer's label: the machine's when it does, else the label's own."""
    if score is not None and ((label == "positive" and score > 0.25) or (label == "negative" and score < -0.25)
                              or (label == "neutral" and abs(score) <= 0.25)):
        return score
    return {"positive": 1.0, "negative": -1.0}.get(label, 0.0)


def _review_time(at: str | datetime | None) -> datetime:
    when = at if isinstance(at, datetime) else None
    if isinstance(at, str):
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            when = None
    when = when or datetime.now(timezone.utc)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def reanalyse(record: CallRecord, analyser: Analyser) -> CallRecord:
    """Run only the analyse stage again on a stored record (e.g. after an LLM outage); no audio needed."""
    state = analyser.run(CallState(record=record.model_copy(deep=True)))
    return state.record


def correct_record(record: CallRecord, labels: Mapping[str, Any], settings: Settings,
                   reviewer: str | None = None, taxonomy: Taxonomy | None = None, *,
                   corrections: CorrectionStore | None = None) -> CallRecord:
    """Reviewer API: save the corrected labels (they train the classifier) and apply them to the record.

    The correction goes to ``corrections``, by default the store ``analysis.corrections_store`` picks
    (a JSONL file, or MongoDB shared by a cluster; a database that does not answer raises
    ``StoreUnavailable``). The copy returned has the labels applied, ``analysis.review`` (who, when,
    which fields) and its review flags evaluated again; storing it is the caller's job.
    """
    from pipeline.analysis.classifier import record_correction
    from pipeline.store.corrections import close_corrections, open_corrections

    text = classifier_text(turn_views(record.turns))
    store = corrections if corrections is not None else open_corrections(settings)
    try:
        correction = record_correction(record.record_id, labels, home=settings.home, text=text or None,
                                       reviewer=reviewer, store=store)
    finally:
        if corrections is None:
            close_corrections(store)
    updated = record.model_copy(deep=True)
    if updated.analysis is None:
        updated.analysis = Analysis(complete=False)
    apply_correction(updated.analysis, labels, taxonomy, reviewer=reviewer, at=correction.at)
    updated.analysis.category_confidence = 1.0 if "category" in labels else updated.analysis.category_confidence
    updated.analysis.flags = evaluate_flags(FlagConfig.load(settings.analysis.flags_file), updated.analysis,
                                            call_signals(updated))
    return updated


def call_signals(record: CallRecord) -> CallSignals:
    """What review flags read from a record besides its analysis (as ``Analyser._signals``)."""
    return CallSignals(
        asr_confidence=asr_confidence(record.turns),
        longest_silence_s=record.metrics.longest_silence_s if record.metrics else None,
    )


def evidence_exists(evidence: Evidence, turns: Sequence[Turn]) -> bool:
    """A quote is real when it is (a prefix of) the text of the turn it cites."""
    by_index = {t.index: t.text for t in turns}
    text = by_index.get(evidence.turn if evidence.turn is not None else -99, "")
    return bool(text) and evidence.quote.rstrip("…") in text
