"""Pick one item from a short list (a branch, a colour); Enter picks, Esc leaves things as they were."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tui.i18n import _
from tui.safe_text import safe_text


class ChoiceDialog(ModalScreen[str | None]):
    """A titled list of (value, label); returns the chosen value, or None on Esc."""

    DEFAULT_CSS = """
    ChoiceDialog { align: center middle; }
    ChoiceDialog > Vertical { width: 56; height: auto; max-height: 20; border: heavy $primary;
                              padding: 0 1; background: $panel; }
    ChoiceDialog #choice-list { height: auto; max-height: 14; border: none; }
    """
    AUTO_FOCUS = "#choice-list"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="choice.cancel", tooltip="Close; nothing changes"),
    ]

    def __init__(self, title: str, choices: list[tuple[str, str]], current: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.choices = choices
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(self.title_text), classes="title")
            yield OptionList(*[Option(safe_text(("▸ " if value == self.current else "  ") + label, 50))
                               for value, label in self.choices], id="choice-list")
            yield Static(Content(_("Enter: choose   Esc: cancel")), classes="muted")

    def on_mount(self) -> None:
        values = [value for value, _label in self.choices]
        if self.current in values:
            self.query_one(OptionList).highlighted = values.index(self.current)

    @on(OptionList.OptionSelected, "#choice-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[event.option_index][0])

    def action_cancel(self) -> None:
        self.dismiss(None)
