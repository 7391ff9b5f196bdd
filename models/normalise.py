"""Normalisation for blind indexes (CipherSweet style): equal inputs typed differently map to one string.

These functions never validate and never raise on odd input; they only clean.
Validation lives in models/validation.py, which reuses the resident-ID helpers here.
"""

from __future__ import annotations

import operator
import re
import unicodedata

# GB 11643-1999 / ISO 7064 MOD 11-2: weight of each of the first 17 digits, and the
# check character for each remainder 0..10.
RESIDENT_ID_WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RESIDENT_ID_CHECK_CHARS = "10X98765432"

# Every character some keyboard, font or input method uses as the middle dot in
# transliterated names (e.g. 阿卜杜拉·买买提); all fold to U+00B7.
MIDDLE_DOT = "\u00b7"
_MIDDLE_DOT_VARIANTS = "\u00b7\u30fb\u2022\u2027\uff65\u2219\u22c5"
_MIDDLE_DOT_TABLE = {ord(c): MIDDLE_DOT for c in _MIDDLE_DOT_VARIANTS}

_ASCII_DIGITS = re.compile(r"[0-9]+")
_PHONE_SEPARATORS = re.compile(r"[\s\-()./]+")
_CN_MOBILE_WITH_PREFIX = re.compile(r"(?:\+86|0086|86)(1[0-9]{10})")
_WHITESPACE_RUN = re.compile(r"\s+")
_NAME_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
# A name made only of these is returned unchanged by normalise_name: every code point of
# CJK Extension A and the Unified Ideographs is an assigned letter (Lo) in Unicode 14 that
# NFKC, casefolding and the space rules leave alone, and U+00B7 is already the one middle dot.
_PLAIN_HAN_NAME = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\u00b7]+")


def _nfkc(raw: str) -> str:
    """Return `raw` in Unicode NFKC form (full-width letters and digits become ASCII)."""
    return unicodedata.normalize("NFKC", raw)


def _is_ascii_digits(text: str) -> bool:
    """Return True when `text` is non-empty and only ASCII 0-9 (str.isdigit also accepts other scripts)."""
    return _ASCII_DIGITS.fullmatch(text) is not None


_RESIDENT_ID_WEIGHT_SUM = sum(RESIDENT_ID_WEIGHTS)


def resident_id_check_char(body: str) -> str:
    """Return the GB 11643 check character for the first 17 digits of a resident ID."""
    if len(body) != 17 or not _is_ascii_digits(body):
        raise ValueError("the check character needs exactly 17 digits")
    # The bytes of ASCII digits are 48 + digit, so the weighted byte sum is the weighted digit
    # sum plus 48 times the sum of the weights.
    total = sum(map(operator.mul, body.encode("ascii"), RESIDENT_ID_WEIGHTS)) - 48 * _RESIDENT_ID_WEIGHT_SUM
    return RESIDENT_ID_CHECK_CHARS[total % 11]


def convert_legacy_resident_id(legacy: str) -> str:
    """Return the 18-digit form of a 15-digit (pre-1999) resident ID."""
    if len(legacy) != 15 or not _is_ascii_digits(legacy):
        raise ValueError("a legacy resident ID has exactly 15 digits")
    # Legacy IDs hold a 2-digit year; all were issued to people born in the 1900s.
    body = legacy[:6] + "19" + legacy[6:]
    return body + resident_id_check_char(body)


def clean_resident_id(raw: str) -> str:
    """Return `raw` folded to NFKC without whitespace or '-', and with a trailing x upper-cased."""
    if type(raw) is str and raw.isascii() and raw.isalnum():
        # Fast path (an ID already clean): ASCII is NFKC-stable, and letters and digits hold
        # no whitespace and no '-'.
        text = raw
    else:
        # str.split() with no argument splits on exactly the characters str.isspace() accepts.
        text = "".join(_nfkc(raw).split()).replace("-", "")
    if text.endswith("x"):
        text = text[:-1] + "X"
    return text


def normalise_resident_id(raw: str) -> str:
    """Return the cleaned resident ID, with an all-digit 15-digit legacy ID converted to 18 digits."""
    text = clean_resident_id(raw)
    if len(text) == 15 and _is_ascii_digits(text):
        # Indexing both forms to one value lets a search by either find the record.
        return convert_legacy_resident_id(text)
    return text


