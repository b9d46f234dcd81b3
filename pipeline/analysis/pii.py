"""PII detection and redaction: card numbers, IBANs, national IDs, phone numbers, e-mail addresses.

Numbers are found as *digit runs*: digits and spoken digit words ("oh seven seven double nine") joined
across spaces and dashes, since ASR writes numbers both ways. A run is then classified with checksums
where one exists (Luhn for cards, mod-97 for IBANs, the Turkish ID check digits), so an order number is
not mistaken for a card. Long runs that fail a checksum are still redacted (ASR may have misheard one
digit) but marked ``checksum_valid=False``.

Every span keeps its turn, character offsets in the original text and, through the word timestamps,
its start and end in seconds, so the audio can be muted too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline.analysis.numbers import TEENS, TENS, TURKISH_UNITS, UNITS
from pipeline.analysis.text import fold as _fold
from pipeline.analysis_schema import PiiSpan
from pipeline.records import Turn, Word

ALL_KINDS = ("card_number", "iban", "national_id", "phone", "email")

_DIGIT_WORDS = {word: str(value) for word, value in UNITS.items()} | {"oh": "0", "o": "0", "nought": "0", "nil": "0"}
# Words a transcriber writes for a digit it heard inside a number ("six two one nine" -> "6 to 1, 9"):
# read as digits only inside a run, before a digit or a "double".
_HOMOPHONES = {"to": "2", "too": "2", "for": "4", "fore": "4", "won": "1", "ate": "8", "tree": "3"}
# The UK "oh" heard as "or", read as a digit only before "double"/"triple" ("three seven one, or double eight"):
# before a plain digit it is a list ("two fifty, five hundred, or seven fifty").
_OH_BEFORE_REPEAT = {"or": "0"}
_TEENS = {word: str(value) for word, value in TEENS.items()}
_TENS = {word: str(value // 10) for word, value in TENS.items()}  # the tens digit: "seventy" -> "7"
_REPEAT_WORDS = {"double": 2, "triple": 3}
_HUNDRED_WORDS = frozenset(["hundred", "yüz", "yuz"])
_THOUSAND_WORDS = frozenset(["thousand", "bin"])
_TOKEN = re.compile(r"\+?\d+|[^\W\d_]+", re.UNICODE)
# Only these may sit between the tokens of one number.
_JOINER = re.compile(r"^[\s\-.,()/]*$")

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# "j dot smith at gmail dot com", "j.smith at gmail dot co dot uk", "ayse nokta yilmaz et gmail nokta com":
# the local part may mix spoken and written dots, underscores and hyphens.
# A separator said as a word inside an address ("j dot smith", "ayse alt çizgi kaya").
_SEP_WORD = r"(?:dot|underscore|dash|hyphen|nokta|alt [cç]izgi|tire)"
_SEP = r"(?:\s*[._-]\s*|\s+" + _SEP_WORD + r"\s+)"
# An English number word ("seventy", "nineteen"), as callers end a local part with one.
_EN_NUMBER_WORD = (r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\w+teen|twenty|"
                   r"thirty|forty|fifty|sixty|seventy|eighty|ninety)")
# Number words may end the local part ("k dot bhatt seventy-seven at gmail dot com", "ayse nokta kaya seksen
# dort et ..."); a transcriber may put a comma before "at" or write "at" as "@" with spaces.
_LOCAL_NUMBER = (r"(?:\s+(?:\d+|(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                 r"\w+teen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|double|triple|sifir|bir|iki|uc|"
                 r"dort|bes|alti|yedi|sekiz|dokuz|on|yirmi|otuz|kirk|elli|altmis|yetmis|seksen|doksan|"
                 r"sıfır|üç|dört|beş|altı|kırk|altmış|yetmiş)(?:-\w+)?))")
_TLDS = r"(?:com|net|org|edu|gov|co|uk|tr|de|io|ie|us|info|biz|me|eu|fr|nl|ca|au|app|dev)"
_TLD_SEP = r"(?:\s+(?:dot|nokta)\s+|\s?\.\s?)"
_TLD_CHAIN = r"(?:" + _TLD_SEP + _TLDS + r")+\b"
# A business domain spoken as words ("hello at sparkle and co cleaning dot co dot uk"; Whisper: "parkour and
# co -cleaning .co .uk"): up to four words, then a spoken "dot" or a dot written after a space (not a
# sentence's full stop: "I was at the shop. Co-op...").
_SPOKEN_DOMAIN = r"[a-z0-9]+(?:(?:\s+|\s?-)[a-z0-9]+){1,3}"
# A caller spelling out or explaining the local part before the "at": "k brennan, b r e n n a n, at gmail...",
# "mehmet nokta aydin, i noktasiz, et hotmail...", "denizarslan bitisik, et yandex..." (bitisik: joined up).
_JOINED_UP = r"(?:\s+(?:bitişik|bitisik|all one word|one word))?"
# ...also spelled with hyphens or after "that's" ("grace dot okonjo, that's O-K-O-N-J-O, at ...", "melis nokta
# tuncer, T-U-N-C-E-R, et gmail ...").
_CLARIFIED = (r"(?:,\s+(?:that's\s+|that is\s+|yani\s+)?(?:[^\W\d_](?:(?:\s+|-)[^\W\d_]){1,30}"
              r"|[^\W\d_]+(?:\s+[^\W\d_]+)?))?")
# A word of the local part; an apostrophe inside it stays ("j dot o'brien at ...").
_LOCAL_WORD = r"[^\W_]+(?:['’][^\W_]+)?"
_SPOKEN_EMAIL = re.compile(
    r"(?<!['’])\b(?:" + _LOCAL_WORD + r"(?:" + _SEP + _LOCAL_WORD + r")+(?:\s+[^\W_]+)?|(?:[^\W\d_]\s+)?"
    + _LOCAL_WORD + _JOINED_UP + r")"
    + _LOCAL_NUMBER + r"*" + _CLARIFIED
    + r",?\s+(?:at|et|at sign|@|at i[sş]areti|et i[sş]areti),?\s+(?:[a-z0-9-]+" + _TLD_CHAIN
    + r"|" + _SPOKEN_DOMAIN + r"(?:,?\s+(?:bitişik|bitisik|all one word|one word),?)?"
    + r"(?:\s+(?:dot|nokta)\s+|\s\.)" + _TLDS + r"(?:" + _TLD_SEP + _TLDS + r")*\b)",
    re.IGNORECASE,
)
# Whisper often loses the "at" of a spelled address into the next word ("rosy .el .au tootoutlook .com") or
# drops it: a well-known mail provider's domain glued to a word, or after a dotted local part, is an address.
# ("mail": mail.com, and what Whisper makes of "gmail" glued to a name: "k -prennantmail .com")
_PROVIDERS = (r"(?:gmail|googlemail|outlook|hotmail|yahoo|icloud|protonmail|yandex|btinternet|"
              r"(?<![Hh]ot)(?<![GgEe])mail)")
_PROVIDER_DOMAIN = r"(?:(?:\s+(?:dot|nokta)\s+|\s?\.\s?)(?:com|net|co|uk|tr|de|ie|fr))+\b"
_GLUED_EMAIL = re.compile(
    r"\b(?:[^\W_]+(?:" + _SEP + r"[^\W_]+)*\s+)?[^\W_]+" + _PROVIDERS + _PROVIDER_DOMAIN
    + r"|\b[^\W_]+(?:" + _SEP + r"[^\W_]+)+\s+" + _PROVIDERS + _PROVIDER_DOMAIN
    # ...or dotted on to it, as Whisper writes a spelled address it could not follow ("p .lv .a .dh .outlook .com")
    + r"|\b[^\W_]+(?:" + _SEP + r"[^\W_]+)+\s?\.\s?" + _PROVIDERS + _PROVIDER_DOMAIN,
    re.IGNORECASE,
)
# ...and with any other domain, the "at" lost ("wrong.elisonatiscoi.com" for "r.ellison at tiscali.co.uk"): a dotted or
# hyphenated name ending in a domain, said where an e-mail address is asked for or given (this turn or the one
# before mentions one). A bare web address ("foamway.com", "www.foamway.com") has no local part: not taken.
_ADDRESS_LIKE = re.compile(r"(?<![\w@.])[^\W_]+(?:[._-][^\W_]+)+\b", re.UNICODE)
_TLD_END = re.compile(r"(?:\." + _TLDS + r")+$", re.IGNORECASE)
_MAIL_WORDS = re.compile(r"\b(?:e-?mail|mail address|e-?posta|mail adres)", re.IGNORECASE)
# A short answer right after an e-mail was mentioned, holding a word that ends in a domain (a misheard country code
# after it: "tullyatexample.co.ok"), is the address with its local part misheard as words ("It's emerywire city to
# get memple.com." for "m-r-e-y-e-s-eight-eight at example dot com"): the domain word and up to four words before it
# in its sentence.
_ANSWER_MAX_WORDS = 12
_DOMAIN_WORD = re.compile(
    r"(?:[^\W_]+(?:['’][^\W_]+)?[ ,]+){0,4}[^\W_]+(?:[._-][^\W_]+)*\." + _TLDS + r"(?:\.[a-z]{2})?\b", re.IGNORECASE
)
# "the last four of my social are 4 3 2 1" / "son dört hanesi": the last four digits of an ID number.
# (The last four of a phone or card number are how callers verify themselves: not masked.)
_LAST_FOUR_CONTEXT = re.compile(
    r"(social|ssn|security number|national insurance|kimlik|tc no|t\.c\.|national id|id number)"
    r"(?:(?!phone|card|mobile|telefon)[^.?!]){0,50}$",
    re.IGNORECASE,
)
# The other side asked for the last four of an ID number ("your date of birth and the last four of your
# Social?", "TC kimlik numaranızın son dört hanesi"): four digits in the answer are those (not a phone's).
_ASKS_LAST_FOUR = re.compile(
    r"\b(?:last|son) (?:four|4|dort)\b(?:(?!phone|card|mobile|telefon|kart)[^?]){0,60}?"
    r"\b(?:socials?|ssn|security|national insurance|kimlik|tc|national id|id number)\b"
    r"|\b(?:social|ssn|security number|national insurance|kimlik|tc)\b(?:(?!phone|card|mobile|telefon|kart)[^?])"
    r"{0,60}?\b(?:last|son) (?:four|4|dort)\b"
)
# A year said after a date ("February second, 1966", "October twelfth, nineteen ninety", "born in 1978").
_DATE_BEFORE_YEAR = re.compile(
    r"(?:january|february|march|april|may|june|july|august|september|october|november|december|ocak|subat|"
    r"mart|nisan|mayis|haziran|temmuz|agustos|eylul|ekim|kasim|aralik|\d{1,2}(?:st|nd|rd|th)?|first|second|"
    r"third|fifth|eighth|ninth|twelfth|\w+th|\w+ieth|born in|in)[\s,.]*$"
)
_ID_CONTEXT = re.compile(r"\b(social|ssn|security number|national insurance|kimlik|tc|t\.c\.|id number)"
                         r"[^.?!]{0,60}$", re.IGNORECASE)


def _last_sentences(text: str, count: int) -> str:
    """The last ``count`` sentences of ``text`` joined by spaces, their end marks dropped (so a pattern that
    stops at a sentence end reads across them)."""
    return " ".join(part.strip(" .?!") for part in re.split(r"(?<=[.?!])\s+", text)[-count:])


_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b", re.IGNORECASE)
# "TR 33 0006 ...": a space after the country code only with capitals (so "is 41 11 ..." is no IBAN).
_IBAN_SPACED = re.compile(r"\b[A-Z]{2} \d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
# "IBAN ... TR 33 0006 1005 ..." as a transcriber writes it: after the word IBAN, a long run of letters and
# digits is masked even when a misheard character breaks its checksum.
_IBAN_SAID = re.compile(r"\biban\b\W{0,3}(?:\w+\W+){0,4}?([A-Z]{2}[ -]?\d{2}(?:[ -]?[A-Z0-9]){10,30}(?<=\d))\b",
                        re.IGNORECASE)
# A number said after a country code's two capitals ("TR otuz uc, sifir sifir sifir alti, ..."): an IBAN.
# ("TR", or spelled "T R"; in capitals unless the number is as long as a Turkish or German IBAN: "tr otuz uc...")
_IBAN_COUNTRY_BEFORE = re.compile(r"\b[A-Z] ?[A-Z][\s,]*$", re.IGNORECASE)
# A country code, its two check digits (as digits or words) and a bank's four capitals before a long number
# ("GB twenty nine NWBK six zero one six ..."): a UK-style IBAN said aloud.
_IBAN_BANK_CODE_BEFORE = re.compile(r"\b[A-Z]{2}[\s,]+(?:\d{2}|[a-z]+(?:[\s-][a-z]+)?)[\s,]+[A-Z]{4}[\s,]*$")
# A National Insurance number spelled out ("J K, one two, three four, five six, D"): letters around six digits.
# (Whisper joins what it hears spelled with hyphens: "J -D -4612 -83 -C", "JT -46128 -3C".)
# Any two letters: six digits with a letter A-D after them are strict enough, and a transcriber mishears the
# letters ("J T" heard "J -D").
_NINO_LETTERS_BEFORE = re.compile(r"\b[A-Z][\s,.-]+[A-Z][\s,.-]*$", re.IGNORECASE)
_NINO_LETTER_AFTER = re.compile(r"^[\s,.-]*[A-D]\b", re.IGNORECASE)
# (Any two letters: "QQ 12 34 56 C", the format's own example, is what people write in scripts and forms.)
_NINO = re.compile(r"\b[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b", re.IGNORECASE)
# The same two letters glued and in capitals before six digits said as words ("QQ one two three four five six C").
_NINO_GLUED_LETTERS_BEFORE = re.compile(r"\b[A-Z]{2}[\s,.-]*$")
# (A card's brand names it too: "It's the company Visa. Four one one one, one one one one-".)
_CARD_CONTEXT = re.compile(r"\b(?:card|kart|visa|mastercard|amex)\w*(?:\s+\w+){0,3}[\s,:.]*$", re.IGNORECASE)
# The turn before asks for a phone number ("what's the best number", "a number to reach you on", "telefon
# numaranızı alabilir miyim", "size hangi numaradan ulaşabiliriz"). Transcribers drop digits of a number spelled
# digit by digit (Whisper wrote "three oh five, five five five, oh one two one" as "3 .5, 5 .5, 0 .1 .2 .1"),
# leaving too few for a phone's shape: the ask tells what the digits are. (Matched on folded text.)
_ASKS_PHONE = re.compile(
    r"\b(?:phone|telephone|mobile|cell|cellphone|contact|callback|call-back|daytime)\s+(?:phone\s+)?(?:number|no)\b"
    r"|\bbest\s+(?:\w+\s+)?number\b"
    r"|\bnumbers?(?:\s+\w+){0,4}?\s+(?:reach|call|ring|contact|text)\s+you\b"
    r"|\b(?:telefon|cep|gsm|iletisim)\w*\s+(?:\w+\s+)?numara"
    r"|\btelefonunuz\w*\s+(?:alabilir|alayim|ogrenebilir|verir|nedir)"
    r"|\bnumaranizi\s+(?:alabilir|alayim|alalim|ogrenebilir|verir|rica)"
    r"|\bhangi\s+numara\w*\s+(?:\w+\s+)?(?:ulas|ara|don)"
    r"|\bulas\w*\s+(?:bir\s+)?numara"
)
# Numbers that are no PII in this product (an order, a policy, a postcode): a turn that asks for one of them, or
# a sentence that names one around the digits, makes a short run no phone number.
_REFERENCE_WORDS = (r"(?:order|booking|reservation|account|policy|reference|ref|claim|tracking|card|case|ticket|"
                    r"confirmation|invoice|member|customer|serial|flight|room|flat|house|pin|id|kimlik|siparis|"
                    r"rezervasyon|hesap|police|referans|hasar|talep|dosya|takip|kargo|kart|fatura|musteri|abone|"
                    r"basvuru|uyelik|kayit)")
_ASKS_REFERENCE = re.compile(r"\b" + _REFERENCE_WORDS + r"\w*(?:\s+\w+){0,2}?\s+(?:number|no|numara\w*)\b"
                             r"|\bpost\s?codes?\b|\bzip\b|\bposta\s+kod")
_NAMES_REFERENCE = re.compile(r"\b" + _REFERENCE_WORDS + r"\w*|\bpost\s?codes?\b|\bzip\b|\bposta\s+kod")
# A business's own numbers named in the sentence ("Vergi numarası ... dört altı yedi iki...", "our VAT number").
_BUSINESS_NUMBER = re.compile(r"\b(?:vergi (?:kimlik )?(?:numara|no)\w*|vkn|tax (?:id|number)|vat (?:number|no|reg)\w*|"
                              r"ein|company (?:registration )?number|registration number|mersis\w*|ticaret sicil\w*)\b")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_CARD_CODE = re.compile(
    r"\b(?:cvv|cvc|security code|güvenlik kodu|guvenlik kodu)\D{0,12}(\d{3,4})\b", re.IGNORECASE
)


def luhn_valid(digits: str) -> bool:
    if not digits.isdigit() or len(digits) < 12:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    compact = re.sub(r"[\s-]+", "", iban).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    return int(numeric) % 97 == 1


def tckn_valid(digits: str) -> bool:
    """Turkish national ID (T.C. Kimlik No): 11 digits, no leading zero, two check digits."""
    if not re.fullmatch(r"[1-9]\d{10}", digits):
        return False
    d = [int(c) for c in digits]
    tenth = ((d[0] + d[2] + d[4] + d[6] + d[8]) * 7 - (d[1] + d[3] + d[5] + d[7])) % 10
    return tenth == d[9] and sum(d[:10]) % 10 == d[10]


@dataclass(frozen=True)
class Found:
    kind: str
    start: int
    end: int
    checksum_valid: bool | None = None


_TURKISH_TENS = frozenset(["yirmi", "otuz", "kırk", "kirk", "elli", "altmış", "altmis", "yetmiş", "yetmis", "seksen",
                           "doksan"])


class _Scanner:
    """Reads spoken and written numbers out of one text, token by token."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = list(_TOKEN.finditer(text))
        self.words = [t.group().lower() for t in self.tokens]
        self.n = len(self.tokens)

    def gap(self, k: int) -> str:
        return self.text[self.tokens[k - 1].end() : self.tokens[k].start()]

    def joined(self, k: int) -> bool:
        """Token ``k`` may continue the number of token ``k - 1`` (only spaces, dashes, dots, commas between)."""
        return 0 < k < self.n and _JOINER.match(self.gap(k)) is not None

    def tight(self, k: int) -> bool:
        """Token ``k`` is part of the same spoken number as ``k - 1`` ("seventy-seven", "five hundred")."""
        return 0 < k < self.n and re.fullmatch(r"[ \-]+", self.gap(k)) is not None

    def digit_at(self, k: int) -> str | None:
        """A single digit at ``k`` (a digit word, or one written digit)."""
        if k >= self.n:
            return None
        word = self.words[k]
        return _DIGIT_WORDS.get(word) or (word if len(word) == 1 and word.isdigit() else None)

    def numeric(self, k: int) -> bool:
        if k >= self.n:
            return False
        word = self.words[k].lstrip("+")
        return (word.isdigit() or word in _DIGIT_WORDS or word in _TEENS or word in _TENS
                or word in _REPEAT_WORDS or word in _HUNDRED_WORDS)

    def below_hundred(self, k: int) -> tuple[str, int] | None:
        """A two-digit number word at ``k``: "seventeen", "seventy seven", "otuz iki", "on yedi"."""
        if k >= self.n:
            return None
        word = self.words[k]
        if word in _TEENS:
            return _TEENS[word], k + 1
        if word in _TENS:
            unit = self.words[k + 1] if k + 1 < self.n and self.tight(k + 1) else ""
            if unit in _DIGIT_WORDS and _DIGIT_WORDS[unit] != "0":
                return _TENS[word] + _DIGIT_WORDS[unit], k + 2
            return _TENS[word] + "0", k + 1
        if word == "on" and k + 1 < self.n and self.tight(k + 1) and self.words[k + 1] in TURKISH_UNITS:
            return "1" + _DIGIT_WORDS[self.words[k + 1]], k + 2  # Turkish "on yedi" = 17
        if word == "on" and self.joined(k + 1) and (self.words[k + 1] in _TURKISH_TENS or (
                self.words[k + 1] in TURKISH_UNITS and not self.tight(k + 1))):
            return "10", k + 1  # an ID read in pairs: "On, yirmi dokuz, otuz sekiz..." = 10 29 38
        return None

    def hundreds_tail(self, k: int) -> tuple[str, int]:
        """What follows "hundred" / "yüz" at ``k``: two digits ("thirty two" -> "32", "and five" -> "05"), else
        "00" (a bare digit after it is the next digit of a phone number: "seven seven hundred, nine...")."""
        said_and = k < self.n and self.words[k] == "and" and self.tight(k) and self.numeric(k + 1)
        k += 1 if said_and else 0
        if k < self.n and self.tight(k):
            tail = self.below_hundred(k)
            if tail is not None:
                return tail[0].zfill(2), tail[1]
            if self.words[k] == "on" and self.words[k - 1] in ("yüz", "yuz"):
                return "10", k + 1  # Turkish "üç yüz on" = 310 (after "yüz", "on" is ten, not English "on")
            digit = self.digit_at(k)
            if said_and and digit is not None:
                return "0" + digit, k + 1
        return "00", k

    def piece(self, k: int, started: bool) -> tuple[str, int] | None:
        """One spoken or written piece of a number at token ``k``: (its digits, the next token)."""
        word = self.words[k]
        if word.lstrip("+").isdigit():
            plus = "+" if word.startswith("+") and not started else ""
            return plus + word.lstrip("+"), k + 1
        if word in _REPEAT_WORDS and self.tight(k + 1) and (digit := self.digit_at(k + 1)) is not None:
            return digit * _REPEAT_WORDS[word], k + 2
        if word in _HUNDRED_WORDS and word != "hundred":
            tail, after = self.hundreds_tail(k + 1)  # Turkish "yüz kırk yedi" = 147
            return "1" + tail, after
        if word in _HUNDRED_WORDS and started:
            return "00", k + 1  # "77 hundred"
        sub = self.below_hundred(k)
        if sub is not None:
            return sub
        if word in _DIGIT_WORDS and not started and k > 0 and self.words[k - 1] in {"last", "first", "son", "ilk"}:
            return None  # "last four, six one three zero": "four" counts the digits, it is not one
        if word in _DIGIT_WORDS:
            # "one"/"oh" open a number only when a digit follows ("one two three" but not "one thing").
            if not started and word in {"o", "oh", "one", "bir"} and not (self.joined(k + 1) and self.numeric(k + 1)):
                return None
            # "It's this one, 07700900358": a number word is not the first digit of a written number after a comma.
            if not started and k + 1 < self.n and not self.tight(k + 1) and len(self.words[k + 1]) >= 4 and (
                    self.words[k + 1].lstrip("+").isdigit()):
                return None
            digit = _DIGIT_WORDS[word]
            if self.tight(k + 1) and self.words[k + 1] in _HUNDRED_WORDS:
                tail, after = self.hundreds_tail(k + 2)  # "five hundred (and) thirty two", "beş yüz otuz iki"
                return digit + tail, after
            if self.tight(k + 1) and self.words[k + 1] in _THOUSAND_WORDS:
                return digit + "000", k + 2
            return digit, k + 1
        if started and self.joined(k + 1):
            before_repeat = self.words[k + 1] in _REPEAT_WORDS and self.digit_at(k + 2) is not None
            if word in _HOMOPHONES and (self.digit_at(k + 1) is not None or before_repeat):
                return _HOMOPHONES[word], k + 1  # "6 to 1, 9"
            if word in _OH_BEFORE_REPEAT and before_repeat:
                return _OH_BEFORE_REPEAT[word], k + 1
        return None


