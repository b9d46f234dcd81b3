"""Compliance checklist from YAML, checked by exact rules over the agent's turns.

Rules are used wherever a rule is exact: required phrases (disclosure, offer of further help, closing),
prohibited phrases, order (two identifiers before an existing customer's account details), PII read back
by the agent.
The greeting needs the company and the agent's name: names come from settings/metadata when known,
otherwise any company introduction ("thank you for calling ...") and any self-introduction ("my name
is ...") count, so the rule works for companies it was never told about.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.analysis.names import best_match, company_heard, person_heard
from pipeline.analysis.text import AGENT, CUSTOMER, TurnView, find_phrase, norm, phrase_pattern
from pipeline.analysis_schema import ComplianceItemResult, PiiSpan

# Words a name pattern may capture that are not names ("this is the...", "I'm sorry", "ben de").
_NOT_NAMES = frozenset(
    [
        "the", "a", "an", "your", "my", "our", "this", "that", "it", "is", "calling", "sorry", "afraid", "not",
        "just", "here", "there", "so", "very", "really", "going", "glad", "happy", "sure", "looking", "trying",
        "checking", "with", "from", "and", "to", "for", "about", "regarding", "speaking", "sorry", "back", "also",
        "on", "in", "at", "yes", "no", "okay", "ok", "well", "right", "now", "still", "only", "one", "same",
        "available", "able", "unable", "here", "size", "sizi", "sana", "bu", "su", "o", "de", "da", "ne", "bir",
        "cok", "simdi", "hemen", "tekrar", "sadece", "yardimci"
    ]
)
_GENERIC_CAPS = frozenset(
    [
        "good", "hello", "hi", "thank", "thanks", "welcome", "how", "this", "my", "i", "you", "we", "it", "morning",
        "afternoon", "evening", "speaking", "can", "may", "what", "who", "please", "is", "are", "merhaba", "iyi",
        "gunaydin", "hos", "tesekkur", "ben", "nasil",
        # words that start an agent's sentence without being a name (ASR adds full stops mid-opening)
        "calls", "your", "just", "so", "oh", "yes", "yeah", "sorry", "and", "but", "if", "as", "hey", "hiya",
        "ok", "okay", "right", "sure", "of", "to", "for", "the", "a", "an", "our", "us", "that", "there", "here",
        "today", "hold", "one", "moment", "go", "ahead", "bu", "size", "sizi", "buyurun", "kayit", "gorusmemiz",
    ]
)


@dataclass
class ComplianceItem:
    id: str
    description: str
    check: str
    enabled: bool = True
    options: dict[str, Any] = field(default_factory=dict)

    def phrases(self, key: str = "phrases") -> list[str]:
        return [str(p) for p in self.options.get(key) or []]


@dataclass
class Checklist:
    version: str
    items: list[ComplianceItem]
    company_names: list[str] = field(default_factory=list)
    hang_up_phrases: list[str] = field(default_factory=list)
    leaving_phrases: list[str] = field(default_factory=list)
    lost_line_phrases: list[str] = field(default_factory=list)
    line_check_endings: list[str] = field(default_factory=list)
    customer_ends_call_phrases: list[str] = field(default_factory=list)
    no_contact_phrases: list[str] = field(default_factory=list)
    no_contact_near_phrases: list[str] = field(default_factory=list)
    no_contact_near_match: float = 0.8
    # True: a customer leaving ("forget it", "I have to go") also makes further help / closing n/a.
    leaving_excuses_closing: bool = False

    def closing_phrases(self) -> list[str]:
        """The sign-off phrases of the enabled items judged on the agent's last turns (the closing)."""
        return [p for item in self.items if item.enabled and "within_last_agent_turns" in item.options
                for p in item.phrases()]

    def farewell_phrases(self) -> list[str]:
        """Words that end a finished call from either side: goodbyes, leaving words, sign-offs."""
        return [*self.hang_up_phrases, *self.customer_ends_call_phrases, *self.closing_phrases()]

    @classmethod
    def load(cls, path: Path) -> Checklist:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        items = []
        for raw in data.get("items") or []:
            options = {k: v for k, v in raw.items() if k not in {"id", "description", "check", "enabled"}}
            items.append(ComplianceItem(str(raw["id"]), str(raw.get("description", "")), str(raw["check"]),
                                        bool(raw.get("enabled", True)), options))
        return cls(
            version=str(data.get("version", "unversioned")),
            items=items,
            company_names=[str(n) for n in data.get("company_names") or []],
            hang_up_phrases=[str(p) for p in data.get("hang_up_phrases") or []],
            leaving_phrases=[str(p) for p in data.get("leaving_phrases") or []],
            lost_line_phrases=[str(p) for p in data.get("lost_line_phrases") or []],
            line_check_endings=[str(p) for p in data.get("line_check_endings") or []],
            customer_ends_call_phrases=[str(p) for p in data.get("customer_ends_call_phrases") or []],
            no_contact_phrases=[str(p) for p in data.get("no_contact_phrases") or []],
            no_contact_near_phrases=[str(p) for p in data.get("no_contact_near_phrases") or []],
            no_contact_near_match=float(data.get("no_contact_near_match", 0.8)),
            leaving_excuses_closing=bool(data.get("leaving_excuses_closing", False)),
        )


