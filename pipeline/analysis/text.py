"""Text helpers shared by the rule-based analyses: normalisation, phrase matching, turn views.

Rules must survive ASR output (no punctuation, odd casing, Turkish letters sometimes folded to ASCII),
so phrases and transcript are compared in one normal form: lower case, Turkish letters folded,
punctuation turned into spaces, single spaces.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline.analysis_schema import Evidence

AGENT = "agent"
CUSTOMER = "customer"

# Turkish letters folded to ASCII so "garanti"/"garantı" and "müsait"/"musait" match alike.
_FOLD = str.maketrans({"ı": "i", "İ": "i", "ş": "s", "Ş": "s", "ğ": "g", "Ğ": "g", "ü": "u", "Ü": "u",
                       "ö": "o", "Ö": "o", "ç": "c", "Ç": "c", "â": "a", "î": "i", "û": "u"})  # fmt: skip
_NON_WORD = re.compile(r"[^\w@+]+", re.UNICODE)
_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """Lower-case, Turkish-folded, accent-free text with punctuation kept."""
    text = text.translate(_FOLD).lower()
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c))


_CONTRACTIONS = (
    (re.compile(r"\b(can)[’']t\b"), r"\1 not"),
    (re.compile(r"\bwon[’']t\b"), "will not"),
    (re.compile(r"n[’']t\b"), " not"),
    (re.compile(r"[’']ll\b"), " will"),
    (re.compile(r"[’']re\b"), " are"),
    (re.compile(r"\bi[’']m\b"), "i am"),
    # Only after pronouns: "John's van" is a possessive, "that's booked" is "that is booked".
    (re.compile(r"\b(that|it|he|she|there|here|what|who|everything|everyone)[’']s\b"), r"\1 is"),
    (re.compile(r"[’']ve\b"), " have"),
    (re.compile(r"[’']d\b"), " would"),
)


def norm(text: str) -> str:
    """The comparison form: folded, contractions expanded, punctuation to spaces, padded with spaces.

    Contractions are expanded so one phrase ("i will call") also covers "I'll call".
    """
    text = fold(text)
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    text = text.replace("'", "").replace("’", "")
    return " " + _SPACES.sub(" ", _NON_WORD.sub(" ", text)).strip() + " "


def words(text: str) -> list[str]:
    return norm(text).split()


def contains_phrase(normalised_text: str, phrase: str) -> bool:
    """Whole-word phrase search; ``*`` in a phrase matches any word ending (``arar*`` -> ``ararim``)."""
    pattern = phrase_pattern(phrase)
    return pattern.search(normalised_text) is not None


_PATTERN_CACHE: dict[str, re.Pattern[str]] = {}


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """Compile a phrase: ``*`` ends a word with anything, ``_`` is one optional word, ``__`` up to six."""
    cached = _PATTERN_CACHE.get(phrase)
    if cached is not None:
        return cached
    body = ""
    for token in phrase.replace("*", " STAR ").split():
        if token == "_":
            body += r"(?:\w+ )?"
            continue
        if token == "__":
            body += r"(?:\w+ ){0,6}"
            continue
        if token == "STAR":
            body = body[:-1] + r"\w* " if body.endswith(" ") else body + r"\w* "
            continue
        for part in norm(token).split():
            body += re.escape(part) + " "
    body = body.rstrip(" ") if body.endswith(" ") else body
    if not body:
        body = r"\b\B"
    compiled = re.compile(r"(?<= )" + body + r"(?= )")
    _PATTERN_CACHE[phrase] = compiled
    return compiled


def find_phrase(normalised_text: str, phrases: Iterable[str]) -> str | None:
    """The first phrase of ``phrases`` found in the text, or None."""
    for phrase in phrases:
        if contains_phrase(normalised_text, phrase):
            return phrase
    return None


@dataclass(frozen=True)
class TurnView:
    """A turn as the analyses see it: index, role folded to agent/customer, text, start time."""

    index: int
    role: str
    text: str
    start: float
    end: float
    confidence: float = 1.0

    @property
    def normalised(self) -> str:
        return norm(self.text)

    def evidence(self, max_chars: int = 240) -> Evidence:
        quote = self.text if len(self.text) <= max_chars else self.text[: max_chars - 1] + "…"
        return Evidence(quote=quote, turn=self.index, time_s=round(self.start, 2), role=self.role)


def canonical_role(role: str) -> str:
    """Agent stays agent; every other party (customer, caller, speaker_1...) is the customer side."""
    return AGENT if role.strip().lower() in {"agent", "operator", "rep", "representative"} else CUSTOMER


def role_turns(turns: Sequence[TurnView], role: str) -> list[TurnView]:
    return [t for t in turns if t.role == role]


FILLER_WORDS = frozenset(
    [
        "hello", "hi", "hey", "hallo", "alo", "allo", "efendim", "yes", "yeah", "yep", "no", "ok", "okay", "um", "uh",
        "er", "erm", "hm", "hmm", "mm", "mhm", "ah", "oh", "evet", "hayir", "tamam", "iyi", "gunler", "merhaba",
        "sorry", "pardon", "what", "eh"
    ]
)
# Said when nobody can be heard: these carry no request, so they do not make a call non-empty.
NO_CONTACT_PHRASES = (
    "can you hear me", "can anyone hear me", "is anyone there", "anybody there", "i cant hear you",
    "i can not hear you", "you are breaking up", "youre breaking up", "hello hello",
    "beni duyuyor musunuz", "duyuyor musunuz", "sesiniz gelmiyor", "ses gelmiyor", "sizi duyamiyorum",
)  # fmt: skip


def meaningful_words(text: str) -> list[str]:
    """Words of ``text`` that could carry a request: no greetings, fillers or 'can you hear me'."""
    normalised = norm(text)
    for phrase in NO_CONTACT_PHRASES:
        normalised = phrase_pattern(phrase).sub(" ", normalised)
    return [w for w in normalised.split() if w not in FILLER_WORDS]


# One transcript line for the LLM: {turn} number, {speaker} (Agent / Customer), {words}. The prompt that
# describes the format names it (``line_format`` in its YAML); this is the format of prompts that do not.
LINE_FORMAT = "[{turn}] {speaker}: {words}"


def compact_transcript(turns: Sequence[TurnView], max_chars: int, line_format: str = LINE_FORMAT) -> str:
    """Numbered transcript for the LLM; long calls keep their opening and ending, the middle is cut."""
    lines = [line_format.format(turn=t.index, speaker="Agent" if t.role == AGENT else "Customer",
                                words=t.text.strip()) for t in turns]
    text = "\n".join(lines)
    if len(text) <= max_chars:
        return text
    head: list[str] = []
    tail: list[str] = []
    budget = max_chars - 40
    i, j = 0, len(lines) - 1
    while i <= j and budget > 0:
        # Alternate so both the reason for the call (start) and its outcome (end) survive.
        if len(head) <= len(tail):
            line, i = lines[i], i + 1
            head.append(line[: max(0, budget)])
        else:
            line, j = lines[j], j - 1
            tail.insert(0, line[: max(0, budget)])
        budget -= len(line) + 1
    return "\n".join([*head, "[...] (middle of the call omitted)", *tail])
