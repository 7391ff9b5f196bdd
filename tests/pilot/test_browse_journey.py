"""Keyboard only at 80×24: browse → search → open → reveal (a purpose is required) → back; paging; the
masked file never holds a clear value until a reveal, and masks again on leaving or the idle lock; labels."""

from __future__ import annotations

import json
import random

from faker import Faker
from textual.widgets import DataTable, Input, OptionList, Static

from models import bulkgen, clock, customers, demo, staff
from models.audit import AuditEntry
from models.customers import Customer
from screens.browser import BrowserScreen, CustomerTable
from screens.customer_file import CustomerFileScreen
from screens.dialogs.label_picker import LabelPickerDialog
from screens.dialogs.reveal_purpose import RevealPurposeDialog
from screens.dialogs.search import SearchDialog
from screens.home import HomeScreen
from screens.labels import LabelsScreen
from screens.lock import LockScreen
from screens.login import LoginScreen
from tests.conftest import TEST_PASSWORD
from tests.pilot.conftest import wait_for
from tui.app import RecordKeeperApp

ENV = {"LANG": "en_US.UTF-8"}
PURPOSE = "Verify identity on a customer call"


async def login(pilot, app, username: str) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
    await pilot.press(*username, "enter", *TEST_PASSWORD, "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and bool(app.screen.entries))


async def open_menu(pilot, app, entry_id: str) -> None:
    index = [e.entry_id for e in app.screen.entries].index(entry_id)
    await pilot.press(str(index + 1))


async def open_customer_file(pilot, app, username: str, number: str) -> CustomerFileScreen:
    """Log in, find the customer by number from the browser and open their file."""
    await login(pilot, app, username)
    await open_menu(pilot, app, "customers")
    await wait_for(pilot, lambda: isinstance(app.screen, BrowserScreen) and app.screen.page is not None)
    await pilot.press("slash", *number, "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, BrowserScreen) and app.screen.search_kind is not None)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, CustomerFileScreen) and app.screen.file is not None)
    return app.screen


def known_customer(name: str = "司马光", mobile: str = "13655554444") -> tuple[str, dict]:
    fake = Faker("zh_CN")
    fake.seed_instance(77)
    data = demo.fake_customer(fake, random.Random(77), clock.today())
    data.update(full_name=name, mobile=mobile)
    made = customers.create_customer(staff.authenticate("clerk", TEST_PASSWORD), data)
    return made.customer_no, data


def screen_text(screen) -> str:
    """Everything the screen's widgets would draw: option prompts, statics, table cells."""
    parts = []
    for widget in screen.query("*"):
        if isinstance(widget, OptionList):
            parts += [str(widget.get_option_at_index(i).prompt) for i in range(widget.option_count)]
        elif isinstance(widget, DataTable):
            parts += [str(cell) for row in range(widget.row_count) for cell in widget.get_row_at(row)]
        elif isinstance(widget, Static):
            parts.append(str(widget.render()))
    return "\n".join(parts)


def table_numbers(app) -> list[str]:
    table = app.screen.query_one(CustomerTable)
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


async def test_browse_search_open_reveal_with_purpose_and_back(demo_office, settings):
    number, data = known_customer()
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "clerk")
        await open_menu(pilot, app, "customers")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowserScreen) and app.screen.page is not None)
        browser = app.screen
        await wait_for(pilot, lambda: browser.counts is not None)
        assert table_numbers(app)[0] < table_numbers(app)[-1]
        assert "Active" in screen_text(browser) and f"{browser.counts.total:>9,}" in screen_text(browser)

        await pilot.press("slash")
        await wait_for(pilot, lambda: isinstance(app.screen, SearchDialog))
        await pilot.press("enter")  # nothing typed: refused beside the field, dialog stays
        await wait_for(pilot, lambda: "Type what" in str(app.screen.query_one("#search-error").render()))
        await pilot.press(*"136 5555 4444", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowserScreen) and browser.search_kind == "mobile")
        assert table_numbers(app) == [number]
        assert "13655554444" not in screen_text(browser) and "司马光" not in screen_text(browser)
        entry = AuditEntry.select().where(AuditEntry.action == "SEARCH").order_by(AuditEntry.seq.desc()).get()
        assert "13655554444" not in entry.details

        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CustomerFileScreen) and app.screen.file is not None)
        file_screen = app.screen
        text = screen_text(file_screen)
        assert "司*" in text
        for clear in ("司马光", "13655554444", str(data["id_number"]), str(data["street"])):
            assert clear not in text, "a masked file carries no clear value"
        assert "司马光" not in repr(file_screen.file)

        await pilot.press("f3")  # the first line is Full name
        await wait_for(pilot, lambda: isinstance(app.screen, RevealPurposeDialog))
        await pilot.press("enter")
        await wait_for(pilot, lambda: "at least 4" in str(app.screen.query_one("#purpose-error").render()))
        await pilot.press(*"abc", "enter")
        assert isinstance(app.screen, RevealPurposeDialog), "a purpose of three characters is not enough"
        assert not AuditEntry.select().where(AuditEntry.action == "REVEAL").exists()
        await pilot.press(*"d", "enter")
        await wait_for(pilot, lambda: app.screen is file_screen and "司马光" in screen_text(file_screen))
        reveal = AuditEntry.select().where(AuditEntry.action == "REVEAL").get()
        assert (reveal.object_id, reveal.fields, reveal.purpose) == (number, "full_name", "abcd")
        assert "13655554444" not in screen_text(file_screen), "only the chosen field is shown"

        clock.advance_monotonic(settings.idle_lock_minutes * 60 + 1)  # the idle lock masks it again
        await wait_for(pilot, lambda: isinstance(app.screen, LockScreen))
        assert "司马光" not in screen_text(file_screen) and not file_screen.revealed
        await pilot.press(*TEST_PASSWORD, "enter")
        await wait_for(pilot, lambda: app.screen is file_screen)
        assert "司马光" not in screen_text(file_screen)

        await pilot.press("f3", "down", "enter")  # a common purpose, picked from the list
        await wait_for(pilot, lambda: "司马光" in screen_text(file_screen))
        assert AuditEntry.select().where(AuditEntry.action == "REVEAL").order_by(AuditEntry.seq.desc()).get().purpose \
            == PURPOSE
        await pilot.press("escape")  # back: leaving masks again
        await wait_for(pilot, lambda: app.screen is browser)
        assert not file_screen.revealed
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CustomerFileScreen) and app.screen.file is not None)
        assert "司马光" not in screen_text(app.screen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is browser)
        await pilot.press("escape")  # leave the search results
        await wait_for(pilot, lambda: browser.search_kind is None and len(table_numbers(app)) > 1)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))


