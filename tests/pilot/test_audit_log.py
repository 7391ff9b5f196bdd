"""The audit log screen, keyboard only at 80×24: filter, page, open an entry, verify, find the bad entry."""

from __future__ import annotations

from textual.widgets import DataTable, OptionList, ProgressBar, Static

from models import audit
from models.audit import AuditEntry
from screens.audit_log import AuditEntryScreen, AuditLogScreen, VerifyScreen
from screens.help import HelpScreen
from screens.home import HomeScreen
from tests.conftest import TEST_PASSWORD
from tests.models.test_audit import disable_guards, tamper_update
from tests.pilot.conftest import wait_for
from tui.app import RecordKeeperApp


async def login(pilot, username: str) -> None:
    await pilot.press(*username, "enter", *TEST_PASSWORD, "enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, HomeScreen) and pilot.app.screen.entries)


async def open_menu(pilot, entry_id: str) -> None:
    home = pilot.app.screen
    index = next(i for i, e in enumerate(home.entries) if e.entry_id == entry_id)
    home.query_one("#menu", OptionList).highlighted = index
    await pilot.press("enter")
    await wait_for(pilot, lambda: pilot.app.screen is not home)


def footer_fits(screen) -> list[str]:
    """Key hints of the footer that are not wholly on the 80-column screen."""
    from textual.widgets._footer import FooterKey

    visible = screen._compositor.visible_widgets
    return [f"{key.key_display} {key.description}" for key in screen.query(FooterKey)
            if key.display and (key not in visible or key.region.right > screen.size.width)]


def rows(screen) -> list[int]:
    return [row.seq for row in screen.page.rows] if screen.page else []


async def loaded(pilot, screen) -> None:
    await wait_for(pilot, lambda: screen.page is not None and not any(
        w.is_running for w in pilot.app.workers if w.group == "audit-page"))


async def test_filter_page_and_open_an_entry(demo_office, settings):
    for i in range(130):
        audit.append(actor_id=None, actor="wang", action="REVEAL" if i % 2 else "VIEW", object_type="customer",
                     object_id=f"C2026{i % 5:06d}")
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "auditor")
        await open_menu(pilot, "audit")
        screen = app.screen
        assert isinstance(screen, AuditLogScreen)
        await loaded(pilot, screen)
        assert footer_fits(screen) == []
        newest = AuditEntry.select().order_by(AuditEntry.seq.desc()).get().seq
        assert rows(screen)[0] == newest and len(rows(screen)) == 50
        # Filter: / goes to the fields; Enter moves on; Enter on the last field applies.
        await pilot.press("slash")
        await pilot.press("enter", "enter", *"wang", "enter", *"reveal", "enter", *"c2026000003", "enter", "enter")
        await wait_for(pilot, lambda: screen.flt.action == "REVEAL" and screen.page and all(
            r.action == "REVEAL" and r.object_id == "C2026000003" for r in screen.page.rows))
        await loaded(pilot, screen)
        expected = [e.seq for e in AuditEntry.select().where(
            AuditEntry.actor == "wang", AuditEntry.action == "REVEAL", AuditEntry.object_id == "C2026000003")
            .order_by(AuditEntry.seq.desc())]
        assert rows(screen) == expected and isinstance(app.focused, DataTable)
        # Clear the filter and walk past the end of the first page into the older one.
        await pilot.press("f8")
        await wait_for(pilot, lambda: screen.flt.is_empty() and len(rows(screen)) == 50)
        await loaded(pilot, screen)
        first_page = rows(screen)
        for _ in range(50):
            await pilot.press("down")
        await wait_for(pilot, lambda: rows(screen) and rows(screen)[0] < first_page[-1])
        assert rows(screen)[0] == first_page[-1] - 1
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.cursor_row == 0)
        await pilot.press("up")
        await wait_for(pilot, lambda: rows(screen) == first_page)
        await wait_for(pilot, lambda: table.cursor_row == len(first_page) - 1)  # back where it left off
        # Enter opens the entry; ← and → walk the chain; F1 lists the keys.
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AuditEntryScreen) and app.screen.detail)
        entry = app.screen
        shown = entry.detail.seq
        await pilot.press("left")
        await wait_for(pilot, lambda: entry.detail.seq == shown - 1)
        body = str(entry.query_one("#entry-body", Static).render())
        assert "Links back" in body and "yes" in body and entry.detail.hash[:20] in body
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is entry)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)


async def test_bad_filter_input_is_shown_beside_the_fields_and_kept(demo_office, settings):
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "supervisor")
        await open_menu(pilot, "audit")
        screen = app.screen
        await loaded(pilot, screen)
        await pilot.press("slash", *"2026-02-30", "f5")
        error = screen.query_one("#audit-error", Static)
        await wait_for(pilot, lambda: "From" in str(error.render()) and error.display)
        assert screen.query_one("#f-since").value == "2026-02-30" and app.focused.id == "f-since"
        await pilot.press("escape")
        assert isinstance(app.focused, DataTable) and app.screen is screen
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))


async def test_verification_finds_the_tampered_entry_and_opens_it(demo_office, settings):
    disable_guards()
    tamper_update(7, action="NOTHING_TO_SEE")
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "auditor")
        await open_menu(pilot, "audit")
        screen = app.screen
        await loaded(pilot, screen)
        await pilot.press("f9")
        await wait_for(pilot, lambda: isinstance(app.screen, VerifyScreen) and app.screen.result is not None)
        verify = app.screen
        assert not verify.result.ok and verify.result.first_bad_seq == 7
        assert "TAMPERED" in str(verify.query_one("#verify-result", Static).render())
        assert verify.query_one(ProgressBar).progress == 6
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, AuditEntryScreen) and app.screen.detail)
        assert app.screen.detail.seq == 7 and not app.screen.detail.content_matches
        assert "NO" in str(app.screen.query_one("#entry-body", Static).render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen and screen.page and 7 in rows(screen))
        table = screen.query_one(DataTable)
        assert rows(screen)[table.cursor_row] == 7


async def test_an_intact_chain_verifies_with_a_full_bar(demo_office, settings):
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "supervisor")
        await open_menu(pilot, "audit")
        await loaded(pilot, app.screen)
        await pilot.press("f9")
        await wait_for(pilot, lambda: isinstance(app.screen, VerifyScreen) and app.screen.result is not None)
        assert app.screen.result.ok
        assert "INTACT" in str(app.screen.query_one("#verify-result", Static).render())
        bar = app.screen.query_one(ProgressBar)
        assert bar.progress == bar.total
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, AuditLogScreen))
    assert AuditEntry.select().where(AuditEntry.action == "AUDIT_VERIFY").count() == 1


async def test_go_to_an_entry_number(demo_office, settings):
    app = RecordKeeperApp(settings, environ={"LANG": "en_US.UTF-8"})
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, "auditor")
        await open_menu(pilot, "audit")
        screen = app.screen
        await loaded(pilot, screen)
        await pilot.press("f7", *"x12", "enter")  # letters are refused by the field
        await wait_for(pilot, lambda: screen.page and rows(screen) and rows(screen)[0] == 12)
        await pilot.press("f7", "enter")
        await wait_for(pilot, lambda: "entry number" in str(app.screen.query_one("#err-seq").render()))
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.page and rows(screen) and rows(screen)[0] == 12)
        assert rows(screen) == list(range(12, 0, -1))
