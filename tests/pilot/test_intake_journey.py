"""Keyboard-only at 80×24: clerk fills and submits → reviewer returns with a reason → clerk corrects and
resubmits → reviewer sees the diff and approves → the customer exists. Plus drafts, bad fields, documents."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

from textual.widgets import DataTable, Input, OptionList, Static

from models import clock, demo, documents, intake
from models.customers import Customer
from models.db import is_sqlite
from models.intake import IntakeSubmission
from screens.drafts import UnfinishedFormsDialog
from screens.home import HomeScreen
from screens.intake import IntakeFormScreen, IntakeScreen
from screens.login import LoginScreen
from screens.review import ReviewQueueScreen, ReviewScreen
from tests.conftest import TEST_PASSWORD
from tests.pilot.conftest import wait_for
from tui.app import RecordKeeperApp

BIRTH = dt.date(1988, 6, 15)
ID_NUMBER = demo.resident_id(random.Random(42), BIRTH, "female")
ENV = {"LANG": "en_US.UTF-8"}


async def login(pilot, app, username: str) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen))
    await pilot.press(*username, "enter", *TEST_PASSWORD, "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, (HomeScreen, UnfinishedFormsDialog)))


async def open_menu(pilot, app, label: str) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
    menu = app.screen.query_one("#menu", OptionList)
    await wait_for(pilot, lambda: menu.option_count > 0)
    labels = [str(menu.get_option_at_index(i).prompt) for i in range(menu.option_count)]
    index = next(i for i, text in enumerate(labels) if label in text)
    await pilot.press(str(index + 1))


def form_screen(app) -> IntakeFormScreen:
    assert isinstance(app.screen, IntakeFormScreen), app.screen
    return app.screen


def field(app, name: str) -> Input:
    return app.screen.query_one(f"#f-{name}", Input)


def message(app, name: str) -> str:
    return str(app.screen.query_one(f"#msg-{name}", Static).render())


async def type_field(pilot, text: str) -> None:
    """Type into the focused field and leave it with Enter (type-ahead: no waiting in between)."""
    await pilot.press(*text, "enter")


async def fill_new_form(pilot, app, street: str) -> None:
    """Every field in tab order, as a clerk types it; prefilled fields are passed with Enter."""
    screen = form_screen(app)
    assert screen.focused is field(app, "full_name")
    await type_field(pilot, "Wang Xiaoli")
    await type_field(pilot, "")            # ID type: resident_id (prefilled)
    await type_field(pilot, ID_NUMBER)
    await wait_for(pilot, lambda: field(app, "gender").value == "female")  # filled in from the ID
    assert field(app, "date_of_birth").value == BIRTH.isoformat()
    assert "age" in str(screen.query_one("#side-date_of_birth", Static).render())
    await type_field(pilot, "")            # sex
    await type_field(pilot, "")            # date of birth
    await type_field(pilot, "China")       # nationality
    await type_field(pilot, "138 0013 8000")
    await type_field(pilot, "")            # intl. mobile: no
    await type_field(pilot, "")            # other phone
    await type_field(pilot, "")            # email
    await type_field(pilot, "2")           # preferred contact: sms
    for value in ("Beijing", "Beijing", "Chaoyang", street, "100022", "Teacher", "1", "No. 3 School"):
        await type_field(pilot, value)
    await type_field(pilot, "p")           # category: prospect
    await type_field(pilot, "1")           # source: counter
    await type_field(pilot, "Chaoyang")    # branch
    await type_field(pilot, "")            # policy numbers
    await type_field(pilot, "C3-D2-F15")   # paper location
    await type_field(pilot, "")            # labels
    await type_field(pilot, "")            # notes
    await type_field(pilot, "")            # consent date: today
    await type_field(pilot, "insurance and service")
    await type_field(pilot, "n")           # marketing
    await wait_for(pilot, lambda: field(app, "preferred_channel").value == "sms")
    assert field(app, "category").value == "prospect"


async def test_whole_intake_journey(demo_office, settings):
    customers_before = Customer.select().count()

    # 1. The clerk fills in the form and submits it.
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "clerk")
        await open_menu(pilot, app, "Intake")
        await wait_for(pilot, lambda: isinstance(app.screen, IntakeScreen))
        await pilot.press("enter")  # "New customer form"
        await wait_for(pilot, lambda: isinstance(app.screen, IntakeFormScreen))
        await fill_new_form(pilot, app, "88 Jianguo Road")
        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, IntakeScreen))
        await pilot.press("ctrl+q")
    row = IntakeSubmission.get()
    assert row.status == "submitted" and row.revision == 1

    # 2. The reviewer returns it with a reason beside the street.
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "reviewer")
        await open_menu(pilot, app, "Review queue")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewQueueScreen))
        queue = app.screen.query_one("#queue", DataTable)
        await wait_for(pilot, lambda: queue.row_count == 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.view is not None)
        review = app.screen
        street_row = review.row_names.index("street")
        for _ in range(street_row):
            await pilot.press("down")
        assert "88 Jianguo Road" in str(review.query_one("#review-detail", Static).render())
        await pilot.press("r")
        await pilot.press(*"house number missing", "enter")
        await wait_for(pilot, lambda: review.reasons.get("street") == "house number missing")
        await pilot.press("f6")
        await pilot.press(*"please complete", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewQueueScreen))
        await pilot.press("ctrl+q")
    assert IntakeSubmission.get().status == "returned"

    # 3. The clerk is offered the returned form at login, sees the reason, corrects and resubmits.
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "clerk")
        await wait_for(pilot, lambda: isinstance(app.screen, UnfinishedFormsDialog))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, IntakeFormScreen) and app.screen.loaded)
        screen = form_screen(app)
        assert screen.focused is field(app, "street")  # the first field with a reason
        assert "house number missing" in message(app, "street")
        assert "please complete" in str(screen.query_one("#form-returned", Static).render())
        await pilot.press("end", *", Building 3", "enter")
        await pilot.press("f10")
        await wait_for(pilot, lambda: not isinstance(app.screen, IntakeFormScreen))
        await pilot.press("ctrl+q")
    row = IntakeSubmission.get()
    assert row.status == "submitted" and row.revision == 2

    # 4. The reviewer sees the diff and approves: the customer exists.
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "reviewer")
        await open_menu(pilot, app, "Review queue")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewQueueScreen))
        queue = app.screen.query_one("#queue", DataTable)
        await wait_for(pilot, lambda: queue.row_count == 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.view is not None)
        review = app.screen
        changed = [d.field for d in review.view.diff if d.changed]
        assert changed == ["street"]
        await pilot.press("c")  # changed fields only
        assert review.row_names[0] == "street"
        detail = str(review.query_one("#review-detail", Static).render())
        assert "88 Jianguo Road → 88 Jianguo Road, Building 3" in detail and "changed" in detail
        await pilot.press("f9", "y")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewQueueScreen))
        await pilot.press("ctrl+q")
    row = IntakeSubmission.get()
    assert row.status == "approved" and row.customer_no
    assert Customer.select().count() == customers_before + 1
    customer = Customer.get(Customer.customer_no == row.customer_no)
    assert customer.category == "prospect" and customer.paper_location == "C3-D2-F15"


async def test_bad_fields_say_why_and_keep_what_was_typed(demo_office, settings):
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "clerk")
        await open_menu(pilot, app, "Intake")
        await wait_for(pilot, lambda: isinstance(app.screen, IntakeScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, IntakeFormScreen))
        await type_field(pilot, "Li Si")
        await type_field(pilot, "")
        wrong = ID_NUMBER[:-1] + ("1" if ID_NUMBER[-1] != "1" else "2")
        await pilot.press(*("ab" + wrong + "Z"))  # letters other than X never get in
        assert field(app, "id_number").value == wrong
        await pilot.press("enter")
        await wait_for(pilot, lambda: "check digit" in message(app, "id_number"))
        assert field(app, "id_number").value == wrong  # kept as typed
        await pilot.press("shift+tab")  # back to the ID: its text is selected, typing replaces it
        await pilot.press(*ID_NUMBER, "tab")
        await wait_for(pilot, lambda: field(app, "gender").value == "female")
        assert "check digit" not in message(app, "id_number")
        # A sex that disagrees with the ID is flagged loudly.
        await pilot.press("m", "enter")
        await wait_for(pilot, lambda: "does not match Sex" in message(app, "id_number"))
        # Submitting refuses and focuses the first bad field; nothing typed is lost.
        await pilot.press("f10")
        await wait_for(pilot, lambda: "required" in message(app, "mobile"))
        assert field(app, "full_name").value == "Li Si" and field(app, "gender").value == "male"
        assert isinstance(app.screen, IntakeFormScreen)
        assert IntakeSubmission.get().status == "draft"
        await pilot.press("ctrl+q")


async def test_draft_is_saved_while_typing_and_offered_at_next_login(demo_office, settings):
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "clerk")
        await open_menu(pilot, app, "Intake")
        await wait_for(pilot, lambda: isinstance(app.screen, IntakeScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, IntakeFormScreen))
        await pilot.press(*"Zhao Liu")  # no field exit: the timer saves it
        await wait_for(pilot, lambda: IntakeSubmission.select().count() == 1, timeout=6)
        screen = form_screen(app)
        await wait_for(pilot, lambda: screen.generation == screen.saved_generation)
        await pilot.press("ctrl+q")
    row = IntakeSubmission.get()
    clerk = app.actor
    # 3. A fresh login offers it; resume shows the typed value.
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "clerk")
        await wait_for(pilot, lambda: isinstance(app.screen, UnfinishedFormsDialog))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, IntakeFormScreen) and app.screen.loaded)
        assert field(app, "full_name").value == "Zhao Liu"
        await pilot.press(*" Jr", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        await pilot.press("ctrl+q")
    assert IntakeSubmission.select().count() == 1
    # Discard from the login offer, after confirming.
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "clerk")
        await wait_for(pilot, lambda: isinstance(app.screen, UnfinishedFormsDialog))
        await pilot.press("d", "y")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        await pilot.press("ctrl+q")
    assert IntakeSubmission.select().count() == 0


async def test_attach_a_document_from_the_inbox(demo_office, settings):
    inbox = settings.inbox_dir
    (inbox / "id-card.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200)
    (inbox / "notes.txt").write_bytes(b"not a scan")
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "clerk")
        await open_menu(pilot, app, "Intake")
        await wait_for(pilot, lambda: isinstance(app.screen, IntakeScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, IntakeFormScreen))
        await pilot.press(*"Qian Qi")
        await pilot.press("f4")
        from screens.dialogs.attach_document import AttachDocumentDialog

        await wait_for(pilot, lambda: isinstance(app.screen, AttachDocumentDialog) and app.screen.files)
        await pilot.press("enter")       # id-card.png (the text file is listed, disabled)
        await pilot.press("1", "enter")  # ID card copy
        await wait_for(pilot, lambda: isinstance(app.screen, IntakeFormScreen) and app.screen.documents)
        assert app.screen.documents[0].doc_type == "id_card_copy"
        await pilot.press("ctrl+q")
    assert not (inbox / "id-card.png").exists() and (inbox / "notes.txt").exists()
    row = IntakeSubmission.get()
    assert documents.Document.get().owner_id == row.id


async def test_typed_values_never_reach_the_disk_in_clear(demo_office, settings):
    if not is_sqlite():
        return
    sentinels = ["Sentinelname Qxzvbn", "Sentinelroad 4711 Qxzvbn"]
    app = RecordKeeperApp(settings, environ=ENV)
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot, app, "clerk")
        await open_menu(pilot, app, "Intake")
        await wait_for(pilot, lambda: isinstance(app.screen, IntakeScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, IntakeFormScreen))
        await fill_new_form(pilot, app, sentinels[1])
        field(app, "full_name").value = sentinels[0]
        await pilot.press("f2")
        screen = form_screen(app)
        await wait_for(pilot, lambda: screen.generation == screen.saved_generation)
        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, IntakeScreen))
        await pilot.press("ctrl+q")
    files = [p for p in Path(settings.home).rglob("*") if p.is_file()]
    for path in files:
        raw = path.read_bytes()
        for value in sentinels + [ID_NUMBER]:
            assert value.encode() not in raw, path.name
