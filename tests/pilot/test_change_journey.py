"""Keyboard-only at 80×24: a clerk records a customer-reported phone change → a supervisor sees the diff and
approves → the record has the new phone and its history says who changed what and when. Plus the diff
widget's rendering, a stale approval's three-way view, form errors, and the verification queue."""

from __future__ import annotations

import datetime as dt

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Input, OptionList, Static

from models import change_requests as cr
from models import customers, history, verification
from models.change_requests import ChangeRequest
from models.customers import Customer
from screens.approvals import ApprovalDetailScreen, ApprovalQueueScreen, ConflictScreen
from screens.change_request import ChangeRequestScreen, MyRequestsScreen, RequestOutcomeScreen
from screens.customer_file import CustomerFileScreen
from screens.dialogs.note import NoteDialog
from screens.home import HomeScreen
from screens.login import LoginScreen
from screens.verification import VerificationCheckScreen, VerificationQueueScreen
from tests.conftest import TEST_PASSWORD
from tests.pilot.conftest import wait_for
from tui.app import RecordKeeperApp
from tui.widgets.diff_table import DiffGrid, DiffRow, DiffState, DiffTable, diff_state, marker_text

ENV = {"LANG": "en_US.UTF-8"}
NEW_MOBILE = "13912345678"
TABS_FROM_REASON_TO_MOBILE = 7  # full name, sex, date of birth, ID type, ID number, nationality, mobile


async def login(pilot, app, username: str) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
    await pilot.press(*username, "enter", *TEST_PASSWORD, "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))


async def open_menu(pilot, app, entry_id: str) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and bool(app.screen.entries))
    index = [e.entry_id for e in app.screen.entries].index(entry_id)
    await pilot.press(str(index + 1))


def menu_count(app, entry_id: str) -> int | None:
    return next(e.count for e in app.screen.entries if e.entry_id == entry_id)


def first_customer(category: str = "active") -> str:
    row = (Customer.select(Customer.customer_no).where(Customer.category == category)
           .order_by(Customer.customer_no).first())
    if row is None:
        row = Customer.select(Customer.customer_no).order_by(Customer.customer_no).first()
    return row.customer_no


def cells(table: DataTable, row: int) -> list[str]:
    return [cell.plain if isinstance(cell, Text) else str(cell) for cell in table.get_row_at(row)]


def grid_rows(screen) -> list[list[str]]:
    grid = screen.query_one(DiffGrid)
    return [cells(grid, i) for i in range(grid.row_count)]


async def open_form(pilot, app, customer_no: str) -> ChangeRequestScreen:
    screen = ChangeRequestScreen(app.actor, customer_no)
    await app.push_screen(screen)
    await wait_for(pilot, lambda: screen.record is not None)
    return screen


# --- the journey -------------------------------------------------------------------------------


