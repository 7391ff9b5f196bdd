"""Ask for one line of text (a reason, a note, a number) and hand it to a service.

With `submit`, the service runs in a worker while the dialog stays open: a refusal is shown
beside the field and nothing typed is lost; on success the dialog closes with the service's
result. Without `submit` the dialog closes with the text. Esc always cancels (None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from models.errors import RecordKeeperError, ValidationError
from tui.i18n import _
from tui.safe_text import safe_text
from tui.widgets.field_input import FieldInput


class TextPromptDialog(ModalScreen[Any]):
    """One question and one field; F2 or Enter submits, Esc cancels."""

    DEFAULT_CSS = """
    TextPromptDialog { align: center middle; }
    TextPromptDialog > Vertical { width: 72; height: auto; border: heavy $primary; padding: 1 2;
                                  background: $panel; }
    TextPromptDialog #prompt-input { width: 1fr; margin: 1 0 0 0; }
    TextPromptDialog #prompt-error { color: $state-danger; text-style: $state-danger-text-style; height: auto; }
    TextPromptDialog #prompt-keys { margin: 1 0 0 0; }
    """
    AUTO_FOCUS = "#prompt-input"
    BINDINGS = [
        Binding("f2", "confirm", "Confirm", id="prompt.confirm", tooltip="Confirm with this text"),
        Binding("escape", "cancel", "Cancel", id="prompt.cancel", tooltip="Go back; nothing changes"),
    ]

    @dataclass
    class Refused(Message):
        error: str

    @dataclass
    class Accepted(Message):
        result: object

    def __init__(self, question: Content | str, *, submit: Callable[[str], object] | None = None, value: str = "",
                 placeholder: str = "", max_length: int = 200, restrict: str | None = None) -> None:
        super().__init__()
        self.question = question if isinstance(question, Content) else Content(question)
        self.submit = submit
        self.value = value
        self.placeholder = placeholder
        self.max_length = max_length
        self.restrict = restrict
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, id="prompt-question")
            yield FieldInput(self.value, id="prompt-input", placeholder=self.placeholder,
                             max_length=self.max_length, restrict=self.restrict, enter_moves_on=False,
                             select_on_focus=False)
            yield Static("", id="prompt-error")
            yield Static(Content(_("F2 / Enter: confirm    Esc: cancel")), id="prompt-keys", classes="muted")

    @on(Input.Submitted, "#prompt-input")
    def _entered(self) -> None:
        self.action_confirm()

    def action_confirm(self) -> None:
        text = self.query_one("#prompt-input", Input).value
        if self.submit is None:
            self.dismiss(text)
            return
        if self.busy:
            return
        self.busy = True
        self.query_one("#prompt-error", Static).update(Content(_("Saving…")))
        self._run(text)

    @work(thread=True, exclusive=True, group="prompt-submit", exit_on_error=False)
    def _run(self, text: str) -> None:
        try:
            result = self.submit(text)
        except ValidationError as exc:
            self.post_message(self.Refused("; ".join(_(e.message) for e in exc.errors)))
        except RecordKeeperError as exc:
            self.post_message(self.Refused(_(str(exc))))
        else:
            self.post_message(self.Accepted(result))

    @on(Refused)
    def _refused(self, message: Refused) -> None:
        self.busy = False
        self.query_one("#prompt-error", Static).update(safe_text(message.error, 300))

    @on(Accepted)
    def _accepted(self, message: Accepted) -> None:
        self.dismiss(message.result)

    def action_cancel(self) -> None:
        if not self.busy:
            self.dismiss(None)
