"""F1 help: the keys of the screen underneath, generated from its bindings and the app's."""

from __future__ import annotations

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
        lines = [f"{key:>10}  {description:<18} {tooltip}" for key, description, tooltip in
                 binding_rows(self.for_screen)]
        with VerticalScroll(id="help-box"):
            yield Static(_("Keys"), classes="title")
            yield Static("\n".join(lines), id="help-keys", markup=False)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