@dataclass
class CallFacts:
    """What the rules need to know about a call beyond its turns."""

    turns: Sequence[TurnView]
    pii: Sequence[PiiSpan] = ()
    empty: bool = False
    company_names: Sequence[str] = ()
    agent_names: Sequence[str] = ()
    # The LLM's probability that the agent disclosed an existing customer's account details somewhere in the
    # call (the identity item's ``llm_question``), when it was asked; None when it was not.
    llm_disclosure: float | None = None

    @property
    def agent_turns(self) -> list[TurnView]:
        return [t for t in self.turns if t.role == AGENT]


def customer_left(turns: Sequence[TurnView], checklist: Checklist, closing_phrases: Sequence[str]) -> bool:
    """The customer ended the call before the agent could wrap up: "forget it", "I have to go", or a
    bare "bye" as the very last turn, with no closing from the agent before it."""
    if not turns:
        return False
    last_customer = next((i for i in range(len(turns) - 1, -1, -1) if turns[i].role == CUSTOMER), None)
    if last_customer is None or last_customer < len(turns) - 2:
        return False
    text = turns[last_customer].normalised
    strong = find_phrase(text, checklist.leaving_phrases) is not None
    final_bye = last_customer == len(turns) - 1 and find_phrase(text, checklist.hang_up_phrases) is not None
    if not (strong or final_bye):
        return False
    agent_before = [t for t in turns[:last_customer] if t.role == AGENT][1:]  # the opening is no closing
    return not any(find_phrase(t.normalised, closing_phrases) for t in agent_before)


def line_lost(turns: Sequence[TurnView], checklist: Checklist) -> bool:
    return any(find_phrase(t.normalised, checklist.lost_line_phrases) for t in turns[-2:]) or line_checked(
        turns, checklist)


def _with_words(turns: Sequence[TurnView]) -> list[TurnView]:
    """The turns in which something was said (the transcriber leaves empty ones)."""
    return [t for t in turns if t.text.strip()]


def _asks(turn: TurnView) -> bool:
    """The turn ends on a question (closing quotes aside)."""
    return turn.text.rstrip(" \"'”").endswith("?")


def unpunctuated(turns: Sequence[TurnView]) -> bool:
    """The transcriber wrote no punctuation at all: questions and broken-off words cannot be seen."""
    return not any(re.search(r"[.!?,;:—–…]", t.text) for t in turns)


def line_checked(turns: Sequence[TurnView], checklist: Checklist) -> bool:
    """The call ends on the agent asking into a silent line ("...or? Hello? Sir?", "Alo? Efendim?")."""
    speaking = _with_words(turns)
    if not speaking or speaking[-1].role != AGENT:
        return False
    words = speaking[-1].normalised.split()
    # "Sir. Hello." is the same question with the question marks the transcriber left out: a last turn made only
    # of a line check's words asks into the line however it is punctuated.
    only_checks = 0 < len(words) <= 6 and set(words) <= {w for p in checklist.line_check_endings for w in p.split()}
    if not (_asks(speaking[-1]) or unpunctuated(speaking) or only_checks):
        return False
    tail = " " + " ".join(words[-6:]) + " "
    return find_phrase(tail, checklist.line_check_endings) is not None


def customer_ended_call(turns: Sequence[TurnView], checklist: Checklist, closing_phrases: Sequence[str]) -> bool:
    """The customer's leaving words are the call's last ("never mind, I might ring back. Ta."): the agent
    never got to answer, so the call ended before the closing."""
    speaking = _with_words(turns)
    if len(speaking) < 2 or speaking[-1].role != CUSTOMER or speaking[-2].role != AGENT:
        return False
    if find_phrase(speaking[-1].normalised, checklist.customer_ends_call_phrases) is None:
        return False
    # An agent who had already signed off was not cut short ("Drive safe." - "Yeah, bye."), nor one who had
    # ended the call, however curtly ("That's it, bye." - "Well, goodbye.").
    ended = " " + " ".join(speaking[-2].normalised.split()[-3:]) + " "
    return find_said(speaking[-2].normalised, closing_phrases) is None and find_phrase(
        ended, checklist.hang_up_phrases) is None


def check_call(checklist: Checklist, facts: CallFacts) -> list[ComplianceItemResult]:
    items = [item for item in checklist.items if item.enabled]
    results = [_check(item, facts, checklist) for item in items]
    closing_phrases = checklist.closing_phrases()
    # Only a call that drops before the closing excuses the agent (the rubric): a customer who says "never
    # mind, bye" and hears the agent answer was still owed the offer of help and the sign-off.
    cut_short = line_lost(facts.turns, checklist) or call_dropped(
        facts.turns, checklist.farewell_phrases()) or customer_ended_call(
        facts.turns, checklist, closing_phrases) or (
        checklist.leaving_excuses_closing and customer_left(facts.turns, checklist, closing_phrases))
    # The agent saying nobody is on the line ("this is a pocket dial") makes it an Empty Call here too.
    empty = facts.empty or no_contact_said(facts.agent_turns, checklist) is not None
    for i, (item, result) in enumerate(zip(items, results, strict=True)):
        if (empty and not item.options.get("applies_to_empty_calls")) or not facts.agent_turns:
            results[i] = _na(item, "no conversation took place" if empty else "the agent did not speak")
        elif (cut_short and item.options.get("not_applicable_if_customer_hung_up")
              and result.status in ("fail", "needs_review")):
            results[i] = _na(item, "the call ended (hang-up or lost line) before the agent could")
    return results