def _digit_runs(text: str, min_digits: int = 7) -> list[tuple[int, int, str]]:
    """(start, end, digits) for every run of digits/number words in the text."""
    scan = _Scanner(text)
    runs: list[tuple[int, int, str]] = []
    i = 0
    while i < scan.n:
        start = end = None
        digits = ""
        j = i
        while j < scan.n:
            if j > i and not scan.joined(j):
                break
            got = scan.piece(j, bool(digits))
            if got is None:
                break
            part, after = got
            digits += part
            start = scan.tokens[j].start() if start is None else start
            end = scan.tokens[after - 1].end()
            j = after
        if start is not None and end is not None and len(digits.lstrip("+")) >= min_digits:
            runs.append((start, end, digits))
            i = j
        else:
            i = max(j, i + 1)
    return runs


def _classify_run(digits: str) -> tuple[str, bool | None] | None:
    plus = digits.startswith("+")
    bare = digits.lstrip("+")
    n = len(bare)
    if not plus and 13 <= n <= 19 and bare[0] in "23456":
        return "card_number", luhn_valid(bare)
    if not plus and n == 11 and bare[0] != "0" and tckn_valid(bare):
        return "national_id", True
    if plus and 10 <= n <= 15:
        return "phone", None
    if bare.startswith("00") and 12 <= n <= 15:
        return "phone", None
    if bare.startswith("0") and 10 <= n <= 12:
        return "phone", None
    if n in (10, 11) and bare[0] in "123456789":
        return "phone", None
    if n == 11:
        return "national_id", False
    if 12 <= n <= 19:
        return "card_number", False
    return None


