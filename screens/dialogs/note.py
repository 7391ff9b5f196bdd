"""Ask for a short note before a decision (approve, reject, unreachable, clear a flag); Esc cancels."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tui.i18n import _
from tui.widgets.field_input import FieldInput


class NoteDialog(ModalScreen[str | None]):
    """One question and a note; F2 or Enter confirms (only with a note when one is required)."""

    DEFAULT_CSS = """
    NoteDialog { align: center middle; }
    NoteDialog > Vertical { width: 70; height: auto; border: heavy $primary; padding: 1 2; background: $panel; }
    NoteDialog #note-input { width: 1fr; margin: 1 0 0 0; }
    NoteDialog #note-error { color: $state-danger; text-style: $state-danger-text-style; height: auto; }
    NoteDialog #note-keys { margin: 1 0 0 0; }
    """
    AUTO_FOCUS = "#note-input"
    BINDINGS = [
        Binding("f2", "confirm", "Confirm", id="note.confirm", tooltip="Confirm with this note"),
        Binding("escape", "cancel", "Cancel", id="note.cancel", tooltip="Go back; nothing changes"),
    ]

    def __init__(self, question: Content | str, *, required: bool, placeholder: str = "", value: str = "",
                 max_length: int = 300) -> None:
        super().__init__()
        self.question = question if isinstance(question, Content) else Content(question)
        self.required = required
        self.placeholder = placeholder
        self.initial = value
        self.max_length = max_length

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, id="note-question")
            yield FieldInput(self.initial, id="note-input", placeholder=self.placeholder,
                             max_length=self.max_length, enter_moves_on=False)
            yield Static("", id="note-error")
            keys = _("F2 / Enter: confirm    Esc: cancel")
            yield Static(Content(keys), id="note-keys", classes="muted")

    @on(Input.Submitted, "#note-input")
    def _entered(self) -> None:
        self.action_confirm()

    def action_confirm(self) -> None:
        text = self.query_one("#note-input", Input).value.strip()
        if self.required and len(text) < 4:
            self.query_one("#note-error", Static).update(Content(_("Write a note of at least 4 characters.")))
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
