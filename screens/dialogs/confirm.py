"""A yes/no confirmation for destructive actions; Esc and N answer no."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.i18n import _


class ConfirmDialog(ModalScreen[bool]):
    """Ask one question; only an explicit Y (or F10) confirms."""

    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; }
    ConfirmDialog > Vertical { width: 60; height: auto; border: heavy $warning; padding: 1 2;
                               background: $panel; }
    ConfirmDialog #confirm-keys { margin: 1 0 0 0; }
    """
    BINDINGS = [
        Binding("y,f10", "answer(True)", "Yes", id="confirm.yes", tooltip="Confirm"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no", tooltip="Cancel; nothing changes"),
    ]

    def __init__(self, question: Content | str) -> None:
        super().__init__()
        self.question = question if isinstance(question, Content) else Content(question)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, id="confirm-question")
            yield Static(Content(_("Y: yes    N / Esc: no")), id="confirm-keys", classes="muted")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