def _na(item: ComplianceItem, reason: str) -> ComplianceItemResult:
    return ComplianceItemResult(id=item.id, description=item.description, status="not_applicable", reason=reason)


def _check(item: ComplianceItem, facts: CallFacts, checklist: Checklist) -> ComplianceItemResult:
    check = {
        "greeting": _greeting,
        "required_phrase": _required_phrase,
        "prohibited_phrase": _prohibited_phrase,
        "verification_order": _verification_order,
        "pii_read_back": _pii_read_back,
    }.get(item.check)
    if check is None:
        raise ValueError(f"compliance item {item.id!r}: unknown check {item.check!r}")
    return check(item, facts, checklist)


def _result(item: ComplianceItem, status: str, reason: str, turns: Sequence[TurnView] = (),
            source: str = "rule") -> ComplianceItemResult:
    return ComplianceItemResult(
        id=item.id, description=item.description, status=status,
        reason=reason, source=source, evidence=[t.evidence() for t in turns],
    )


def opening_turns(facts: CallFacts, within: int) -> list[TurnView]:
    """The agent's first turn: their speech before the customer's first reply after it (a transcriber may
    cut one turn into several), at most ``within`` turns."""
    opening: list[TurnView] = []
    for turn in facts.turns:
        if turn.role == AGENT:
            opening.append(turn)
        elif opening and turn.text.strip():
            break
        if len(opening) >= within:
            break
    return opening


def _greeting(item: ComplianceItem, facts: CallFacts, checklist: Checklist) -> ComplianceItemResult:
    opening = opening_turns(facts, int(item.options.get("within_agent_turns", 2)))
    if not opening:
        return _na(item, "the agent did not speak")
    text = " ".join(t.text for t in opening)
    normalised = norm(text)
    greeted = find_phrase(normalised, item.phrases("greeting_phrases")) is not None
    companies = [c for c in [*facts.company_names, *checklist.company_names] if c.strip()]
    intro = find_phrase(normalised, item.phrases("company_intro_phrases")) is not None
    heard_threshold = float(item.options.get("name_match", 0.8))
    company_score = company_heard(companies, text) if companies else 0.0
    if companies:
        # The company is known (metadata or settings): it must be said, however the transcriber spelt it.
        company = company_score >= heard_threshold
    else:
        company = intro or _proper_noun_besides(text, facts.agent_names) or _proper_noun_besides(
            opening[0].text, facts.agent_names, initial_in_first=2)
    agents = [n for n in facts.agent_names if n.strip()]
    agent_score = person_heard(agents, text) if agents else 0.0
    named = agent_score >= heard_threshold
    introduced = False
    for pattern in item.phrases("name_intro_patterns"):
        for match in re.finditer(pattern, normalised):
            said = match.group(1)
            # "it's Brightwell Solar here" introduces the company, not the agent.
            if said not in _NOT_NAMES and not (companies and company_heard(companies, said) >= heard_threshold):
                introduced = True
    named = named or introduced
    # "HomeCall Services, Dean speaking" is a full telephone greeting; a hello on top is optional unless
    # the checklist asks for it.
    wanted = [("the company name", company), ("the agent's name", named)]
    first_word = normalised.split()[:1]
    casual = bool(first_word) and first_word[0] in set(item.phrases("casual_openers"))
    if item.options.get("require_greeting_word", False) or casual:
        # Opening with "Yeah, ..." is not a greeting, however the rest goes.
        wanted.insert(0, ("a greeting" if not casual else f"a greeting (opened with '{first_word[0]}')",
                          greeted and not casual))
    missing = [what for what, ok in wanted if not ok]
    if missing:
        reason = "opening lacks " + " and ".join(missing)
        # On unsure words, a near-miss name or a company introduction whose name did not come through is
        # the transcriber's doubt, not the agent's failure.
        near = float(item.options.get("name_near_match", 0.55))
        doubtful = (not company and (company_score >= near or intro)) or (not named and agent_score >= near)
        unsure = _unsure(opening, item)
        # Words this unsure (another language detected, a line of noise) cannot show what was not said.
        garbled = min(t.confidence for t in opening) < float(item.options.get("review_always_below", 0.0))
        if unsure and (doubtful or len(missing) == 1 or garbled):
            return _result(item, "needs_review", f"{reason}? {unsure}", opening[:1])
        return _result(item, "fail", reason, opening[:1])
    return _result(item, "pass", "greeted with company and own name", opening[:1])


def _unsure(turns: Sequence[TurnView], item: ComplianceItem) -> str:
    """Why the words of ``turns`` are too unsure to fail an item on ('' when they are sure enough)."""
    below = float(item.options.get("review_below_confidence", 0.8))
    if not turns:
        return ""
    lowest = min(t.confidence for t in turns)
    if lowest < below:
        return f"transcript confidence {lowest:.2f} < {below:.2f} on the words judged"
    return ""


