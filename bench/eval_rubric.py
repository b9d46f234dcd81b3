"""Score the analysis on a rubric-labelled call set (``bench/HELDOUT_FORMAT.md``): every field, text and audio.

Each call script (one YAML per call, ``labels`` per the QA rubric) becomes a record with the call's
metadata as a telephony export gives it (call_time, direction, customer_phone; company and agent_name
as export columns, i.e. ``metadata.extra``) and goes through ``Analyser`` exactly as in the pipeline:

* ``text``: the script's own words, turn timings estimated from word counts;
* ``--audio``: every call rendered with espeak-ng voices the project does not use elsewhere (English
  and Turkish variants ending in an even digit: m2, m4, m6, f2, f4; accents en-us, en-gb,
  en-gb-scotland, en-gb-x-rp, en-gb-x-gbclan; speeds 0.85-1.15) as clean 16 kHz stereo WAV, and every
  second call also as a noisy band-limited 8 kHz mu-law line (pink noise at 15-25 dB SNR), transcribed
  by the pipeline's own Transcriber (``CallPipeline(analyse=False)``, Whisper base by default).
  Audio and transcripts are cached under ``bench/out/rubric/<set>/`` keyed by the script's bytes,
  the condition and the Whisper model.

Scores: category accuracy (and Potential Customer recall), sub-category accuracy on gold Unnecessary
Calls, customer start/end and agent sentiment accuracy, callback promised P/R/F1, due exact hour and
due-within-window (on gold promises with a due time), compliance-failure precision/recall overall and
per item, calls flagged ``compliance_failure`` vs calls truly failing an item, PII (calls whose every
PII value is masked, false masks), and the cross-call callback ``final_status``: all analysed calls of
one condition are written into a real embedded store (SecantusDB through ``CallStore``) and the
store's own ``verify_callbacks`` runs as of the set's ``as_of`` time (README.md of the set).

Works with main's pipeline API as well (Analyser, CallPipeline, CallStore, verify_callbacks), so
the same harness scores the code before and after a change. Older sets (bench/devset, holdout,
holdout2: no direction/phone/PII labels) are read too; missing labels are simply not scored.

Usage::

    python -m bench.eval_rubric --set bench/holdout3 [--audio] [--limit N] [--only ID,ID]
    python -m bench.eval_rubric --set DIR --audio --render-only     # render the audio, no text shown
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bench.report_table import metrics_table
from pipeline import PIPELINE_VERSION
from pipeline.records import CallMetadata, CallRecord, Turn, make_record_id
from pipeline.settings import Settings

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
COMPLIANCE_ITEMS = ("greeting", "identity_verification", "disclosure", "prohibited_phrases", "further_help",
                    "closing")  # fmt: skip
WORDS_PER_SECOND = 2.6
CONDITIONS = ("text", "16k", "8k")
# espeak-ng voices for rendering: the variants ending in an even digit (the ASR helper uses the odd ones).
EN_ACCENTS = {"us": ("en-us",), "uk": ("en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan")}
VARIANTS = ("m2", "m4", "m6", "f2", "f4")
SPEEDS = (0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15)
# ``--voices fresh``: synthesizers no earlier set was rendered with. English: Debian's CMU Flite voices
# (kal16 and rms US male, slt US female, awb Scottish male: a different engine from espeak and Piper);
# Turkish: espeak-ng's named variants (no digit, not klatt: unused by the other benches), slowed a little.
FLITE_VOICES = {"us": ("kal16", "rms", "slt", "awb"), "uk": ("awb", "slt", "rms", "kal16")}
NAMED_VARIANTS_TR = ("Denis", "victor", "Michael", "Annie", "Gene", "Lee")  # the least garbled to Whisper base
# ``--voices festival`` (set D, bench/holdout6): voices neither earlier family used. US English: Debian's
# Festival (ked_diphone, US male; cmu_us_slt_arctic_hts, a female HTS voice); UK English: espeak-ng's
# en-gb with the named variants Edward and Paul; Turkish: the named variants Hugo, Alicia and Marco (of the
# 16 tried, the only ones Whisper base transcribes at all; told the language it still garbles them).
FESTIVAL_VOICES: dict[str, tuple[str, ...]] = {"us": ("festival:ked_diphone", "festival:cmu_us_slt_arctic_hts"),
                   "uk": ("espeak:en-gb+Edward", "espeak:en-gb+Paul", "festival:ked_diphone")}
FESTIVAL_VOICES_TR = ("espeak:tr+Hugo", "espeak:tr+Alicia", "espeak:tr+Marco")
# ``--voices kal`` (set E, bench/holdout7): again voices no earlier set used. US English: Festival's kal_diphone
# and espeak-ng en-us with the named variants Linda and Andy; UK English: en-gb-scotland+Max, en-gb+Steph,
# en-gb-x-rp+Rob (each heard by Whisper base at 9-22% WER on a test sentence); Turkish: tr+Andy, tr+Max,
# tr+Linda (like every espeak-ng Turkish voice tried, 1.0-1.2 WER for Whisper base even told the language).
KAL_VOICES: dict[str, tuple[str, ...]] = {"us": ("festival:kal_diphone", "espeak:en-us+Linda", "espeak:en-us+Andy"),
              "uk": ("espeak:en-gb-scotland+Max", "espeak:en-gb+Steph", "espeak:en-gb-x-rp+Rob")}
KAL_VOICES_TR = ("espeak:tr+Andy", "espeak:tr+Max", "espeak:tr+Linda")
# ``--voices gnu`` (set F, bench/holdout8): US English: GnuSpeech (an articulatory synthesizer from npm, a sound
# no other engine makes) male and female, and espeak-ng en-us+Mike; UK English: espeak-ng en-gb+Belinda and the
# West Midlands accent en-gb-x-gbcwmd with Benjamin and Alex; Turkish: tr+anika and tr+Mike, the first espeak-ng
# Turkish voices Whisper base transcribes at all recognisably (a test sentence: "hoş geldiniz, ben elif ...").
GNU_VOICES: dict[str, tuple[str, ...]] = {"us": ("gnuspeech:male", "gnuspeech:female", "espeak:en-us+Mike"),
              "uk": ("espeak:en-gb+Belinda", "espeak:en-gb-x-gbcwmd+Benjamin", "espeak:en-gb-x-gbcwmd+Alex")}
GNU_VOICES_TR = ("espeak:tr+anika", "espeak:tr+Mike")
# ``--voices nyc`` (set G, bench/holdout9): espeak-ng accents and voice variants no earlier set used. US English:
# en-us-nyc+Caleb (New York City), en-us+travis and the robotic en-us+Robosoft; UK English: en-gb+shelby,
# en-gb-x-rp+Gustave, en-gb-scotland+Quincy; Turkish: tr+Storm, tr+sandro, tr+Adam. Tried and dropped: SAM (npm
# sam-js, a 1982 formant synthesizer): Whisper base returned nothing for most of a test call's sentences.
NYC_VOICES: dict[str, tuple[str, ...]] = {
    "us": ("espeak:en-us-nyc+Caleb", "espeak:en-us+travis", "espeak:en-us+Robosoft"),
    "uk": ("espeak:en-gb+shelby", "espeak:en-gb-x-rp+Gustave", "espeak:en-gb-scotland+Quincy")}
NYC_VOICES_TR = ("espeak:tr+Storm", "espeak:tr+sandro", "espeak:tr+Adam")
# ``--voices aunty`` (set H, bench/holdout10): espeak-ng voice variants no earlier set used. US English: en-us+john,
# en-us+grandma, en-us+zac; UK English: en-gb+aunty, the Lancaster accent en-gb-x-gbclan+norbert, en-gb+david;
# Turkish: tr+iven, tr+boris, tr+robert. (MBROLA's diphone voices would be a new engine, but Debian ships them
# in non-free, which this machine's sources leave out.)
AUNTY_VOICES: dict[str, tuple[str, ...]] = {
    "us": ("espeak:en-us+john", "espeak:en-us+grandma", "espeak:en-us+zac"),
    "uk": ("espeak:en-gb+aunty", "espeak:en-gb-x-gbclan+norbert", "espeak:en-gb+david")}
AUNTY_VOICES_TR = ("espeak:tr+iven", "espeak:tr+boris", "espeak:tr+robert")
# ``--voices serious`` (set I, bench/holdout11): espeak-ng variants no earlier set used. US English: en-us+Mr_Serious,
# en-us+grandpa and the Caribbean accent en-029+Michel; UK English: en-gb+Nguyen, en-gb+Kaukovalta,
# en-gb-scotland+Antonio; Turkish: tr+Mario, tr+Nguyen, tr+Gene2 (of 22 Turkish variants tried on a test
# sentence, the only ones Whisper base returned any words for).
SERIOUS_VOICES: dict[str, tuple[str, ...]] = {
    "us": ("espeak:en-us+Mr_Serious", "espeak:en-us+grandpa", "espeak:en-029+Michel"),
    "uk": ("espeak:en-gb+Nguyen", "espeak:en-gb+Kaukovalta", "espeak:en-gb-scotland+Antonio")}
SERIOUS_VOICES_TR = ("espeak:tr+Mario", "espeak:tr+Nguyen", "espeak:tr+Gene2")
# ``--voices robo`` (set J, bench/holdout12): espeak-ng variants no earlier set used, two of them robotic. US English:
# en-us+pedro, en-us+robosoft3, en-us+UniRobot; UK English: en-gb+Jacky, en-gb-x-rp+Diogo, the Lancaster accent
# en-gb-x-gbclan+edward2 (12-19% of a test sentence's words wrong for Whisper base); Turkish: tr+pablo, tr+announcer,
# tr+miguel (of 18 unused Turkish variants tried on a test sentence, the ones Whisper base returned words for).
ROBO_VOICES: dict[str, tuple[str, ...]] = {
    "us": ("espeak:en-us+pedro", "espeak:en-us+robosoft3", "espeak:en-us+UniRobot"),
    "uk": ("espeak:en-gb+Jacky", "espeak:en-gb-x-rp+Diogo", "espeak:en-gb-x-gbclan+edward2")}
ROBO_VOICES_TR = ("espeak:tr+pablo", "espeak:tr+announcer", "espeak:tr+miguel")
# ``--voices wmid`` (set K, bench/holdout13): espeak-ng variants and an accent no earlier set used. US English:
# en-us+marcelo, en-us+steph3, en-us+klatt4; UK English in the West Midlands accent (en-gb-x-gbcwmd) with
# Henrique, Tweaky, steph2 (0-15% of a test sentence's words wrong for Whisper base); Turkish: tr+robosoft4,
# tr+robosoft5, tr+robosoft2 (of 22 unused Turkish variants tried on a test sentence, the three Whisper base got
# most words of: 70-85% wrong; the rest 90-140%).
WMID_VOICES: dict[str, tuple[str, ...]] = {
    "us": ("espeak:en-us+marcelo", "espeak:en-us+steph3", "espeak:en-us+klatt4"),
    "uk": ("espeak:en-gb-x-gbcwmd+Henrique", "espeak:en-gb-x-gbcwmd+Tweaky", "espeak:en-gb-x-gbcwmd+steph2")}
WMID_VOICES_TR = ("espeak:tr+robosoft4", "espeak:tr+robosoft5", "espeak:tr+robosoft2")
# ``--voices croak`` (set L, bench/holdout14): espeak-ng variants no earlier set used. US English: en-us+robosoft7,
# en-us+iven3, en-us+Andrea; UK English: en-gb+croak, en-gb+anikaRobot, the West Midlands accent with iven4
# (3-23% of a test sentence's words wrong for Whisper base); Turkish: tr+steph, tr+iven4, tr+robosoft8 (of 17
# unused Turkish variants tried on a test sentence, the three Whisper base got most words of: 67-83% wrong).
CROAK_VOICES: dict[str, tuple[str, ...]] = {
    "us": ("espeak:en-us+robosoft7", "espeak:en-us+iven3", "espeak:en-us+Andrea"),
    "uk": ("espeak:en-gb+croak", "espeak:en-gb+anikaRobot", "espeak:en-gb-x-gbcwmd+iven4")}
CROAK_VOICES_TR = ("espeak:tr+steph", "espeak:tr+iven4", "espeak:tr+robosoft8")
# ``--voices annie`` (set M, bench/holdout15): espeak-ng variants no earlier set used. US English: en-us+Annie,
# en-us+belinda, en-us+rob; UK English: en-gb+Gene, en-gb-x-rp+Lee, en-gb-scotland+victor (0-27% of a test sentence's
# words wrong for Whisper base); Turkish: tr+steph3, tr+steph2, tr+iven3 (of 13 unused Turkish variants tried on a
# test sentence, the three Whisper base got most words of: 61-89% wrong; the rest 100-128%).
ANNIE_VOICES: dict[str, tuple[str, ...]] = {
    "us": ("espeak:en-us+Annie", "espeak:en-us+belinda", "espeak:en-us+rob"),
    "uk": ("espeak:en-gb+Gene", "espeak:en-gb-x-rp+Lee", "espeak:en-gb-scotland+victor")}
ANNIE_VOICES_TR = ("espeak:tr+steph3", "espeak:tr+steph2", "espeak:tr+iven3")
# Families choosing from a fixed table of voices per accent (English) and for Turkish.
VoiceTable = tuple[dict[str, tuple[str, ...]], tuple[str, ...]]
VOICE_TABLES: dict[str, VoiceTable] = {"festival": (FESTIVAL_VOICES, FESTIVAL_VOICES_TR),
                                       "kal": (KAL_VOICES, KAL_VOICES_TR), "gnu": (GNU_VOICES, GNU_VOICES_TR),
                                       "nyc": (NYC_VOICES, NYC_VOICES_TR), "aunty": (AUNTY_VOICES, AUNTY_VOICES_TR),
                                       "serious": (SERIOUS_VOICES, SERIOUS_VOICES_TR),
                                       "robo": (ROBO_VOICES, ROBO_VOICES_TR),
                                       "wmid": (WMID_VOICES, WMID_VOICES_TR),
                                       "croak": (CROAK_VOICES, CROAK_VOICES_TR),
                                       "annie": (ANNIE_VOICES, ANNIE_VOICES_TR)}
VOICE_FAMILIES = ("espeak", "fresh", *VOICE_TABLES)

log = logging.getLogger("bench.eval_rubric")


# ---------------------------------------------------------------------------------------------
# The set
# ---------------------------------------------------------------------------------------------
@dataclass
class Call:
    id: str
    path: Path
    language: str
    accent: str
    call_time: datetime
    direction: str | None
    company: str | None
    agent_name: str | None
    sector: str | None
    customer_phone: str | None
    turns: list[dict[str, Any]]
    labels: dict[str, Any]

    def metadata(self) -> CallMetadata:
        """As a telephony export passes it: typed columns, and company / agent name as extra columns."""
        extra = {k: v for k, v in (("company", self.company), ("agent_name", self.agent_name),
                                   ("sector", self.sector)) if v}
        direction = self.direction if self.direction in ("inbound", "outbound") else None
        return CallMetadata(call_time=self.call_time, direction=direction,
                            customer_phone=self.customer_phone, extra=extra)


_STAGE_DIRECTION = re.compile(r"\[[^\]]*\]")


def spoken_turns(turns: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The turns as a recording holds them: stage directions ("[line goes dead]", "[sessizlik]") are not
    words anybody says, so they are removed; a turn left without a letter or digit is dropped and its pause
    goes to the next turn (a caller answering with only a number, "07700 900412.", still spoke)."""
    kept: list[dict[str, Any]] = []
    carried = 0.0
    for raw in turns:
        text = re.sub(r"\s+", " ", _STAGE_DIRECTION.sub(" ", str(raw.get("text", "")))).strip()
        if not re.search(r"[^\W_]", text):
            carried += float(raw.get("pause", 0.0) or 0.0) + 1.0
            continue
        turn = dict(raw, text=text)
        if carried:
            turn["pause"] = float(turn.get("pause", 0.4) or 0.4) + carried
            carried = 0.0
        kept.append(turn)
    return kept