# One comma-separated piece of an e-mail's local part as callers spell it before the "at": letters ("r a c h
# e l"), a separator word ("dot", "underscore"), words joined by one ("mo dot hara"), "that's m o dot h a r a",
# a spelling alphabet's "for sugar", number words ("nine one").
_SPELLED_PIECE = re.compile(
    r"(?:(?:that'?s|that is|so|yani)\s+)?(?:" + _SEP_WORD + r"\s+)?"
    r"(?:[^\W\d_](?:\s+[^\W\d_]|\s+(?:dot|underscore|dash|hyphen|nokta)\s+[^\W\d_])*"
    r"|[^\W\d_]+(?:\s+(?:dot|underscore|dash|hyphen|nokta)\s+[^\W\d_]+)+"
    r"|" + _SEP_WORD +
    r"|(?:for|as in)\s+[^\W\d_]+"
    r"|[^\W\d_]+"  # a name, when the piece after it spells it (checked in _spelled_start)
    r"|" + _EN_NUMBER_WORD + r"(?:[\s-]+(?:one|two|three|four|five|six|seven|eight|nine))*)",
    re.IGNORECASE,
)
_SPELLED_PIECES_MAX = 8


def _spelled_start(text: str, start: int) -> int:
    """Where an e-mail address really starts when the caller spelled its local part in comma-separated pieces
    ("r, rachel, r a c h e l, dot ng, n g, at fastmail dot com"): back over the pieces before ``start`` that
    are spelling (a name counts when the next piece spells it letter by letter)."""
    head = text[:start]
    cut = max(head.rfind(","), head.rfind(";"))
    # The match may begin inside a spelled piece ("that's m o dot h a [r a, at ...]"): take the whole piece.
    piece = head[cut + 1:].strip()
    if cut >= 0 and len(piece.split()) > 1 and _SPELLED_PIECE.fullmatch(piece):
        start, head = _piece_start(head, cut), head[:cut]
    following = _letters(text[start:].split(",")[0])
    for _ in range(_SPELLED_PIECES_MAX):
        head = head.rstrip(" ,;")
        cut = max(head.rfind(","), head.rfind(";"))
        piece = head[cut + 1:].strip()
        if not piece or not _spelling_piece(piece, following):
            break
        start, following = _piece_start(head, cut), _letters(piece)
        if cut < 0:
            break
        head = head[:cut]
    return start