def _proper_noun_besides(text: str, agent_names: Sequence[str], initial_in_first: int = 0) -> bool:
    """A capitalised word mid-sentence other than the agent's name: most likely the company's name.

    ``initial_in_first``: sentence-initial words count too in that many first sentences, because ASR puts
    full stops inside openings ("Good afternoon. Call a pro. Megan speaking."); generic starters are
    still skipped."""
    skip = {n.strip().lower() for n in agent_names} | _GENERIC_CAPS
    for number, sentence in enumerate(re.split(r"[.!?]\s*", text)):
        tokens = re.findall(r"[A-Za-zÇĞİÖŞÜçğıöşü']+", sentence)
        for i, token in enumerate(tokens):
            if not token[0].isupper() or (i == 0 and number >= initial_in_first):
                continue
            if token.lower().strip("'") in skip or (token.isupper() and len(token) == 1):
                continue
            after = " ".join(tokens[i + 1 : i + 2]).lower()
            before = tokens[i - 1].lower() if i else ""
            # "... my name is Sarah" / "Sarah speaking" / "this is Sarah": a person, not a company.
            if before in {"is", "am", "ben", "adim", "ismim"} or after in {"speaking", "here"}:
                continue
            return True
    return False


def agent_blocks(turns: Sequence[TurnView]) -> list[list[TurnView]]:
    """The agent's speaking turns: consecutive agent turns (a transcriber cuts one turn at pauses) are one."""
    blocks: list[list[TurnView]] = []
    previous_agent = False
    for turn in turns:
        if turn.role == AGENT:
            if previous_agent:
                blocks[-1].append(turn)
            else:
                blocks.append([turn])
            previous_agent = True
        elif turn.text.strip():
            previous_agent = False
    return blocks


def no_contact_said(turns: Sequence[TurnView], checklist: Checklist) -> str | None:
    """The agent's words saying nobody is on the line ("I think this is a pocket dial"), if any."""
    for turn in turns:
        if turn.role == AGENT:
            said = find_said(turn.normalised, checklist.no_contact_phrases)
            if said is not None:
                return said
            # A transcriber mishears the telltale words ("a pocket dial" -> "a pocketile"): the few phrases no
            # other sentence sounds like also count when heard nearly (spelling and sound).
            for phrase in checklist.no_contact_near_phrases:
                if best_match(phrase, turn.normalised) >= checklist.no_contact_near_match:
                    return phrase
    return None


def find_said(normalised_text: str, phrases: Sequence[str]) -> str | None:
    """A phrase in the text, also when the transcriber split or merged its words ("any thing else",
    "thankyou"): phrases of several words are matched with the spaces taken out as well."""
    found = find_phrase(normalised_text, phrases)
    if found is not None:
        return found
    squashed = normalised_text.replace(" ", "")
    starts, ends, at = set(), set(), 0
    for word in normalised_text.split():
        starts.add(at)
        at += len(word)
        ends.add(at)
    for phrase in phrases:
        if not any(mark in phrase for mark in "*_"):
            key = norm(phrase).replace(" ", "")
            # whole words only: "your contract" is not in "your contractor"; a long single word split in two
            # ("what ever") counts too, a short one ("calm") is too likely to be two real words
            long_enough = len(key) >= 8 if " " in phrase.strip() else len(key) >= 7
            if long_enough and any(m.start() in starts and m.start() + len(key) in ends
                                   for m in re.finditer(re.escape(key), squashed)):
                return phrase
    return None


def _required_phrase(item: ComplianceItem, facts: CallFacts, checklist: Checklist) -> ComplianceItemResult:
    blocks = agent_blocks(facts.turns)
    if "within_agent_turns" in item.options:
        blocks = blocks[: int(item.options["within_agent_turns"])]
    if "within_last_agent_turns" in item.options:
        # The opening turn ("thank you for calling") is never the closing, however short the call.
        blocks = blocks[1:][-int(item.options["within_last_agent_turns"]) :]
    if item.options.get("after_opening"):
        # "Is there anything I can help you with?" as the greeting is no offer of further help.
        blocks = blocks[1:]
    turns = [t for block in blocks for t in block]
    for block in blocks:
        phrase = find_said(norm(" ".join(t.text for t in block)), item.phrases())
        if phrase:
            turn = next((t for t in block if find_said(t.normalised, [phrase])), block[0])
            return _result(item, "pass", f"agent said '{phrase}'", [turn])
    where = "in the opening" if "within_agent_turns" in item.options else (
        "at the end" if "within_last_agent_turns" in item.options else "anywhere in the call")
    judged = turns if ("within_agent_turns" in item.options or "within_last_agent_turns" in item.options) \
        else turns[-3:]
    if not judged:
        # Nothing of the agent's was heard after the opening: when the opening itself is unsure words, the rest of
        # the agent's side was most likely lost by the transcriber, not left unsaid.
        judged = [t for block in agent_blocks(facts.turns) for t in block]
    unsure = _unsure(judged, item)
    if unsure and _maybe_misheard(item, turns or judged):
        return _result(item, "needs_review", f"no required phrase {where}? {unsure}", turns[-1:] if turns else [])
    return _result(item, "fail", f"no required phrase {where}", turns[-1:] if turns else [])


