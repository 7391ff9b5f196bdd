"""Security test T23 (clipboard): with a revealed name on screen, Ctrl+C copies nothing — in the customer
file and in a form field — and the app's copy refuses with a message; no text can be selected. (Crash hygiene, the rest of T23, is
tests/pilot/test_errors.py.)"""

from __future__ import annotations

from textual.app import App
from textual.widgets import Input

from screens.customer_file import CustomerFileScreen
from screens.home import HomeScreen
from screens.login import LoginScreen
from tests.conftest import TEST_PASSWORD
from tests.pilot.conftest import wait_for
from tui.app import RecordKeeperApp


async def test_copying_a_revealed_name_is_refused(demo_office, settings, monkeypatch):
    written: list[str] = []
    monkeypatch.setattr(App, "copy_to_clipboard", lambda self, text: written.append(text))  # Textual's own
    app = RecordKeeperApp(settings, environ={})
    assert app.ALLOW_SELECT is False
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
        await pilot.press(*"clerk")
        await pilot.press("ctrl+a", "ctrl+c")  # in a form field
        await pilot.press("enter", *TEST_PASSWORD, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        await pilot.press("2")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "BrowserScreen"
                       and app.screen.query("DataTable") and app.screen.query_one("DataTable").row_count > 0)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CustomerFileScreen))
        await pilot.press("f3")
        await wait_for(pilot, lambda: app.screen.query(Input) and app.screen.focused is not None)
        await pilot.press(*"verify identity", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CustomerFileScreen) and app.screen.revealed)
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert written == [] and app.clipboard == ""  # Ctrl+C only says how to quit
        app.copy_to_clipboard(str(app.screen.revealed))  # what any widget's copy action ends in
        await pilot.pause()
        messages = [str(n.message) for n in app._notifications]
        assert any("Copying is not allowed" in m for m in messages), messages
        assert written == [] and app.clipboard == ""
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.return_code is not None)
