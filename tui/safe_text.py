"""The one gate through which text from data (database, files, input) reaches the terminal.

Rich and Textual strip only a handful of control codes and parse `str` as markup, so a stored
name could otherwise emit OSC 52/OSC 8 sequences, reorder itself with bidi controls, or bind actions.
"""

from __future__ import annotations

import unicodedata

from rich.cells import cell_len, get_character_cell_size
from textual.content import Content

__all__ = ["ELLIPSIS", "pad", "safe_plain", "safe_text"]

ELLIPSIS = "…"

# Invisible formatting and control characters: dropped, since they have no glyph to lose.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf"})
# Characters that would have been a glyph (private use, unassigned, lone surrogate): replaced,
# so a name with, say, a private-use rare character is shown with a visible gap, not as another name.
_REPLACED_CATEGORIES = frozenset({"Cs", "Co", "Cn"})
_REPLACEMENT = "\ufffd"

# Line-breaking characters become a space on one line (so words do not run together)
# or a newline when the caller allows several lines.
_LINE_BREAKS = frozenset({"\n", "\r", "\x0b", "\x0c", "\x85", "\u2028", "\u2029"})
_TAB = "\t"

# Crafted stacks of combining marks are zero cells wide, so a width cap does not bound them
# (compare CVE-2021-27135); real scripts need at most a few per base character.
_MAX_COMBINING_MARKS = 4
_COMBINING_CATEGORIES = frozenset({"Mn", "Me"})

# Raw input beyond this many code points per allowed cell cannot all be shown anyway;
# slicing first keeps a pasted megabyte from costing a megabyte of work on the event loop.
_RAW_CODEPOINTS_PER_CELL = 8


def _clean(text: str, multiline: bool) -> str:
    """Return `text` with every unsafe character dropped or replaced (see module constants)."""
    text = unicodedata.normalize("NFC", text)
    if multiline:
        text = text.replace("\r\n", "\n")
    kept: list[str] = []
    combining_run = 0
    for character in text:
        if character in _LINE_BREAKS:
            kept.append("\n" if multiline else " ")
            combining_run = 0
            continue
        if character == _TAB:
            kept.append(" ")
            combining_run = 0
            continue
        codepoint = ord(character)
        if 0x80 <= codepoint <= 0x9F:  # C1 controls, e.g. \x9b (single-byte CSI)
            continue
        category = unicodedata.category(character)
        if category in _DROPPED_CATEGORIES:
            continue
        if category in _REPLACED_CATEGORIES:
            kept.append(_REPLACEMENT)
            combining_run = 0
            continue
        if category in _COMBINING_CATEGORIES:
            combining_run += 1
            if combining_run > _MAX_COMBINING_MARKS:
                continue
        else:
            combining_run = 0
        kept.append(character)
    return "".join(kept)


def _fit(text: str, max_length: int, force_ellipsis: bool) -> str:
    """Cut `text` to at most `max_length` terminal cells, ending with an ellipsis if anything was cut."""
    if not force_ellipsis and cell_len(text) <= max_length:
        return text
    budget = max_length - cell_len(ELLIPSIS)
    used = 0
    end = 0
    for index, character in enumerate(text):
        width = get_character_cell_size(character)
        if used + width > budget:
            break
        used += width
        end = index + 1
    kept = text[:end]
    # Grapheme rules (e.g. a variation selector widening an emoji) can make the sum of
    # single-character widths undercount; trust the whole-string measure.
    while kept and cell_len(kept) > budget:
        kept = kept[:-1]
    return kept + ELLIPSIS


def safe_plain(value: object, max_length: int = 200, *, multiline: bool = False) -> str:
    """Return `value` as a string that is safe to show: no control, format, bidi or unassigned characters, at most `max_length` cells.

    `None` becomes the empty string. Use `safe_text` unless the caller wraps the result in `Content` itself.
    """
    if max_length < 1:
        raise ValueError("max_length must be at least 1 cell")
    text = "" if value is None else str(value)
    raw_limit = max_length * _RAW_CODEPOINTS_PER_CELL
    over_raw_limit = len(text) > raw_limit
    if over_raw_limit:
        text = text[:raw_limit]
    return _fit(_clean(text, multiline), max_length, force_ellipsis=over_raw_limit)


def pad(text: str, cells: int, *, align: str = "left") -> str:
    """`text` cut to `cells` terminal cells (with an ellipsis) and padded with spaces to exactly that width.

    For columns built from strings: Chinese characters take two cells, so `f"{text:<10}"` (which counts
    characters) misaligns them. `align` is "left" or "right". `text` should already be safe (`safe_plain`).
    """
    if cells < 1:
        return ""
    fitted = _fit(text, cells, force_ellipsis=False) if cell_len(text) > cells else text
    gap = " " * max(cells - cell_len(fitted), 0)
    return gap + fitted if align == "right" else fitted + gap


def safe_text(value: object, max_length: int = 200, *, multiline: bool = False) -> Content:
    """Return `value` cleaned by `safe_plain` as literal `Content`, which Textual never parses as markup."""
    return Content(safe_plain(value, max_length, multiline=multiline))
