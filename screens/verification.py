"""Periodic verification: the due queue (most overdue first), one check, and the unreachable flags.

Clerks record the outcome of each check: confirmed, changed (the change request form opens,
pre-filled from the check) or unreachable. Supervisors see the same queue read-only, and the
records flagged after three unreachable checks in a row.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable, Static

from models import clock, customers, verification
from models.errors import RecordKeeperError
from models.permissions import Actor, Perm
from models.verification import CONTACT_FIELDS, DueItem, DuePage, VerificationCard
from screens.change_request import ChangeRequestScreen, choice_label, display_value, field_label
from screens.queue import QueueScreen
from tui.i18n import N_, _
from tui.safe_text import pad, safe_plain, safe_text
from tui.widgets.footer import Footer

PAGE = 50
ADDRESS_FIELDS = ("province", "city", "district", "street", "postcode")


def _overdue_text(days: int) -> str:
    if days < 0:
        return _("in {n} d").format(n=-days)
    return _("today") if days == 0 else _("{n} d").format(n=days)


def _tries_text(item: DueItem) -> str:
    text = str(item.unreachable_streak) if item.unreachable_streak else ""
    return f"{text} {_('flag')}" if item.flagged else text


QUEUE_COLUMNS = ((N_("Overdue"), 7), (N_("Due"), 10), (N_("Customer"), 12), (N_("Name"), 6), (N_("Category"), 9),
                 (N_("Checked"), 10), (N_("Missed"), 7))


def _queue_row(item: DueItem) -> list[Text]:
    return [Text(_overdue_text(item.days_overdue)), Text(item.due.isoformat()), Text(item.customer_no),
            Text(safe_plain(item.masked_name, 6)), Text(safe_plain(choice_label(item.category), 9)),
            Text(item.last_verified.isoformat() if item.last_verified else "—"), Text(_tries_text(item))]


class VerificationQueueScreen(QueueScreen[None]):
    """Customers due a periodic check, most overdue first, a page at a time."""

    CSS_PATH = "verification.tcss"
    AUTO_FOCUS = "#due"
    LOAD_GROUP = "verify-queue"
    MESSAGE_ID = "#due-message"
    TABLE_ID = "#due"
    COLUMNS = QUEUE_COLUMNS
    BINDINGS = [
        Binding("enter", "open", "Check", id="verify.open", tooltip="Open the customer's check"),
        Binding("f7", "page(1)", "Next page", id="verify.next", tooltip="The next 50 customers"),
        Binding("f6", "page(-1)", "Previous page", id="verify.previous", tooltip="The previous 50 customers"),
        Binding("f5", "refresh", "Refresh", id="verify.refresh", tooltip="Load the queue again"),
        Binding("escape", "back", "Back", id="verify.back", tooltip="Back to the home screen"),
    ]

    def __init__(self, actor: Actor) -> None:
        super().__init__(actor)
        self.page: DuePage | None = None
        self.page_offset = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="due-box"):
            yield Static(Content(_("Periodic verification")), classes="title")
            yield Static(Content(_("Loading…")), id="due-message", classes="muted")
            yield DataTable(id="due", cursor_type="row")
        yield Footer()

    def action_page(self, step: int) -> None:
        if self.page is None:
            return
        offset = max(0, self.page_offset + step * PAGE)
        if offset >= max(self.page.total_due, 1) or offset == self.page_offset:
            return
        self.page_offset = offset
        self.load()

    def fetch(self) -> DuePage:
        return verification.due_queue(self.actor, PAGE, self.page_offset)

    def show(self, page: DuePage) -> None:
        self.page = page
        self.refill((_queue_row(item), item.customer_no) for item in page.items)
        if page.total_due:
            text = _("{due} due, {overdue} overdue · {first}–{last}").format(
                due=page.total_due, overdue=page.overdue, first=page.offset + 1, last=page.offset + len(page.items))
        else:
            text = _("Nobody is due a check.")
        if not self.actor.has(Perm.CHANGE_REQUEST):
            text += " · " + _("read only")
        self.query_one("#due-message", Static).update(Content(text))

    def action_open(self) -> None:
        item = self.cursor_item(self.page.items) if self.page is not None else None
        if item is not None:
            self.app.push_screen(VerificationCheckScreen(self.actor, item.customer_no), callback=lambda _r: self.load())

    @on(DataTable.RowSelected, "#due")
    def _selected(self) -> None:
        self.action_open()


class VerificationCheckScreen(QueueScreen[bool]):
    """One customer's check: contact details (masked until revealed), past checks, the outcome keys."""

    CSS_PATH = "verification.tcss"
    LOAD_GROUP = "verify-card"
    BINDINGS = [
        Binding("f4", "reveal", "Reveal contact", id="check.reveal",
                tooltip="Show the phone numbers and email (audited, purpose: periodic verification)"),
        Binding("f2", "confirmed", "Confirmed", id="check.confirmed", tooltip="The details are still correct"),
        Binding("f3", "changed", "Changed", id="check.changed",
                tooltip="Something changed: open a change request filled from this check"),
        Binding("f8", "unreachable", "Unreachable", id="check.unreachable",
                tooltip="Could not reach the customer; tried again in two weeks"),
        Binding("f9", "clear_flag", "Clear flag", id="check.clear_flag",
                tooltip="Close the unreachable flag after dealing with it"),
        Binding("escape", "back", "Back", id="check.back", tooltip="Back to the queue; nothing is recorded"),
    ]

    @dataclass
    class Revealed(Message):
        values: dict

    @dataclass
    class Recorded(Message):
        text: str

    def __init__(self, actor: Actor, customer_no: str) -> None:
        super().__init__(actor)
        self.customer_no = customer_no
        self.card: VerificationCard | None = None
        self.revealed: dict[str, object] = {}

    def compose(self) -> ComposeResult:
        with Vertical(id="check-box"):
            yield Static(Content(_("Check {number}").format(number=safe_plain(self.customer_no, 16))),
                         id="check-head", classes="title")
            yield Static(Content(_("Loading…")), id="check-message")
            with VerticalScroll(id="check-body"):
                yield Static("", id="check-contact")
                yield Static("", id="check-history")
        yield Footer()

    def fetch(self) -> VerificationCard:
        return verification.verification_card(self.actor, self.customer_no)

    def show_failure(self, message: str) -> None:
        self.busy = False
        self.refresh_bindings()
        widget = self.query_one("#check-message", Static)
        widget.update(safe_text(_(message), 200, multiline=True))
        widget.add_class("error")

    def show(self, card: VerificationCard) -> None:
        self.card = card
        name = safe_plain(card.values.get("full_name", ""), 12)
        self.query_one("#check-head", Static).update(Content(_("Check {number} {name} · {category}").format(
            number=card.customer_no, name=name, category=choice_label(card.category))))
        if card.due:
            days = (clock.today() - card.due).days
            due = _("due {day}").format(day=card.due.isoformat())
            if days > 0:
                due += " " + _("({n} days overdue)").format(n=days)
        else:
            due = _("not checked periodically")
        parts = [due, _("last checked {day}").format(day=card.last_verified.isoformat() if card.last_verified
                                                      else "—")]
        if card.unreachable_streak:
            parts.append(_("missed {n} in a row").format(n=card.unreachable_streak))
        if card.flagged:
            parts.append(_("FLAGGED for the supervisor"))
        widget = self.query_one("#check-message", Static)
        widget.update(Content(" · ".join(parts)))
        widget.set_class(card.flagged, "warning")
        self._show_contact()
        lines = [_("Past checks")]
        for entry in card.checks[:6]:
            note = f"  {safe_plain(entry.note, 30)}" if entry.note else ""
            lines.append(f"  {entry.checked_at:%Y-%m-%d}  {pad(safe_plain(entry.actor, 10), 10)} "
                         f"{pad(choice_label(entry.outcome), 12)}{note}")
        if not card.checks:
            lines.append("  " + _("none yet"))
        self.query_one("#check-history", Static).update(Content("\n".join(lines)))
        self.refresh_bindings()

    def _show_contact(self) -> None:
        if self.card is None:
            return
        values = {**self.card.values, **self.revealed}
        lines = [_("Contact") + ("" if self.revealed else "  " + _("(F4 reveals; audited)"))]
        for name in (*CONTACT_FIELDS, "preferred_channel"):
            lines.append(f"  {pad(safe_plain(field_label(name), 16), 16)} "
                         f"{safe_plain(display_value(name, values.get(name)) or '—', 50)}")
        lines.append(_("Address"))
        address = " ".join(safe_plain(display_value(n, values.get(n)), 20) for n in ADDRESS_FIELDS if values.get(n))
        lines.append("  " + (address or "—"))
        self.query_one("#check-contact", Static).update(Content("\n".join(lines)))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        can_record = self.actor.has(Perm.CHANGE_REQUEST)
        ready = self.card is not None and not self.busy
        if action in ("confirmed", "changed", "unreachable"):
            if not can_record:
                return False
            return ready and self.card.due is not None if self.card else None
        if action == "clear_flag":
            return self.actor.has(Perm.CHANGE_APPROVE) and bool(self.card and self.card.flagged) and ready
        if action == "reveal":
            return self.card is not None and not self.revealed
        return True

    def action_reveal(self) -> None:
        self.reveal()

    @work(thread=True, exclusive=True, group="verify-reveal", exit_on_error=False)
    def reveal(self) -> None:
        try:
            record = customers.reveal_fields(self.actor, self.customer_no, list(CONTACT_FIELDS),
                                             verification.REVEAL_PURPOSE)
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))
            return
        self.post_message(self.Revealed({n: record.values.get(n) for n in CONTACT_FIELDS}))

    @on(Revealed)
    def _revealed(self, message: Revealed) -> None:
        self.revealed = message.values
        self._show_contact()
        self.refresh_bindings()

    def action_confirmed(self) -> None:
        self.ask_note(_("Record that the customer confirmed their details?"),
                      lambda note: self.record("confirmed", note), required=False, placeholder=_("note (optional)"))

    def action_unreachable(self) -> None:
        self.ask_note(_("Record that the customer could not be reached? Say what you tried."),
                      lambda note: self.record("unreachable", note), required=True,
                      placeholder=_("e.g. called twice, no answer"))

    def action_clear_flag(self) -> None:
        self.ask_note(_("Close the unreachable flag? Say what was done."), self.clear, required=True)

    def action_changed(self) -> None:
        prefill = {name: value for name, value in self.revealed.items() if value not in (None, "")}
        screen = ChangeRequestScreen(self.actor, self.customer_no, prefill=prefill, source="periodic_check",
                                     reason=_("Periodic verification: the customer reported a change"))

        def done(sent: bool | None) -> None:
            if sent:
                self.dismiss(True)

        self.app.push_screen(screen, done)

    @work(thread=True, exclusive=True, group="verify-record", exit_on_error=False)
    def record(self, outcome: str, note: str) -> None:
        try:
            result = verification.record_check(self.actor, self.customer_no, outcome, note)
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))
            return
        if outcome == "confirmed":
            text = _("Confirmed. Next check {day}.").format(day=result.next_due.isoformat() if result.next_due else "—")
        else:
            text = _("Unreachable ({n} in a row). Tried again {day}.").format(
                n=result.unreachable_streak, day=result.next_due.isoformat() if result.next_due else "—")
            if result.flagged:
                text += " " + _("Flagged for the supervisor.")
        self.post_message(self.Recorded(text))

    @work(thread=True, exclusive=True, group="verify-clear", exit_on_error=False)
    def clear(self, note: str) -> None:
        try:
            verification.clear_flag(self.actor, self.customer_no, note)
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))
            return
        self.post_message(self.Recorded(_("Flag closed.")))

    @on(Recorded)
    def _recorded(self, message: Recorded) -> None:
        self.app.notify(message.text, title=self.customer_no)
        self.dismiss(True)

    def action_back(self) -> None:
        self.dismiss(False)


