"""safe_text keeps hostile stored text from reaching the terminal as escapes, bidi tricks or markup."""

from __future__ import annotations

import time

import pytest
from rich.cells import cell_len
from textual.app import App, ComposeResult
from textual.content import Content
from textual.widgets import Static

from tui.safe_text import ELLIPSIS, safe_plain, safe_text

HOSTILE_TEXT = {
    "osc52_clipboard": "Zhang\x1b]52;c;cm0gLXJmIH4K\x07San",
    "osc8_hyperlink": "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",
    "osc0_title": "\x1b]0;owned\x07Li",
    "csi_clear": "\x1b[2J\x1b[31mred",
    "c1_csi": "\x9b31mWang",
    "c1_osc": "\x9d52;c;eA==\x9cZhao",
    "bidi_rlo": "invoice\u202egnp.exe",
    "bidi_isolates": "\u2066a\u2067b\u2068c\u2069\u202a\u202b\u202c\u202d",
    "zero_width": "\u200bA\u200cB\u200dC\u200e\u200fD\ufeff",
    "nul": "a\x00b",
    "lone_surrogate": "x\ud800y",
}

MARKUP_TEXT = [
    "[link='https://x']a[/link]",
    "[@click=app.quit]x[/]",
    "foo[/]",
    "[b]bold[/b] [red]red[/red]",
]

# Anything that starts a terminal escape, or that reorders or hides text on screen.
FORBIDDEN_IN_OUTPUT = (
    ["\x1b]", "\x07", "\x00", "\ud800", "\ufeff"]
    + [chr(codepoint) for codepoint in range(0x80, 0xA0)]
    + [chr(codepoint) for codepoint in range(0x200B, 0x2010)]
    + [chr(codepoint) for codepoint in range(0x202A, 0x202F)]
    + [chr(codepoint) for codepoint in range(0x2066, 0x206A)]
)


class ShowOneValue(App[None]):
    """Shows one value in a Static, the way a screen shows a stored field."""

    def __init__(self, shown: Content | str) -> None:
        super().__init__()
        self.shown = shown

    def compose(self) -> ComposeResult:
        yield Static(self.shown, id="value")


async def render_terminal_output(shown: Content | str) -> tuple[str, str]:
    """Return (bytes the terminal would receive for the whole screen, plain text of the value's first line)."""
    app = ShowOneValue(shown)
    async with app.run_test(size=(100, 5)) as pilot:
        await pilot.pause()
        update = app.screen._compositor.render_update(full=True)
        terminal_output = update.render_segments(app.console)
        first_line = app.query_one("#value", Static).render_line(0).text
        assert app.is_running
    return terminal_output, first_line


def assert_nothing_forbidden(text: str) -> None:
    for forbidden in FORBIDDEN_IN_OUTPUT:
        assert forbidden not in text, f"{forbidden!r} reached the terminal"


async def test_the_harness_sees_injection_when_text_bypasses_safe_text() -> None:
    terminal_output, _ = await render_terminal_output(
        "[link='https://x']a[/link]" + HOSTILE_TEXT["osc52_clipboard"]
    )
    assert "\x1b]8;" in terminal_output
    assert "\x1b]52;" in terminal_output


@pytest.mark.parametrize("name", sorted(HOSTILE_TEXT))
async def test_hostile_text_emits_no_escape_or_hidden_character(name: str) -> None:
    terminal_output, first_line = await render_terminal_output(safe_text(HOSTILE_TEXT[name]))
    assert_nothing_forbidden(terminal_output)
    assert "\x1b" not in first_line
    assert_nothing_forbidden(first_line)


@pytest.mark.parametrize("markup", MARKUP_TEXT)
async def test_markup_is_shown_literally_and_never_parsed(markup: str) -> None:
    terminal_output, first_line = await render_terminal_output(safe_text(markup))
    assert first_line.rstrip() == markup
    assert "\x1b]8;" not in terminal_output
    assert safe_text(markup).spans == []


def test_safe_text_returns_literal_content() -> None:
    shown = safe_text("[b]x[/b]")
    assert isinstance(shown, Content)
    assert shown.plain == "[b]x[/b]"


def test_visible_characters_survive() -> None:
    assert safe_plain("张三 Zhang San, 110105198507140000") == "张三 Zhang San, 110105198507140000"
    assert safe_plain("invoice\u202egnp.exe") == "invoicegnp.exe"
    assert safe_plain("x\ud800y") == "x\ufffdy"
    assert safe_plain("\ue000") == "\ufffd"  # private use: a gap stays visible


def test_line_breaks_become_spaces_unless_multiline() -> None:
    assert safe_plain("line one\nline two\r\nthree\u2028four\tfive") == (
        "line one line two  three four five"
    )
    assert safe_plain("line one\r\nline two\u2029three", multiline=True) == (
        "line one\nline two\nthree"
    )
    assert "\x1b" not in safe_plain("a\n\x1b[2Jb", multiline=True)


def test_none_is_empty_and_objects_are_stringified() -> None:
    assert safe_plain(None) == ""
    assert safe_plain(42) == "42"


def test_width_cap_counts_chinese_characters_as_two_cells() -> None:
    assert safe_plain("张三丰", max_length=6) == "张三丰"
    assert safe_plain("张三丰", max_length=5) == "张三" + ELLIPSIS
    assert safe_plain("张三丰", max_length=4) == "张" + ELLIPSIS
    assert safe_plain("abcdef", max_length=5) == "abcd" + ELLIPSIS
    capped = safe_plain("中文姓名" * 100, max_length=11)
    assert capped == "中文姓名中" + ELLIPSIS
    assert cell_len(capped) <= 11
    assert safe_text("中文姓名" * 100, max_length=11).cell_length <= 11


def test_stacked_combining_marks_are_bounded() -> None:
    zalgo = "a" + "\u0301" * 1_000
    shown = safe_plain(zalgo)
    assert shown.startswith("\u00e1")  # NFC composed the first mark
    assert shown.count("\u0301") <= 4


def test_huge_input_is_cut_quickly() -> None:
    started = time.perf_counter()
    shown = safe_plain("甲" * 2_000_000, max_length=50)
    assert time.perf_counter() - started < 0.5
    assert cell_len(shown) <= 50
    assert shown.endswith(ELLIPSIS)


def test_max_length_must_be_positive() -> None:
    with pytest.raises(ValueError):
        safe_plain("x", max_length=0)