async def test_phone_change_from_report_to_approval(demo_office, settings):
    number = first_customer()
    customer_id = customers._row(number)["id"]
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "clerk")
        file_screen = CustomerFileScreen(app.actor, number)
        await app.push_screen(file_screen)
        await wait_for(pilot, lambda: file_screen.file is not None)
        await pilot.press("f4")  # the customer file's key for a change request
        await wait_for(pilot, lambda: isinstance(app.screen, ChangeRequestScreen) and app.screen.record is not None)
        form = app.screen
        assert form.focused is form.query_one("#in-source")
        # source (customer report), channel (phone) and date (today) are filled in; type the reason and phone
        await pilot.press("tab", "tab", "tab", *"customer called with a new phone")
        await pilot.press(*["tab"] * TABS_FROM_REASON_TO_MOBILE, *NEW_MOBILE, "f2")
        await wait_for(pilot, lambda: app.screen is file_screen)
        request = ChangeRequest.get()
        assert request.fields == "mobile" and request.source == "customer_report" and request.channel == "phone"
        await pilot.press("ctrl+q")

    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "supervisor")
        assert menu_count(app, "changes") == 1
        await open_menu(pilot, app, "changes")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalQueueScreen) and bool(app.screen.requests))
        queue_row = cells(app.screen.query_one("#queue", DataTable), 0)
        assert queue_row[1] == number and "Mobile phone" in queue_row[3] and queue_row[5] == "clerk"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalDetailScreen) and app.screen.detail is not None)
        detail = app.screen
        rows = {r[0]: r for r in grid_rows(detail)}
        assert rows["Mobile phone"][1] == "* changed" and rows["Mobile phone"][3] == NEW_MOBILE
        assert rows["Full name"][1] == "" and "*" in rows["Full name"][2]  # unchanged personal fields stay masked
        info = str(detail.query_one("#detail-info", Static).render())
        assert "customer called with a new phone" in info and "customer report" in info
        # the cursor starts on the first change, whose full values show under the table
        assert "→ " + NEW_MOBILE in str(detail.query_one("#diff-detail", Static).render())
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, NoteDialog))
        await pilot.press(*"confirmed with the customer", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalQueueScreen) and not app.screen.requests
                       and "Nothing is waiting" in str(app.screen.query_one("#queue-message", Static).render()))
        await pilot.press("ctrl+q")

    event = history._history_of(customer_id)[0]
    assert (event.kind, event.actor, event.fields, event.details["requested_by"]) == (
        "changed", "supervisor", ("mobile",), "clerk")

    # the file: the new phone (revealed with a purpose), and who changed what and when
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "clerk")
        file_screen = CustomerFileScreen(app.actor, number)
        await app.push_screen(file_screen)
        await wait_for(pilot, lambda: file_screen.file is not None and bool(file_screen.lines))
        lines = file_screen.query_one("#file-lines", OptionList)
        texts = [str(lines.get_option_at_index(i).prompt) for i in range(lines.option_count)]
        changed = [t for t in texts if "supervisor" in t and "changed" in t]
        assert changed and "Mobile phone" in changed[0] and event.at.strftime("%Y-%m-%d") in changed[0]
        target = next(i for i, line in enumerate(file_screen.lines) if line.kind == "field" and line.key == "mobile")
        steps = target - lines.highlighted
        await pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps), "f3")
        await wait_for(pilot, lambda: app.screen is not file_screen)
        await pilot.press(*"check the new number", "f2")
        await wait_for(pilot, lambda: "mobile" in file_screen.revealed)
        assert file_screen.revealed["mobile"] == NEW_MOBILE
        assert NEW_MOBILE in str(lines.get_option_at_index(target).prompt)
        await pilot.press("ctrl+q")

    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "clerk")
        assert menu_count(app, "my_requests") == 1  # the outcome shows on the requester's home
        side = app.screen.query_one("#home-side", Static)
        await wait_for(pilot, lambda: f"Change approved: {number}" in str(side.render()))
        await open_menu(pilot, app, "my_requests")
        await wait_for(pilot, lambda: isinstance(app.screen, MyRequestsScreen) and bool(app.screen.requests))
        row = cells(app.screen.query_one("#mine", DataTable), 0)
        assert row[3] == "NEW approved" and row[4] == "supervisor"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RequestOutcomeScreen) and app.screen.detail is not None)
        assert "confirmed with the customer" in str(app.screen.query_one("#outcome-info", Static).render())
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and menu_count(app, "my_requests") == 0)
        assert "Change approved" not in str(app.screen.query_one("#home-side", Static).render())
        await pilot.press("ctrl+q")


def app_actor(username: str):
    from models import staff

    return staff.authenticate(username, TEST_PASSWORD)


# --- the form -----------------------------------------------------------------------------------


async def test_bad_values_show_beside_their_fields_and_nothing_is_lost(demo_office, settings):
    number = first_customer()
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "clerk")
        form = await open_form(pilot, app, number)
        await pilot.press("tab", "tab", "tab", *"moved house")
        await pilot.press(*["tab"] * TABS_FROM_REASON_TO_MOBILE, *"12345", "f2")
        error = form.query_one("#err-mobile", Static)
        await wait_for(pilot, lambda: error.display and "11-digit" in str(error.render()))
        assert form.query_one("#in-mobile", Input).value == "12345"
        assert form.query_one("#in-reason", Input).value == "moved house"
        assert form.focused is form.query_one("#in-mobile")
        assert ChangeRequest.select().count() == 0
        # Esc with typed values asks first; N keeps the form
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is not form)
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is form)
        await pilot.press("ctrl+q")


async def test_f6_clears_a_field_and_f4_brings_in_the_current_value(demo_office, settings):
    number = first_customer()
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "clerk")
        form = await open_form(pilot, app, number)
        form.query_one("#in-employer", Input).focus()
        await pilot.press("f6")
        assert "cleared" in str(form.query_one("#now-employer", Static).render())
        assert form.changes() == {"employer": ""}
        form.query_one("#in-street", Input).focus()
        await pilot.press("f4")
        street = form.query_one("#in-street", Input)
        await wait_for(pilot, lambda: street.value != "")
        from models.audit import AuditEntry
        reveal = AuditEntry.select().where(AuditEntry.action == "REVEAL").order_by(AuditEntry.seq.desc()).get()
        assert reveal.fields == "street" and "change request" in reveal.purpose
        assert form.changes()["street"] == street.value  # unchanged: the service will ignore it
        await pilot.press("ctrl+q")


