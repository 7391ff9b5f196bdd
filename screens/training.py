"""Data-protection training: who is current, due soon or lapsed (admins and supervisors), and the
record form (admins). `tell_training_status` says at login when one's own training has lapsed."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from models import clock, training
from models.errors import RecordKeeperError
from models.permissions import Actor, Perm
from screens.queue import QueueScreen
from screens.staff_admin import TRAINING_WORDS, FormDialog, FormField
from tui.i18n import N_, _
from tui.safe_text import safe_plain, safe_text
from tui.widgets.footer import Footer


def tell_training_status(app: App, actor: Actor) -> None:
    """At login: a lasting notice when the person's training has lapsed or lapses within 30 days."""

    def check() -> None:
        try:
            status = training.my_training(actor)
        except RecordKeeperError:
            return
        if status.status == training.STATUS_EXPIRED:
            app.call_from_thread(app.notify, _(
                "Your data-protection training expired on {date}. Until it is renewed you cannot reveal "
                "personal data, approve or export.").format(date=status.expires_on),
                title=_("Training expired"), severity="error", timeout=60)
        elif status.status == training.STATUS_DUE_SOON:
            app.call_from_thread(app.notify, _(
                "Your data-protection training expires on {date} ({days} days).").format(
                date=status.expires_on, days=status.days_left), title=_("Training"), severity="warning",
                timeout=20)

    app.run_worker(check, thread=True, group="training-notice", exit_on_error=False)


def record_training_form(actor: Actor, username: str = "") -> FormDialog:
    """The admin's form to record one training (expiry empty: one year after completion)."""
    fields = [FormField("username", N_("Staff username"), username, max_length=32, restrict=r"[A-Za-z0-9._\-]*"),
              FormField("course", N_("Course"), max_length=training.COURSE_MAX),
              FormField("completed_on", N_("Completed on"), clock.today().isoformat(), max_length=10,
                        placeholder="YYYY-MM-DD", restrict=r"[0-9\-]*"),
              FormField("expires_on", N_("Expires on"), max_length=10, placeholder=_("empty: one year later"),
                        restrict=r"[0-9\-]*")]

    def submit(values: dict) -> object:
        return training.record_training(actor, values["username"], values["course"], values["completed_on"],
                                        values["expires_on"] or None)

    return FormDialog(Content(_("Record data-protection training")), fields, submit)


class TrainingScreen(QueueScreen[None]):
    """Everyone's training status, lapsed and due-soon first; Enter shows a person's history."""

    CSS_PATH = "training.tcss"
    AUTO_FOCUS = "#training-table"
    LOAD_GROUP = "training"
    MESSAGE_ID = "#training-status"
    TABLE_ID = "#training-table"
    COLUMNS = ((N_("Username"), 10), (N_("Name"), 14), (N_("Status"), 9), (N_("Expires"), 10), (N_("Days"), 5),
               (N_("Course"), 16))
    BINDINGS = [
        Binding("enter", "history", "History", id="training.history", tooltip="The person's training records",
                show=False),
        Binding("f2", "record", "Record", id="training.record", tooltip="Record a training (admins)"),
        Binding("f5", "refresh", "Refresh", id="training.refresh", tooltip="Load the list again"),
        Binding("f6", "inactive", "Disabled", id="training.inactive", tooltip="Show or hide disabled accounts"),
        Binding("escape", "back", "Back", id="training.back", tooltip="Back to the home screen"),
    ]

    def __init__(self, actor: Actor) -> None:
        super().__init__(actor)
        self.people: list[training.TrainingStatus] = []
        self.include_inactive = False

    def compose(self) -> ComposeResult:
        with Vertical(id="training-box"):
            yield Static(Content(_("Data-protection training")), classes="title")
            yield DataTable(id="training-table", cursor_type="row", zebra_stripes=True)
            yield Static(Content(_("Loading…")), id="training-status", classes="muted")
        yield Footer()

    def fetch(self) -> list[training.TrainingStatus]:
        return training.training_overview(self.actor, self.include_inactive)

    def show(self, people: list[training.TrainingStatus]) -> None:
        from screens.audit_log import state_style

        self.people = people

        def status_cell(status: str) -> Text:
            state = {"expired": "danger", "due_soon": "warning", "none": "warning"}.get(status)
            word = _(TRAINING_WORDS[status])
            return Text(word, style=state_style(self.app, state)) if state else Text(word)

        self.refill(([Text(person.username), Text(safe_plain(person.display_name, 14)), status_cell(person.status),
                      Text(str(person.expires_on or "—")),
                      Text("—" if person.days_left is None else str(person.days_left)),
                      Text(safe_plain(person.course or "—", 16))], person.username) for person in people)
        counts = {s: sum(1 for p in self.people if p.status == s) for s in ("expired", "due_soon", "none")}
        self.query_one("#training-status", Static).update(Content(_(
            "{expired} lapsed · {due} due within 30 days · {none} without a record · Enter: history").format(
            expired=counts["expired"], due=counts["due_soon"], none=counts["none"])))

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_history()

    def action_history(self) -> None:
        person = self.cursor_item(self.people)
        if person:
            self.app.push_screen(TrainingHistoryScreen(self.actor, person.username))

    def action_record(self) -> None:
        if not self.actor.has(Perm.STAFF_MANAGE):
            self.notify(_("Only an admin records training."), severity="warning")
            return
        person = self.cursor_item(self.people)

        def done(result: object) -> None:
            if result is not None:
                self.notify(_("Training recorded."))
                self.load()

        self.app.push_screen(record_training_form(self.actor, person.username if person else ""), callback=done)

    def action_inactive(self) -> None:
        self.include_inactive = not self.include_inactive
        self.load()


class TrainingHistoryScreen(ModalScreen[None]):
    """One person's training records, newest first."""

    CSS_PATH = "training.tcss"
    BINDINGS = [Binding("escape,enter", "close", "Back", id="training_history.back", tooltip="Back to the list")]

    @dataclass
    class Loaded(Message):
        entries: list[training.TrainingEntry]

    @dataclass
    class Failed(Message):
        message: str

    def __init__(self, actor: Actor, username: str) -> None:
        super().__init__()
        self.actor, self.username = actor, username

    def compose(self) -> ComposeResult:
        with Vertical(id="history-box"):
            yield Static(Content(_("Training of {name}").format(name=safe_plain(self.username, 32))),
                         classes="title")
            yield Static(Content(_("Loading…")), id="history-body")
            yield Static(Content(_("Esc: back")), classes="muted")

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="training-history", exit_on_error=False)
    def load(self) -> None:
        try:
            self.post_message(self.Loaded(training.training_history(self.actor, self.username)))
        except RecordKeeperError as exc:  # refused: say so instead of "Loading…" for ever
            self.post_message(self.Failed(str(exc)))

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.query_one("#history-body", Static).update(safe_text(_(message.message), 200))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        if not message.entries:
            body = Content(_("No training recorded."))
        else:
            body = Content("\n").join(Content.assemble(
                f"{entry.completed_on} → {entry.expires_on}  ", safe_text(entry.course, 36),
                (f"  ({safe_plain(entry.recorded_by, 12)})", "$state-muted")) for entry in message.entries)
        self.query_one("#history-body", Static).update(body)

    def action_close(self) -> None:
        self.dismiss(None)