def load_set(folder: Path, keep_stage_directions: bool = False) -> tuple[list[Call], datetime | None]:
    calls = []
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or "turns" not in data:
            continue
        calls.append(Call(
            id=str(data["id"]), path=path, language=str(data.get("language", "en")),
            accent=str(data.get("accent") or ("tr" if data.get("language") == "tr" else "us")),
            call_time=datetime.fromisoformat(str(data["call_time"])), direction=data.get("direction"),
            company=data.get("company"), agent_name=data.get("agent_name"), sector=data.get("sector"),
            customer_phone=None if data.get("customer_phone") is None else str(data["customer_phone"]),
            turns=(list(data.get("turns") or []) if keep_stage_directions else spoken_turns(data.get("turns") or [])),
            labels=dict(data.get("labels") or {}),
        ))
    as_of = None
    readme = folder / "README.md"
    if readme.exists():
        match = re.search(r"as_of:\s*`?\"?([0-9T:\-+ ]{16,25})", readme.read_text(encoding="utf-8"))
        if match:
            as_of = datetime.fromisoformat(match.group(1).strip())
    return calls, as_of


def _digest(call: Call, condition: str) -> str:
    return hashlib.sha256(f"{call.path.parent.name}/{call.id}/{condition}".encode()).hexdigest()