async def test_paging_home_end_and_past_the_edges(office, admin, settings):
    demo.add_demo_accounts(admin, TEST_PASSWORD)
    clerk = staff.authenticate("clerk", TEST_PASSWORD)
    bulkgen.generate_customers(clerk, 120, workers=0, seed=3)
    everyone = [c.customer_no for c in Customer.select(Customer.customer_no).order_by(Customer.customer_no)]
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "clerk")
        await open_menu(pilot, app, "customers")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowserScreen) and app.screen.page is not None)
        browser = app.screen
        assert table_numbers(app) == everyone[:50]
        await pilot.press("end")
        await wait_for(pilot, lambda: table_numbers(app) == everyone[-50:])
        await pilot.press("down")  # past the last row of the last page: nothing more
        await wait_for(pilot, lambda: "last page" in str(browser.query_one("#browse-status").render()))
        await pilot.press("home")
        await wait_for(pilot, lambda: table_numbers(app) == everyone[:50])
        presses = 0
        while table_numbers(app) == everyone[:50] and presses < 6:
            await pilot.press("pagedown")  # a screenful at a time, then the next page
            presses += 1
            await pilot.pause()
        await wait_for(pilot, lambda: table_numbers(app) == everyone[50:100])
        assert presses > 1, "PgDn first moves through the page on screen"
        assert browser.query_one(CustomerTable).cursor_row == 0
        await pilot.press("up")  # above the first row: the page before, at its last row
        await wait_for(pilot, lambda: table_numbers(app) == everyone[:50])
        assert browser.query_one(CustomerTable).cursor_row == 49
        await pilot.press("f6")  # sort by next verification
        await wait_for(pilot, lambda: browser.sort == "next_verification_due" and browser.page is not None
                       and browser.page.sort == "next_verification_due")
        dues = [r.next_verification_due for r in browser.page.rows]
        assert [d for d in dues if d] == sorted(d for d in dues if d)
        await pilot.press("tab")  # to the categories
        side = browser.query_one("#browse-side", OptionList)
        await wait_for(pilot, lambda: side.has_focus and side.option_count > 4)
        await pilot.press("down", "down", "down", "enter")  # Terminated
        await wait_for(pilot, lambda: browser.filter.category == "terminated" and browser.page is not None
                       and browser.page.filter.category == "terminated")
        assert {r.category for r in browser.page.rows} == {"terminated"}
        assert browser.query_one(CustomerTable).has_focus