def _piece_start(head: str, cut: int) -> int:
    """Where the piece after the separator at ``cut`` starts (its first non-space character)."""
    piece = head[cut + 1:]
    return cut + 1 + len(piece) - len(piece.lstrip())


_SPELLING_WORDS = frozenset(["dot", "underscore", "dash", "hyphen", "nokta", "tire"])


def _letters(piece: str) -> str:
    return "".join(w for w in re.findall(r"[^\W\d_]+", piece.lower()) if w not in _SPELLING_WORDS)


def _spelling_piece(piece: str, following: str) -> bool:
    """A piece of a spelled local part; a bare name only when ``following`` (the next piece's letters) spells it."""
    if re.search(r"[.!?]", piece) or not _SPELLED_PIECE.fullmatch(piece):
        return False
    words = piece.lower().split()
    if len(words) == 1 and len(words[0]) > 1 and words[0] not in _SPELLING_WORDS and not re.fullmatch(
            _EN_NUMBER_WORD + r"(?:-\w+)?", words[0]):
        return bool(following) and following.startswith(words[0])
    return True


def _after_opener(text: str, start: int) -> int:
    """Where an answer's address starts: past a leading "it's", "sure", "yes", "yeah" or "evet" the span took in."""
    opener = re.match(r"(?:(?:it's|it is|sure|yes|yeah|yep|evet|tabii)[ ,]+)+", text[start:], re.IGNORECASE)
    return start + (opener.end() if opener else 0)


