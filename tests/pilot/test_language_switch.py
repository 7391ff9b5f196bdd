"""F8 on the home screen switches between Chinese and English at once, everywhere, and is remembered."""

from __future__ import annotations

import pytest
from textual.widgets import OptionList, Static
from textual.widgets._footer import FooterKey

from models import staff
from screens.home import HomeScreen
from screens.login import LoginScreen
from tests.conftest import TEST_PASSWORD
from tests.pilot.conftest import wait_for
from tui.app import RecordKeeperApp
from tui.i18n import current_language, set_language


@pytest.fixture(autouse=True)
def english_afterwards():
    yield
    set_language("en")


def _saved_language(username: str) -> str:
    return staff.Staff.get(staff.Staff.username == username).language


def _menu_text(app) -> str:
    menu = app.screen.query_one("#menu", OptionList)
    return " ".join(str(menu.get_option_at_index(i).prompt) for i in range(menu.option_count))


def _footer_text(app) -> str:
    return " ".join(key.description for key in app.screen.query(FooterKey))


async def _home(pilot, app) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and app.screen.entries
                   and app.screen.query_one("#menu", OptionList).option_count > 0)


async def test_f8_switches_the_language_at_once_and_it_is_remembered(demo_office, settings):
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
        await pilot.press(*"clerk", "enter", *TEST_PASSWORD, "enter")
        await _home(pilot, app)
        assert current_language() == "en" and "Intake" in _menu_text(app) and "Language" in _footer_text(app)

        await pilot.press("f8")
        await _home(pilot, app)
        await wait_for(pilot, lambda: "客户录入" in _menu_text(app))
        assert current_language() == "zh"
        assert "当前登录" in str(app.screen.query_one("#home-heading", Static).render())
        assert "语言" in _footer_text(app) and "Language" not in _footer_text(app)

        await pilot.press("1")  # a screen opened after the switch speaks Chinese too
        await wait_for(pilot, lambda: not isinstance(app.screen, HomeScreen))
        await wait_for(pilot, lambda: "返回" in _footer_text(app))
        await pilot.press("escape")
        await _home(pilot, app)

        # Remembered for the next login, whatever the terminal's locale says.
        await wait_for(pilot, lambda: _saved_language("clerk") == "zh")
        await pilot.press("f8")
        await _home(pilot, app)
        await wait_for(pilot, lambda: "Intake" in _menu_text(app))
        assert current_language() == "en"
        await wait_for(pilot, lambda: _saved_language("clerk") == "en")
