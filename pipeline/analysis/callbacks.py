"""Callbacks: was a call back promised, by whom, and when is it due (an absolute time).

Detection is by rules over the turns (English and Turkish phrasing): a company-side promise ("I'll call
you back", "the engineer will ring you", "sizi arayacağız"), or the customer asking to be called and the
agent agreeing, or the agent offering and the customer accepting. The LLM's opinion (the turn it thinks
holds the promise) can add a promise the rules missed, but only when that turn really talks about
calling.

The due time follows the QA rubric's table (pipeline settings hold the hours): a clock time as said
(a bare hour 1-7 is p.m.), an offset from the call time ("in an hour"), a deadline ("within 24 hours":
call + 24 h; "by Wednesday" / "by close of business Monday": that day 17:00 or the hour said; "within the
week": Friday 17:00), day parts ("tomorrow morning" 10:00, "afternoon" 15:00, "after six" 18:00), a date
or weekday without a time 10:00 (a weekday is its next occurrence after the call date), and a lead time
before an appointment ("she'll ring twenty minutes before" a 10:00 visit: 09:40). Resolved against the
call's time with ``dateutil.relativedelta``.

Promises come from either side (the rubric counts the customer's own "I'll ring you back after lunch"
and a relative's "my wife will call you" as the customer's promise); e-mails, letters and texts,
maybes and refusals are not promises.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dateutil import parser as date_parser
from dateutil.relativedelta import FR, MO, SA, SU, TH, TU, WE, relativedelta

from pipeline.analysis.numbers import ENGLISH_TENS, ENGLISH_UNITS, TEENS, TENS, UNITS
from pipeline.analysis.text import AGENT, CUSTOMER, TurnView, find_phrase, fold, norm, phrase_pattern
from pipeline.analysis_schema import CallbackResult

# Company-side promises, in normal form (see text.norm: "I'll" -> "i will"; "_" = one optional word).
PROMISE_PHRASES = (
    "i will call you", "i will call _ back", "i will give you a call", "i will give you _ call",
    "i will ring you", "i will phone you", "i will get back to you", "i will get back in touch",
    "i will be in touch", "i will reach out", "i will contact you", "i will follow up with you",
    "we will call you", "we will call _ back", "we will give you a call", "we will ring you",
    "we will phone you", "we will get back to you", "we will be in touch", "we will contact you",
    "we will reach out", "i am going to call you", "we are going to call you", "i shall call you",
    "let me call you back", "i will call _ you back", "i will make sure someone calls you",
    "someone will call you", "somebody will call you", "someone will ring you", "someone will give you a call",
    "someone will contact you", "someone will get back to you", "somebody will ring you",
    "will give you a call", "will call you", "will ring you", "will phone you", "will get back to you",
    "will contact you", "will be in touch", "you will get a call", "you will receive a call",
    "and get back to you", "and call you back", "and ring you back", "and call you", "then call you",
    "then get back to you", "and let you know", "and come back to you", "and be in touch",
    "expect a call", "expect our call", "i will have _ call you", "i will have _ ring you",
    "i will ask __ to call you", "i will get __ to call you", "i will ask __ to ring you",
    "i will get __ to ring you", "i will have __ call you", "i will have __ ring you",
    "i will have __ contact you", "call you back", "ring you back",
    # "what I'll do is get one of our advisers to phone you", "I'll have the team phone you"
    "get __ to call you", "get __ to ring you", "get __ to phone you", "have __ phone you",
    "ask __ to phone you", "will _ phone you back", "sizi __ arar",
    "get __ to give you a call", "get __ to give you a ring", "ask __ to give you a call",
    "ask __ to give you a ring", "have __ give you a call", "have __ give you a ring",
    "sizi arayacag*", "sizi tekrar arayacag*", "sizi geri arayacag*", "sizi arayalim", "sizi tekrar arayalim",
    "sizi arariz", "sizi ararim", "sizi arayip", "size donus yapacag*", "size geri donus yapacag*",
    "size donecegiz", "size donecegim", "geri donus yapaca*", "donus yapaca*", "donus saglayacag*",
    "size donus saglayacag*",
    "sizi arayacak", "sizinle iletisime gececeg*", "sizinle iletisime gecilecek", "tekrar arayacag*",
    "sizi bilgilendirecegiz", "ben sizi _ ararim", "biz sizi _ arariz", "sizi _ arayacag*", "sizi _ arayacak",
    "sizi __ arayacag*", "sizi __ arayacak", "sizi __ ararim", "sizi __ arariz", "size __ donus yapacag*",
    "let me give you a call", "let me give you a ring",
    "i will give you a ring", "we will give you a ring", "i will give you _ ring",
    # British idioms for a phone call
    "give you a bell", "give you a buzz", "give you a shout", "give you a tinkle", "give you a quick call",
    "yarin __ sizi __ ariyorum", "yarin __ sizi __ arayacag*",
    # a colleague / technician calling ahead of a visit, or with an adverb in between
    "will ring _ before", "will call _ before", "will ring __ before", "will call __ before", "will phone ahead",
    "will call ahead", "will ring ahead", "will call _ on the way", "will ring _ on the way",
    "will _ call you", "will _ ring you", "will _ phone you", "will _ give you a call", "will _ give you a ring",
    # ...and as Whisper writes them when it drops the article ("he'll give you ring about half an hour before")
    "will give you ring", "will give you call", "will _ give you ring", "will _ give you call",
    "i will ring _ back", "i will phone _ back", "we will ring _ back", "i will try you", "i will try you again",
    "i will call _ again", "i will ring _ again", "i will call back", "i will ring back", "i will phone back",
    "we will call back", "i will be calling you", "we will be calling you", "will be ringing you",
    "will be calling you", "will give you a ring", "will get a call", "will get a ring", "get a call from",
    "call you _ before", "ring you _ before",
    "sizi ararim", "sizi arariz", "ben ararim", "ben tekrar ararim", "ben sizi ararim", "ben donerim",
    "size donerim", "ben size donus yaparim", "esim sizi arayacak", "arayacak sizi",
    "sizi arar", "arayip bilgi verecek",
    # Turkish first-person aorist is a commitment ("aksam yedi gibi ararim"), a third person plural the team's.
    "ararim", "arariz", "sizi arayacak*", "sizi _ arayacak*",
    # the present tense for a near future ("akşam yedi gibi sizi tekrar arıyorum"), and the team or a
    # technician as the subject ("yarın öğleden sonra ekip arayacak")
    "sizi tekrar ariyorum", "tekrar ariyorum", "ekip arayacak", "ekibimiz arayacak",
    "teknisyen* arayacak", "usta* arayacak", "arkadas* arayacak", "temsilci* arayacak", "birim* arayacak",
)  # fmt: skip
# A promise only when the call is meant: these in the same sentence mean writing, a maybe or a condition
# ("we'll email you the details", "I might ring back", "call us if anything changes").
NOT_A_CALL_PHRASES = (
    "email you", "e mail you", "email it", "by email", "via email", "an email", "by text", "text you",
    "a text", "by letter", "a letter", "in the post", "by post", "sms", "message you", "whatsapp",
    "e posta", "mesaj", "mektup",
)  # fmt: skip
MAYBE_PHRASES = (
    "might", "maybe", "may call", "may ring", "perhaps", "not sure", "possibly", "i may", "if i can",
    "try to call", "try and call", "hopefully", "belki", "emin degilim", "if anything changes", "if you need",
    "if there is any", "if you have any", "if that changes", "in case you", "in case anything", "in case there",
    "in case it", "in case of", "just in case", "should you need", "if we decide",
    "if i decide", "if we", "if i need", "when we decide", "when i decide", "when we are ready",
    "when i am ready", "if i change my mind", "if we change our mind", "karar verirsek", "ihtiyac olursa",
    "olmazsa", "olursa", "gerekirse",
)  # fmt: skip
# The customer asking to be called (a promise once the agent agrees).
REQUEST_PHRASES = (
    "call me back", "call me later", "call me tomorrow", "call me in", "call me on", "call me at",
    "call me this", "call me next", "call me again", "can you call me", "could you call me",
    "would you call me", "please call me", "ring me back", "ring me", "give me a call", "give me a ring",
    "phone me", "get back to me", "beni ara*", "beni tekrar ara*", "beni sonra ara*", "sonra arar misiniz",
    "sonra arayin", "tekrar arayin", "geri arayin", "geri donus yap*", "bana donus yap*", "beni geri ara*",
)  # fmt: skip
# The agent offering a call back (a promise once the customer accepts).
OFFER_PHRASES = (
    "shall i call you", "should i call you", "would you like me to call", "want me to call you",
    "would you like us to call", "do you want us to call", "i can call you", "we can call you",
    "i could call you", "we could call you", "how about i call you", "how about i give you a",
    "i can give you a call", "i can give you a ring", "sizi arayalim mi", "sizi arayabilirim", "sizi arayabiliriz",
    "shall i give you a", "shall i ring you", "shall i phone you", "shall we call you", "shall we ring you",
    "should i ring you", "do you want me to ring", "do you want me to call", "would you like me to ring",
    "would you like a call", "would you like a ring", "would you like a callback", "would you like a call back",
    "do you want a call", "want a call back", "want a callback", "can i call you", "can i ring you",
    "could i call you", "could i ring you", "may i call you", "how about i ring", "i could ring you",
    "can i give you a", "could i give you a", "i could give you a", "is it ok if i call", "is it okay if i call",
    "is it ok if i ring", "is it okay if i ring", "sizi arasam", "ben sizi arasam",
    "i can ring you", "we can ring you", "shall i call _ back", "shall i ring _ back", "i can call _ back",
    "arayalim mi", "arayayim mi", "sizi arayayim mi", "geri arayalim mi", "donus yapalim mi",
    "shall i get __ to call you", "shall i get __ to ring you", "shall i get __ to phone you",
    "shall i have __ call you", "shall i have __ ring you", "shall i ask __ to call you", "shall i ask __ to ring you",
    "would you like __ to call you", "would you like __ to ring you", "do you want __ to call you",
    "do you want __ to ring you", "can i get __ to call you", "can i get __ to ring you",
    "should i give you a", "should we give you a", "shall we give you a", "want me to give you a",
    "would you like me to give you a", "would you like us to give you a",
)  # fmt: skip
AGREE_PHRASES = (
    "sure", "of course", "no problem", "certainly", "okay", "ok", "will do", "absolutely", "yes", "yeah",
    "alright", "all right", "fine", "definitely", "that works", "great", "please", "that would be",
    "tabii", "tabi", "olur", "tamam", "elbette", "peki", "memnuniyetle", "evet", "lutfen", "anlastik",
)  # fmt: skip
REFUSE_PHRASES = (
    "we can not call", "we do not call", "i can not call", "unfortunately we can not", "no one will call",
    "nobody will call", "not able to call", "we will not call", "i will not call", "maalesef arayamiyoruz",
    "arayamayiz", "aramiyoruz", "no thanks", "no thank you", "no need", "gerek yok", "istemiyorum",
    "can not promise", "cannot promise", "can not guarantee", "cannot guarantee", "no guarantee",
    "garanti edemem", "soz veremem",
)  # fmt: skip
# A turn the LLM points at must at least talk about contacting someone later ("thanks for calling" and
# "you called yesterday" do not count).
CONTACT_STEMS = re.compile(
    r" (will|would|shall|going to|gonna|to|is|are|am) (\w+ ){0,4}(call|ring|phone|contact|get back|be in touch|"
    r"reach out|reach|follow up)( |$)|"
    r" (arayaca\w*|arariz|ararim|arayalim|arayip|arayacak|donus yapaca\w*|donece\w*|iletisime gecece\w*) "
)


# A clock time said as a deadline ("before five", "by 3 pm"): its window ends at that time.
_DEADLINE_CLOCK_WORDS = ("before ", "by ", "until ", "till ", "no later than ")


@dataclass
class DueTime:
    due: datetime
    text: str
    exact: bool
    # The end of the rubric's window for the phrase: a follow-up call by then (plus the store's grace hours)
    # keeps the promise. None: the due time itself (deadlines: "by Wednesday", "within the hour").
    latest: datetime | None = None

    @property
    def window_end(self) -> datetime:
        return self.latest if self.latest is not None and self.latest > self.due else self.due


@dataclass
class CallbackSettings:
    """Hours that vague phrases resolve to, and offsets for 'later today' and 'shortly'."""

    day_part_hours: dict[str, int] = field(
        default_factory=lambda: {
            "morning": 10, "noon": 12, "afternoon": 15, "evening": 18, "night": 20, "end_of_day": 17,
        }
    )
    default_hour: int = 10
    deadline_hour: int = 17  # "by Wednesday", "within the week" (Friday)
    later_today_hours: float = 2.0
    soon_minutes: int = 15
    # Where the rubric's windows end. Day parts and a date without a time end at an hour of that day
    # ("tomorrow morning" 08:00-12:00, "afternoon" 12:00-18:00, "after six" 18:00-21:00, "on the twelfth"
    # 08:00-18:00); a clock time, an offset and a lead time before an appointment get minutes after the due time
    # (±30, ±10 and ±15 min). Deadlines ("by Wednesday", "within the hour", "within the week") end at the due time.
    window_end_hours: dict[str, int] = field(
        default_factory=lambda: {
            "morning": 12, "noon": 13, "afternoon": 18, "evening": 21, "night": 23, "date": 18,
        }
    )
    window_minutes: dict[str, int] = field(
        default_factory=lambda: {"clock": 30, "offset": 10, "before_appointment": 15}
    )

    def day_end(self, day: datetime, name: str) -> datetime | None:
        hour = self.window_end_hours.get(name)
        return None if hour is None else day.replace(hour=hour % 24, minute=0, second=0, microsecond=0)

    def after(self, due: datetime, name: str) -> datetime:
        return due + timedelta(minutes=self.window_minutes.get(name, 0))


# ---------------------------------------------------------------------------------------------
# Time phrases
# ---------------------------------------------------------------------------------------------
# Quantities said in words ("in twenty minutes", "yirmi dört saat"): the shared number words (as norm() folds
# them, zero left out), their compounds ("forty five", "on beş"), and a few vague ones.
_NUM_WORDS = {word: value for word, value in {**UNITS, **TEENS, **TENS}.items() if value and word == fold(word)}
_NUM_WORDS.update({"on": 10, "a": 1, "an": 1, "a couple of": 2, "couple of": 2, "a few": 3, "few": 3})
_NUM_WORDS.update({f"{tens} {unit}": t + u for tens, t in {**TENS, "on": 10}.items() if tens == fold(tens)
                   for unit, u in UNITS.items() if u and unit == fold(unit)
                   and (unit in ENGLISH_UNITS) == (tens in ENGLISH_TENS)})
_NUM = r"(\d{1,2}|" + "|".join(sorted((re.escape(k) for k in _NUM_WORDS), key=len, reverse=True)) + r")"
_WEEKDAYS = {
    "monday": MO, "tuesday": TU, "wednesday": WE, "thursday": TH, "friday": FR, "saturday": SA,
    "sunday": SU, "pazartesi": MO, "sali": TU, "carsamba": WE, "persembe": TH, "cumartesi": SA,
    "cuma": FR, "pazar": SU,
}  # fmt: skip
_WEEKDAY_RE = re.compile(
    r"\b(next |this |coming |on |gelecek |haftaya |onumuzdeki )?"
    r"(monday|tuesday|wednesday|thursday|friday|saturday|sunday|pazartesi|sali|carsamba|persembe|"
    r"cumartesi|cuma|pazar)(ya|ye|a|e|da|de|ta|te|gunu|günü|sabah\w*|aksam\w*)?\b"
)
_REL_RE = re.compile(
    r"\b(?:in|within|after) (?:about |around |roughly |the next )?" + _NUM + r" (minute|min|hour|day)s?\b"
    r"|\b" + _NUM + r" (saat|dakika|gun) (?:sonra|icinde|icerisinde)\b"
)
_HALF_HOUR_RE = re.compile(r"\b(?:in|within) (?:half an hour|thirty minutes)\b|\byarim saat\b")
_ANOTHER_HOUR_RE = re.compile(r"\bin another(?=\s*(?:[.,;!?]|$|at most|or so|tops|max\b|or less))")
_AT_MOST_RE = re.compile(r",? (?:at most|at the most|tops|max\b|or less|at the latest)")
_WITHIN_HOUR_RE = re.compile(r"\b(?:within|in) the (?:next )?hour\b|\bbir saat icinde\b")
_CLOCK_RE = re.compile(
    r"\b(?:at |around |by |about |saat |for |between |after |before |from )?(\d{1,2})(?:[:.](\d{2}))?"
    r" ?(am|pm|a\.m\.|p\.m\.|o'?clock)?"
    r"(?:'?(?:te|ta|de|da|gibi))?\b"
)
_CLOCK_WORD_RE = re.compile(
    r"\b(?:at|around|about|by|saat|between|after|from|before|until|till|no later than|aksam|sabah|"
    r"ogleden sonra) "
    r"(half past |quarter past |quarter to |half )?"
    r"(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    # Turkish hours, also on the 24-hour clock, with the case endings a time takes: "on bire" (to eleven),
    # "ikiye", "dorde" (dort), "ucte", "on dortte" (at fourteen).
    r"(?:on |yirmi )?(?:bir|iki|uc|dort|dord|bes|alti|yedi|sekiz|dokuz)|on|yirmi)"
    r"(?:de|da|te|ta|ye|ya|e|a)?( o'?clock| thirty| buçuk\w*| bucuk\w*)? ?(am|pm)?\b"
)
# "half 2", "quarter to 10": a transcriber writes the hour of a spoken clock time as a digit.
_CLOCK_PREFIX_DIGIT_RE = re.compile(r"\b(half past|quarter past|quarter to|half) (\d{1,2})\b(?![:.]\d)")
# "you're on for eight tomorrow", "booked for 10 on Monday": "for" + an hour is a time only before a day.
_CLOCK_FOR_RE = re.compile(
    r"\bfor (one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\d{1,2})( o'?clock| ?am| ?pm)?"
    r" (?=tomorrow|today|tonight|this (?:morning|afternoon|evening)|on (?:mon|tues|wednes|thurs|fri|satur|sun)day)"
)
_DAY_PARTS = (
    ("end_of_day", r"\b(end of (the )?day|close of business|end of business|mesai bitim\w*|gun sonu\w*)\b"),
    ("afternoon", r"\b(afternoon|after lunch|ogle yemeginden sonra|ogleden sonra|ogle den sonra|aksamustu|"
                  r"aksam ustu)\b"),
    ("morning", r"\b(morning|first thing|sabah\w*)\b"),
    ("noon", r"\b(noon|midday|lunchtime|lunch time|ogle\w*)\b"),
    ("evening", r"\b(evening|tonight|aksam\w*)\b"),
    ("night", r"\b(night|gece)\b"),
)
_LATER_TODAY_RE = re.compile(r"\b(later today|later on today|later this (morning|afternoon)|bugun icinde|"
                             r"gun icinde|later in the day|today sometime|bugun icerisinde)\b")
_SOON_RE = re.compile(r"\b(shortly|in a (few|couple of) minutes|in a moment|in a bit|right back|"
                      r"straight back|in a minute|birazdan|hemen|az sonra|kisa sure icinde)\b")
_TOMORROW_RE = re.compile(r"\b(tomorrow|yarin)\b")
# A deadline day: "by Wednesday", "before Friday", "Carsambaya kadar" -> that day at the deadline hour.
_DEADLINE_RE = re.compile(r"\b(by|before|until|till|no later than|latest) (the end of |end of |close of business |"
                          r"close of play |cob |eod )?(\w+ )?(monday|tuesday|wednesday|thursday|friday|saturday|"
                          r"sunday|tomorrow|today|tonight|the \d|\d)|\b(kadar|en gec)\b")
_WEEK_RE = re.compile(r"\b(within the week|this week|by the end of the week|end of the week|later this week|"
                      r"before the weekend|by the weekend|hafta icinde|bu hafta|hafta sonuna kadar|"
                      r"hafta bitmeden)\b")
# A lead time before an appointment: "she'll ring twenty minutes before", "bir saat once arar".
_LEAD_RE = re.compile(r"\b" + "(" + "|".join(sorted((re.escape(k) for k in (
    "one", "two", "three", "four", "five", "ten", "fifteen", "twenty", "thirty", "forty", "forty five", "an",
    "a", "half an", "bir", "iki", "on", "onbes", "on bes", "yirmi", "otuz", "yarim")), key=len, reverse=True))
    + r"|\d{1,3}) (minutes?|mins?|hours?|dakika|saat) (before|ahead|prior|beforehand|(?:(?<=dakika )|(?<=saat ))"
    r"(?:once|onceden))\b")  # (Turkish "önce" folds to "once": only after a Turkish unit, not "in twenty minutes once")
_DAY_AFTER_RE = re.compile(r"\b(day after tomorrow|obur gun|yarindan sonra)\b")
_TODAY_RE = re.compile(r"\b(today|this (morning|afternoon|evening)|tonight|bugun|bu aksam|bu sabah)\b")
_NEXT_WEEK_RE = re.compile(r"\b(next week|haftaya|gelecek hafta|onumuzdeki hafta)\b")
_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|december|"
           "ocak|subat|mart|nisan|mayis|haziran|temmuz|agustos|eylul|ekim|kasim|aralik")
_DATE_RE = re.compile(
    r"\b(\d{1,2})(?:st|nd|rd|th)?(?: of)? (" + _MONTHS + r")\b|\b(" + _MONTHS + r") (\d{1,2})(?:st|nd|rd|th)?\b"
    r"|\bthe (\d{1,2})(?:st|nd|rd|th)\b(?! (?:of )?(?:" + _MONTHS + r"))"
)
# A day of the month said as a Turkish number word before a Turkish month ("yirmi bir Nisan'da"). English says
# ordinals ("the twenty-first of May", read by _ORDINAL_RE), and its "on March 3rd" is no "ten March".
_TR_DAY_WORDS = ("bir", "iki", "uc", "dort", "bes", "alti", "yedi", "sekiz", "dokuz", "on", "yirmi", "otuz")
_DAY_WORDS_RE = re.compile(
    r"\b(" + "|".join(sorted((re.escape(k) for k, v in _NUM_WORDS.items() if 1 <= v <= 31 and (
        k in _TR_DAY_WORDS or k.split()[0] in {"on", "yirmi", "otuz"})), key=len, reverse=True))
    + r") (ocak|subat|mart|nisan|mayis|haziran|temmuz|agustos|eylul|ekim|kasim|aralik)\b"
)
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14, "fifteenth": 15,
    "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
    "twenty first": 21, "twenty second": 22, "twenty third": 23, "twenty fourth": 24, "twenty fifth": 25,
    "twenty sixth": 26, "twenty seventh": 27, "twenty eighth": 28, "twenty ninth": 29, "thirty first": 31,
}  # fmt: skip
_ORDINAL_RE = re.compile(r"\b(" + "|".join(sorted(_ORDINALS, key=len, reverse=True)) + r")\b")
_TR_MONTHS = {"ocak": "january", "subat": "february", "mart": "march", "nisan": "april", "mayis": "may",
              "haziran": "june", "temmuz": "july", "agustos": "august", "eylul": "september",
              "ekim": "october", "kasim": "november", "aralik": "december"}  # fmt: skip


def _number(token: str) -> int | None:
    token = token.strip()
    if token.isdigit():
        return int(token)
    return _NUM_WORDS.get(token)


_TR_HOURS = "iki|uc|dort|bes|alti|yedi|sekiz|dokuz|on bir|on iki|\\d{1,2}"
# ("on"/"bir" only after "saat": "ondan önce" is "before that", "bire kadar" "to one".)
_TR_BEFORE_HOUR_RE = re.compile(rf"\b(?:saat )?({_TR_HOURS}|(?<=saat )(?:on|bir))'?(?:ten|tan|den|dan) once\b")
_TR_UNTIL_HOUR_RE = re.compile(rf"\bsaat ({_TR_HOURS}|on|bir)'?(?:ye|ya|e|a) kadar\b")


def _clean(text: str) -> str:
    # Folded (Turkish letters to ASCII), lower case; punctuation kept for clock times like 3:30.
    text = fold(text).replace("’", "'").lower()
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)  # "twenty-four" -> "twenty four"
    # Whisper hears "in an hour" as "in another" ("I'll give you a call back in another at most."): "another"
    # with nothing after it to count is the hour.
    text = _ANOTHER_HOUR_RE.sub("in an hour", text)
    # Turkish deadlines as the English ones: "(saat) beşten önce" -> "before bes", "saat beşe kadar" -> "by bes".
    text = _TR_BEFORE_HOUR_RE.sub(r"before \1", text)
    text = _TR_UNTIL_HOUR_RE.sub(r"by \1", text)
    text = _ORDINAL_RE.sub(lambda m: f"{_ORDINALS[m.group(1)]}th", text)  # "the twelfth of may" -> "the 12th"
    return " " + re.sub(r"\s+", " ", re.sub(r"[!?;\"()]", " ", text)) + " "


def resolve_due(text: str, reference: datetime, cfg: CallbackSettings | None = None) -> DueTime | None:
    """The absolute time a phrase like 'tomorrow at 3' or 'in two hours' means, said at ``reference``."""
    cfg = cfg or CallbackSettings()
    t = _clean(text)
    found: list[str] = []

    if m := _HALF_HOUR_RE.search(t):
        due = reference + timedelta(minutes=30)
        deadline = m.group().startswith("within")
        return DueTime(due, m.group().strip(), True, None if deadline else cfg.after(due, "offset"))
    if m := _WITHIN_HOUR_RE.search(t):
        return DueTime(reference + timedelta(hours=1), m.group().strip(), True)
    if m := _REL_RE.search(t):
        amount = _number(m.group(1) or m.group(3) or "")
        unit = m.group(2) or m.group(4) or ""
        # "within 24 hours", "2 gun icinde", "in an hour at most": the window ends at the offset
        deadline = (m.group().startswith("within") or "icinde" in m.group()
                    or _AT_MOST_RE.match(t, m.end()) is not None)
        if amount is not None:
            if unit.startswith(("minute", "min", "dakika")):
                delta = timedelta(minutes=amount)
            elif unit.startswith(("hour", "saat")):
                delta = timedelta(hours=amount)
            else:
                delta = timedelta(days=amount)
                if deadline:
                    return DueTime(reference + delta, m.group().strip(), False)  # a deadline: call + N days
                due = (reference + delta).replace(hour=cfg.default_hour, minute=0, second=0, microsecond=0)
                return DueTime(due, m.group().strip(), False, cfg.day_end(due, "date"))
            due = reference + delta
            return DueTime(due, m.group().strip(), True, None if deadline else cfg.after(due, "offset"))
    if (m := _SOON_RE.search(t)) and not _TOMORROW_RE.search(t):
        due = reference + timedelta(minutes=cfg.soon_minutes)
        return DueTime(due, m.group().strip(), False, cfg.after(due, "offset"))

    # Day: explicit date, weekday, tomorrow, next week, today.
    day: datetime | None = None
    t = _DAY_WORDS_RE.sub(lambda w: f"{_NUM_WORDS[w.group(1)]} {w.group(2)}", t)  # "yirmi bir nisan" -> "21 nisan"
    if m := _DATE_RE.search(t):
        phrase = m.group()
        english = " ".join(_TR_MONTHS.get(w, w) for w in phrase.replace("the ", "").split() if w != "of")
        try:
            parsed = date_parser.parse(english, default=reference.replace(hour=0, minute=0, second=0,
                                                                          microsecond=0, tzinfo=None))
            day = parsed.replace(tzinfo=reference.tzinfo)
            if day.date() < reference.date():
                day = day + (relativedelta(months=1) if m.group(5) else relativedelta(years=1))
            found.append(phrase.strip())
        except (ValueError, OverflowError):
            day = None
    if day is None and (m := _DAY_AFTER_RE.search(t)):
        day = reference + timedelta(days=2)
        found.append(m.group().strip())
    tomorrow = _TOMORROW_RE.search(t)
    weekday_match = _WEEKDAY_RE.search(t)
    if (weekday_match and tomorrow and tomorrow.start() < weekday_match.start()
            and not _clock_right_after(t, weekday_match.end(), tomorrow.end())):
        # "ring you tomorrow evening to narrow down the window for Wednesday"; but a weekday said with its clock
        # time is the time ("Yarın o bölgede ekip yok... Çarşamba saat on olarak yazıyorum")
        weekday_match = None
    if day is None and (m := weekday_match):
        weekday = _WEEKDAYS[m.group(2)]
        qualifier = (m.group(1) or "").strip()
        # A weekday is its next occurrence after the call date ("Monday" said on a Monday: in a week), also
        # with "next" (the rubric's convention); "Monday next week" moves to that week.
        day = reference + relativedelta(days=1, weekday=weekday(+1))
        if qualifier in {"haftaya", "gelecek", "onumuzdeki"} or (_NEXT_WEEK_RE.search(t) and qualifier != "this"):
            next_monday = reference + relativedelta(days=1, weekday=MO(+1))
            if day.date() < next_monday.date():
                day = day + timedelta(days=7)
        found.append(m.group().strip())
    if day is None and (m := _TOMORROW_RE.search(t)):
        day = reference + timedelta(days=1)
        found.append(m.group().strip())
    week_deadline = False
    if day is None and (m := _WEEK_RE.search(t)):
        # "within the week": Friday of the call's week (the next one when said at the weekend) at 17:00.
        day = reference + relativedelta(weekday=FR(+1))
        week_deadline = True
        found.append(m.group().strip())
    if day is None and (m := _NEXT_WEEK_RE.search(t)):
        day = reference + relativedelta(days=1, weekday=MO(+1))
        found.append(m.group().strip())
    later_today = _LATER_TODAY_RE.search(t)
    today = _TODAY_RE.search(t)

    # Hour: clock time, else day part.
    hour: int | None = None
    minute = 0
    exact = False
    part: str | None = None
    for name, pattern in _DAY_PARTS:
        if pm := re.search(pattern, t):
            part = name
            found.append(pm.group().strip())
            break
    clock = _clock(t)
    clock_phrase = ""
    if clock is not None:
        hour, minute, has_meridiem, phrase = clock
        clock_phrase = phrase
        found.append(phrase)
        exact = True
        if not has_meridiem:
            if part in {"afternoon", "evening", "night", "end_of_day"} and hour < 12:
                hour += 12
            elif part is None and 1 <= hour <= 7:
                hour += 12  # business hours: "at 3" means 15:00
    elif part is not None:
        hour = cfg.day_part_hours.get(part, cfg.default_hour)
    elif week_deadline or (day is not None and _DEADLINE_RE.search(t)):
        hour = cfg.deadline_hour
    elif day is None and today and _DEADLINE_RE.search(t):
        hour, day = cfg.deadline_hour, reference

    if day is None and later_today and hour is None:
        due = reference + timedelta(hours=cfg.later_today_hours)
        return DueTime(due, later_today.group().strip(), False, cfg.day_end(due, "date"))
    if day is None and hour is None:
        return None
    if day is None:
        if later_today:
            found.append(later_today.group().strip())
        elif today:
            found.append(today.group().strip())
        day = reference
        if hour is not None and (hour, minute) <= (reference.hour, reference.minute) and not today:
            day = reference + timedelta(days=1)  # "at 9" said at 15:00 means tomorrow at 9
    # "by Wednesday", "before five", "end of the day": the window ends at the deadline itself.
    deadline = (hour is not None and not exact and part in (None, "end_of_day")) or (
        exact and clock_phrase.startswith(_DEADLINE_CLOCK_WORDS))
    if hour is None:
        hour = cfg.default_hour
    due = day.replace(hour=hour % 24, minute=minute, second=0, microsecond=0)
    latest: datetime | None
    if deadline:
        latest = None  # a deadline's window ends at the due time
    elif exact and clock_phrase.startswith("after "):
        # "after six (this evening)": from that hour to the end of its part of the day (18:00-21:00)
        latest = cfg.day_end(due, part or ("evening" if hour >= 17 else "afternoon" if hour >= 12 else "morning"))
    elif exact:
        latest = cfg.after(due, "clock")
    else:
        latest = cfg.day_end(due, part or "date")
    return DueTime(due, ", ".join(dict.fromkeys(found)) or text.strip()[:60], exact, latest)


def _lead_time(text: str) -> timedelta | None:
    """The lead of a call before an appointment ("twenty minutes before", "an hour ahead"), if said."""
    m = _LEAD_RE.search(_clean(text))
    if m is None:
        return None
    word = m.group(1)
    amount = {"half an": 0.5, "yarim": 0.5, "onbes": 15, "on bes": 15, "an": 1, "a": 1}.get(word)
    if amount is None:
        amount = _number(word) or 0
    return timedelta(minutes=amount) if m.group(2).startswith(("min", "dakika")) else timedelta(hours=amount)


def lead_text(lead: timedelta) -> str:
    minutes = int(lead.total_seconds() // 60)
    return f"{minutes} minutes"


def _hour_said(number: str, said: str, prefix: str = "", meridiem: str = "") -> tuple[int, int, bool, str] | None:
    """(hour, minute, meridiem given, words) of an hour said as a number, after "half" / "quarter to" or
    before "am" / "pm"; None when the number is not an hour of the clock."""
    hour = _number(number)
    if hour is None or not 1 <= hour <= 12:
        return None
    minute = {"half past": 30, "half": 30, "quarter past": 15, "quarter to": -15}.get(prefix, 0)
    if minute < 0:
        hour, minute = hour - 1, 45
    if meridiem == "pm" and hour < 12:
        hour += 12
    return hour, minute, meridiem in {"am", "pm"}, said.strip()


# A clock time said right after a day ("Wednesday at ten", "Çarşamba saat on"): within this many characters.
_CLOCK_AFTER_DAY_CHARS = 16


def _clock_right_after(t: str, day_end: int, other_day_end: int) -> bool:
    """A clock time follows the day ending at ``day_end`` and none the other day ending at ``other_day_end``."""
    def follows(end: int) -> bool:
        return _clock(t[end : end + _CLOCK_AFTER_DAY_CHARS]) is not None
    return follows(day_end) and not follows(other_day_end)


# "nine o'clock" needs no "at" before it: the o'clock says it is a time.
_CLOCK_WORD_OCLOCK_RE = re.compile(r"\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve) o'?clock\b")


def _clock(t: str) -> tuple[int, int, bool, str] | None:
    """(hour, minute, meridiem given, phrase) of the first clock time in cleaned text."""
    for m in _CLOCK_WORD_RE.finditer(t):
        hour = _number(m.group(2).replace("dord", "dort"))
        if hour is None:
            continue
        minute = 0
        prefix = (m.group(1) or "").strip()
        # "half two" is British for half past two.
        if prefix in {"half past", "half"} or (m.group(3) or "").strip().startswith(("thirty", "buçuk", "bucuk")):
            minute = 30
        elif prefix == "quarter past":
            minute = 15
        elif prefix == "quarter to":
            hour, minute = hour - 1, 45
        meridiem = m.group(4)
        if meridiem == "pm" and hour < 12:
            hour += 12
        return hour, minute, meridiem is not None, m.group().strip()
    if (said := _CLOCK_PREFIX_DIGIT_RE.search(t)) and (
            clock := _hour_said(said.group(2), said.group(), prefix=said.group(1))):
        return clock
    if (said := _CLOCK_FOR_RE.search(t)) and (
            clock := _hour_said(said.group(1), said.group(), meridiem=(said.group(2) or "").strip())):
        return clock
    if (said := _CLOCK_WORD_OCLOCK_RE.search(t)) and (hour := _number(said.group(1))) is not None:
        return hour, 0, False, said.group().strip()
    for m in _CLOCK_RE.finditer(t):
        hour = int(m.group(1))
        minute = int(m.group(2)) if m.group(2) else 0
        meridiem = (m.group(3) or "").replace(".", "")
        lead = m.group().lstrip()
        # A bare number is a time only with a cue: "at 3", "3 pm", "10:30", "saat 3", "3'te".
        cue = lead.startswith(("at ", "around ", "by ", "about ", "saat ", "for ", "between ", "after ", "before ",
                               "from ")) or m.group(2) or meridiem
        cue = cue or re.search(r"'?(te|ta|de|da)\b", m.group()) is not None
        if not cue or hour > 23 or minute > 59:
            continue
        if lead.startswith("for ") and not (m.group(2) or meridiem):
            continue  # "for 2 people" is not a time
        if meridiem in {"pm"} and hour < 12:
            hour += 12
        if meridiem == "am" and hour == 12:
            hour = 0
        return hour, minute, bool(meridiem and meridiem != "oclock" and meridiem != "o'clock") or hour > 12, \
            m.group().strip()
    return None


# ---------------------------------------------------------------------------------------------
# Promise detection
# ---------------------------------------------------------------------------------------------
@dataclass
class Promise:
    turn: TurnView
    by: str
    source: str
    time_turns: list[TurnView]
    phrase: str | None = None

    def time_texts(self) -> list[tuple[str, TurnView]]:
        """Texts to search for the due time, nearest first, each with the turn it comes from: the promise's
        own sentence, then its turn, then the turns around it ("Monday" in "the job from Monday" must not beat
        "this afternoon")."""
        texts: list[str] = []
        if self.phrase:
            pattern = phrase_pattern(self.phrase)
            sentences = [s for s in _sentences(self.turn.text) if pattern.search(norm(s))]
            # The words after the promise first: "I'll check this morning and ring you back before five"
            # is due at five, not in the morning.
            for sentence in sentences:
                match = pattern.search(norm(sentence))
                if match is not None:
                    # Turkish puts the time before the verb ("carsamba ogleden sonra sizi arayacagiz, gece
                    # yarisindan sonra mama vermeyin"): there, the promise with the few words before it comes
                    # first (only a few: an unpunctuated turn may name the visit's day before that).
                    if _TURKISH_VERB.search(match.group()):
                        before = norm(sentence)[: match.start()].split()[-_TURKISH_TIME_WORDS:]
                        texts.append(" ".join([*before, match.group()]))
                    texts.append(norm(sentence)[match.start():])
            texts += sentences
            if any(_EVENT_RE.search(norm(sentence)) for sentence in sentences):
                # "Someone will call you once the bag is on its way": the call waits on an event, so a time
                # elsewhere in the talk ("I need my meds tonight") is not its due; only its own words count.
                return [(text, self.turn) for text in texts]
        return [(text, self.turn) for text in texts] + [(_without_courtesy(t.text), t) for t in self.time_turns]


# A sentence of courtesy in the turns around a promise names no time for it: "Is there anything else I can help
# you with this evening?", "Have a good evening".
_COURTESY_SENTENCE = re.compile(r"\b(?:anything else|have a (?:good|nice|great|lovely|wonderful) \w+|"
                                r"baska (?:bir )?(?:sey|konu))\b")


def _without_courtesy(text: str) -> str:
    return " ".join(s for s in _sentences(text) if not _COURTESY_SENTENCE.search(norm(s)))


# A call tied to an event instead of a time: "once", "as soon as", "when it/the/they...", Turkish "-ince/-unca",
# "-diğinde".
# ("once" with its subject: Turkish "önce", before, folds to the same letters: "beşten önce sizi ararım".)
_EVENT_RE = re.compile(r"\b(?:(?:once|when|as soon as|the moment) (?:the|it|its|they|we|he|she|your|our|i|you|that|"
                       r"this|someone|everything))\b|\b\w+(?:inca|ince|unca|unce|diginda|diginde|dugunda|dugunde|"
                       r"tiginda|tiginde)\b")


_TURKISH_TIME_WORDS = 4
_TURKISH_VERB = re.compile(r"\b(arar\w*|aray\w*|don\w*|iletisim\w*|bilgilendir\w*)\b")


def _sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?;])\s+", text)


def _clauses_with(text: str, phrases: Sequence[str]) -> bool:
    return find_phrase(norm(text), phrases) is not None


_WHO = (
    ("technician", ("technician", "engineer", "plumber", "electrician", "decorator", "cleaner", "handyman",
                    "fitter", "usta*", "teknisyen*", "tesisatci*", "elektrikci*")),
    ("manager", ("manager", "supervisor", "team leader", "mudur*", "yonetici*")),
    ("team", ("team", "someone", "somebody", "colleague", "department", "office", "ekib*", "arkadas*",
              "birim*")),
)


def _who(turn: TurnView) -> str:
    """Who will call: the role named in the promise turn (first mentioned), else the agent."""
    normalised = turn.normalised
    best: tuple[int, str] | None = None
    for who, cues in _WHO:
        for cue in cues:
            match = phrase_pattern(cue).search(normalised)
            if match and (best is None or match.start() < best[0]):
                best = (match.start(), who)
    return best[1] if best else AGENT


def detect_promises(turns: Sequence[TurnView], llm_turn: int | None = None) -> list[Promise]:
    """Every company-side callback promise in the call, in call order."""
    found: list[Promise] = []
    by_index = {t.index: i for i, t in enumerate(turns)}
    for i, turn in enumerate(turns):
        if turn.role == AGENT:
            offer = _accepted_offer(turns, i, CUSTOMER)
            if offer:
                found.append(Promise(turn, AGENT, "rule", _window(turns, i), offer))
                continue
            promise = _sentence_phrase(turn.text, PROMISE_PHRASES)
            if promise:
                found.append(Promise(turn, _who(turn), "rule", _window(turns, i), promise))
        else:
            request = _live_request(turn.text)
            reply = _next_of(turns, i, AGENT) if request else None
            if reply and _agrees(reply):
                j = by_index[reply.index]
                found.append(Promise(reply, AGENT, "rule", [reply, turn, *_window(turns, j)]))
                continue
            # The customer's own promise (or a relative's: "my wife will ring you"): the customer's side.
            offer = _accepted_offer(turns, i, AGENT)
            if offer:
                found.append(Promise(turn, CUSTOMER, "rule", _window(turns, i), offer))
                continue
            promise = _sentence_phrase(turn.text, PROMISE_PHRASES, reported=True)
            if promise:
                found.append(Promise(turn, CUSTOMER, "rule", _window(turns, i), promise))
    if not found and llm_turn is not None and llm_turn in by_index:
        i = by_index[llm_turn]
        turn = turns[i]
        if turn.role == AGENT and CONTACT_STEMS.search(turn.normalised) and not find_phrase(
            turn.normalised, REFUSE_PHRASES
        ):
            found.append(Promise(turn, _who(turn), "llm", _window(turns, i)))
    return found


def detect_promise(turns: Sequence[TurnView], llm_turn: int | None = None) -> Promise | None:
    """The last promise in the call (the final deal), if any."""
    promises = detect_promises(turns, llm_turn)
    return promises[-1] if promises else None


# A request reported from the past ("I was told someone would ring me back") is a complaint, not a request.
REPORTED_PHRASES = (
    "was told", "were told", "told me", "said", "someone would", "somebody would", "they would", "he would",
    "she would", "you would", "supposed to", "promised", "never called", "never rang", "never phoned",
    "never got back", "never heard", "never came", "never showed", "never did", "nobody", "no one",
    "did not", "last time", "yesterday", "soylediniz", "denmisti", "aramadi", "aramadiniz", "donmediniz",
    "dediler", "demistiniz", "demislerdi", "dendi", "dediniz",
)  # fmt: skip
# A hedge in another clause of the sentence hedges that clause, not the call: "Yarın saat üçte ben sizi
# ararım, muayene için gün alırız belki." (A condition, "if", "olursa", still covers the whole sentence.)
_CLAUSE_HEDGES = ("maybe", "perhaps", "possibly", "belki")


_CALL_WORD = re.compile(r"\b(call|calls|calling|ring|ringing|phone|arar\w*|aray\w*|ara)\b")


def _sentence_phrase(text: str, phrases: Sequence[str], reported: bool = False) -> str | None:
    """The first of ``phrases`` in a sentence that commits to a phone call: not a refusal, a maybe, a
    condition or a written message ("we'll be in touch by email"); ``reported``: nor a report of the past."""
    for sentence in _sentences(text):
        normalised = norm(sentence)
        phrase = find_phrase(normalised, phrases)
        if phrase is None:
            continue
        if find_phrase(normalised, REFUSE_PHRASES):
            continue
        maybe = find_phrase(normalised, MAYBE_PHRASES)
        if maybe and not (maybe in _CLAUSE_HEDGES and _hedges_another_clause(sentence, phrase, maybe)):
            continue
        if find_phrase(normalised, NOT_A_CALL_PHRASES) and not _CALL_WORD.search(normalised):
            continue
        if reported and find_phrase(normalised, REPORTED_PHRASES):
            continue
        return phrase
    return None


def _hedges_another_clause(sentence: str, phrase: str, hedge: str) -> bool:
    """The hedge word sits in a comma clause of the sentence without the promise phrase."""
    clauses = [norm(clause) for clause in sentence.split(",")]
    with_phrase = [c for c in clauses if find_phrase(c, [phrase])]
    return bool(with_phrase) and not any(find_phrase(c, [hedge]) for c in with_phrase)


def _live_request(text: str) -> str | None:
    """The request phrase of a sentence that asks for a call now, if any."""
    for sentence in _sentences(text):
        normalised = norm(sentence)
        request = find_phrase(normalised, REQUEST_PHRASES)
        if request and not find_phrase(normalised, REPORTED_PHRASES):
            return request
    return None


def _agrees(reply: TurnView) -> bool:
    # "No, I'm fine thanks" contains "fine" but opens with a refusal.
    first = reply.normalised.split()[:1]
    if first and first[0] in {"no", "nope", "nah", "hayir", "yok", "gerek"}:
        return False
    return bool(find_phrase(reply.normalised, AGREE_PHRASES)) and not find_phrase(reply.normalised, REFUSE_PHRASES)


def _accepted_offer(turns: Sequence[TurnView], i: int, other: str) -> str | None:
    """The callback offer in turn ``i`` ("shall I ring you Monday?") when the other side's next turn agrees."""
    offer = _sentence_phrase(turns[i].text, OFFER_PHRASES)
    if not offer:
        return None
    reply = _next_of(turns, i, other)
    return offer if reply and _agrees(reply) else None