def _local_before_at(text: str, start: int) -> int:
    """Where an address found by its dotted domain starts: at the word before a spoken "at" right before it
    ("it's below at crumbandcrust.example.co.uk": the local part is "below")."""
    before = max(0, start - 40)
    local = re.search(r"(?<![\w@.])[^\W_]+\s+(?:at|et)\s+$", text[before:start], re.IGNORECASE)
    return before + local.start() if local else start


def _local_and_domain(token: str) -> bool:
    """A token that reads as name + domain: it ends in a domain and keeps a dotted, hyphenated or underscored
    name before it ("eric.inquist.com", "dot-way-say.com"; not "foamway.com", "www.foamway.co.uk", "co.uk")."""
    tld = _TLD_END.search(token)
    if tld is None or tld.start() == 0:
        return False
    name = token[: tld.start()]
    return (re.search(r"[._-]", name) is not None and re.search(r"[^\W\d_]", name) is not None
            and not name.lower().startswith("www."))


def find_pii(text: str, kinds: Iterable[str] = ALL_KINDS, context: str = "") -> list[Found]:
    """PII spans in ``text`` (character offsets), non-overlapping, in text order. ``context``: the turn
    before, for answers to "the last four of your social?", "a number to call you on?" or "your e-mail?"."""
    wanted = set(kinds)
    found: list[Found] = []
    if "email" in wanted:
        found += [Found("email", m.start(), m.end()) for m in _EMAIL.finditer(text)]
        found += [Found("email", _spelled_start(text, _after_full_stop(text, m.start(), m.end())), m.end())
                  for m in _SPOKEN_EMAIL.finditer(text)]
        found += [Found("email", m.start(), m.end()) for m in _GLUED_EMAIL.finditer(text)]
        mail_asked = _MAIL_WORDS.search(context) is not None
        if mail_asked or _MAIL_WORDS.search(text):
            found += [Found("email", _local_before_at(text, m.start()), m.end()) for m in _ADDRESS_LIKE.finditer(text)
                      if _local_and_domain(m.group())]
        # (only when no rule above found the address: it is the fallback for the most garbled answers)
        if mail_asked and len(text.split()) <= _ANSWER_MAX_WORDS and not found:
            found += [Found("email", _after_opener(text, m.start()), m.end()) for m in _DOMAIN_WORD.finditer(text)
                      if not m.group().lower().split()[-1].startswith("www.")]
    if "iban" in wanted:
        for m in [*_IBAN.finditer(text), *_IBAN_SPACED.finditer(text)]:
            end = _valid_iban_end(text, m.start(), m.end())
            if end is not None:
                found.append(Found("iban", m.start(), end, True))
        for m in _IBAN_SAID.finditer(text):
            if not any(f.kind == "iban" and f.start <= m.start(1) < f.end for f in found):
                found.append(Found("iban", m.start(1), m.end(1), False))
    if "national_id" in wanted:
        found += [Found("national_id", m.start(), m.end()) for m in _NINO.finditer(text)]
        found += [Found("national_id", m.start(), m.end()) for m in _SSN.finditer(text)]
    if "card_number" in wanted:
        found += [Found("card_number", m.start(1), m.end(1)) for m in _CARD_CODE.finditer(text)]
    folded_context = _fold(context)
    asks_phone = _ASKS_PHONE.search(folded_context) is not None and not _ASKS_REFERENCE.search(folded_context)
    # "TC kimlik numaranızı?", "...his Social Security number. Do you have it?": an ID asked in the turn before's
    # last two sentences.
    context_asks_id = _ID_CONTEXT.search(_last_sentences(context.rstrip(" ?.:"), 2) + " ") is not None
    runs = _digit_runs(text, min_digits=6)  # numbers of seven digits and more; six for a spelled NI number
    # The answer's first number is the ID asked for ("I have it, hold on... it's four one two, seven seven, ...").
    first_number = min((run[0] for run in runs), default=-1)
    if any(ch.isdigit() for ch in text[:first_number]):
        first_number = -1  # a shorter number came first
    for start, end, digits in [run for run in runs if len(run[2].lstrip("+")) >= 7]:
        country = _IBAN_COUNTRY_BEFORE.search(text[max(0, start - 6) : start])
        if country is not None and not (country.group(0).isupper() or len(digits) >= 18):
            country = None
        bank = _IBAN_BANK_CODE_BEFORE.search(text[max(0, start - 40) : start])
        if bank is not None and len(digits) >= 10 and "iban" in wanted:
            # "GB twenty nine NWBK six zero one six ...": country, check digits, the bank's letters, the number
            found.append(Found("iban", start - len(text[max(0, start - 40) : start]) + bank.start(), end, None))
            continue
        # ("OK 4111 1111 1111 1111": two capitals before a valid card number are no country code)
        if country is not None and len(digits) >= 12 and "iban" in wanted and not (
                len(digits) <= 19 and luhn_valid(digits)):
            iban_start = start - len(text[max(0, start - 6) : start]) + country.start()
            code = re.sub(r"[\s,]", "", country.group(0)).upper()
            found.append(Found("iban", iban_start, end, iban_valid(code + digits)))
            continue
        kind = _classify_run(digits)
        if kind is not None and kind[1] is not True and _BUSINESS_NUMBER.search(
                _fold(re.split(r"[.!?]\s", text[max(0, start - 60) : start])[-1])):
            continue  # a company's tax or registration number, named just before in the sentence, is no person's
        if kind is None and len(digits) >= 8 and _CARD_CONTEXT.search(text[max(0, start - 40) : start]):
            # a card number begun and broken off ("kart numarası kırk üç, yirmi bir, on beş, altmış yedi...
            # pardon, baştan"): eight digits of a card are still its digits
            kind = ("card_number", None)
        if kind is None and asks_phone and len(digits.lstrip("+")) <= 9 and not _NAMES_REFERENCE.search(
                _fold(_sentence_around(text, start, end))):
            # an answer to "what's the best number?" that the transcriber dropped digits of
            kind = ("phone", None)
        asks_id = context_asks_id and start == first_number
        if len(digits) in (9, 11) and (asks_id or _ID_CONTEXT.search(text[max(0, start - 80) : start])):
            # a social security number said without its dashes; a Turkish ID number whose check digits a
            # transcriber (or the caller) got wrong; either as the answer to the turn before's "TC kimlik
            # numaranızı alabilir miyim?"
            kind = ("national_id", None)
        if kind is not None and kind[0] in wanted:
            found.append(Found(kind[0], start, end, kind[1]))
    asked_for = "phone" if asks_phone else "national_id" if context_asks_id else None
    if asked_for is not None and asked_for in wanted and not found and len(text.split()) <= _ASKED_ANSWER_MAX_WORDS:
        folded = _fold(text)
        heard = None if _PART_OR_DATE.search(folded_context + " " + folded) or _NAMES_REFERENCE.search(folded) \
            else _misheard_number(text)
        if heard is not None:
            found.append(Found(asked_for, *heard, None))
    if "national_id" in wanted:
        for start, end, digits in runs:
            letters = (_NINO_LETTERS_BEFORE.search(text[max(0, start - 8) : start])
                       or _NINO_GLUED_LETTERS_BEFORE.search(text[max(0, start - 8) : start]))
            after = _NINO_LETTER_AFTER.search(text[end : end + 6])
            if len(digits) == 6 and letters is not None and after is not None:
                found.append(Found("national_id", start - len(text[max(0, start - 8) : start]) + letters.start(),
                                   end + after.end(), None))
        asked = _ASKS_LAST_FOUR.search(folded_context) is not None
        # An answer to "the last four of your social?" that the transcriber left three of ("-6 -1 -8", its first
        # digit cut into the turn before) is still the ID's digits.
        short_answer = asked and len(text.split()) <= 6
        for start, end, digits in _sentence_runs(_without_years(text), min_digits=3 if short_answer else 4):
            before = text[max(0, start - 80) : start]
            if len(digits) == 3 and short_answer:
                found.append(Found("national_id", start, end, None))
                continue
            if len(digits) != 4 or (digits[:2] in {"19", "20"} and _DATE_BEFORE_YEAR.search(_fold(before[-30:]))):
                continue
            if asked or _LAST_FOUR_CONTEXT.search(before) or (
                    len(before) < 30 and _LAST_FOUR_CONTEXT.search(context.rstrip(" ?.") + " " + before)):
                found.append(Found("national_id", start, end, None))
    return _without_overlaps(found)


