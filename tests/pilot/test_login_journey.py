"""Login → home → idle lock → unlock → quit, keyboard only."""

from __future__ import annotations

from textual.widgets import Input, OptionList

from models import clock
from screens.home import HomeScreen
from screens.lock import LockScreen
from screens.login import LoginScreen
from tests.conftest import TEST_PASSWORD
from tests.pilot.conftest import wait_for
from tui.app import RecordKeeperApp


async def _login(pilot, username: str, password: str = TEST_PASSWORD) -> None:
    await pilot.press(*username)
    await pilot.press("enter")
    await pilot.press(*password)
    await pilot.press("enter")


async def test_login_home_idle_lock_unlock_quit(demo_office, settings):
    app = RecordKeeperApp(settings, environ={})
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
        await _login(pilot, "clerk")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        menu = app.screen.query_one("#menu", OptionList)
        await wait_for(pilot, lambda: menu.option_count > 0)
        labels = [str(menu.get_option_at_index(i).prompt) for i in range(menu.option_count)]
        assert any("Intake" in label or "录入" in label for label in labels)
        assert not any("Audit" in label for label in labels)

        clock.advance_monotonic(settings.idle_lock_minutes * 60 + 1)
        await wait_for(pilot, lambda: isinstance(app.screen, LockScreen))
        await pilot.press("escape")
        assert isinstance(app.screen, LockScreen)
        await pilot.press(*"wrong password!")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "密码" in str(app.screen.query_one("#lock-message").render())
                       or "Wrong" in str(app.screen.query_one("#lock-message").render()))
        assert isinstance(app.screen, LockScreen)
        await pilot.press(*TEST_PASSWORD)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.return_code is not None)
    assert app.return_code == 0


async def test_wrong_password_gives_one_message_and_keeps_username(demo_office, settings):
    app = RecordKeeperApp(settings, environ={})
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
        await _login(pilot, "clerk", "not the password")
        message = app.screen.query_one("#login-message")
        await wait_for(pilot, lambda: "Checking" not in str(message.render()) and str(message.render()))
        first = str(message.render())
        assert app.screen.query_one("#username", Input).value == "clerk"
        assert app.screen.query_one("#password", Input).value == ""
        await pilot.press("shift+tab")
        for _ in range(5):
            await pilot.press("backspace")
        await _login(pilot, "nobody", "not the password")
        await wait_for(pilot, lambda: "Checking" not in str(message.render()) and str(message.render()))
        assert str(message.render()) == first


async def test_each_role_reaches_its_own_home(demo_office, settings):
    expected = {"reviewer": "Review", "supervisor": "Change requests", "officer": "Retention",
                "auditor": "Audit log", "admin": "Staff"}
    for username, label in expected.items():
        app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
        async with app.run_test(size=(80, 24)) as pilot:
            await _login(pilot, username)
            await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
            menu = app.screen.query_one("#menu", OptionList)
            await wait_for(pilot, lambda: menu.option_count > 0)
            labels = " ".join(str(menu.get_option_at_index(i).prompt) for i in range(menu.option_count))
            assert label in labels, (username, labels)
            await pilot.press("ctrl+q")


async def test_session_ends_after_its_hours(demo_office, settings):
    app = RecordKeeperApp(settings, environ={})
    async with app.run_test(size=(80, 24)) as pilot:
        await _login(pilot, "clerk")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        clock.advance_monotonic(settings.session_hours * 3600 + 1)
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
        assert app.actor is None
