"""Number words of the rubric's languages (English, Turkish), one table for every rule that reads them.

PII reads digits out of them ("oh seven seven" -> 077, "beş yüz otuz iki" -> 532) and callbacks read
quantities ("in twenty minutes", "yirmi dört saat"). Turkish words are listed with and without their
letters (``norm`` folds "dört" to "dort"), as a transcript may hold either.
"""

from __future__ import annotations

ENGLISH_UNITS: dict[str, int] = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
}  # fmt: skip
_TURKISH_UNITS: dict[str, int] = {
    "sıfır": 0, "sifir": 0, "bir": 1, "iki": 2, "üç": 3, "uc": 3, "dört": 4, "dort": 4, "beş": 5, "bes": 5,
    "altı": 6, "alti": 6, "yedi": 7, "sekiz": 8, "dokuz": 9,
}  # fmt: skip
UNITS: dict[str, int] = {**ENGLISH_UNITS, **_TURKISH_UNITS}
# Turkish 1-9: after "on" (ten) they make 11-19 ("on yedi").
TURKISH_UNITS = frozenset(word for word, value in _TURKISH_UNITS.items() if value)
# English only: Turkish "on" (ten) is also an English word, so each rule decides when it is a number.
TEENS: dict[str, int] = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
ENGLISH_TENS: dict[str, int] = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
}  # fmt: skip
_TURKISH_TENS: dict[str, int] = {
    "yirmi": 20, "otuz": 30, "kırk": 40, "kirk": 40, "elli": 50, "altmış": 60, "altmis": 60, "yetmiş": 70,
    "yetmis": 70, "seksen": 80, "doksan": 90,
}  # fmt: skip
TENS: dict[str, int] = {**ENGLISH_TENS, **_TURKISH_TENS}
