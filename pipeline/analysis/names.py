"""Was a name said? Fuzzy and phonetic matching that survives the transcriber.

Whisper splits, merges and misspells the names a call's metadata gives ("Northfield Broadband" heard as
"North Field broad band", "Priya" as "Pria", "Aoife" as "Eva"). A name is compared with every run of
words of about its length, spaces removed, by spelling similarity (difflib) and by a rough English /
Turkish sound key, and the best similarity (0..1) is returned. Company names are matched on their
distinctive words too ("Northfield" is enough; "Broadband", "Ltd" and "Services" are not).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from difflib import SequenceMatcher

from pipeline.analysis.text import fold

# Words that end or pad company names: hearing one of these alone does not name the company.
GENERIC_COMPANY_WORDS = frozenset(
    [
        "ltd", "limited", "plc", "inc", "llc", "co", "company", "group", "services", "service", "solutions",
        "home", "homes", "the", "and", "of", "uk", "us", "broadband", "internet", "telecom", "telecoms", "bank",
        "banking", "insurance", "insurers", "mutual", "finance", "financial", "energy", "heating", "cooling",
        "plumbing", "cleaning", "clean", "cleaners", "appliances", "appliance", "repairs", "repair",
        "electrical", "electric", "hvac", "air", "care", "direct", "online", "network", "networks", "fibre",
        "fiber", "mobile", "bathrooms", "kitchens", "hizmetleri", "hizmet", "sigorta", "bankasi", "banka",
        "teknik", "servis", "temizlik", "tesisat", "as", "a", "s", "sti", "ve"
    ]
)  # fmt: skip


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", fold(text))


def sound_key(word: str) -> str:
    """A rough phonetic key: similar-sounding spellings ("Priya"/"Pria", "Kate"/"Cate") get one key."""
    w = fold(word)
    w = re.sub(r"[^a-z]", "", w)
    if not w:
        return ""
    for a, b in (("ph", "f"), ("ck", "k"), ("gh", "g"), ("sch", "s"), ("sh", "s"), ("ch", "c"), ("th", "t"),
                 ("qu", "k"), ("q", "k"), ("x", "ks"), ("z", "s"), ("w", "v"), ("y", "i"), ("j", "c"),
                 ("dg", "c")):
        w = w.replace(a, b)
    w = re.sub(r"c(?=[eiy])", "s", w).replace("c", "k")
    head, tail = w[0], re.sub(r"[aeiouh]", "", w[1:])
    head = "a" if head in "aeiou" else head
    return re.sub(r"(.)\1+", r"\1", head + tail)


def similarity(a: str, b: str) -> float:
    """Spelling similarity of two strings without spaces, raised when they sound alike."""
    a, b = a.replace(" ", ""), b.replace(" ", "")
    if not a or not b:
        return 0.0
    ratio = SequenceMatcher(None, a, b).ratio()
    if len(a) >= 3 and len(b) >= 3 and sound_key(a) == sound_key(b):
        ratio = max(ratio, 0.9)
    return ratio


def best_match(name: str, text: str) -> float:
    """How well ``name`` is heard anywhere in ``text`` (0..1), allowing words split or merged."""
    target = words_of(name)
    heard = words_of(text)
    if not target or not heard:
        return 0.0
    joined = "".join(target)
    best = 0.0
    n = len(target)
    for size in {max(1, n - 1), n, n + 1, n + 2}:
        for i in range(0, max(1, len(heard) - size + 1)):
            window = "".join(heard[i : i + size])
            if abs(len(window) - len(joined)) > max(3, len(joined) // 2):
                continue
            best = max(best, similarity(joined, window))
            if best >= 0.999:
                return best
    return best


def name_forms(name: str) -> list[str]:
    """A company's name as agents shorten it: the full name ("&" said "and"), and the name without its
    trailing sector words ("J&R Plumbing and Heating" -> "J and R Plumbing", "J and R")."""
    words = words_of(name.replace("&", " and "))
    forms = [" ".join(words)]
    while len(words) > 1:
        words = words[:-1]
        distinctive = [w for w in words if w not in GENERIC_COMPANY_WORDS]
        if distinctive and len("".join(words)) >= 4 and words[-1] != "and":
            forms.append(" ".join(words))
    return forms


def company_heard(names: Iterable[str], text: str) -> float:
    """Best match of a company's full name, a shortened form of it, or one of its distinctive words (>= 4
    letters) in ``text``."""
    best = 0.0
    for name in names:
        for form in name_forms(name):
            best = max(best, best_match(form, text))
        for word in words_of(name):
            if len(word) >= 4 and word not in GENERIC_COMPANY_WORDS:
                best = max(best, best_match(word, text))
    return best


def person_heard(names: Sequence[str], text: str) -> float:
    best = 0.0
    for name in names:
        for word in words_of(name)[:1]:  # the first name, as agents say it
            best = max(best, best_match(word, text))
    return best
