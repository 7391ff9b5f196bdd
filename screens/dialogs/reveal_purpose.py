"""Ask why a masked field must be shown; the reveal is audited with this purpose before decryption."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from models import validation
from tui.i18n import N_, _
from tui.widgets.field_input import FieldInput

MIN_PURPOSE = 4  # the service refuses shorter purposes (models.customers.reveal_fields)
COMMON_PURPOSES = (N_("Verify identity on a customer call"), N_("Process a claim"),
                   N_("Reply to the customer's letter"), N_("Periodic verification"))


class RevealPurposeDialog(ModalScreen[str | None]):
    """Type a purpose (or pick a common one); Enter reveals, Esc keeps the field masked."""

    CSS_PATH = "reveal_purpose.tcss"
    AUTO_FOCUS = "#purpose-input"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="reveal.cancel", tooltip="Keep the field masked"),
        Binding("f2", "confirm", "Reveal", id="reveal.confirm", tooltip="Show the field for this purpose"),
        Binding("down", "to_list", "Common purposes", id="reveal.list", tooltip="Pick a common purpose",
                show=False),
    ]

    def __init__(self, field_label: str, last_purpose: str = "") -> None:
        super().__init__()
        self.field_label = field_label
        self.last_purpose = last_purpose

    def compose(self) -> ComposeResult:
        with Vertical(id="purpose-box"):
            yield Static(Content(_("Show {field}").format(field=self.field_label)), classes="title")
            yield Static(Content(_("Why do you need to see it? The purpose is written to the audit log.")),
                         classes="muted")
            yield FieldInput(self.last_purpose, id="purpose-input", max_length=200, enter_moves_on=False,
                             placeholder=_("purpose (at least 4 characters)"))
            yield Static("", id="purpose-error")
            yield OptionList(*[Option(Content(_(p))) for p in COMMON_PURPOSES], id="purpose-list")
            yield Static(Content(_("Enter: reveal   ↓: pick a common purpose   Esc: keep masked")), classes="muted")

    def on_key(self, event) -> None:
        """Keys typed before the field has focus (right after F3) go into it, not nowhere."""
        if self.focused is not None:
            return
        field = self.query_one("#purpose-input", Input)
        if event.key == "enter":
            event.stop()
            self.action_confirm()
        elif event.key == "backspace":
            event.stop()
            field.value = field.value[:-1]
        elif event.is_printable and event.character:
            event.stop()
            field.value += event.character
            field.cursor_position = len(field.value)

    def action_to_list(self) -> None:
        if self.query_one("#purpose-input", Input).has_focus:
            self.query_one("#purpose-list", OptionList).focus()

    @on(OptionList.OptionSelected, "#purpose-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.query_one("#purpose-input", Input).value = _(COMMON_PURPOSES[event.option_index])
        self.action_confirm()

    @on(Input.Submitted, "#purpose-input")
    def _submitted(self) -> None:
        self.action_confirm()

    def action_confirm(self) -> None:
        text = self.query_one("#purpose-input", Input).value.strip()
        if len(text) < MIN_PURPOSE or validation.forbidden_characters(text):
            self.query_one("#purpose-error", Static).update(
                Content(_("State why you need to see this (at least 4 characters).")))
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
