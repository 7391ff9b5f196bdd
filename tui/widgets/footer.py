"""The footer of key hints, in the staff member's language."""

from __future__ import annotations

from textual.widgets import Footer as TextualFooter
from textual.widgets._footer import FooterKey

from tui.i18n import _


class Footer(TextualFooter):
    """Textual's footer with each key's description translated when it is drawn."""

    def compose(self):
        for widget in super().compose():
            if isinstance(widget, FooterKey) and widget.description:
                widget.description = _(widget.description)
            yield widget
