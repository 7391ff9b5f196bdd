"""Suggestions, keyboard only at 80×24: a clerk writes one, a supervisor answers, the clerk reads it."""

from __future__ import annotations

from textual.widgets import Static

from models import suggestions
from screens.staff_admin import FormDialog
from screens.suggestions import SuggestionScreen, SuggestionsScreen
from tests.pilot.conftest import wait_for
from tests.pilot.test_audit_log import footer_fits, login, open_menu
from tests.pilot.test_staff_admin import error_text
from tui.app import RecordKeeperApp

TITLE = "退回原因模板"
BODY = "复核退回时希望能选择常用原因模板"


async def open_suggestions(pilot, username: str) -> SuggestionsScreen:
    await login(pilot, username)
    await open_menu(pilot, "suggestions")
    screen = pilot.app.screen
    assert isinstance(screen, SuggestionsScreen)
    await wait_for(pilot, lambda: "Loading" not in str(screen.query_one("#suggestion-status").render()))
    assert footer_fits(screen) == []
    return screen


async def test_a_clerk_writes_a_suggestion_and_a_short_one_is_refused_beside_its_field(demo_office, settings):
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_suggestions(pilot, "clerk")
        assert "My suggestions" in str(screen.query_one("#suggestion-title", Static).render())
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, FormDialog))
        form = app.screen
        await pilot.press(*TITLE, "enter", *"太短", "f2")
        await wait_for(pilot, lambda: "describe" in error_text(form, "body"))
        assert form.values() == {"title": TITLE, "body": "太短"}
        await pilot.press(*BODY[2:], "f2")
        await wait_for(pilot, lambda: app.screen is screen and screen.items)
        assert (screen.items[0].title, screen.items[0].status) == (TITLE, "open")
        assert screen.items[0].body == "太短" + BODY[2:]


async def test_a_supervisor_answers_and_the_clerk_reads_the_answer(demo_office, settings):
    from models import staff
    from tests.conftest import TEST_PASSWORD

    made = suggestions.submit_suggestion(staff.authenticate("clerk", TEST_PASSWORD), TITLE, BODY)
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_suggestions(pilot, "supervisor")
        await wait_for(pilot, lambda: screen.items)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, FormDialog))
        await pilot.press("enter", "down", "enter")  # Decision: under review → adopted
        await pilot.press("tab", *"下月起在复核界面加入模板", "f2")
        await wait_for(pilot, lambda: app.screen is screen and screen.items and screen.items[0].status == "adopted")
        for _ in range(5):  # all → open → under review → adopted → declined → meeting
            await pilot.press("f6")
        await wait_for(pilot, lambda: "review meeting" in str(screen.query_one("#suggestion-title").render()))
        await wait_for(pilot, lambda: [s.suggestion_id for s in screen.items] == [made.suggestion_id])
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_suggestions(pilot, "clerk")
        await wait_for(pilot, lambda: screen.items)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SuggestionScreen))
        assert "下月起在复核界面加入模板" in str(app.screen.query_one("#one-response").render())
        await pilot.press("escape")
        await pilot.press("r")  # only supervisors answer
        await wait_for(pilot, lambda: any("Supervisors" in n.message for n in app._notifications))
