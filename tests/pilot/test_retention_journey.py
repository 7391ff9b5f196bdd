"""A terminated customer from eligible to destroyed at 80×24, keyboard only: officer, supervisor, register."""

from __future__ import annotations

from textual.widgets import DataTable, Input

from models import ledger, retention, staff
from models.customers import Customer
from models.destruction import DestructionRequest
from models.keystore import DataKey
from screens.destruction import DestructionApprovalScreen
from screens.dialogs.place_hold import PlaceHoldDialog
from screens.dialogs.text_prompt import TextPromptDialog
from screens.holds import HoldsScreen
from screens.home import HomeScreen
from screens.register import CertificateScreen, RegisterScreen
from screens.retention import RetentionScreen
from screens.retention_rules import RetentionRulesScreen
from tests.conftest import TEST_PASSWORD
from tests.pilot.conftest import wait_for
from tui.app import RecordKeeperApp

ENGLISH = {"LANG": "en_US.UTF-8"}


def _terminate_some(count: int) -> list[str]:
    officer = staff.authenticate("officer", TEST_PASSWORD)
    numbers = [no for (no,) in Customer.select(Customer.customer_no).order_by(Customer.customer_no).tuples()]
    for number in numbers[:count]:
        retention.record_termination(officer, number, "2014-06-30", False)
    return numbers[:count]


async def _login(pilot, app, username: str) -> None:
    await pilot.press(*username, "enter", *TEST_PASSWORD, "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and app.screen.entries)


async def _open(pilot, app, entry_id: str, screen_type) -> None:
    index = [e.entry_id for e in app.screen.entries].index(entry_id)
    await pilot.press(str(index + 1))
    await wait_for(pilot, lambda: isinstance(app.screen, screen_type))


def _rows(app, table_id: str) -> list[list[str]]:
    table = app.screen.query_one(table_id, DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def _type_into_dialog(pilot, app, text: str) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, TextPromptDialog))
    await pilot.press(*text, "enter")


async def test_from_eligible_to_destroyed_through_the_screens(demo_office, settings):
    eligible = _terminate_some(2)
    keys = [Customer.get(Customer.customer_no == number).key_id for number in eligible]

    # The records officer sees why each customer is eligible and files a request for both.
    app = RecordKeeperApp(settings, environ=ENGLISH)
    async with app.run_test(size=(80, 24)) as pilot:
        await _login(pilot, app, "officer")
        await _open(pilot, app, "retention", RetentionScreen)
        await wait_for(pilot, lambda: len(_rows(app, "#eligible")) == 2)
        assert [row[1] for row in _rows(app, "#eligible")] == eligible
        assert "5y from end 2014-06-30" in _rows(app, "#eligible")[0][4]
        assert "art. 87" in str(app.screen.query_one("#retention-basis").render())
        await pilot.press("a", "f2")
        await _type_into_dialog(pilot, app, "ok")  # too short: refused beside the field, text kept
        await wait_for(pilot, lambda: "at least 4" in str(app.screen.query_one("#prompt-error").render()))
        assert app.screen.query_one("#prompt-input", Input).value == "ok"
        await pilot.press(*" - retention period over", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RetentionScreen) and _rows(app, "#requests"))
        await wait_for(pilot, lambda: _rows(app, "#requests")[0][1] == "waiting")
        await pilot.press("ctrl+q")

    # A supervisor (not the requester) approves it, seeing category, dates, basis and holds.
    app = RecordKeeperApp(settings, environ=ENGLISH)
    async with app.run_test(size=(80, 24)) as pilot:
        await _login(pilot, app, "supervisor")
        await _open(pilot, app, "destruction", DestructionApprovalScreen)
        await wait_for(pilot, lambda: len(_rows(app, "#items")) == 2)
        item = _rows(app, "#items")[0]
        assert item[:4] == [eligible[0], "terminated", "2014-06-30", "2019-06-30"] and item[5] == "no"
        await pilot.press("f2")
        await _type_into_dialog(pilot, app, "checked against the paper files")
        await wait_for(pilot, lambda: isinstance(app.screen, DestructionApprovalScreen) and not _rows(app, "#pending"))
        await pilot.press("ctrl+q")
    assert DestructionRequest.get().status == "approved"

    # The officer executes it after a confirmation; the customers are gone, keys first.
    app = RecordKeeperApp(settings, environ=ENGLISH)
    async with app.run_test(size=(80, 24)) as pilot:
        await _login(pilot, app, "officer")
        await _open(pilot, app, "retention", RetentionScreen)
        await wait_for(pilot, lambda: _rows(app, "#requests") and _rows(app, "#requests")[0][1] == "approved")
        await pilot.press("tab", "f9")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ConfirmDialog")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, RetentionScreen)
                       and _rows(app, "#requests")[0][1] == "destroyed", timeout=20)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))

        # The register shows it, and the certificate of destruction is exported from it.
        await _open(pilot, app, "register", RegisterScreen)
        await wait_for(pilot, lambda: len(_rows(app, "#register")) == 2)
        assert sorted(row[0] for row in _rows(app, "#register")) == eligible
        assert "approved by supervisor" in str(app.screen.query_one("#register-detail").render())
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CertificateScreen))
        assert "DR" in app.screen.text and all(number in app.screen.text for number in eligible)
        await pilot.press("f2")
        exported = settings.export_dir / f"destruction-certificate-{DestructionRequest.get().request_no}.txt"
        await wait_for(pilot, exported.exists)
        await pilot.press("ctrl+q")
    for number, key_id in zip(eligible, keys):
        assert not Customer.select().where(Customer.customer_no == number).exists()
        assert not DataKey.select().where(DataKey.key_id == key_id).exists()
    assert DestructionRequest.get().status == "done"
    assert len(ledger.read_entries()) == 2