# A short answer to "what's the best number?" or "your national insurance number?" whose digits the transcriber
# partly heard as other words ("It's so severed severed double-o, I double-o, seeks three-four." for "oh seven seven
# double oh, nine double oh, six three four"; "Kyokyo World 2, 3-4, 5-6, C" for "Q Q one two, three four, five six,
# C"): number pieces at most two words apart, five digits or more together, are the number asked for, with up to two
# words before the first piece (past the answer's opener).
_ASKED_ANSWER_MAX_WORDS = 20
# ...but not the last digits of a number asked to verify the caller, nor a date of birth said beside it.
# ("may" is no month here: "May I take a number to reach you on?")
_PART_OR_DATE = re.compile(r"\b(?:last|son|first|ilk)\s+(?:few|two|three|four|2|3|4|iki|uc|dort)\b|\bdigits\b|\bhane"
                           r"|\b(?:born|birth|dogum|january|february|march|april|june|july|august|september|"
                           r"october|november|december|ocak|subat|mart|nisan|mayis|haziran|temmuz|agustos|eylul|ekim|"
                           r"kasim|aralik)\b")
_PIECES_GAP_WORDS = 2
_PIECES_MIN_DIGITS = 5


def _misheard_number(text: str) -> tuple[int, int] | None:
    """The (start, end) of the number pieces of a garbled answer to a number ask, if they hold enough digits."""
    groups: list[list[int]] = []  # [start, end, digits] of pieces close together
    for start, end, digits in _digit_runs(text, min_digits=1):
        gap = text[groups[-1][1] : start] if groups else ""
        if groups and len(gap.split()) <= _PIECES_GAP_WORDS and not re.search(r"[.!?](?:\s|$)", gap):
            groups[-1][1:] = [end, groups[-1][2] + len(digits.lstrip("+"))]
        else:
            groups.append([start, end, len(digits.lstrip("+"))])
    start, end, _ = next((group for group in groups if group[2] >= _PIECES_MIN_DIGITS), (-1, -1, 0))
    return None if start < 0 else (_words_before(text, start, _PIECES_GAP_WORDS), end)


