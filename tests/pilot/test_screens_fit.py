"""Walk every screen at 80×24 as each demo role, in Chinese and English, in colour and with NO_COLOR.

Fails on text that matters cut off (labels, key hints, buttons, messages, field errors) or drawn
partly off the screen, and on focus left on a widget that is not on screen; widths are terminal
cells, so a Chinese character counts as two.
"""

from __future__ import annotations

import importlib
from dataclasses import replace

import pytest
from textual.containers import Horizontal
from textual.widgets import Label, OptionList

from screens.help import HelpScreen
from screens.home import HomeScreen
from screens.login import LoginScreen
from tests.conftest import TEST_PASSWORD
from tests.pilot.conftest import wait_for
from tests.pilot.fit import cut_text, footer_keys_all_shown
from tui.app import RecordKeeperApp
from tui.i18n import set_language

ROLES = ("clerk", "reviewer", "supervisor", "officer", "auditor", "admin")
# Keys that open a further screen or dialog from a screen without deciding anything (a dialog asks
# first; Esc, here a pop, leaves it): each screen they open is walked too.
OPENERS = {
    "BrowserScreen": ("slash", "f7"),
    "CustomerFileScreen": ("f3", "f4", "f6", "f7"),
    "IntakeFormScreen": ("f4",),
    "ApprovalDetailScreen": ("f2", "f4"),
    "ReviewScreen": ("r", "f6", "f9", "h"),
    "VerificationCheckScreen": ("f2", "f8"),
    "HoldsScreen": ("f2",),
    "RetentionScreen": ("h",),
    "RetentionRulesScreen": ("f2",),
    "AuditLogScreen": ("f7",),
    "StaffAdminScreen": ("a", "p"),
    "SuggestionsScreen": ("n",),
    "LabelsScreen": ("f3",),
}


@pytest.fixture(autouse=True)
def english_afterwards():
    yield
    set_language("en")


def _screen_exists(target: str) -> bool:
    module_name, _sep, class_name = target.partition(":")
    try:
        return hasattr(importlib.import_module(module_name), class_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:  # not built yet; any other missing import is a real failure
            return False
        raise


async def _settle(pilot) -> None:
    """Let the screen's workers finish and their results be drawn."""
    app = pilot.app
    await wait_for(pilot, lambda: not any(worker.is_running for worker in app.workers), timeout=20)
    await pilot.pause()
    await pilot.pause()


class Walk:
    """Collects what does not fit, screen by screen."""

    def __init__(self, pilot) -> None:
        self.pilot = pilot
        self.problems: list[str] = []
        self.seen: list[str] = []

    async def check(self, where: str, with_help: bool = True) -> None:
        app = self.pilot.app
        await _settle(self.pilot)
        self.seen.append(where)
        self.problems += [f"{where}: {cut}" for cut in cut_text(app.screen) + footer_keys_all_shown(app.screen)]
        focused = app.screen.focused
        if focused is not None and focused not in app.screen._compositor.visible_widgets:
            self.problems.append(f"{where}: the focus is on {focused!r}, which is not on screen")
        if with_help:
            screen = app.screen
            await self.pilot.press("f1")
            try:
                await wait_for(self.pilot, lambda: isinstance(app.screen, HelpScreen))
            except AssertionError:
                raise AssertionError(f"F1 opens no help on {where} ({app.screen!r}, focus {app.focused!r})") from None
            await _settle(self.pilot)
            self.problems += [f"{where} › F1 help: {cut}" for cut in cut_text(app.screen)]
            await self.pilot.press("escape")
            await wait_for(self.pilot, lambda: app.screen is screen)


async def _walk(app: RecordKeeperApp, pilot, username: str) -> Walk:
    walk = Walk(pilot)
    await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
    await walk.check("login")
    await pilot.press(*username, "enter", *TEST_PASSWORD, "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and app.screen.entries)
    home = app.screen
    await walk.check("home")
    menu = home.query_one("#menu", OptionList)
    for index, entry in enumerate(list(home.entries)):
        if not entry.screen or not _screen_exists(entry.screen):
            continue
        menu.highlighted = index
        home.action_open()
        await wait_for(pilot, lambda: app.screen is not home)
        opened = app.screen
        where = f"{entry.label} ({type(opened).__name__})"
        await walk.check(where)
        await _open_further(walk, opened, where)
        # One level deeper: Enter opens the first item (a form, a record, a request), if there is one.
        await pilot.press("enter")
        await _settle(pilot)
        if app.screen is not opened and not isinstance(app.screen, HelpScreen):
            deeper = app.screen
            deeper_where = f"{where} › Enter ({type(deeper).__name__})"
            await walk.check(deeper_where)
            await _open_further(walk, deeper, deeper_where)
        while app.screen is not home:
            app.pop_screen()
            await pilot.pause()
    return walk


async def _open_further(walk: Walk, screen, where: str) -> None:
    """Walk what each of the screen's opener keys opens, coming back to the screen each time."""
    app = walk.pilot.app
    for key in OPENERS.get(type(screen).__name__, ()):
        await walk.pilot.press(key)
        await _settle(walk.pilot)
        if app.screen is not screen and not isinstance(app.screen, HelpScreen):
            await walk.check(f"{where} › {key} ({type(app.screen).__name__})")
        while app.screen is not screen and screen in app.screen_stack:
            app.pop_screen()
            await walk.pilot.pause()


# English and Chinese in colour; Chinese again in the 16-colour mono theme that NO_COLOR selects
# (a clerk on a thin terminal). The layout is the theme's too, so both themes are walked.
VARIANTS = [("en", False), ("zh", False), ("zh", True)]


@pytest.mark.parametrize(("language", "no_color"), VARIANTS, ids=["en", "zh", "zh-NO_COLOR"])
@pytest.mark.parametrize("username", ROLES)
async def test_every_screen_fits_80x24(demo_office, settings, username, language, no_color):
    environ = {"NO_COLOR": "1"} if no_color else {}
    app = RecordKeeperApp(replace(settings, language=language), environ=environ)
    async with app.run_test(size=(80, 24)) as pilot:
        walk = await _walk(app, pilot, username)
    assert len(walk.seen) >= 2
    assert not walk.problems, f"cut off at 80×24 ({username}, {language}):\n" + "\n".join(walk.problems)


async def test_the_check_measures_chinese_by_cells_and_sees_cut_labels(demo_office, settings):
    app = RecordKeeperApp(settings, environ={})
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
        row = Horizontal(Label("客户资料复核", id="wide"), Label("abcdef", id="narrow"))
        await app.screen.mount(row)
        row.styles.height = 1
        for label in row.query(Label):
            label.styles.width = 8
        await pilot.pause()
        cut = {problem.widget for problem in cut_text(app.screen)}
        # 6 characters but 12 cells: cut at 8 cells; the 6-letter label fits.
        assert "Label#wide" in cut
        assert "Label#narrow" not in cut
