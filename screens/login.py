"""The login screen: username and password, checked in a worker (argon2 takes a moment)."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Label, Static

from models.errors import AuthenticationFailed
from models.permissions import Actor
from tui.widgets.footer import Footer
from tui.i18n import _
from tui.safe_text import safe_text
from tui.widgets.field_input import FieldInput


class LoginScreen(Screen[None]):
    """Ask for a username and password; the same message for every failure."""

    CSS_PATH = "login.tcss"
    AUTO_FOCUS = "#username"
    BINDINGS = [
        Binding("enter", "submit", "Log in", id="login.submit", tooltip="Check the username and password",
                priority=False),
    ]

    @dataclass
    class LoginSucceeded(Message):
        actor: Actor

    @dataclass
    class LoginFailed(Message):
        message: str

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0
        self.busy = False

    def compose(self) -> ComposeResult:
        with Center():
            with Vertical(id="login-box"):
                yield Static(safe_text(self.app.settings.office_name, 40), classes="title", id="office")
                yield Static("RecordKeeper", classes="muted", id="product")
                with Horizontal(classes="row"):
                    yield Label(_("Username"), classes="field-label")
                    yield FieldInput(id="username", max_length=32, restrict=r"[A-Za-z0-9._\-]*")
                with Horizontal(classes="row"):
                    yield Label(_("Password"), classes="field-label")
                    yield FieldInput(id="password", password=True, max_length=128, enter_moves_on=False)
                yield Static("", id="login-message", classes="error")
                yield Static(_("Press F1 for help"), classes="muted", id="login-hint")
        yield Footer()

    @on(Input.Submitted, "#password")
    def _submitted(self) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        if self.busy:
            return
        username = self.query_one("#username", Input).value
        password = self.query_one("#password", Input).value
        if not username:
            self.query_one("#username", Input).focus()
            return
        self.busy = True
        self.query_one("#login-message", Static).update(_("Checking…"))
        self.check_login(username, password)

    @work(thread=True, exclusive=True, group="login", exit_on_error=False)
    def check_login(self, username: str, password: str) -> None:
        from models import staff  # imported here: the login screen shows before the database is opened

        self.app.office_ready.wait()
        try:
            actor = staff.authenticate(username, password)
        except AuthenticationFailed:
            self.post_message(self.LoginFailed(_("Wrong username or password.")))
            return
        self.post_message(self.LoginSucceeded(actor))

    @on(LoginFailed)
    def _failed(self, message: LoginFailed) -> None:
        self.failures += 1
        self.busy = False
        password = self.query_one("#password", Input)
        password.value = ""
        self.query_one("#login-message", Static).update(message.message)
        password.focus()

    @on(LoginSucceeded)
    def _succeeded(self, message: LoginSucceeded) -> None:
        self.busy = False
        self.app.logged_in(message.actor)