def strip_phone_separators(raw: str) -> str:
    """Return the phone number folded to NFKC without whitespace and the separators - ( ) . /."""
    if type(raw) is str and raw.isascii() and raw.isdigit():
        return raw  # Fast path: ASCII digits are NFKC-stable and hold no separator.
    return _PHONE_SEPARATORS.sub("", _nfkc(raw))


def normalise_phone(raw: str) -> str:
    """Return the phone number without separators, and without a +86/0086/86 prefix before a mobile."""
    if type(raw) is str and len(raw) < 13 and raw.isascii() and raw.isdigit():
        # Fast path (a plain mobile): nothing to strip, and every prefixed form is at least 13 long.
        return raw
    text = strip_phone_separators(raw)
    match = _CN_MOBILE_WITH_PREFIX.fullmatch(text)
    # Only a mobile is unambiguous: "86" + 11 digits starting with 1 is a mainland mobile.
    return match.group(1) if match else text


def _is_cjk(char: str) -> bool:
    """Return True for a Han ideograph, kana, Hangul or bopomofo character."""
    code = ord(char)
    return (
        0x2E80 <= code <= 0x2FDF  # CJK radicals, Kangxi radicals
        or 0x3005 <= code <= 0x3007  # 々 〆 〇
        or 0x3040 <= code <= 0x31FF  # kana, bopomofo, CJK strokes
        or 0x3400 <= code <= 0x4DBF  # Extension A
        or 0x4E00 <= code <= 0x9FFF  # Unified Ideographs
        or 0xAC00 <= code <= 0xD7AF  # Hangul syllables
        or 0xF900 <= code <= 0xFAFF  # Compatibility Ideographs
        # Planes 2 and 3 are reserved for ideographs; newer extensions may be
        # unassigned in this Python's Unicode database but are still Han.
        or 0x20000 <= code <= 0x3FFFF
    )


def _name_char(char: str) -> str:
    """Return the replacement for one name character: a space, nothing, or the character."""
    if char.isspace():
        # Tabs, line breaks and U+2028/2029 separate words; deleting them would glue words together.
        return " "
    if unicodedata.category(char) in _NAME_REMOVED_CATEGORIES:
        return ""
    return char


def _drop_space_between_cjk(text: str) -> str:
    """Return `text` without single spaces that sit between two CJK characters or beside a middle dot."""
    out: list[str] = []
    for i, char in enumerate(text):
        if char == " " and 0 < i < len(text) - 1:
            before, after = text[i - 1], text[i + 1]
            # "张 三" and "张三" are one name; "阿卜杜拉 · 买买提" is "阿卜杜拉·买买提".
            if (_is_cjk(before) and _is_cjk(after)) or MIDDLE_DOT in (before, after):
                continue
        out.append(char)
    return "".join(out)


def _casefold_latin(text: str) -> str:
    """Return `text` with Latin letters case-folded and every other character unchanged."""
    return "".join(
        c.casefold() if c.isalpha() and unicodedata.name(c, "").startswith("LATIN") else c
        for c in text
    )


def normalise_name(raw: str) -> str:
    """Return the name folded for matching: NFKC, no invisibles, CJK unspaced, one dot, Latin casefolded."""
    if type(raw) is str:
        if _PLAIN_HAN_NAME.fullmatch(raw):
            return raw  # Fast path (most names): see _PLAIN_HAN_NAME; no step below changes it.
        if raw.isascii() and raw.isprintable():
            # Fast path: printable ASCII is NFKC-stable, has no invisibles, CJK or dots, its only
            # whitespace is " " (split() drops the runs and the ends) and its Latin letters are A-Z.
            return " ".join(raw.split()).lower()
    return _normalise_name_general(raw)


def _normalise_name_general(raw: str) -> str:
    """Return normalise_name(raw) step by step, for any input."""
    text = "".join(_name_char(c) for c in _nfkc(raw))
    text = text.translate(_MIDDLE_DOT_TABLE)
    text = _WHITESPACE_RUN.sub(" ", text).strip()
    text = _drop_space_between_cjk(text)
    # Casefolding can produce decomposed letters (e.g. U+01F0 -> j + U+030C); NFKC recomposes them.
    # Traditional and simplified Han stay distinct on purpose: 張 and 张 may be different people's names.
    return _nfkc(_casefold_latin(text))


def normalise_customer_number(raw: str) -> str:
    """Return the customer number folded to NFKC, without whitespace, in upper case."""
    return "".join(c for c in _nfkc(raw) if not c.isspace()).upper()
