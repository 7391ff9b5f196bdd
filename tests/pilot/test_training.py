"""Training, keyboard only at 80×24: who is due, history, recording by an admin, and the login notice."""

from __future__ import annotations

import datetime as dt

from textual.widgets import DataTable, Static

from models import clock, staff, training
from screens.staff_admin import FormDialog
from screens.training import TrainingHistoryScreen, TrainingScreen
from tests.conftest import TEST_PASSWORD
from tests.pilot.conftest import wait_for
from tests.pilot.test_audit_log import footer_fits, login, open_menu
from tests.pilot.test_staff_admin import error_text
from tui.app import RecordKeeperApp


def _admin():
    return staff.authenticate("admin", TEST_PASSWORD)


async def open_training(pilot, who: str) -> TrainingScreen:
    """Log in as `who`, open Training and wait for its list."""
    await login(pilot, who)
    await open_menu(pilot, "training")
    screen = pilot.app.screen
    assert isinstance(screen, TrainingScreen)
    await wait_for(pilot, lambda: screen.people)
    return screen


async def test_supervisors_see_who_is_due_and_the_history(demo_office, settings):
    today = clock.today()
    training.record_training(_admin(), "reviewer", "数据保护培训", today - dt.timedelta(days=350))
    training.record_training(_admin(), "officer", "数据保护培训", today - dt.timedelta(days=400))
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_training(pilot, "supervisor")
        assert footer_fits(screen) == []
        assert [p.status for p in screen.people[:1]] == ["expired"] and screen.people[0].username == "officer"
        status = str(screen.query_one("#training-status", Static).render())
        assert "1 lapsed" in status and "1 due within 30 days" in status
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainingHistoryScreen))
        await wait_for(pilot, lambda: "数据保护培训" in str(app.screen.query_one("#history-body").render()))
        await pilot.press("escape")
        await pilot.press("f2")
        await wait_for(pilot, lambda: any("Only an admin" in n.message for n in app._notifications))
        assert app.screen is screen


async def test_a_refused_history_says_why(demo_office, settings, monkeypatch):
    from models.errors import PermissionDenied

    def refuse(actor, username):
        raise PermissionDenied("supervisor may not view the training of others")

    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        await open_training(pilot, "supervisor")
        monkeypatch.setattr(training, "training_history", refuse)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainingHistoryScreen))
        await wait_for(pilot, lambda: "may not view" in str(app.screen.query_one("#history-body").render()))


async def test_an_admin_records_training_and_a_bad_date_is_kept_beside_its_field(demo_office, settings):
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_training(pilot, "admin")
        table = screen.query_one(DataTable)
        index = [p.username for p in screen.people].index("clerk")
        while table.cursor_row != index:
            await pilot.press("down")
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, FormDialog))
        form = app.screen
        assert form.values()["username"] == "clerk"
        await pilot.press("tab", *"Data protection 2026", "enter", *("backspace",) * 10, *"2026-13-40", "f2")
        await wait_for(pilot, lambda: "date" in error_text(form, "completed_on"))
        assert form.values()["course"] == "Data protection 2026" and app.focused.id == "in-completed_on"
        await pilot.press(*("backspace",) * 10, *"2026-03-01", "f2")
        await wait_for(pilot, lambda: app.screen is screen)
        await wait_for(pilot, lambda: next(p for p in screen.people if p.username == "clerk").expires_on
                       == dt.date(2027, 3, 1))


async def test_lapsed_training_is_told_at_login(demo_office, settings):
    training.record_training(_admin(), "clerk", "数据保护培训", clock.today() - dt.timedelta(days=400))
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "clerk")
        await wait_for(pilot, lambda: any("expired" in n.message for n in app._notifications))
        notice = next(n for n in app._notifications if "expired" in n.message)
        assert notice.severity == "error" and "cannot reveal" in notice.message


async def test_nothing_is_said_when_training_is_current(demo_office, settings):
    training.record_training(_admin(), "clerk", "数据保护培训", clock.today())
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "clerk")
        await wait_for(pilot, lambda: not any(w.is_running for w in app.workers if w.group == "training-notice"))
        assert not any("training" in n.message.lower() for n in app._notifications)