async def test_a_hold_placed_from_the_retention_screen_takes_the_customer_off_the_list(demo_office, settings):
    eligible = _terminate_some(2)
    app = RecordKeeperApp(settings, environ=ENGLISH)
    async with app.run_test(size=(80, 24)) as pilot:
        await _login(pilot, app, "officer")
        await _open(pilot, app, "retention", RetentionScreen)
        await wait_for(pilot, lambda: len(_rows(app, "#eligible")) == 2)
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, PlaceHoldDialog))
        assert app.screen.query_one("#hold-customer", Input).value == eligible[0]
        await pilot.press("down", "enter")  # dispute
        await pilot.press(*"case 17", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RetentionScreen) and len(_rows(app, "#eligible")) == 1)
        assert _rows(app, "#eligible")[0][1] == eligible[1]
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        await _open(pilot, app, "holds", HoldsScreen)
        await wait_for(pilot, lambda: _rows(app, "#holds"))
        assert _rows(app, "#holds")[0][:2] == [eligible[0], "Dispute or litigation"]
        await pilot.press("enter")
        await wait_for(pilot, lambda: "case 17" in str(app.screen.query_one("#holds-notes").render()))
        await pilot.press("ctrl+q")
    assert Customer.get(Customer.customer_no == eligible[0]).legal_hold


async def test_a_wrong_customer_number_in_the_hold_form_is_shown_beside_it(demo_office, settings):
    app = RecordKeeperApp(settings, environ=ENGLISH)
    async with app.run_test(size=(80, 24)) as pilot:
        await _login(pilot, app, "supervisor")
        await _open(pilot, app, "holds", HoldsScreen)
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, PlaceHoldDialog))
        await pilot.press(*"C2026999999", "enter", "enter", *"claim 9", "enter")
        error = app.screen.query_one("#hold-customer-error")
        await wait_for(pilot, lambda: "no customer" in str(error.render()))
        assert isinstance(app.screen, PlaceHoldDialog)
        assert app.screen.query_one("#hold-note", Input).value == "claim 9"  # nothing typed is lost
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HoldsScreen))
        await pilot.press("ctrl+q")


async def test_an_admin_changes_a_period_but_never_below_the_minimum(demo_office, settings):
    app = RecordKeeperApp(settings, environ=ENGLISH)
    async with app.run_test(size=(80, 24)) as pilot:
        await _login(pilot, app, "admin")
        await _open(pilot, app, "retention_rules", RetentionRulesScreen)
        await wait_for(pilot, lambda: len(_rows(app, "#rules")) == 3)
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPromptDialog))
        await pilot.press("backspace", "4", "enter")
        await wait_for(pilot, lambda: "legal minimum" in str(app.screen.query_one("#prompt-error").render()))
        await pilot.press("backspace", "7", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RetentionRulesScreen) and _rows(app, "#rules")[0][1] == "7")
        await pilot.press("ctrl+q")
    assert retention.current_years()[retention.TERMINATED_SHORT] == 7


async def test_the_officer_withdraws_a_request_still_waiting(demo_office, settings):
    eligible = _terminate_some(1)
    app = RecordKeeperApp(settings, environ=ENGLISH)
    async with app.run_test(size=(80, 24)) as pilot:
        await _login(pilot, app, "officer")
        await _open(pilot, app, "retention", RetentionScreen)
        await wait_for(pilot, lambda: len(_rows(app, "#eligible")) == 1)
        await pilot.press("f2")
        await _type_into_dialog(pilot, app, "retention period over")
        await wait_for(pilot, lambda: isinstance(app.screen, RetentionScreen) and _rows(app, "#requests")
                       and not _rows(app, "#eligible"))
        await pilot.press("tab", "w")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ConfirmDialog")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, RetentionScreen)
                       and _rows(app, "#requests")[0][1] == "withdrawn" and len(_rows(app, "#eligible")) == 1)
        assert _rows(app, "#eligible")[0][1] == eligible[0]
        await pilot.press("ctrl+q")