async def test_labels_officer_adds_a_label_and_a_clerk_labels_a_customer(demo_office, settings):
    number, _data = known_customer("欧阳修", "13611112222")
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "officer")
        await open_menu(pilot, app, "labels")
        await wait_for(pilot, lambda: isinstance(app.screen, LabelsScreen))
        labels_screen = app.screen
        await pilot.press("f3", *"Claim open", "enter", "enter", "down", "down", "enter")
        await pilot.press(*"A claim is being handled", "f2")
        await wait_for(pilot, lambda: any(label.name == "Claim open" for label in labels_screen.labels))
        created = next(label for label in labels_screen.labels if label.name == "Claim open")
        assert created.description == "A claim is being handled"
        await pilot.press("f3", *"Claim open", "f2")  # the same name again: refused beside the field
        await wait_for(pilot, lambda: "Already" in str(labels_screen.query_one("#label-name-error").render()))
        assert labels_screen.query_one("#label-name", Input).value == "Claim open", "nothing typed is lost"
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        await pilot.press("ctrl+q")

    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        file_screen = await open_customer_file(pilot, app, "clerk", number)
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, LabelPickerDialog))
        await pilot.press("space", "f2")
        await wait_for(pilot, lambda: app.screen is file_screen and file_screen.file is not None
                       and [lv.name for lv in file_screen.file.labels] == ["Claim open"])
        assert any(e.kind == "labelled" for e in file_screen.file.history)
        entry = AuditEntry.select().where(AuditEntry.action == "CUSTOMER_LABEL").get()
        assert json.loads(entry.details)["added"] == [created.label_id]


async def test_the_file_exports_a_document_and_writes_the_data_copy(demo_office, settings):
    from models import documents

    number, _data = known_customer("王安石", "13622223333")
    customer_id = Customer.get(Customer.customer_no == number).id
    (settings.inbox_dir / "scan.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
    documents.attach_document(staff.authenticate("clerk", TEST_PASSWORD), "customer", customer_id, "scan.pdf",
                              "id_card_copy")
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        file_screen = await open_customer_file(pilot, app, "clerk", number)
        target = next(i for i, line in enumerate(file_screen.lines) if line.kind == "document")
        menu = file_screen.query_one("#file-lines", OptionList)
        await pilot.press(*["down"] * (target - menu.highlighted), "enter")
        await wait_for(pilot, lambda: app.screen is not file_screen)
        await pilot.press("y")
        message = file_screen.query_one("#file-message")
        await wait_for(pilot, lambda: "Exported for printing" in str(message.render()))
        exported = [p for p in settings.export_dir.iterdir() if p.is_file()]
        assert len(exported) == 1 and exported[0].read_bytes().startswith(b"%PDF")
        assert AuditEntry.select().where(AuditEntry.action == "DOCUMENT_EXPORT").count() == 1

        await pilot.press("f7")
        await wait_for(pilot, lambda: app.screen is not file_screen)
        await pilot.press("y")
        await wait_for(pilot, lambda: "Copy written" in str(message.render()))
        folders = [p for p in settings.export_dir.iterdir() if p.is_dir()]
        assert len(folders) == 1 and (folders[0] / "customer-data.txt").exists()
        assert "王安石" not in screen_text(file_screen), "the copy goes to a file, never to the screen"


async def test_lapsed_training_refuses_the_data_copy_and_says_so(demo_office, settings, admin):
    import datetime as dt

    from models import training

    number, _data = known_customer("欧阳修", "13633334444")
    training.record_training(admin, "clerk", "数据保护培训", clock.today() - dt.timedelta(days=400))
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        file_screen = await open_customer_file(pilot, app, "clerk", number)
        await pilot.press("f7")
        await wait_for(pilot, lambda: app.screen is not file_screen)
        await pilot.press("y")
        message = file_screen.query_one("#file-message")
        await wait_for(pilot, lambda: "training has lapsed" in str(message.render()))
        assert not settings.export_dir.exists() or not any(settings.export_dir.iterdir())
        assert not AuditEntry.select().where(AuditEntry.action == "DATA_COPY").exists()
        denial = AuditEntry.select().where(AuditEntry.action == "DENIED").order_by(AuditEntry.seq.desc()).get()
        assert json.loads(denial.details)["service"] == "data_copy"