# --- conflicts and four-eyes ---------------------------------------------------------------------


async def test_a_stale_approval_shows_the_three_way_view(demo_office, settings):
    number = first_customer()
    clerk = app_actor("clerk")
    supervisor = app_actor("supervisor")
    first = cr.submit_change_request(clerk, number, 1, {"mobile": NEW_MOBILE}, source="clerk_correction",
                                     reason="typo at intake")
    second = cr.submit_change_request(clerk, number, 1, {"mobile": "13800001111"}, source="clerk_correction",
                                      reason="another number")
    cr.approve_change_request(supervisor, first.request_id)
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "supervisor")
        await open_menu(pilot, app, "changes")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalQueueScreen) and bool(app.screen.requests))
        assert cells(app.screen.query_one("#queue", DataTable), 0)[3].startswith("~ ")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalDetailScreen) and app.screen.detail is not None)
        assert "changed since this request" in str(app.screen.query_one("#detail-warning", Static).render())
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, NoteDialog))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConflictScreen) and app.screen.view is not None)
        rows = {r[0]: r for r in grid_rows(app.screen)}
        assert rows["Mobile phone"][1:] == ["! conflict", customers_old_mobile(number, first), NEW_MOBILE,
                                            "13800001111"]
        assert "version 1 → 2" in str(app.screen.query_one("#conflict-info", Static).render())
        assert app.screen.query_one(DiffTable).states() == [DiffState.CONFLICT]
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, NoteDialog))
        await pilot.press("enter")  # the suggested note
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalDetailScreen)
                       and app.screen.detail is not None and app.screen.detail.summary.status == "rejected")
        await pilot.press("ctrl+q")
    assert ChangeRequest.get_by_id(second.request_id).status == "rejected"
    shown = customers.reveal_fields(clerk, number, ["mobile"], "check the conflict test").values
    assert shown["mobile"] == NEW_MOBILE  # never a silent overwrite


def customers_old_mobile(number: str, request) -> str:
    """The mobile the record had when the requests were made (from the stored base snapshot)."""
    from models import keystore

    row = ChangeRequest.get_by_id(request.request_id)
    base = cr._open(keystore.load_data_key(row.key_id), row.key_id, row.id, "base", row.base)
    return base["mobile"]


async def test_a_supervisor_cannot_approve_their_own_request(demo_office, settings):
    from models import staff
    from models.db import write

    with write():
        staff._insert_staff("lead", "Team lead", TEST_PASSWORD, ("clerk", "supervisor"), must_change=False)
    lead = app_actor("lead")
    number = first_customer()
    cr.submit_change_request(lead, number, 1, {"mobile": NEW_MOBILE}, source="clerk_correction", reason="typo")
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "lead")
        assert menu_count(app, "changes") == 0  # one's own requests are not counted as waiting
        await open_menu(pilot, app, "changes")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalQueueScreen) and bool(app.screen.requests))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalDetailScreen) and app.screen.detail is not None)
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, NoteDialog))
        await pilot.press("enter")
        warning = app.screen.query_one("#detail-warning", Static)
        await wait_for(pilot, lambda: "nobody decides their own" in str(warning.render()))
        await pilot.press("ctrl+q")
    assert ChangeRequest.get().status == "pending"


# --- verification --------------------------------------------------------------------------------


async def test_verification_queue_outcomes(demo_office, settings):
    today = verification.clock.today()
    numbers = [r.customer_no for r in Customer.select(Customer.customer_no)
               .where(Customer.next_verification_due.is_null(False)).order_by(Customer.customer_no).limit(3)]
    for days, number in zip((30, 10, 0), numbers):
        Customer.update(next_verification_due=today - dt.timedelta(days=days)).where(
            Customer.customer_no == number).execute()
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "clerk")
        assert menu_count(app, "verification") == 3
        await open_menu(pilot, app, "verification")
        await wait_for(pilot, lambda: isinstance(app.screen, VerificationQueueScreen) and app.screen.page is not None)
        table = app.screen.query_one("#due", DataTable)
        assert [cells(table, i)[2] for i in range(table.row_count)] == numbers
        assert cells(table, 0)[0] == "30 d" and cells(table, 2)[0] == "today"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, VerificationCheckScreen) and app.screen.card is not None)
        await pilot.press("f4")
        contact = app.screen.query_one("#check-contact", Static)
        await wait_for(pilot, lambda: "*" not in str(contact.render()).split("\n")[1])
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, NoteDialog))
        await pilot.press("enter")  # a note is required
        assert "at least 4" in str(app.screen.query_one("#note-error", Static).render())
        await pilot.press(*"no answer twice", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, VerificationQueueScreen)
                       and app.screen.page is not None and app.screen.page.total_due == 2)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, VerificationCheckScreen) and app.screen.card is not None)
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, NoteDialog))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, VerificationQueueScreen)
                       and app.screen.page is not None and app.screen.page.total_due == 1)
        # changed: the form opens filled from the check, with the periodic-check source
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, VerificationCheckScreen) and app.screen.card is not None)
        await pilot.press("f4")
        await wait_for(pilot, lambda: bool(app.screen.revealed))
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, ChangeRequestScreen) and app.screen.record is not None)
        form = app.screen
        assert form.query_one("#in-source").value == "periodic_check"
        assert form.query_one("#in-mobile", Input).value == app_mobile(numbers[2])
        form.query_one("#in-email", Input).focus()
        await pilot.press(*"new@example.com", "f2")
        await wait_for(pilot, lambda: isinstance(app.screen, VerificationQueueScreen)
                       and app.screen.page is not None and app.screen.page.total_due == 0)
        await pilot.press("ctrl+q")
    request = ChangeRequest.get()
    assert request.fields == "email" and request.source == "periodic_check"