def _words_before(text: str, at: int, count: int) -> int:
    """Where the ``count`` words before ``at`` start (digits misheard as words), within its sentence and past the
    answer's opener ("it's", "yes")."""
    sentence = _after_opener(text, _sentence_start(text, at))
    words = list(re.finditer(r"\S+", text[sentence:at]))
    return sentence + words[-count].start() if len(words) >= count else sentence


def _sentence_runs(text: str, min_digits: int) -> list[tuple[int, int, str]]:
    """Digit runs that stop at a sentence's end: "Dokuz sıfır bir iki. On dört şubat seksen yedi." is the last
    four of an ID, then a date of birth, not one six-digit number."""
    runs: list[tuple[int, int, str]] = []
    at = 0
    for sentence in re.split(r"(?<=[.!?])\s+(?=[A-ZÇĞİÖŞÜ])", text):
        at = text.index(sentence, at)
        runs += [(at + start, at + end, digits) for start, end, digits in _digit_runs(sentence, min_digits)]
        at += len(sentence)
    return runs


def _after_full_stop(text: str, start: int, end: int) -> int:
    """Where a spoken address starts when its match took the sentence before it along: a full stop and a space
    end a sentence ("... elli sekiz. info at parlaktemizlik nokta com"); a dictated dot is "dot" or ".x"."""
    stops = list(re.finditer(r"(?<=\w\w)[.!?]\s+", text[start:end]))  # "J. smith at ...": an initial, not an end
    return start + stops[-1].end() if stops else start


def _sentence_start(text: str, at: int) -> int:
    """Where the sentence holding ``text[at]`` starts: after the last full stop, question or exclamation mark and
    space before it."""
    stops = list(re.finditer(r"[.!?]\s", text[:at]))
    return stops[-1].end() if stops else 0


def _sentence_around(text: str, start: int, end: int) -> str:
    """The sentence that holds ``text[start:end]`` (dots inside the span, as Whisper writes digits, do not end it)."""
    stop = re.search(r"[.!?](?:\s|$)", text[end:])
    return text[_sentence_start(text, start) : end + stop.start() if stop else len(text)]


def _without_years(text: str) -> str:
    """The text with written years after a date blanked out (same length): "February second, 1966. Seven
    seven zero two." must not join the year and the last four into one number."""
    def blank(m: re.Match[str]) -> str:
        dated = _DATE_BEFORE_YEAR.search(_fold(text[max(0, m.start() - 30) : m.start()]))
        return "y" * len(m.group()) if dated else m.group()

    return re.sub(r"\b(?:19|20)\d{2}\b", blank, text)


def _valid_iban_end(text: str, start: int, end: int) -> int | None:
    """End of the longest valid IBAN starting at ``start`` (the pattern may run into following words)."""
    while end - start >= 15:
        if iban_valid(text[start:end]):
            return end
        end -= 1
        while end > start and text[end - 1] == " ":
            end -= 1
    return None


def _without_overlaps(found: list[Found]) -> list[Found]:
    # Longer spans win: an IBAN contains digit runs that would otherwise look like a phone number.
    kept: list[Found] = []
    for item in sorted(found, key=lambda f: (-(f.end - f.start), f.start)):
        if all(item.end <= k.start or item.start >= k.end for k in kept):
            kept.append(item)
    return sorted(kept, key=lambda f: f.start)


def redact_text(text: str, found: Sequence[Found]) -> str:
    out = []
    cursor = 0
    for item in found:
        out.append(text[cursor : item.start])
        out.append(f"[{item.kind.upper()}]")
        cursor = item.end
    out.append(text[cursor:])
    return "".join(out)


def _word_offsets(text: str, words: Sequence[Word]) -> list[tuple[int, int] | None]:
    """Character span of each word inside the turn text (None when a word cannot be located)."""
    offsets: list[tuple[int, int] | None] = []
    cursor = 0
    for word in words:
        token = word.text.strip()
        pos = text.find(token, cursor) if token else -1
        if pos < 0:
            offsets.append(None)
            continue
        offsets.append((pos, pos + len(token)))
        cursor = pos + len(token)
    return offsets


