"""Choose a customer's labels: Space or Enter ticks a label, F2 saves (a change in the customer's history).

Ticks are written [x] / [ ] so they read the same without colour.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from models.labels import LabelView
from tui.i18n import _
from tui.safe_text import safe_plain


class LabelPickerDialog(ModalScreen[list[int] | None]):
    """The active labels, the customer's own ticked; returns the ticked label ids, or None on Esc."""

    DEFAULT_CSS = """
    LabelPickerDialog { align: center middle; }
    LabelPickerDialog > Vertical { width: 64; height: auto; max-height: 20; border: heavy $primary;
                                   padding: 0 1; background: $panel; }
    LabelPickerDialog #label-picks { height: auto; max-height: 14; border: none; }
    """
    AUTO_FOCUS = "#label-picks"
    BINDINGS = [
        Binding("space", "toggle", "Tick", id="labels.pick.toggle", tooltip="Tick or untick the label"),
        Binding("f2", "save", "Save", id="labels.pick.save", tooltip="Save the ticked labels"),
        Binding("escape", "cancel", "Cancel", id="labels.pick.cancel", tooltip="Close; nothing changes"),
    ]

    def __init__(self, labels: list[LabelView], chosen: set[int]) -> None:
        super().__init__()
        self.labels = labels
        self.chosen = set(chosen)

    def _prompt(self, label: LabelView) -> Content:
        tick = "[x] " if label.label_id in self.chosen else "[ ] "
        return Content.assemble(tick, ("■ ", f"${label.colour}"), safe_plain(label.name, 24), "  ",
                                (safe_plain(label.description, 24), "dim"))

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(_("Labels of this customer")), classes="title")
            yield OptionList(*[Option(self._prompt(label)) for label in self.labels], id="label-picks")
            yield Static(Content(_("Space/Enter: tick or untick   F2: save   Esc: cancel")), classes="muted")

    @on(OptionList.OptionSelected, "#label-picks")
    def _selected(self) -> None:
        self.action_toggle()

    def action_toggle(self) -> None:
        picks = self.query_one("#label-picks", OptionList)
        index = picks.highlighted
        if index is None:
            return
        label = self.labels[index]
        self.chosen ^= {label.label_id}
        picks.replace_option_prompt_at_index(index, self._prompt(label))

    def action_save(self) -> None:
        self.dismiss(sorted(self.chosen))

    def action_cancel(self) -> None:
        self.dismiss(None)