def _next_of(turns: Sequence[TurnView], i: int, role: str) -> TurnView | None:
    return next((t for t in turns[i + 1 : i + 3] if t.role == role), None)


def _window(turns: Sequence[TurnView], i: int) -> list[TurnView]:
    """Turns to search for the time phrase, nearest first: the promise, then the talk around it."""
    order = [i, i - 1, i + 1, i - 2, i - 3, i + 2]
    return [turns[k] for k in order if 0 <= k < len(turns)]


# A turn asking for a call ("can you call me Thursday at five?", "ring me back at two", "beni yarın saat üçte arayın").
_ASKS_FOR_CALL_RE = re.compile(r"\b(?:call|ring|phone|give) me\b|\bbeni\b.*\bara")

# How far back a lead-time promise looks for the appointment it is measured from.
_LEAD_LOOKBACK_TURNS = 10


def _call_time_said(said: DueTime, lead: timedelta, earlier: Sequence[TurnView], reference: datetime,
                    cfg: CallbackSettings) -> DueTime | None:
    """The call's own time when the promise says it beside the lead ("he'll ring half an hour before he gets
    there tomorrow, so around seven thirty"): the clock time said is the visit agreed in the ``earlier`` turns
    (nearest first) less the lead (morning or evening as the visit is), not a visit to take the lead from again."""
    visits = (resolve_due(_LEAD_RE.sub(" ", _clean(t.text)), reference, cfg) for t in earlier)
    visit = next((d for d in visits if d is not None and d.exact), None)
    if visit is None:
        return None
    call_at = visit.due - lead
    for heard in (said.due, said.due - timedelta(hours=12)):
        if abs(heard - call_at) <= timedelta(minutes=15):
            return DueTime(call_at, f"{lead_text(lead)} before {visit.text}", True,
                           cfg.after(call_at, "before_appointment"))
    return None