def _maybe_misheard(item: ComplianceItem, turns: Sequence[TurnView]) -> bool:
    """Whether a required phrase missing from unsure words may have been said and misheard: something like one of
    its phrases was heard (spelling and sound, words split or merged: at least ``review_near_match``), or the
    words are noise to the transcriber (confidence below ``review_always_below``). Without ``review_near_match``
    any unsure words leave the doubt (the behaviour before the option)."""
    near = item.options.get("review_near_match")
    if near is None or not turns:
        return True
    if min(t.confidence for t in turns) < float(item.options.get("review_always_below", 0.0)):
        return True
    text = " ".join(t.text for t in turns)
    wanted = [" ".join(w for w in phrase.replace("*", "").split() if w != "_") for phrase in item.phrases()]
    return any(best_match(phrase, text) >= float(near) for phrase in wanted if phrase)


def _prohibited_phrase(item: ComplianceItem, facts: CallFacts, checklist: Checklist) -> ComplianceItemResult:
    for turn in facts.agent_turns:
        # (as heard: a transcriber splits "whatever" into "what ever" and joins "calm down")
        phrase = find_said(turn.normalised, item.phrases())
        if phrase:
            return _result(item, "fail", f"agent said '{phrase}'", [turn])
    return _result(item, "pass", "no prohibited phrase")


# The caller giving their full name unasked, as a transcriber capitalises it: "this is Luis Reyes", "I'm Dana
# Whitfield", "ben Ayşe Demir" (a first name alone, "it's Sam", is not enough).
_UPPER = "A-ZÇĞİÖŞÜ"
_FULL_NAME_GIVEN = re.compile(
    rf"\b(?:[Tt]his is|[Ii]t's|[Ii]t is|I'm|I am|[Mm]y name's|[Bb]en) [{_UPPER}][a-zçğıöşü']+ [{_UPPER}][a-zçğıöşü']+\b"
)
_GREETING_WORDS = ("(?:Hi|Hello|Hey|Hiya|Morning|Afternoon|Evening|Good|Thanks|Thank|Dear|Oh|Okay|Merhaba|Selam|"
                   "Sure|Yes)")
# A sentence that is only a capitalised first and last name ("Hi. Gareth Pryce.", "Priya. Priya Nair."), also as
# the phone is answered ("Hello, Graham Pike.", "Dana Whitfield speaking."): the caller naming themselves.
_BARE_FULL_NAME = re.compile(rf"(?:(?:[Yy]es|[Yy]eah|[Ii]t's|[Ii]t is|[Ss]ure|[Hh]ello|[Hh]i|"
                             rf"[Gg]ood (?:morning|afternoon|evening)),? )?(?!{_GREETING_WORDS}\b)"
                             rf"[{_UPPER}][a-zçğıöşü']+ [{_UPPER}][a-zçğıöşü'-]+(?: speaking)?[.!]?")
# Words a name check may capture that are not names ("is that right?", "are you happy with that?").
_NOT_CHECKED_NAMES = _NOT_NAMES | frozenset(
    ["right", "correct", "ok", "alright", "all", "everything", "fine", "good", "you", "still", "ready", "free",
     "okay", "something", "anyone", "everyone", "someone", "ok", "true", "me", "him", "her", "them", "sure"]
)
# PII an agent may read out of a record (a phone number on file, an e-mail address...).
_RECORD_PII = frozenset(["phone", "email", "card_number", "iban", "national_id"])


_TITLE_DOT = re.compile(r"\b(Mr|Mrs|Ms|Dr|St|Mt|Jr|Sr|No)\.", re.IGNORECASE)


@dataclass
class _Sentence:
    turn: TurnView
    text: str  # normalised
    asks: bool


def _sentences(turn: TurnView) -> list[_Sentence]:
    """A turn cut at full stops, question and exclamation marks; a turn without any (ASR) is one sentence."""
    text = _TITLE_DOT.sub(r"\1", turn.text)  # "Mr. Okafor" is no sentence end
    if not re.search(r"[.!?]", text):
        # A transcriber that writes no punctuation: whether it asks cannot be seen, so it may.
        return [_Sentence(turn, norm(text), True)] if text.strip() else []
    parts = re.findall(r"[^.!?]+[.!?]*", text) or [text]
    sentences = []
    for part in parts:
        text = norm(part)
        if text.strip():
            sentences.append(_Sentence(turn, text, part.rstrip(" \"'”").endswith("?")))
    return sentences


