"""Slow links and lost terminals: no animation, no cursor blink unless configured, a hang-up saves and leaves."""

from __future__ import annotations

from dataclasses import replace

from rich.traceback import Traceback
from textual.screen import Screen
from textual.widgets import Input, Static, TextArea

from models import audit
from screens.home import HomeScreen
from screens.login import LoginScreen
from tests.conftest import TEST_PASSWORD
from tests.pilot.conftest import wait_for
from tui.app import RecordKeeperApp


async def _login(pilot, username: str = "clerk") -> None:
    await pilot.press(*username, "enter", *TEST_PASSWORD, "enter")


class _DraftScreen(Screen[None]):
    """A form with a text area whose draft the hang-up must save."""

    def __init__(self) -> None:
        super().__init__()
        self.saved: list[str] = []

    def compose(self):
        yield Static("draft")
        yield Input(id="plain")
        yield TextArea(id="notes")

    def save_draft_now(self) -> None:
        self.saved.append(self.query_one("#plain", Input).value)


def _last_actions(count: int) -> list[str]:
    return [entry.action for entry in audit.AuditEntry.select().order_by(audit.AuditEntry.seq.desc()).limit(count)]


async def test_no_animation_and_no_cursor_blink_by_default(demo_office, settings):
    app = RecordKeeperApp(settings, environ={})
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
        assert app.animation_level == "none"
        assert [field.cursor_blink for field in app.screen.query(Input)] == [False, False]
        app.push_screen(_DraftScreen())
        await wait_for(pilot, lambda: isinstance(app.screen, _DraftScreen) and app.screen.query(TextArea))
        assert app.screen.query_one("#plain", Input).cursor_blink is False
        assert app.screen.query_one("#notes", TextArea).cursor_blink is False
        # Widgets mounted later follow the setting too.
        await app.screen.mount(Input(id="late"))
        assert app.screen.query_one("#late", Input).cursor_blink is False


async def test_cursor_blink_setting_turns_blinking_on(demo_office, settings):
    app = RecordKeeperApp(replace(settings, cursor_blink=True), environ={})
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
        assert all(field.cursor_blink for field in app.screen.query(Input))


async def test_hang_up_saves_drafts_ends_the_session_and_exits_cleanly(demo_office, settings):
    app = RecordKeeperApp(settings, environ={})
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
        await _login(pilot)
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        draft = _DraftScreen()
        app.push_screen(draft)
        await wait_for(pilot, lambda: app.screen is draft and isinstance(app.focused, Input))
        await pilot.press(*"typed before the link dropped")
        app.hang_up("SIGHUP")
        app.hang_up("SIGHUP")  # a second signal changes nothing
        await wait_for(pilot, lambda: app.return_code is not None)
    assert draft.saved == ["typed before the link dropped"]
    assert app.return_code == 0
    assert _last_actions(1) == ["LOGOUT"]
    assert not settings.log_path.exists()


async def test_terminal_read_failure_is_a_hang_up_not_a_crash(demo_office, settings):
    app = RecordKeeperApp(settings, environ={})
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
        try:
            raise OSError(5, "Input/output error")
        except OSError:
            lost_terminal = Traceback()
        app.panic(lost_terminal)  # what Textual's input thread sends when the terminal is gone
        await wait_for(pilot, lambda: app.return_code is not None)
    assert app.return_code == 0 and app.hung_up
    assert not settings.log_path.exists()


async def test_other_input_thread_failures_are_still_logged(demo_office, settings):
    app = RecordKeeperApp(settings, environ={})
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
        try:
            raise KeyError("parser bug")
        except KeyError:
            bug = Traceback()
        app.panic(bug)
        await wait_for(pilot, lambda: app.return_code is not None)
    assert app.return_code == 1 and not app.hung_up
    assert "KeyError" in settings.log_path.read_text()


async def test_a_sixteen_colour_terminal_gets_the_mono_theme(demo_office, settings):
    from themes import DEFAULT_THEME, HIGH_CONTRAST_THEME, MONO_THEME, sixteen_colours

    assert sixteen_colours({"TERM": "xterm"}) and sixteen_colours({"TERM": "linux"})
    assert not sixteen_colours({"TERM": "xterm-256color"}) and not sixteen_colours({})
    assert not sixteen_colours({"TERM": "xterm", "COLORTERM": "truecolor"})
    for environ, theme_setting, expected in (({"TERM": "xterm"}, DEFAULT_THEME, MONO_THEME),
                                             ({"TERM": "xterm-256color"}, DEFAULT_THEME, DEFAULT_THEME),
                                             ({"TERM": "xterm"}, HIGH_CONTRAST_THEME, HIGH_CONTRAST_THEME)):
        app = RecordKeeperApp(replace(settings, theme=theme_setting), environ=environ)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
            assert app.theme == expected
