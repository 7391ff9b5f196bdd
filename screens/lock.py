"""The lock screen: covers everything (no personal data stays visible) until the password is typed again."""

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
from models.errors import AuthenticationFailed, PermissionDenied
from models.permissions import Actor
from tui.widgets.footer import Footer
from tui.i18n import _
from tui.safe_text import safe_text


class LockScreen(Screen[bool]):
    """An opaque screen pushed over the session; dismissed only by the right password."""

    CSS_PATH = "lock.tcss"
    AUTO_FOCUS = "#unlock-password"
    BINDINGS = [
        Binding("escape", "noop", show=False, id="lock.escape", tooltip="Does nothing: the screen stays locked"),
    ]

    @dataclass
    class UnlockFailed(Message):
        message: str

    class Unlocked(Message):
        pass

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor

    def compose(self) -> ComposeResult:
        with Center():
            with Vertical(id="lock-box"):
                yield Static(_("Screen locked"), classes="title")
                yield Static(safe_text(self.actor.display_name, 40), id="lock-who")
                yield Static(_("Enter your password to unlock."), classes="muted")
                with Horizontal(classes="row"):
                    yield Label(_("Password"), classes="field-label")
                    yield FieldInput(id="unlock-password", password=True, max_length=128, enter_moves_on=False)
                yield Static("", id="lock-message", classes="error")
        yield Footer()

    def action_noop(self) -> None:
        """Escape never leaves the lock screen."""

    @on(Input.Submitted, "#unlock-password")
    def _submitted(self, event: Input.Submitted) -> None:
        self.query_one("#lock-message", Static).update(_("Checking…"))
        self.check_password(event.value)

    @work(thread=True, exclusive=True, group="unlock", exit_on_error=False)
    def check_password(self, password: str) -> None:
        try:
            staff.unlock_screen(self.actor, password)
        except (AuthenticationFailed, PermissionDenied):
            self.post_message(self.UnlockFailed(_("Wrong username or password.")))
            return
        self.post_message(self.Unlocked())

    @on(UnlockFailed)
    def _failed(self, message: UnlockFailed) -> None:
        field = self.query_one("#unlock-password", Input)
        field.value = ""
        self.query_one("#lock-message", Static).update(message.message)

    @on(Unlocked)
    def _unlocked(self) -> None:
        self.dismiss(True)