@dataclass
class _Identifiers:
    """Identifiers the caller gave so far: kind -> the turn that gave it; asked ones wait for an answer."""

    weights: dict[str, float]
    given: dict[str, TurnView] = field(default_factory=dict)
    asked: dict[str, TurnView] = field(default_factory=dict)
    waited: set[str] = field(default_factory=set)  # asked kinds already given one reply without them
    name_checked: bool = False

    def answered(self, turn: TurnView, denied: bool, item: ComplianceItem) -> bool:
        """Take the caller's reply to what was asked; True when it gave an identifier. An identifier the
        reply does not hold ("Hang on, let me find it") waits for one more reply; then it is dropped ("I'm
        in a meeting, call me tomorrow" gives no ID number)."""
        gave = False
        patterns = {str(k): [str(p) for p in v] for k, v in (item.options.get("answer_patterns") or {}).items()}
        needs = {str(k): str(v) for k, v in (item.options.get("answer_kinds") or {}).items()}
        waiting: dict[str, TurnView] = {}
        for kind, asked_in in self.asked.items():
            wanted = patterns.get(needs.get(kind, ""), [])
            if wanted and not any(re.search(p, turn.normalised) or re.search(p, turn.text.lower()) for p in wanted):
                if kind not in self.waited:
                    waiting[kind] = asked_in
                continue
            if not (denied and kind == "name" and self.name_checked):
                self.given.setdefault(kind, turn)
                gave = True
        self.asked = dict(waiting)
        self.waited = set(waiting)
        self.name_checked = False
        return gave

    @property
    def score(self) -> float:
        return sum(self.weights.get(kind, 1.0) for kind in self.given)

    def described(self) -> str:
        counted = [k.replace("_", " ") for k in self.given if self.weights.get(k, 1.0) > 0]
        ignored = [k.replace("_", " ") for k in self.given if self.weights.get(k, 1.0) <= 0]
        text = ", ".join(counted) if counted else "no identifier"
        return text + (f" ({', '.join(ignored)} not counted)" if ignored else "")


# The next item of a security check said as a statement, as transcribers drop its "?": "And the last four digits
# on your social security number.", "And your date of birth."
_LIST_ASK_OPENINGS = ("and the ", "and your ", "and also your ", "also your ", "and lastly ", "and finally ",
                      "and for security ", "for security ")
_LIST_ASK_AFTER_WORDS = 3


def _asked_identifiers(sentence: _Sentence, item: ComplianceItem) -> list[str]:
    """The identifier kinds a request sentence of the agent asks for ("Can I take your name and DOB?")."""
    words = sentence.text.split()
    # (the opening may follow a thanks for the answer before: "Thanks, Dana, and the last four digits...")
    if not (sentence.asks or find_said(sentence.text, item.phrases("request_phrases"))
            or any(" ".join(words[at:]).startswith(_LIST_ASK_OPENINGS) for at in range(_LIST_ASK_AFTER_WORDS + 1))):
        return []
    kinds = [kind for kind, phrases in (item.options.get("identifier_phrases") or {}).items()
             if find_said(sentence.text, [str(p) for p in phrases])]
    if "last_four" in kinds:
        # "the last four of your social" / "of the phone on file": the last four, not the whole number
        kinds = [k for k in kinds if k not in ("national_id", "phone")]
    return kinds


def _checked_name(sentence: _Sentence, item: ComplianceItem) -> bool:
    """The agent checks who answered: "Is this Mr. Brennan?", "Nilay Hanım'la mı görüşüyorum?"."""
    if not sentence.asks and "gorusuyorum" not in sentence.text:
        return False
    for pattern in item.phrases("name_check_patterns"):
        match = re.search(pattern, sentence.text.strip())
        if match and match.group(1) not in _NOT_CHECKED_NAMES:
            return True
    return False


def _disclosure(sentence: _Sentence, item: ComplianceItem, read_pii: bool, verifying: bool,
                made: bool = False, customer_said: str = "") -> str | None:
    """What makes the agent's sentence a disclosure of an existing customer's record, or None.

    ``verifying``: the agent checked the caller's identity as an existing customer's and was answered, so a
    value read out now ("So that's Wednesday at half eight") is from their record. ``made``: the agent has
    booked or opened something new in this call, whose values are no existing record. ``customer_said``: the
    caller's words so far (normalised), so an address they gave and the agent repeats is none."""
    looked = sentence.text
    for phrase in item.phrases("lookup_not_phrases"):
        looked = phrase_pattern(phrase).sub(" ", looked)
    lookup = find_said(looked, item.phrases("lookup_phrases"))
    if lookup and not _wondered(sentence.text, lookup, item):
        return f"'{lookup}'"
    street = _address_on_file(sentence.text, item, customer_said)
    if street:
        return f"the address on file read out ('{street}')"
    record = None if made else find_said(sentence.text, item.phrases("record_phrases"))
    # "I said I'd ring today about your bill": the day is the call's, not a value of the bill.
    valued = _CALL_TIME.sub(" ", sentence.text)
    if record and any(re.search(p, valued) for p in item.phrases("value_patterns")):
        return f"'{record}' with its details"
    if read_pii and sentence.asks:
        return "a number or address on file read out"
    if verifying and not made and any(re.search(p, sentence.text) for p in item.phrases("value_patterns")):
        return "details read out after the security check"
    return None


def _address_on_file(text: str, item: ComplianceItem, customer_said: str) -> str | None:
    """A street the agent names that the caller has not ("forty-one Harcourt Avenue", "Bağdat Caddesi"):
    read from the record. The company's own premises ("our branch on Mill Road") and a quote the caller asked
    for are no account on file."""
    if find_said(text, item.phrases("address_not_on_file_phrases")):
        return None
    for pattern in item.phrases("address_patterns"):
        for match in re.finditer(pattern, text):
            name = match.group(1)
            if name not in _NOT_STREET_NAMES and not re.search(rf"\b{re.escape(name)}\b", customer_said):
                return match.group(0)
    return None


