"""Change one's password (forced at first login after an admin set it)."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Label, Static

from tui.widgets.field_input import FieldInput

from models import staff
from models.errors import ValidationError
from models.permissions import Actor
from tui.widgets.footer import Footer
from tui.i18n import _

FIELD_IDS = {"current_password": "#current", "new_password": "#new"}


class ChangePasswordScreen(Screen[None]):
    """Three fields; each problem is shown beside its field and nothing typed is lost."""

    CSS_PATH = "change_password.tcss"
    AUTO_FOCUS = "#current"
    BINDINGS = [
        Binding("f2", "save", "Save", id="password.save", tooltip="Change the password"),
    ]

    @dataclass
    class Rejected(Message):
        errors: dict[str, str]

    @dataclass
    class Changed(Message):
        actor: Actor

    def __init__(self, actor: Actor, forced: bool = False) -> None:
        super().__init__()
        self.actor = actor
        self.forced = forced

    def compose(self) -> ComposeResult:
        with Center():
            with Vertical(id="password-box"):
                yield Static(_("Change password"), classes="title")
                if self.forced:
                    yield Static(_("Choose your own password before you start (12 or more characters)."),
                                 classes="muted")
                for field_id, label in (("current", "Current password"), ("new", "New password"),
                                        ("repeat", "Repeat new password")):
                    with Horizontal(classes="row"):
                        yield Label(_(label), classes="field-label")
                        yield FieldInput(id=field_id, password=True, max_length=128, enter_moves_on=field_id != "repeat")
                    yield Static("", id=f"{field_id}-error", classes="error field-error")
        yield Footer()

    @on(Input.Submitted, "#repeat")
    def _last_field(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        for field_id in ("current", "new", "repeat"):
            self.query_one(f"#{field_id}-error", Static).update("")
        current = self.query_one("#current", Input).value
        new = self.query_one("#new", Input).value
        if new != self.query_one("#repeat", Input).value:
            self.query_one("#repeat-error", Static).update(_("Passwords do not match."))
            self.query_one("#repeat", Input).focus()
            return
        self.change(current, new)

    @work(thread=True, exclusive=True, group="password", exit_on_error=False)
    def change(self, current: str, new: str) -> None:
        try:
            actor = staff.change_password(self.actor, current, new)
        except ValidationError as exc:
            self.post_message(self.Rejected(exc.by_field()))
            return
        self.post_message(self.Changed(actor))

    @on(Rejected)
    def _rejected(self, message: Rejected) -> None:
        first = None
        for field, text in message.errors.items():
            field_id = FIELD_IDS.get(field, "#new")
            label = _("Current password") if field == "current_password" else _("New password")
            self.query_one(f"{field_id}-error", Static).update(f"{label} {_(text)}")
            first = first or field_id
        if first:
            self.query_one(first, Input).focus()

    @on(Changed)
    def _changed(self, message: Changed) -> None:
        self.notify(_("Password changed."))
        self.app.password_changed(message.actor)