def app_mobile(number: str) -> str:
    return customers.reveal_fields(app_actor("clerk"), number, ["mobile"], "check the test").values["mobile"]


async def test_supervisor_home_counts_overdue_and_flags(demo_office, settings):
    today = verification.clock.today()
    number = first_customer()
    Customer.update(next_verification_due=today - dt.timedelta(days=3)).where(
        Customer.customer_no == number).execute()
    clerk = app_actor("clerk")
    for _ in range(3):
        verification.record_check(clerk, number, "unreachable", "no answer")
    Customer.update(next_verification_due=today - dt.timedelta(days=3)).where(
        Customer.customer_no == number).execute()
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "supervisor")
        assert menu_count(app, "verification_overdue") == 1 and menu_count(app, "unreachable") == 1
        await open_menu(pilot, app, "unreachable")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "UnreachableScreen" and bool(app.screen.items))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, VerificationCheckScreen) and app.screen.card is not None)
        assert "FLAGGED" in str(app.screen.query_one("#check-message", Static).render())
        assert not app.screen.check_action("confirmed", ())  # supervisors do not record checks
        await pilot.press("f9")
        await wait_for(pilot, lambda: isinstance(app.screen, NoteDialog))
        await pilot.press(*"branch will visit", "enter")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "UnreachableScreen" and not app.screen.items)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and menu_count(app, "unreachable") == 0)
        await pilot.press("ctrl+q")


# --- the diff widget -----------------------------------------------------------------------------


def test_diff_states_two_and_three_way():
    assert diff_state("a", "a") is DiffState.UNCHANGED
    assert diff_state("a", "b") is DiffState.CHANGED
    assert diff_state("a", "") is DiffState.CLEARED
    assert diff_state("", "b") is DiffState.ADDED
    # three-way: base, current (old), proposed (new)
    assert diff_state("a", "b", "a", three_way=True) is DiffState.CHANGED
    assert diff_state("x", "b", "a", three_way=True) is DiffState.CONFLICT
    assert diff_state("x", "x", "a", three_way=True) is DiffState.SINCE
    assert diff_state("a", "", "a", three_way=True) is DiffState.CLEARED
    assert diff_state("a", "a", "a", three_way=True) is DiffState.UNCHANGED
    assert marker_text(DiffState.CLEARED) == "- cleared" and marker_text(DiffState.UNCHANGED) == ""


class DiffApp(App):
    def __init__(self, rows, three_way=False):
        super().__init__()
        self.rows, self.three_way = rows, three_way

    def get_theme_variable_defaults(self) -> dict[str, str]:
        from themes import THEME_VARIABLE_DEFAULTS

        return {**super().get_theme_variable_defaults(), **THEME_VARIABLE_DEFAULTS}

    def compose(self) -> ComposeResult:
        yield DiffTable(self.rows, three_way=self.three_way)