def text_record(call: Call) -> CallRecord:
    """A record as the conversation stage would give it: ordered turns with roles and timings."""
    turns = []
    clock = 0.5
    for i, raw in enumerate(call.turns):
        clock += float(raw.get("pause", 0.4) or 0.4)
        duration = max(0.6, len(str(raw["text"]).split()) / WORDS_PER_SECOND)
        turns.append(Turn(index=i, role=str(raw["role"]), track=0 if raw["role"] == "agent" else 1,
                          start=round(clock, 2), end=round(clock + duration, 2), text=str(raw["text"])))
        clock += duration
    digest = _digest(call, "text")
    return CallRecord(
        pipeline_version=PIPELINE_VERSION, record_id=make_record_id(digest, PIPELINE_VERSION), audio_sha256=digest,
        source=str(call.path), file_name=call.path.name, language=call.language, metadata=call.metadata(),
        turns=turns,
    )


def voices_for(call: Call, family: str = "espeak") -> dict[str, str]:
    """Two different voices for the call's language/accent, fixed per call id (``family``: see VOICE_FAMILIES)."""
    seed = zlib.crc32(call.id.encode())
    if family == "fresh":
        return fresh_voices_for(call, seed)
    if family in VOICE_TABLES:
        return table_voices_for(call, seed, family)
    if call.language == "tr":
        accents: tuple[str, ...] = ("tr",)
    else:
        accents = EN_ACCENTS.get(call.accent, EN_ACCENTS["us"])
    agent_variant = VARIANTS[seed % len(VARIANTS)]
    customer_variant = VARIANTS[(seed // 7 + 1 + VARIANTS.index(agent_variant)) % len(VARIANTS)]
    if customer_variant == agent_variant:
        customer_variant = VARIANTS[(VARIANTS.index(agent_variant) + 2) % len(VARIANTS)]
    # Turkish espeak is hard for Whisper: keep it at or below normal speed.
    speeds = SPEEDS[:4] if call.language == "tr" else SPEEDS
    return {
        "agent": f"espeak:{accents[seed % len(accents)]}+{agent_variant}:speed={speeds[(seed // 11) % len(speeds)]}",
        "customer": f"espeak:{accents[(seed // 3) % len(accents)]}+{customer_variant}:"
                    f"speed={speeds[(seed // 13) % len(speeds)]}",
    }


def fresh_voices_for(call: Call, seed: int) -> dict[str, str]:
    if call.language == "tr":
        agent = NAMED_VARIANTS_TR[seed % len(NAMED_VARIANTS_TR)]
        customer = NAMED_VARIANTS_TR[(seed // 7 + 1 + NAMED_VARIANTS_TR.index(agent)) % len(NAMED_VARIANTS_TR)]
        if customer == agent:
            customer = NAMED_VARIANTS_TR[(NAMED_VARIANTS_TR.index(agent) + 1) % len(NAMED_VARIANTS_TR)]
        speeds = SPEEDS[:4]
        return {"agent": f"espeak:tr+{agent}:speed={speeds[(seed // 11) % len(speeds)]}",
                "customer": f"espeak:tr+{customer}:speed={speeds[(seed // 13) % len(speeds)]}"}
    names = FLITE_VOICES.get(call.accent, FLITE_VOICES["us"])
    agent = names[seed % len(names)]
    customer = names[(seed // 5 + 1 + names.index(agent)) % len(names)]
    if customer == agent:
        customer = names[(names.index(agent) + 1) % len(names)]
    return {"agent": f"flite:{agent}:speed={SPEEDS[(seed // 11) % len(SPEEDS)]}",
            "customer": f"flite:{customer}:speed={SPEEDS[(seed // 13) % len(SPEEDS)]}"}


def table_voices_for(call: Call, seed: int, family: str = "festival") -> dict[str, str]:
    """Two of the family's voices for the call's accent (a family of VOICE_TABLES), fixed per call."""
    table, turkish = VOICE_TABLES[family]
    names = turkish if call.language == "tr" else table.get(call.accent, table["us"])
    agent = names[seed % len(names)]
    customer = names[(names.index(agent) + 1 + (seed // 5) % (len(names) - 1)) % len(names)]
    speeds = SPEEDS[:4] if call.language == "tr" else SPEEDS
    return {"agent": f"{agent}:speed={speeds[(seed // 11) % len(speeds)]}",
            "customer": f"{customer}:speed={speeds[(seed // 13) % len(speeds)]}"}


def conditions_for(call: Call, index: int, audio: bool) -> list[str]:
    if not audio:
        return ["text"]
    return ["16k", "8k"] if index % 2 == 0 else ["16k"]


def forced_conditions(call: Call, index: int, audio: bool, wanted: str | None) -> list[str]:
    """``--conditions``: the conditions asked for, whatever the call's position."""
    if not wanted or not audio:
        return conditions_for(call, index, audio)
    return [c for c in wanted.split(",") if c in ("16k", "8k")]


class AudioRecords:
    """Render (bench.synth) and transcribe (the pipeline, no analysis) a call; both cached under ``cache``."""

    def __init__(self, settings: Settings, cache: Path, voices: str = "espeak") -> None:
        self.settings = settings
        self.cache = cache
        self.voices = voices
        self._pipeline: Any = None
        self.asr_seconds: dict[tuple[str, str], float] = {}

    def _key(self, call: Call, condition: str) -> str:
        voices = json.dumps(voices_for(call, self.voices), sort_keys=True)
        blob = call.path.read_bytes() + voices.encode() + condition.encode()
        raw = yaml.safe_load(call.path.read_text(encoding="utf-8")).get("turns") or []
        if any(_STAGE_DIRECTION.search(str(t.get("text", ""))) for t in raw):  # rendered without them
            blob += json.dumps(call.turns, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def audio_path(self, call: Call, condition: str) -> Path:
        """Render the call once (cached), return the audio file."""
        from bench.synth import CallScript, RenderOptions, VoiceSpec, render_call, write_call

        folder = self.cache / "audio"
        key = self._key(call, condition)
        stem = f"{call.id}-{condition}-{key}"
        path = folder / f"{stem}.wav"
        if path.exists():
            return path
        seed = zlib.crc32(call.id.encode())
        if condition == "8k":
            options = RenderOptions(fmt="mulaw8k", noise_snr_db=(15.0, 20.0, 25.0)[seed % 3], name=stem)
        else:
            options = RenderOptions(fmt="wav", name=stem)
        data = yaml.safe_load(call.path.read_text(encoding="utf-8"))
        data["turns"] = spoken_turns(data.get("turns") or [])
        if not data["turns"]:  # nobody said anything: a short line of silence from the agent's side
            data["turns"] = [{"role": "agent", "text": "Hello?"}]
        script = CallScript.from_dict(data, default_id=call.id)
        voices = {role: VoiceSpec.parse(spec) for role, spec in voices_for(call, self.voices).items()}
        written, _ = write_call(render_call(script, options, voices), folder)
        return written

    def record(self, call: Call, condition: str) -> CallRecord:
        from pipeline.runner import CallPipeline

        model = self.settings.transcribe.model
        cached = self.cache / "transcripts" / f"{call.id}-{condition}-{model}-{self._key(call, condition)}.json"
        if cached.exists():
            data = json.loads(cached.read_text(encoding="utf-8"))
            record = CallRecord.model_validate(data["record"])
            self.asr_seconds[(call.id, condition)] = float(data["asr_seconds"])
        else:
            path = self.audio_path(call, condition)
            if self._pipeline is None:
                self._pipeline = CallPipeline(self.settings, analyse=False)
            started = time.perf_counter()
            record = self._pipeline.process_file(path, call.metadata())
            self.asr_seconds[(call.id, condition)] = time.perf_counter() - started
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps({"asr_seconds": self.asr_seconds[(call.id, condition)],
                                          "record": record.model_dump(mode="json")}), encoding="utf-8")
        # Metadata as the export gives it, whatever the cache holds; one record per call and condition.
        digest = _digest(call, condition)
        record.metadata = call.metadata()
        record.audio_sha256 = digest
        record.record_id = make_record_id(digest, PIPELINE_VERSION)
        return record


# ---------------------------------------------------------------------------------------------
# Predictions
# ---------------------------------------------------------------------------------------------
@dataclass
class Prediction:
    id: str
    condition: str
    failed: bool = False
    category: str | None = None
    subcategory: str | None = None
    customer_start: str | None = None
    customer_end: str | None = None
    agent: str | None = None
    callback: bool = False
    callback_by: str | None = None
    due: datetime | None = None
    compliance: dict[str, str] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    pii: list[dict[str, Any]] = field(default_factory=list)
    final_status: str | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    llm_seconds: float = 0.0
    llm_calls: int = 0
    audio_seconds: float = 0.0
    turns: list[dict[str, Any]] = field(default_factory=list)


def predict(analyser: Any, record: CallRecord, call: Call, condition: str) -> tuple[Prediction, CallRecord]:
    from pipeline.stage import CallState

    original = [t.text for t in record.turns]  # before redaction, to show what was masked
    started, cpu_started = time.perf_counter(), time.process_time()
    record = analyser.run(CallState(record=record)).record
    pred = Prediction(id=call.id, condition=condition, seconds=time.perf_counter() - started,
                      cpu_seconds=time.process_time() - cpu_started,
                      audio_seconds=max((t.end for t in record.turns), default=0.0),
                      turns=[{"role": t.role, "text": t.text} for t in record.turns])
    a = record.analysis
    if a is None:
        pred.failed = True
        return pred, record
    pred.failed = record.analysis_status != "done"
    pred.category, pred.subcategory = a.category, a.subcategory
    if a.sentiment is not None:
        start, end = a.sentiment.customer.at("start"), a.sentiment.customer.at("end")
        pred.customer_start = start.label if start else a.sentiment.customer.label
        pred.customer_end = end.label if end else a.sentiment.customer.label
        pred.agent = a.sentiment.agent.label
    pred.callback = a.callback.promised
    pred.callback_by = a.callback.by
    pred.due = a.callback.due.replace(tzinfo=None) if a.callback.due else None
    pred.compliance = {i.id: i.status for i in a.compliance}
    pred.flags = [f.name for f in a.flags]
    pred.pii = [{"kind": s.kind, "turn": s.turn, "start": s.char_start, "end": s.char_end,
                 "text": original[s.turn][s.char_start:s.char_end] if s.turn < len(original) else ""}
                for s in a.pii]
    pred.llm_seconds, pred.llm_calls = a.llm.seconds, a.llm.calls
    return pred, record


def cross_call_status(
    settings: Settings, records: Sequence[CallRecord], as_of: datetime | None
) -> dict[str, dict[str, Any]]:
    """Write the records into a real embedded store, run the store's follow-up and callback checks (as of
    ``as_of``), and read back per audio hash what a user would query: callback status, category, subcategory."""
    from pipeline.analysis.flags import FlagConfig
    from pipeline.analysis.taxonomy import Taxonomy
    from pipeline.follow_up_check import check_follow_ups
    from pipeline.store.callbacks import verify_callbacks
    from pipeline.store.store import CallStore

    with CallStore(settings) as store:
        store.upsert_records(list(records))
        check_follow_ups(store, Taxonomy.load(settings.analysis.taxonomy_file),
                         FlagConfig.load(settings.analysis.flags_file))
        verify_callbacks(store, now=as_of)
        found = store.calls.find({}, {"callback_status": 1, "audio_sha256": 1, "category": 1, "subcategory": 1})
        return {str(doc["audio_sha256"]): {"callback_status": str(doc.get("callback_status") or "none"),
                                           "category": doc.get("category"), "subcategory": doc.get("subcategory")}
                for doc in found}


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------
def _f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _ratio(ok: int, n: int) -> float | None:
    return ok / n if n else None


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


_PII_KIND = {"card": "card_number"}  # the set format's PII types -> the pipeline's span kinds


def pii_hits(call: Call, pred: Prediction) -> tuple[int, int, int]:
    """(gold values masked, gold values, predicted spans matching no gold value).

    Text: a gold value is masked when predicted spans cover at least 80% of its characters in the turn
    that holds it. Audio: the words differ, so gold values and predicted spans are matched by type
    (any type when none of the same is left), one span per value."""
    gold = list(call.labels.get("pii") or [])
    if not gold:
        return 0, 0, len(pred.pii)
    if pred.condition == "text":
        used: set[int] = set()
        masked = 0
        for item in gold:
            value = str(item.get("text", ""))
            hit = False
            # Every place the value is said (a read-back repeats it, perhaps capitalised as a sentence's first
            # word): spans there are no false masks.
            for t_index, turn in enumerate(call.turns):
                for found in re.finditer(re.escape(value), str(turn["text"]), re.IGNORECASE):
                    pos = found.start()
                    covered = set()
                    for s_index, span in enumerate(pred.pii):
                        if span["turn"] != t_index:
                            continue
                        overlap = set(range(max(pos, span["start"]), min(pos + len(value), span["end"])))
                        if overlap:
                            covered |= overlap
                            used.add(s_index)
                    if len(covered) >= 0.8 * len(value.replace(" ", "")) or len(covered) >= 0.8 * len(value):
                        hit = True
            masked += hit
        return masked, len(gold), sum(1 for i in range(len(pred.pii)) if i not in used)
    remaining = list(range(len(pred.pii)))
    masked = 0
    for item in gold:
        same = [i for i in remaining if pred.pii[i]["kind"] == _PII_KIND.get(item.get("type"), item.get("type"))]
        pick = (same or remaining)[:1]
        if pick:
            remaining.remove(pick[0])
            masked += 1
    # A read-back repeats a value (the agent confirming the e-mail): a span of a kind the call holds is no
    # false mask, as in the text scoring.
    kinds = {_PII_KIND.get(item.get("type"), item.get("type")) for item in gold}
    return masked, len(gold), sum(1 for i in remaining if pred.pii[i]["kind"] not in kinds)


def score(calls: Sequence[Call], preds: Sequence[Prediction]) -> dict[str, Any]:
    by_id = {p.id: p for p in preds}
    pairs = [(c, by_id[c.id]) for c in calls if c.id in by_id]
    n = len(pairs)
    lab = [(c.labels, p) for c, p in pairs]
    out: dict[str, Any] = {"calls": n}
    out["category_accuracy"] = _ratio(sum(p.category == g["category"] for g, p in lab), n)
    pc = [(g, p) for g, p in lab if g["category"] == "Potential Customer"]
    out["potential_customer_recall"] = _ratio(sum(p.category == "Potential Customer" for _, p in pc), len(pc))
    un = [(g, p) for g, p in lab if g["category"] == "Unnecessary Call"]
    out["subcategory_accuracy"] = _ratio(sum(p.subcategory == g.get("subcategory") for g, p in un), len(un))
    for key, gold_key in (("customer_start", "customer_sentiment_start"), ("customer_end", "customer_sentiment_end"),
                          ("agent", "agent_sentiment")):
        have = [(g, p) for g, p in lab if g.get(gold_key)]
        out[f"{key}_sentiment_accuracy"] = _ratio(sum(getattr(p, key) == g[gold_key] for g, p in have), len(have))
    cb = [(g.get("callback") or {}, p) for g, p in lab]
    tp = sum(p.callback and bool(g.get("promised")) for g, p in cb)
    fp = sum(p.callback and not g.get("promised") for g, p in cb)
    fn = sum(not p.callback and bool(g.get("promised")) for g, p in cb)
    out["callback_precision"], out["callback_recall"], out["callback_f1"] = _f1(tp, fp, fn)
    with_by = [(g, p) for g, p in cb if g.get("promised") and p.callback and g.get("by")]
    # The side that promised: a technician, a manager or a team speak for the agent's side.
    out["callback_by_accuracy"] = _ratio(sum(("customer" if p.callback_by == "customer" else "agent") == g["by"]
                                             for g, p in with_by), len(with_by))
    with_due = [(g, p) for g, p in cb if g.get("promised") and g.get("due")]
    exact = within = 0
    for g, p in with_due:
        truth = datetime.fromisoformat(str(g["due"]))
        if p.due is not None and p.due.date() == truth.date() and p.due.hour == truth.hour:
            exact += 1
        window = g.get("window")
        if p.due is not None and window:
            low, high = (datetime.fromisoformat(str(w)) for w in window)
            within += low <= p.due <= high
        elif p.due is not None and abs(p.due - truth) <= timedelta(minutes=30):
            within += 1
    out["due_exact_hour"] = _ratio(exact, len(with_due))
    out["due_within_window"] = _ratio(within, len(with_due))
    statuses = [(g, p) for g, p in cb if g.get("final_status")]
    out["callback_final_status_accuracy"] = _ratio(sum(p.final_status == g["final_status"] for g, p in statuses),
                                                   len(statuses))
    out["callback_final_status_pairs"] = [f"{c.id}: {p.final_status} (want {(c.labels.get('callback') or {})['final_status']})"  # noqa: E501
                                          for c, p in pairs if (c.labels.get("callback") or {}).get("final_status")]
    total = [0, 0, 0]
    per_item: dict[str, dict[str, float | None]] = {}
    for item in COMPLIANCE_ITEMS:
        t = f = m = 0
        for g, p in lab:
            gold_status = (g.get("compliance") or {}).get(item)
            if gold_status is None:
                continue
            pred_status = p.compliance.get(item)
            t += pred_status == "fail" and gold_status == "fail"
            f += pred_status == "fail" and gold_status != "fail"
            m += pred_status != "fail" and gold_status == "fail"
        precision, recall, _ = _f1(t, f, m)
        per_item[item] = {"precision": precision if t + f else None, "recall": recall if t + m else None,
                          "gold_fail": t + m, "pred_fail": t + f}
        total = [total[0] + t, total[1] + f, total[2] + m]
    out["compliance_fail_precision"], out["compliance_fail_recall"], _ = _f1(*total)
    out["compliance_per_item"] = per_item
    out["calls_truly_failing"] = sum(any(v == "fail" for v in (g.get("compliance") or {}).values()) for g, _ in lab)
    out["calls_flagged_compliance_failure"] = sum("compliance_failure" in p.flags for _, p in lab)
    with_pii = [(c, p) for c, p in pairs if c.labels.get("pii")]
    masked_calls = false_masks = 0
    for c, p in pairs:
        hit, gold, extra = pii_hits(c, p)
        masked_calls += bool(gold) and hit == gold
        false_masks += extra
    out["pii_calls"] = len(with_pii)
    out["pii_calls_fully_masked"] = masked_calls
    out["pii_false_masks"] = false_masks
    seconds = [p.seconds for _, p in pairs]
    out["seconds_per_call"] = statistics.fmean(seconds) if seconds else None
    out["cpu_seconds_per_call"] = statistics.fmean(p.cpu_seconds for _, p in pairs) if pairs else None
    out["llm_seconds_per_call"] = statistics.fmean(p.llm_seconds for _, p in pairs) if pairs else None
    long_calls = [p.cpu_seconds for _, p in pairs if p.audio_seconds >= 150]
    short_calls = [p.cpu_seconds for _, p in pairs if p.audio_seconds < 90]
    out["cpu_seconds_short_call"] = statistics.fmean(short_calls) if short_calls else None
    out["cpu_seconds_long_call"] = statistics.fmean(long_calls) if long_calls else None
    out["failed_calls"] = sum(p.failed for _, p in pairs)
    return out


def errors(calls: Sequence[Call], preds: Sequence[Prediction]) -> list[str]:
    by_id = {p.id: p for p in preds}
    lines = []
    for c in calls:
        p = by_id.get(c.id)
        if p is None:
            continue
        g = c.labels
        if (p.category, p.subcategory) != (g["category"], g.get("subcategory")):
            lines.append(f"{c.id} label: {p.subcategory or p.category} (want {g.get('subcategory') or g['category']})")
        for key, gold_key in (("customer_start", "customer_sentiment_start"),
                              ("customer_end", "customer_sentiment_end"), ("agent", "agent_sentiment")):
            if g.get(gold_key) and getattr(p, key) != g[gold_key]:
                lines.append(f"{c.id} {key}: {getattr(p, key)} (want {g[gold_key]})")
        cb = g.get("callback") or {}
        if p.callback != bool(cb.get("promised")):
            lines.append(f"{c.id} callback: {p.callback} (want {cb.get('promised')})")
        elif cb.get("promised") and cb.get("due"):
            truth = datetime.fromisoformat(str(cb["due"]))
            if p.due != truth:
                lines.append(f"{c.id} due: {p.due} (want {truth})")
        if cb.get("final_status") and p.final_status != cb["final_status"]:
            lines.append(f"{c.id} final_status: {p.final_status} (want {cb['final_status']})")
        for item, truth in (g.get("compliance") or {}).items():
            if p.compliance.get(item) != truth:
                lines.append(f"{c.id} compliance.{item}: {p.compliance.get(item)} (want {truth})")
        hit, gold, extra = pii_hits(c, p)
        if hit < gold or extra:
            lines.append(f"{c.id} pii: {hit}/{gold} masked, {extra} false ({[s['text'] for s in p.pii]})")
    return lines


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
ROWS = (
    ("category_accuracy", "category (4)", "{:.0%}"),
    ("potential_customer_recall", "Potential Customer recall", "{:.0%}"),
    ("subcategory_accuracy", "sub-category (gold Unnecessary Calls)", "{:.0%}"),
    ("customer_start_sentiment_accuracy", "customer sentiment at start", "{:.0%}"),
    ("customer_end_sentiment_accuracy", "customer sentiment at end", "{:.0%}"),
    ("agent_sentiment_accuracy", "agent sentiment", "{:.0%}"),
    ("callback_precision", "callback promised precision", "{:.2f}"),
    ("callback_recall", "callback promised recall", "{:.2f}"),
    ("callback_f1", "callback promised F1", "{:.2f}"),
    ("callback_by_accuracy", "callback promised by (agent/customer)", "{:.0%}"),
    ("due_exact_hour", "callback due exact hour", "{:.0%}"),
    ("due_within_window", "callback due within window", "{:.0%}"),
    ("callback_final_status_accuracy", "callback final_status (store check)", "{:.0%}"),
    ("compliance_fail_precision", "compliance-failure precision", "{:.2f}"),
    ("compliance_fail_recall", "compliance-failure recall", "{:.2f}"),
    ("calls_flagged_compliance_failure", "calls flagged compliance_failure", "{:d}"),
    ("calls_truly_failing", "calls truly failing an item", "{:d}"),
    ("pii_calls_fully_masked", "PII calls fully masked", "{:d}"),
    ("pii_calls", "calls with PII", "{:d}"),
    ("pii_false_masks", "PII false masks", "{:d}"),
    ("cpu_seconds_per_call", "analysis CPU s/call (1 LLM thread)", "{:.1f}"),
    ("cpu_seconds_short_call", "analysis CPU s, calls < 90 s", "{:.1f}"),
    ("cpu_seconds_long_call", "analysis CPU s, calls >= 150 s", "{:.1f}"),
    ("llm_seconds_per_call", "LLM s/call", "{:.1f}"),
    ("failed_calls", "failed/pending analyses", "{:d}"),
)


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = metrics_table(results, ROWS)
    names_items = [n for n in results if results[n].get("compliance_per_item")]
    for item in COMPLIANCE_ITEMS:
        cells = []
        for name in names_items:
            d = results[name]["compliance_per_item"][item]
            p = "-" if d["precision"] is None else f"{d['precision']:.2f}"
            r = "-" if d["recall"] is None else f"{d['recall']:.2f}"
            cells.append(f"P {p} R {r} ({d['pred_fail']}/{d['gold_fail']})")
        lines.append(f"| {item} fail P/R (pred/gold) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def make_settings(args: argparse.Namespace, home: Path) -> Settings:
    llm: dict[str, Any] = {"backend": args.backend, "embedded_threads": args.threads, "embedded_model": args.model}
    analysis = json.loads(args.analysis) if args.analysis else {}
    # The labelled sets are seed calls of the classifier (bench/seed_from_sets.py): never score a set
    # with a classifier trained on it.
    analysis.setdefault("seed_calls_leave_out", [f"{Path(args.set).name}/"])
    return Settings(home=home, models_dir=REPO / ".cache" / "callaudit" / "models", llm=llm, analysis=analysis,
                    transcribe={"model": args.transcribe_model, "cpu_threads": args.threads})


def run(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(args.set)
    calls, as_of = load_set(folder, args.keep_stage_directions)
    position = {c.id: i for i, c in enumerate(calls)}  # the 8 kHz choice follows the whole set's order
    whole_set = list(calls)
    if args.only:
        wanted = set(args.only.split(","))
        calls = [c for c in calls if c.id in wanted]
    if args.limit:
        calls = calls[: args.limit]
    cache = Path(args.cache) if args.cache else OUT / "rubric" / folder.name
    jobs = [(c, cond) for c in calls for cond in forced_conditions(c, position[c.id], args.audio, args.conditions)]
    # A sample's calls whose customer called the company before: those earlier calls are analysed too, in the
    # same condition, and stored but not scored, so the cross-call checks (follow-up labels) see them as a
    # deployment that analyses every call would.
    context: list[tuple[str, str]] = [] if args.no_context else list(dict.fromkeys(
        (e.id, cond) for c, cond in jobs for e in earlier_calls(c, whole_set, calls)))
    by_id = {c.id: c for c in whole_set}
    context_jobs = [(by_id[cid], cond) for cid, cond in context]
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(args, Path(tmp))
        audio = AudioRecords(settings, cache, args.voices) if args.audio else None
        if args.render_only:
            assert audio is not None, "--render-only needs --audio"
            for i, (call, cond) in enumerate(jobs):
                audio.audio_path(call, cond)
                print(f"rendered {i + 1}/{len(jobs)}", file=sys.stderr, flush=True)
            return {"results": {}, "details": {}}
        if audio is not None and not args.no_asr_first:
            # Transcribe everything before the LLM loads, so Whisper and the LLM never hold memory together.
            for i, (call, cond) in enumerate([*jobs, *context_jobs]):
                audio.record(call, cond)
                print(f"transcribed {i + 1}/{len(jobs) + len(context_jobs)} {call.id} {cond}", file=sys.stderr,
                      flush=True)
        from bench.eval_analysis import CachedAnswers
        from pipeline.analysis.analyser import Analyser
        from pipeline.analysis.llm import make_backend

        backend = make_backend(settings)
        if not args.no_cache:
            backend = CachedAnswers(backend, OUT / "llm_cache")
        analyser = Analyser(settings, backend=backend)
        analyser.warm_up()
        preds: dict[str, list[Prediction]] = {}
        records: dict[str, list[CallRecord]] = {}
        for i, (call, cond) in enumerate(jobs):
            record = audio.record(call, cond) if audio is not None else text_record(call)
            pred, analysed = predict(analyser, record, call, cond)
            preds.setdefault(cond, []).append(pred)
            records.setdefault(cond, []).append(analysed)
            print(f"{i + 1}/{len(jobs)} {call.id} [{cond}] {pred.subcategory or pred.category} "
                  f"{pred.cpu_seconds:.1f}s cpu", file=sys.stderr, flush=True)
        context_records: dict[str, list[CallRecord]] = {}
        for call, cond in context_jobs:
            record = audio.record(call, cond) if audio is not None else text_record(call)
            _, analysed = predict(analyser, record, call, cond)
            context_records.setdefault(cond, []).append(analysed)
            print(f"context {call.id} [{cond}] (not scored)", file=sys.stderr, flush=True)
        backend.close()
        # Cross-call checks (follow-up labels, callbacks): one store per condition (a set's calls refer to each other).
        for cond, recs in records.items():
            cond_settings = make_settings(args, Path(tmp) / f"store-{cond}")
            # A sample of the set (--only, --limit) still has the rest of the set's calls in the store, as the
            # day's other calls (their words unanalysed): a promise is kept by a call outside the sample too.
            scored = {p.id for p in preds[cond]} | {cid for cid, ccond in context if ccond == cond}
            others = [text_record(c) for c in whole_set if c.id not in scored]
            try:
                status = cross_call_status(cond_settings, [*recs, *context_records.get(cond, []), *others], as_of)
            except Exception as err:  # report the store problem, keep the other scores
                log.warning("cross-call callback check failed for %s: %s", cond, err)
                status = {}
            for pred, rec in zip(preds[cond], recs, strict=True):
                stored = status.get(rec.audio_sha256) or {}
                pred.final_status = rubric_final_status(stored.get("callback_status"), pred.callback)
                if stored.get("category") and rec.analysis is not None:  # the label the store holds: follow-ups
                    pred.category, pred.subcategory = stored["category"], stored.get("subcategory")
    results: dict[str, dict[str, Any]] = {}
    details: dict[str, Any] = {}
    for cond in CONDITIONS:
        if cond not in preds:
            continue
        subset = [c for c in calls if any(p.id == c.id for p in preds[cond])]
        name = {"text": "text", "16k": "16 kHz audio", "8k": "8 kHz audio"}[cond]
        results[name] = score(subset, preds[cond])
        if audio is not None:
            asr = [s for (cid, cnd), s in audio.asr_seconds.items() if cnd == cond]
            results[name]["asr_seconds_per_call"] = statistics.fmean(asr) if asr else None
        details[name] = {"errors": errors(subset, preds[cond]), "predictions": [p.__dict__ for p in preds[cond]]}
    return {"set": str(folder), "as_of": str(as_of), "pipeline_version": PIPELINE_VERSION, "results": results,
            "details": details}


def earlier_calls(call: Call, whole_set: Sequence[Call], sample: Sequence[Call]) -> list[Call]:
    """The set's calls outside ``sample`` made before ``call`` by the same customer (phone) with the same company."""
    if not call.customer_phone:
        return []
    sampled = {c.id for c in sample}
    return [c for c in whole_set if c.id not in sampled and c.customer_phone == call.customer_phone
            and c.company == call.company and c.call_time < call.call_time]


def rubric_final_status(store_status: str | None, promised: bool) -> str | None:
    """The store's verdict in the rubric's words (kept / overdue / pending); None when nothing was promised."""
    if not promised:
        return None
    return {"kept": "kept", "overdue": "overdue", "pending": "pending"}.get(store_status or "", "pending")


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", required=True, help="folder of call scripts (FORMAT.md) with README.md as_of")
    parser.add_argument("--audio", action="store_true", help="render to 16 kHz (+ 8 kHz) audio and transcribe")
    parser.add_argument("--voices", choices=VOICE_FAMILIES, default="espeak",
                        help="with --audio: espeak = even espeak-ng variants (sets A, B); fresh = Flite English "
                             "and named espeak-ng Turkish variants (set C); festival = Festival and other "
                             "espeak-ng variants (set D), used by no earlier set")
    parser.add_argument("--render-only", action="store_true", help="with --audio: only render the audio files")
    parser.add_argument("--backend", choices=["embedded", "ollama"], default="embedded")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--transcribe-model", default="base")
    parser.add_argument("--analysis", default="", help="AnalysisSettings overrides as JSON")
    parser.add_argument("--cache", default="", help="audio/transcript cache folder (default bench/out/rubric/SET)")
    parser.add_argument("--no-cache", action="store_true", help="do not replay cached LLM answers")
    parser.add_argument("--no-asr-first", action="store_true", help="transcribe each call just before analysing it")
    parser.add_argument("--keep-stage-directions", action="store_true",
                        help="text: keep '[line goes dead]' in the words (how set A's first score was taken)")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--conditions", default=None,
                        help="with --audio: only these of 16k,8k (the 8 kHz line otherwise goes to every second call "
                             "of the set's order; '--conditions 8k --only IDS' renders chosen calls as 8 kHz lines)")
    parser.add_argument("--only", default="")
    parser.add_argument("--no-context", action="store_true",
                        help="with --only/--limit: do not analyse (unscored) the sampled calls' earlier calls of the "
                             "same customer, which the follow-up check reads")
    parser.add_argument("--out", default="", help="JSON report (default bench/out/rubric-SET[-audio].json)")
    parser.add_argument("--quiet-errors", action="store_true", help="do not print the per-call error lines")
    args = parser.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.WARNING)
    report = run(args)
    if args.render_only:
        print("rendered")
        return 0
    name = Path(args.set).name
    out = Path(args.out) if args.out else OUT / f"rubric-{name}{'-audio' if args.audio else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(table(report["results"]))
    if not args.quiet_errors:
        for cond, detail in report["details"].items():
            print(f"\n## errors ({cond})")
            print("\n".join(detail["errors"]))
    print(f"\nfull report: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