# A time that belongs to a phone call ("ring you today", "called yesterday", "call back tomorrow morning").
_CALL_TIME = re.compile(r"\b(?:ring|rang|call|called|calling|phone|phoned|get back to)(?: you)?(?: back)?"
                        r" (?:today|tomorrow|yesterday|tonight|this (?:morning|afternoon|evening)|on \w+day|\w+day)\b")


# Words before a street word that are no street's name ("the road", "your street", "down the lane").
_NOT_STREET_NAMES = frozenset({"the", "a", "your", "my", "our", "this", "that", "same", "main", "of", "off", "on", "in",
                               "at", "down", "up", "by", "to", "bu", "su", "o", "bir"})


def _announced_only(cue: str, sentence: _Sentence, item: ComplianceItem) -> bool:
    """The disclosure is a lookup phrase alone ("I can see a note here"), no value of the record read out."""
    return cue.startswith("'") and not cue.endswith("with its details") and not any(
        re.search(p, sentence.text) for p in item.phrases("value_patterns"))


def _said_before_asking(sentence: _Sentence, item: ComplianceItem) -> bool:
    """In one unpunctuated stretch, a lookup or a record's values come before the request for identifiers."""
    first_ask = _first_at(sentence.text, [str(p) for ps in (item.options.get("identifier_phrases") or {}).values()
                                          for p in ps])
    cues = [*item.phrases("lookup_phrases"), *item.phrases("record_phrases")]
    first_cue = _first_at(sentence.text, cues)
    if first_cue is None or first_ask is None or first_cue >= first_ask or re.search(r"[.!?]", sentence.turn.text):
        return False
    before = sentence.text[:first_ask] + " "
    if find_said(before, item.phrases("verifying_phrases")):
        return False  # "since we'll be looking at your account, can you give me..." frames the request
    return _disclosure(_Sentence(sentence.turn, before, False), item, False, False) is not None


def _first_at(text: str, phrases: Sequence[str]) -> int | None:
    found = [m.start() for p in phrases if (m := phrase_pattern(p).search(text))]
    return min(found) if found else None


def _wondered(text: str, phrase: str, item: ComplianceItem) -> bool:
    """The phrase only follows a wondering word ("so I can check whether you're pre-qualified")."""
    at = phrase_pattern(phrase).search(text)
    if at is None:
        return False
    before = text[: at.start()] + " "
    return find_phrase(before, item.phrases("hypothetical_phrases")) is not None


def _verification_order(item: ComplianceItem, facts: CallFacts, checklist: Checklist) -> ComplianceItemResult:
    """The rubric: account-specific information of an existing customer is disclosed only after two
    identifiers (name + date of birth, e-mail + phone, a national ID...); n/a when none is disclosed."""
    weights = {str(k): float(v) for k, v in (item.options.get("identifier_weights") or {}).items()}
    needed = float(item.options.get("identifiers_needed", 2))
    ids = _Identifiers(weights)
    pii_by_turn: dict[int, set[str]] = {}
    for span in facts.pii:
        pii_by_turn.setdefault(span.turn, set()).add(span.kind)
    customer_pii: set[str] = set()
    # The caller's words so far, normalised (the company's names first: "Marsh Lane Motors" names no address).
    customer_said = " ".join(norm(name) for name in [*facts.company_names, *checklist.company_names])
    agent_turns: list[TurnView] = []
    framed = False  # the agent framed a request as a security check of an existing customer
    made = False  # the agent booked or opened something new in this call
    verified = False  # the caller answered a request framed as a security check
    for turn in facts.turns:
        if not turn.text.strip():
            continue
        if turn.role == CUSTOMER:
            customer_said += " " + turn.normalised
            denied = find_said(turn.normalised, item.phrases("name_check_denials")) is not None
            if ids.answered(turn, denied, item) and framed:
                verified = True
            said = pii_by_turn.get(turn.index, set())
            customer_pii |= said
            for kind in said & {"phone", "email", "national_id"}:
                ids.given.setdefault(kind, turn)
            if any(re.search(p, turn.normalised) for p in item.phrases("customer_name_patterns")) or (
                    _FULL_NAME_GIVEN.search(turn.text)) or any(_BARE_FULL_NAME.fullmatch(part.strip()) for part in
                                                               re.split(r"(?<=[.!?])\s+", turn.text)):
                ids.given.setdefault("name", turn)
            continue
        agent_turns.append(turn)
        read_pii = bool((pii_by_turn.get(turn.index, set()) & _RECORD_PII) - customer_pii)
        sentences = _sentences(turn)
        requests = [_asked_identifiers(sentence, item) for sentence in sentences]
        for k, sentence in enumerate(sentences):
            asked = requests[k]
            framing = find_said(sentence.text, item.phrases("verifying_phrases")) is not None
            if asked and _said_before_asking(sentence, item):
                asked = []  # "You're on the ten-gig SIM at twelve pounds. Can I take your name..." unpunctuated
            if asked:
                for kind in asked:
                    ids.asked.setdefault(kind, turn)
                framed = framed or framing
                continue
            if _checked_name(sentence, item):
                ids.asked.setdefault("name", turn)
                ids.name_checked = True
                continue
            # "That all matches." after the caller's answers closes a security check too.
            verified = verified or (framing and bool(ids.given))
            # "I can book you in for Friday at ten" makes a record; it discloses none.
            made = made or find_said(sentence.text, item.phrases("new_record_phrases")) is not None
            cue = _disclosure(sentence, item, read_pii, verified, made, customer_said)
            framed = framed or framing
            # "I can see a note here. First I need to verify you. Can I get your date of birth...": a lookup the
            # agent announces and then verifies before reading anything out discloses nothing yet.
            if cue is None or (any(requests[k + 1:]) and _announced_only(cue, sentence, item)):
                continue
            evidence = [*{t.index: t for t in ids.given.values()}.values(), turn]
            if ids.score >= needed:
                return _result(item, "pass", f"account details ({cue}) after {ids.described()}", evidence)
            reason = f"account details ({cue}) disclosed after {ids.described()} (two identifiers needed)"
            # The disclosure and the agent's turns just before it, where a request for identifiers would be.
            unsure = _unsure(agent_turns[-3:], item)
            if unsure:
                return _result(item, "needs_review", f"{reason}? {unsure}", evidence)
            return _result(item, "fail", reason, evidence)
    return _llm_disclosure(item, facts, ids, needed) or _na(
        item, "no account-specific information of an existing customer was disclosed")


