"""Columns built from strings line up in Chinese: no `f"{text:<10}"` padding of words that may be Chinese.

Python's format width counts characters, and a Chinese character takes two terminal cells, so such a
column drifts by one cell per Chinese character. Screens pad words with `tui.safe_text.pad()`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tui.safe_text import pad

ROOT = Path(__file__).resolve().parents[2]
# An identifier part that names words a person reads (and that may be Chinese), not numbers or codes.
WORDY = {"label", "name", "state", "word", "description", "tooltip", "kind", "title", "note", "reason", "status",
         "who", "actor", "category", "outcome", "purpose"}
WIDTH_SPEC = re.compile(r"^.?[<>^]?\d+(\.\d+)?$")


def _padded_words(source: str) -> list[tuple[int, str]]:
    """(line, expression) for every f-string field that pads a wordy value to a width with format()."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FormattedValue) or node.format_spec is None:
            continue
        spec = "".join(str(part.value) for part in node.format_spec.values if isinstance(part, ast.Constant))
        if not WIDTH_SPEC.match(spec):
            continue
        expression = ast.unparse(node.value)
        parts = {part.lower() for token in re.findall(r"[A-Za-z_]+", expression) for part in token.split("_")}
        if "_(" in expression or "safe_plain(" in expression or parts & WORDY:
            found.append((node.lineno, expression))
    return found


def test_no_screen_pads_words_by_character_count():
    offenders = []
    for path in sorted([*(ROOT / "screens").rglob("*.py"), *(ROOT / "tui").rglob("*.py")]):
        if path.name == "cli.py" or path.name.endswith("_commands.py"):  # CLI output is for logs, in English
            continue
        for line, expression in _padded_words(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.relative_to(ROOT)}:{line}: {expression}")
    assert not offenders, "pad words with tui.safe_text.pad(), not a format width:\n" + "\n".join(offenders)


def test_the_check_sees_character_padding_and_pad_counts_cells():
    source = 'a = f"{_(state):<14}{item.ref:<12}{count:>9,}{safe_plain(n, 9):9}{category_label(c):^8}"\n'
    assert [expression for _line, expression in _padded_words(source)] == [
        "_(state)", "safe_plain(n, 9)", "category_label(c)"]
    assert pad("客户", 6) == "客户  " and pad("ab", 6, align="right") == "    ab"
    assert pad("客户资料复核", 7) == "客户资…"  # cut to 7 cells with an ellipsis, then padded
