"""Staff management, keyboard only at 80×24: add, roles, disable (ending a live session), unlock,
reset password, training and branches; bad input is shown beside its field and nothing is lost."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Static

from models import branches, staff, training
from models.audit import AuditEntry
from screens.dialogs.confirm import ConfirmDialog
from screens.home import HomeScreen
from screens.login import LoginScreen
from screens.staff_admin import FormDialog, StaffAdminScreen, TickList
from tests.conftest import TEST_PASSWORD
from tests.pilot.conftest import wait_for
from tests.pilot.test_audit_log import footer_fits, login, open_menu
from tui.app import RecordKeeperApp

NEW_PASSWORD = "plum-blossom-river-42"


async def open_staff(pilot) -> StaffAdminScreen:
    await login(pilot, "admin")
    await open_menu(pilot, "staff")
    screen = pilot.app.screen
    assert isinstance(screen, StaffAdminScreen)
    await wait_for(pilot, lambda: screen.people)
    assert footer_fits(screen) == []
    return screen


async def select(pilot, screen, username: str) -> None:
    table = screen.query_one("#staff-table", DataTable)
    index = [p.username for p in screen.people].index(username)
    while table.cursor_row != index:
        await pilot.press("down" if table.cursor_row < index else "up")


def error_text(dialog, name: str) -> str:
    widget = dialog.query_one(f"#err-{name}", Static)
    return str(widget.render()) if widget.display else ""


async def test_add_an_account_with_a_mistake_then_fix_it(demo_office, settings):
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_staff(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, FormDialog))
        form = app.screen
        await pilot.press(*"zhao", "enter", *"Zhao Liu", "enter")
        assert isinstance(app.focused, TickList)
        await pilot.press("down", "space", "tab")  # clerk stays ticked, reviewer too
        await pilot.press(*NEW_PASSWORD, "enter", *"something-else-1", "f2")
        await wait_for(pilot, lambda: "does not match" in error_text(form, "repeat"))
        values = form.values()
        assert values["username"] == "zhao" and values["roles"] == ["clerk", "reviewer"]
        assert values["password"] == NEW_PASSWORD and app.focused.id == "in-repeat"
        for _ in range(len("something-else-1")):
            await pilot.press("backspace")
        await pilot.press(*NEW_PASSWORD, "f2")
        await wait_for(pilot, lambda: app.screen is screen and "zhao" in [p.username for p in screen.people])
        added = next(p for p in screen.people if p.username == "zhao")
        assert added.roles == ("clerk", "reviewer") and added.must_change_password
    assert AuditEntry.select().where(AuditEntry.action == "STAFF_CREATE").count() >= 1


async def test_a_refused_username_is_shown_beside_it(demo_office, settings):
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        await open_staff(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, FormDialog))
        form = app.screen
        await pilot.press(*"clerk", "enter", *"Another", "enter", "tab", *NEW_PASSWORD, "enter", *NEW_PASSWORD, "f2")
        await wait_for(pilot, lambda: "already taken" in error_text(form, "username"))
        assert form.values()["display_name"] == "Another" and app.focused.id == "in-username"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, StaffAdminScreen))


async def test_roles_unlock_reset_password_and_training(demo_office, settings):
    for _ in range(staff.LOCK_AFTER_FAILURES):
        staff.Staff.update(next_attempt_at=None).where(staff.Staff.username == "reviewer").execute()
        with pytest.raises(Exception):
            staff.authenticate("reviewer", "not the password at all")
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_staff(pilot)
        await select(pilot, screen, "reviewer")
        assert next(p for p in screen.people if p.username == "reviewer").locked
        await pilot.press("u")
        await wait_for(pilot, lambda: not next(p for p in screen.people if p.username == "reviewer").locked)
        await pilot.press("enter")  # roles
        await wait_for(pilot, lambda: isinstance(app.screen, FormDialog))
        await pilot.press("space", "down", "space", "down", "space", "f2")  # +clerk −reviewer +supervisor
        await wait_for(pilot, lambda: app.screen is screen)
        await wait_for(pilot, lambda: next(p for p in screen.people if p.username == "reviewer").roles
                       == ("clerk", "supervisor"))
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, FormDialog))
        await pilot.press(*"short", "enter", *"short", "f2")
        form = app.screen
        await wait_for(pilot, lambda: "12 characters" in error_text(form, "password"))
        assert app.focused.id == "in-password"  # the refused field, with what was typed
        await pilot.press(*("backspace",) * 5, *NEW_PASSWORD, "enter", *("backspace",) * 5,
                          *NEW_PASSWORD, "f2")
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, FormDialog))
        assert app.screen.values()["username"] == "reviewer"
        await pilot.press("tab", *"数据保护年度培训", "f2")
        await wait_for(pilot, lambda: app.screen is screen)
    assert staff.authenticate("reviewer", NEW_PASSWORD).must_change_password
    assert training.training_history(staff.authenticate("admin", TEST_PASSWORD), "reviewer")[0].course == \
        "数据保护年度培训"
    actions = {e.action for e in AuditEntry.select(AuditEntry.action)}
    assert {"ACCOUNT_UNLOCK", "STAFF_ROLES", "PASSWORD_RESET", "TRAINING_RECORD"} <= actions


async def test_branches_with_their_records_person(demo_office, settings):
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_staff(pilot)
        await pilot.press("f3")
        assert app.focused.id == "branch-table"
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, FormDialog))
        await pilot.press(*"bj-cy", "enter", *"北京朝阳支公司", "enter", *"nobody", "f2")
        form = app.screen
        await wait_for(pilot, lambda: "active staff" in error_text(form, "records_person"))
        await pilot.press(*("backspace",) * 6, *"supervisor", "f2")
        await wait_for(pilot, lambda: app.screen is screen and screen.branch_list)
        assert (screen.branch_list[0].code, screen.branch_list[0].records_person) == ("BJ-CY", "supervisor")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FormDialog))
        await pilot.press("tab", "tab", *("backspace",) * 10, *"officer", "f2")
        await wait_for(pilot, lambda: app.screen is screen and screen.branch_list[0].records_person == "officer")
    assert [b.records_person for b in branches.list_branches(staff.authenticate("clerk", TEST_PASSWORD))] == \
        ["officer"]


async def test_disabling_asks_first_and_ends_the_persons_live_session(demo_office, settings, monkeypatch):
    import tui.app

    monkeypatch.setattr(tui.app, "SESSION_CHECK_SECONDS", 0.2)
    clerk_app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with clerk_app.run_test(size=(80, 24)) as clerk_pilot:
        await login(clerk_pilot, "clerk")
        admin = staff.authenticate("admin", TEST_PASSWORD)
        staff.set_active(admin, "clerk", False)  # as the admin's screen does, from another session
        await wait_for(clerk_pilot, lambda: isinstance(clerk_app.screen, LoginScreen), timeout=10)
        assert clerk_app.actor is None
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_staff(pilot)
        await select(pilot, screen, "reviewer")
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen)
        assert next(p for p in screen.people if p.username == "reviewer").active
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: not next(p for p in screen.people if p.username == "reviewer").active)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
