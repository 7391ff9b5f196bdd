"""Legal holds: place one (supervisor or records officer), release one (supervisor), read their notes.

A held customer is never eligible for destruction. Notes are encrypted with the customer's record;
opening them (Enter) is audited.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static

from models import retention
from models.errors import RecordKeeperError
from models.permissions import Actor, Perm
from models.retention import HOLD_REASON_LABELS, HoldView
from screens.dialogs.place_hold import PlaceHoldDialog
from screens.dialogs.text_prompt import TextPromptDialog
from tui.i18n import N_, _
from tui.safe_text import safe_plain, safe_text
from tui.widgets.footer import Footer


class HoldsScreen(Screen[None]):
    """Active legal holds, newest first."""

    CSS_PATH = "holds.tcss"
    AUTO_FOCUS = "#holds"
    BINDINGS = [
        Binding("f2", "place", "Place hold", id="holds.place", tooltip="Put a customer on legal hold"),
        Binding("f7", "release", "Release", id="holds.release",
                tooltip="Release the hold, with a note (supervisor)"),
        Binding("enter", "notes", "Notes", id="holds.notes", tooltip="Show the hold's notes (audited)"),
        Binding("f5", "refresh", "Refresh", id="holds.refresh", tooltip="Load the holds again"),
        Binding("escape", "back", "Back", id="holds.back", tooltip="Back to the home screen"),
    ]

    @dataclass
    class Loaded(Message):
        holds: list[HoldView]

    @dataclass
    class Failed(Message):
        message: str

    @dataclass
    class NotesLoaded(Message):
        placed: str
        released: str

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        self.holds: list[HoldView] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="holds-box"):
            yield Static(Content(_("Legal holds")), classes="title")
            yield Static(Content(_("Loading…")), id="holds-message", classes="muted")
            yield DataTable(id="holds", cursor_type="row", zebra_stripes=True)
            yield Static("", id="holds-notes")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#holds", DataTable)
        for header, width in ((N_("Customer"), 11), (N_("Reason"), 24), (N_("Placed by"), 12), (N_("Since"), 10)):
            table.add_column(Text(_(header)), width=width)
        self.load()

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="holds-load", exit_on_error=False)
    def load(self) -> None:
        try:
            self.post_message(self.Loaded(retention.list_holds(self.actor)))
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.query_one("#holds-message", Static).update(safe_text(_(message.message), 200))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.holds = message.holds
        table = self.query_one("#holds", DataTable)
        table.clear()
        for h in self.holds:
            table.add_row(Text(h.customer_no), Text(_(HOLD_REASON_LABELS.get(h.reason, h.reason))),
                          Text(safe_plain(h.placed_by, 12)), Text(f"{h.placed_at:%Y-%m-%d}"))
        if self.holds:
            text = _("{n} active. F2 places a hold, Enter shows the notes.").format(n=len(self.holds))
            if self.actor.has(Perm.HOLD_RELEASE):
                text += " " + _("F7 releases.")
        else:
            text = _("No customer is on legal hold. F2 places a hold.")
        self.query_one("#holds-message", Static).update(Content(text))
        self.query_one("#holds-notes", Static).update("")

    def _highlighted(self) -> HoldView | None:
        table = self.query_one("#holds", DataTable)
        if not self.holds or table.cursor_row >= len(self.holds):
            return None
        return self.holds[table.cursor_row]

    @on(DataTable.RowHighlighted, "#holds")
    def _clear_notes(self) -> None:
        self.query_one("#holds-notes", Static).update("")

    # --- placing and releasing ---------------------------------------------------------------

    def action_place(self) -> None:
        self.app.push_screen(
            PlaceHoldDialog(submit=lambda f: retention.place_hold(self.actor, f.customer_no, f.reason, f.note)),
            callback=lambda hold: hold is not None and self._changed(_("{no} is on legal hold.").format(
                no=hold.customer_no)))

    def action_release(self) -> None:
        hold = self._highlighted()
        if hold is None:
            return
        if not self.actor.has(Perm.HOLD_RELEASE):
            self.notify(_("Only a supervisor can release a legal hold."), severity="warning")
            return
        question = _("Release the hold on {no}? It may then become eligible for destruction. Why:").format(
            no=hold.customer_no)
        self.app.push_screen(
            TextPromptDialog(question, submit=lambda note: retention.release_hold(self.actor, hold.hold_id, note)),
            callback=lambda released: released is not None and self._changed(
                _("The hold on {no} is released.").format(no=released.customer_no)))

    def _changed(self, text: str) -> None:
        self.notify(text, title=_("Legal holds"))
        self.load()

    # --- notes --------------------------------------------------------------------------------

    def action_notes(self) -> None:
        hold = self._highlighted()
        if hold is not None:
            self.load_notes(hold.hold_id)

    @on(DataTable.RowSelected, "#holds")
    def _selected(self) -> None:
        self.action_notes()

    @work(thread=True, exclusive=True, group="holds-notes", exit_on_error=False)
    def load_notes(self, hold_id: str) -> None:
        try:
            placed, released = retention.hold_notes(self.actor, hold_id)
            self.post_message(self.NotesLoaded(placed, released))
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))

    @on(NotesLoaded)
    def _notes(self, message: NotesLoaded) -> None:
        text = _("Note: {note}").format(note=message.placed or "—")
        if message.released:
            text += "\n" + _("Release note: {note}").format(note=message.released)
        self.query_one("#holds-notes", Static).update(safe_text(text, 420, multiline=True))

    def action_back(self) -> None:
        self.dismiss(None)