def analyse_callback(
    turns: Sequence[TurnView],
    reference: datetime,
    cfg: CallbackSettings | None = None,
    llm_turn: int | None = None,
) -> CallbackResult:
    cfg = cfg or CallbackSettings()
    promises = detect_promises(turns, llm_turn)
    if not promises:
        return CallbackResult(promised=False, status="none", source="rule")
    # The last promise that names a time is the deal ("I'll call you tomorrow at ten" ... "I'll call you
    # on the number ending 456"); without any time, the last promise.
    promise, due = promises[-1], None
    # A promise whose time is only in another promise's turn ("Will she call me at this number?" - "Yes,
    # this one." after "Jo will call you on the first of March") defers to that promise, which reads its
    # own sentence first; it keeps the borrowed time only when no promise has one of its own.
    other_turns = {id(p.turn) for p in promises}
    borrowed: tuple[Promise, DueTime] | None = None
    for candidate in reversed(promises):
        lead = _lead_time(candidate.turn.text)
        texts = candidate.time_texts()
        earlier: list[TurnView] = []
        if lead is not None:
            # "he'll call about thirty minutes before he gets there": the visit was agreed earlier in the
            # call ("Friday morning at ten with Ignatius"), so the turns before the promise count too.
            at = next((i for i, t in enumerate(turns) if t is candidate.turn), 0)
            earlier = list(reversed(turns[max(0, at - _LEAD_LOOKBACK_TURNS) : at]))
            texts += [(t.text, t) for t in earlier]
        source: TurnView | None = None
        for text, turn in texts:
            due = resolve_due(_LEAD_RE.sub(" ", _clean(text)) if lead else text, reference, cfg)
            if due is not None:
                source = turn
                break
        if lead is not None and due is not None and not due.exact:
            # The visit's clock time beats a nearer bare day ("Saturday at nine works." ... "She'll be home
            # Saturday." ... "he'll ring thirty minutes before arriving").
            timed = (resolve_due(_LEAD_RE.sub(" ", _clean(text)), reference, cfg) for text, _ in texts)
            due = next((d for d in timed if d is not None and d.exact and d.due.date() == due.due.date()), due)
        elif lead is None and due is not None and not due.exact and source is not candidate.turn:
            # A bare day borrowed from a turn nearby ("All right, Thursday.") takes the clock time a turn asking
            # for the call gave that day ("Can you call me Thursday at 5?"), when the transcriber split the
            # agent's answer and moved that turn further away.
            asked = (resolve_due(text, reference, cfg) for text, _ in texts if _ASKS_FOR_CALL_RE.search(_clean(text)))
            due = next((d for d in asked if d is not None and d.exact and d.due.date() == due.due.date()), due)
        said_call_time = None
        if lead is not None and due is not None and due.exact and source is candidate.turn:
            said_call_time = _call_time_said(due, lead, earlier, reference, cfg)
        if said_call_time is not None:
            due = said_call_time
        elif due is not None and lead is not None:
            # "she'll ring twenty minutes before": the appointment's time less the lead.
            due = DueTime(due.due - lead, f"{lead_text(lead)} before {due.text}", due.exact,
                          cfg.after(due.due - lead, "before_appointment"))
        if due is not None and lead is None and source is not candidate.turn and id(source) in other_turns:
            borrowed = borrowed or (candidate, due)
            due = None
            continue
        if due is not None:
            promise = candidate
            break
    if due is None and borrowed is not None:
        promise, due = borrowed
    evidence = [promise.turn.evidence()]
    return CallbackResult(
        promised=True,
        by=promise.by,
        to=CUSTOMER,
        due=due.due if due else None,
        due_text=due.text if due else None,
        due_is_exact=due.exact if due else False,
        window_end=due.window_end if due else None,
        status="pending",
        source="rule" if promise.source == "rule" else "llm",
        evidence=evidence,
    )
