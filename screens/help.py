"""F1 help: the keys of the screen underneath, generated from its bindings and the app's."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from tui.i18n import _


def binding_rows(screen: Screen) -> list[tuple[str, str, str]]:
    """(key, description, tooltip) for every binding active on `screen`, its focused widget, and the app."""
    rows: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    # The screen's own keys and the app's first; a focused widget's movement keys after them.
    ordered = sorted(screen.active_bindings.values(), key=lambda item: item[0] not in (screen, screen.app))
    for _node, binding, enabled, _tooltip in ordered:
        if not binding.description or binding.key in seen:
            continue
        seen.add(binding.key)
        key = binding.key_display or screen.app.get_key_display(binding)
        rows.append((key, _(binding.description), _(binding.tooltip) if binding.tooltip else ""))
    return rows


class HelpScreen(ModalScreen[None]):
    """A list of keys; any of escape, F1 or q closes it."""

    CSS_PATH = "help.tcss"
    BINDINGS = [
        Binding("escape,f1,q", "dismiss", "Back", id="help.close", tooltip="Close the help"),
    ]

    def __init__(self, for_screen: Screen) -> None:
        super().__init__()
        self.for_screen = for_screen

    def compose(self) -> ComposeResult:
        # A grid measures cells (Chinese takes two) and wraps a long tooltip under itself.
        keys = Table.grid(padding=(0, 1))
        keys.add_column(justify="right", no_wrap=True)
        keys.add_column(no_wrap=True)
        keys.add_column(ratio=1)
        for key, description, tooltip in binding_rows(self.for_screen):
            keys.add_row(Text(key), Text(description), Text(tooltip))
        with VerticalScroll(id="help-box"):
            yield Static(_("Keys"), classes="title")
            yield Static(keys, id="help-keys")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