class UnreachableScreen(QueueScreen[None]):
    """Records flagged after three unreachable checks in a row, oldest flag first (supervisors)."""

    CSS_PATH = "verification.tcss"
    AUTO_FOCUS = "#flags"
    LOAD_GROUP = "verify-flags"
    MESSAGE_ID = "#flags-message"
    TABLE_ID = "#flags"
    COLUMNS = QUEUE_COLUMNS
    BINDINGS = [
        Binding("enter", "open", "Open", id="flags.open", tooltip="Open the customer's checks"),
        Binding("f5", "refresh", "Refresh", id="flags.refresh", tooltip="Load the list again"),
        Binding("escape", "back", "Back", id="flags.back", tooltip="Back to the home screen"),
    ]

    def __init__(self, actor: Actor) -> None:
        super().__init__(actor)
        self.items: tuple[DueItem, ...] = ()

    def compose(self) -> ComposeResult:
        with Vertical(id="flags-box"):
            yield Static(Content(_("Unreachable customers")), classes="title")
            yield Static(Content(_("Loading…")), id="flags-message", classes="muted")
            yield DataTable(id="flags", cursor_type="row")
        yield Footer()

    def fetch(self) -> tuple[DueItem, ...]:
        return verification.flagged_queue(self.actor)

    def show(self, items: tuple[DueItem, ...]) -> None:
        self.items = items
        table = self.query_one("#flags", DataTable)
        table.clear()
        for item in self.items:
            table.add_row(*_queue_row(item), key=item.customer_no)
        text = (_("{n} record(s) missed three checks in a row. Enter opens one; F9 there closes the flag.")
                .format(n=len(self.items)) if self.items else _("No record is flagged."))
        self.query_one("#flags-message", Static).update(Content(text))

    def action_open(self) -> None:
        item = self.cursor_item(self.items)
        if item is not None:
            self.app.push_screen(VerificationCheckScreen(self.actor, item.customer_no), callback=lambda _r: self.load())

    @on(DataTable.RowSelected, "#flags")
    def _selected(self) -> None:
        self.action_open()