def _digits_only(text: str) -> str | None:
    """The digits of a turn that holds nothing but (part of) a number ("312. 555.", "oh one four eight")."""
    runs = _digit_runs(text, min_digits=1)
    if not runs:
        return None
    covered = "".join(text[a:b] for a, b, _ in runs)
    rest = re.sub(r"[\s\-.,()/]+", "", text)
    if len(re.sub(r"[\s\-.,()/]+", "", covered)) < len(rest):
        return None
    return "".join(d for _, _, d in runs)


_DOMAIN = re.compile(r"(?:@|\s(?:at|et)\s)(.+?)(?:\s*(?:\.|\bdot\b|\bnokta\b)\s*[a-z]{2,4}\b)+\s*$", re.IGNORECASE)


def _own_address(address: str, company_names: Sequence[str]) -> bool:
    """The address's domain spells (part of) the company's name: "harborline mutual" / "harborlinemutual" for
    Harborline Mutual Insurance."""
    domain = _DOMAIN.search(address)
    letters = re.sub(r"[^a-z0-9]", "", _fold(domain.group(1)).lower()) if domain else ""
    if len(letters) < 4:
        return False
    return any(letters in re.sub(r"[^a-z0-9]", "", _fold(name).lower()) for name in company_names if name)


_NUMBER_KINDS = ("card_number", "iban", "national_id", "phone")


def _read_back(text: str, found: Sequence[Found], previous_numbers: Sequence[tuple[str, str]]) -> list[Found]:
    """A number said right after one was masked (the agent reading it back, the caller repeating it) is that
    number again, even when the transcriber dropped digits ("07700900358" read back as "077 -90 -358"):
    a run of six or more digits there that nothing else claimed and that starts as the masked one did (an
    amount or a year said next does not) takes its kind."""
    out = []
    for start, end, digits in _digit_runs(text, min_digits=6):
        if any(f.start < end and start < f.end for f in found):
            continue
        head = digits.lstrip("+")[:3]
        same = [kind for kind, said in previous_numbers if len(said) >= 6 and said.lstrip("+")[:3] == head]
        if same:
            out.append(Found(same[-1], start, end, None))
    return out


def split_numbers(turns: Sequence[Turn], kinds: Iterable[str]) -> dict[int, Found]:
    """A number the transcriber cut into several turns of the same speaker ("312. 555." / "0148."): the
    pieces, joined, are classified as one number; each piece is masked as that kind (keyed by turn)."""
    wanted = set(kinds)
    pieces: dict[int, Found] = {}
    i = 0
    while i < len(turns):
        group: list[tuple[int, str]] = []
        j = i
        while j < len(turns) and turns[j].role == turns[i].role and (digits := _digits_only(turns[j].text)):
            group.append((j, digits))
            j += 1
        # The best stretch of the pieces: a valid checksum beats a phone shape beats a failed checksum, then
        # the longer ("6O618." "312. 555." "0148." is a ZIP code and a phone number, not one card).
        best: tuple[tuple[int, int, int], int, int, tuple[str, bool | None]] | None = None
        for a in range(len(group)):
            for b in range(a + 2, len(group) + 1):
                kind = _classify_run("".join(d for _, d in group[a:b]))
                if kind is None or kind[0] not in wanted:
                    continue
                rank = ({True: 2, None: 1, False: 0}[kind[1]], b - a, b)  # ties: the later (said last)
                if best is None or rank > best[0]:
                    best = (rank, a, b, kind)
        if best is not None:
            _, a, b, kind = best
            for k, _ in group[a:b]:
                pieces[k] = Found(kind[0], 0, len(turns[k].text.rstrip()), kind[1])
        i = max(j, i + 1)
    return pieces


def redact_turns(turns: Sequence[Turn], kinds: Iterable[str] = ALL_KINDS,
                 company_names: Sequence[str] = ()) -> tuple[list[Turn], list[PiiSpan]]:
    """Turns with PII replaced by ``[KIND]`` tags (text and words), and where each piece was. An e-mail address
    at the company's own domain (``company_names``: "claims at waggle whisker dot co dot uk" for Waggle &
    Whisker Pet Cover) is where customers write to, no one's personal data: it stays."""
    kinds = tuple(kinds)
    redacted: list[Turn] = []
    spans: list[PiiSpan] = []
    previous = ""
    previous_numbers: list[tuple[str, str]] = []
    split = split_numbers(turns, kinds)
    for n, turn in enumerate(turns):
        found = find_pii(turn.text, kinds, context=previous) or ([split[n]] if n in split else [])
        found = [f for f in found if not (f.kind == "email" and _own_address(turn.text[f.start:f.end], company_names))]
        found = _without_overlaps([*found, *_read_back(turn.text, found, previous_numbers)])
        previous = turn.text
        previous_numbers = [(f.kind, "".join(d for _, _, d in _digit_runs(turn.text[f.start:f.end], min_digits=1)))
                            for f in found if f.kind in _NUMBER_KINDS]
        if not found:
            redacted.append(turn)
            continue
        offsets = _word_offsets(turn.text, turn.words)
        new_words = list(turn.words)
        for item in found:
            hit = [i for i, span in enumerate(offsets) if span and span[0] < item.end and span[1] > item.start]
            if hit:
                start_s, end_s, approximate = turn.words[hit[0]].start, turn.words[hit[-1]].end, False
                for n, i in enumerate(hit):
                    new_words[i] = new_words[i].model_copy(update={"text": f" [{item.kind.upper()}]" if n == 0 else ""})
            else:
                # No word timings: place the span proportionally inside the turn.
                length = max(1, len(turn.text))
                duration = turn.end - turn.start
                start_s = turn.start + duration * item.start / length
                end_s = turn.start + duration * item.end / length
                approximate = True
            spans.append(
                PiiSpan(kind=item.kind, turn=turn.index, char_start=item.start, char_end=item.end,
                        start_s=round(start_s, 3), end_s=round(end_s, 3), approximate_time=approximate,
                        checksum_valid=item.checksum_valid)
            )
        new_words = [w for w in new_words if w.text != ""]
        redacted.append(turn.model_copy(update={"text": redact_text(turn.text, found), "words": new_words}))
    return redacted, spans