async def test_diff_table_marks_unchanged_changed_and_cleared_rows_in_words():
    rows = [DiffRow("Full name", "王*", "王*"), DiffRow("Mobile phone", "13800138000", "13912345678"),
            DiffRow("Employer", "某某公司", ""), DiffRow("Email", "", "new@example.com"),
            DiffRow("Street address", "x" * 200, "[b]markup[/b] \x1b[31mred"),
            DiffRow("Notes", "", "")]
    app = DiffApp(rows)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(DiffTable)
        grid = app.query_one(DiffGrid)
        await wait_for(pilot, lambda: grid.row_count == len(rows))
        shown = [cells(grid, i) for i in range(grid.row_count)]
        assert [r[1] for r in shown] == ["", "* changed", "- cleared", "+ added", "* changed", ""]
        assert shown[2][3] == "(empty)" and shown[5][2] == "(empty)"
        assert shown[4][2].endswith("…") and "\x1b" not in shown[4][3] and "[b]markup[/b]" in shown[4][3]
        # every column fits in 80 cells, so the text reads without colour or scrolling sideways
        assert sum(c.width + 2 * grid.cell_padding for c in grid.columns.values()) <= 80
        assert table.toggle_unchanged() is False
        assert [r.label for r in table._shown] == ["Mobile phone", "Employer", "Email", "Street address"]
        await pilot.press("down")
        assert "某某公司 → (empty)" in str(app.query_one("#diff-detail", Static).render())


async def test_three_way_table_fits_80_columns():
    rows = [DiffRow("Mobile phone", "13900000000", "13811111111", base="13800000000"),
            DiffRow("City", "上海市", "上海市", base="北京市")]
    app = DiffApp(rows, three_way=True)
    async with app.run_test(size=(80, 24)) as pilot:
        grid = app.query_one(DiffGrid)
        await wait_for(pilot, lambda: grid.row_count == 2)
        assert [cells(grid, i)[1] for i in range(2)] == ["! conflict", "~ since"]
        assert cells(grid, 0)[2:] == ["13800000000", "13900000000", "13811111111"]
        assert sum(c.width + 2 * grid.cell_padding for c in grid.columns.values()) <= 80
        assert [str(c.label) for c in grid.columns.values()] == ["Field", "Change", "Base", "Current", "Proposed"]


async def test_evidence_from_the_inbox_reaches_the_supervisor(demo_office, settings):
    (settings.inbox_dir / "phone-bill.pdf").write_bytes(b"%PDF-1.4\n" + b"x" * 2048)
    number = first_customer()
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "clerk")
        form = await open_form(pilot, app, number)
        inbox = form.query_one("#cr-inbox")
        await wait_for(pilot, lambda: inbox.option_count == 1)
        await pilot.press("shift+tab", "shift+tab")   # wraps round to the evidence list
        assert form.focused is inbox
        await pilot.press("space")
        assert inbox.selected == ["phone-bill.pdf"]
        await pilot.press("tab", "tab", "tab", "tab", "tab", *"new phone, bill attached")
        await pilot.press(*["tab"] * TABS_FROM_REASON_TO_MOBILE, *NEW_MOBILE, "f2")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        await pilot.press("ctrl+q")
    assert not (settings.inbox_dir / "phone-bill.pdf").exists()
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "supervisor")
        await open_menu(pilot, app, "changes")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalQueueScreen) and bool(app.screen.requests))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalDetailScreen) and app.screen.detail is not None)
        assert "Evidence: Other: phone-bill.pdf" in str(app.screen.query_one("#detail-info", Static).render())
        await pilot.press("f7")
        await wait_for(pilot, lambda: any(settings.export_dir.glob("*.pdf")))
        await pilot.press("ctrl+q")


async def test_termination_asks_for_its_date_and_policy_length(demo_office, settings):
    number = first_customer()
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "clerk")
        form = await open_form(pilot, app, number)
        chain = form.focus_chain
        # source: clerk correction (the report's channel and date empty themselves)
        await pilot.press("enter", "down", "down", "enter")
        await wait_for(pilot, lambda: form.query_one("#in-source").value == "clerk_correction")
        assert form.query_one("#in-channel").is_blank() and form.query_one("#in-reported_on", Input).value == ""
        await pilot.press("tab", "tab", "tab", *"all policies ended")
        to_category = chain.index(form.query_one("#in-category")) - chain.index(form.query_one("#in-reason"))
        await pilot.press(*["tab"] * to_category, "enter", *"ter", "enter")
        await wait_for(pilot, lambda: form.query_one("#in-category").value == "terminated")
        await pilot.press("f2")
        date_error = form.query_one("#err-terminated_on", Static)
        await wait_for(pilot, lambda: date_error.display)
        assert "Termination date is required" in str(date_error.render())
        assert "longer than one year" in str(form.query_one("#err-long_policy", Static).render())
        assert form.focused is form.query_one("#in-terminated_on")  # the first problem has the focus
        await pilot.press(*"2026-10-31", "tab", "enter", *"yes", "enter", "f2")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        await pilot.press("ctrl+q")
    request = ChangeRequest.get()
    assert (request.fields, request.terminated_on, request.long_policy) == (
        "category", dt.date(2026, 10, 31), True)