def _llm_disclosure(item: ComplianceItem, facts: CallFacts, ids: _Identifiers,
                    needed: float) -> ComplianceItemResult | None:
    """No disclosure the phrase rules know, but the LLM heard one ("You're on the Essentials plan at 34.99",
    "Duke is overdue for his booster"): judged on the identifiers of the whole call, since where in the call
    the details came is not known; a fail needs the model to be sure, else a person reviews it."""
    p = facts.llm_disclosure
    if p is None or p < float(item.options.get("llm_disclosure_at_least", 0.5)):
        return None
    evidence = list({t.index: t for t in ids.given.values()}.values())
    said = f"the LLM heard account details of an existing customer (p={p:.2f})"
    if ids.score >= needed:
        return _result(item, "pass", f"{said}; {ids.described()} given in the call", evidence, source="llm+rule")
    reason = f"{said}; only {ids.described()} in the call (two identifiers needed)"
    if p >= float(item.options.get("llm_disclosure_fail_at_least", 0.8)):
        return _result(item, "fail", reason, evidence, source="llm+rule")
    return _result(item, "needs_review", f"{reason}? the model is unsure", evidence, source="llm+rule")


def call_dropped(turns: Sequence[TurnView], farewells: Sequence[str] = ()) -> bool:
    """The line went while the customer was speaking: the call ends on their unfinished turn ("It's, hang
    on, my —"). On a transcript without any punctuation the break cannot be seen: there, a call that ends on
    the customer's words without a farewell (``farewells``: "bye", "thanks"...) dropped."""
    speaking = _with_words(turns)
    if unpunctuated(speaking) and speaking and speaking[-1].role == CUSTOMER:
        return find_said(speaking[-1].normalised, farewells) is None
    # The agent cut off mid-sentence by the hang-up ("Efendim, isterseniz ben şimdi yardımcı—") dropped too.
    if speaking and speaking[-1].role == AGENT and speaking[-1].text.rstrip().endswith(("—", "–")):
        return True
    # The agent's questions after the customer's cut-off words that nobody answers ("...the— " / "Is it
    # about your overdraft?") do not change that.
    while speaking and speaking[-1].role == AGENT and _asks(speaking[-1]):
        speaking.pop()
    if not speaking or speaking[-1].role != CUSTOMER:
        return False
    # An explicit break, or words that cannot end a sentence ("...my daughter said I should call before I"):
    # a transcriber often leaves a finished sentence without its full stop, never one ending on "the" or "I".
    last = speaking[-1].text.rstrip()
    if last.endswith(("—", "–", "-", "...", "…")):
        return True
    words = speaking[-1].normalised.split()
    return not last.endswith((".", "?", "!")) and bool(words) and words[-1] in _DANGLING_WORDS


# Words a finished sentence does not end on: articles, conjunctions, possessives, subject pronouns, hesitation
# (English); conjunctions (Turkish, letters folded as normalised text has them). Prepositions and verbs are left
# out on purpose: "hold on", "I'd like to", "where it is" end sentences.
_DANGLING_WORDS_EN = "a an the and but or because if of my your our their his her i we they he she um uh"
_DANGLING_WORDS = frozenset(f"{_DANGLING_WORDS_EN} ve ama veya cunku eger bir ile".split())


def _pii_read_back(item: ComplianceItem, facts: CallFacts, checklist: Checklist) -> ComplianceItemResult:
    kinds = set(item.phrases("kinds")) or {"card_number", "iban", "national_id"}
    agent_turns = {t.index: t for t in facts.agent_turns}
    for span in facts.pii:
        if span.kind in kinds and span.turn in agent_turns:
            return _result(item, "fail", f"agent read out a {span.kind.replace('_', ' ')}", [agent_turns[span.turn]])
    return _result(item, "pass", "no sensitive number read back by the agent")
