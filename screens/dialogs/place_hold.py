"""Place a legal hold: customer number, reason and an optional note; errors beside each field."""

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
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from models.errors import RecordKeeperError, ValidationError
from models.retention import HOLD_REASON_LABELS, HOLD_REASONS
from tui.i18n import _
from tui.safe_text import safe_text
from tui.widgets.field_input import FieldInput


# The field to put the cursor in when the service refuses the form for this error.
FOCUS_FOR = {"customer": "#hold-customer", "customer_no": "#hold-customer", "reason": "#hold-reason",
             "note": "#hold-note"}


@dataclass(frozen=True)
class HoldForm:
    customer_no: str
    reason: str
    note: str


class PlaceHoldDialog(ModalScreen[Any]):
    """The hold form; F2 (or Enter in the note) hands it to `submit` in a worker, Esc cancels.

    A refusal is shown beside the field it concerns and the form stays open; on success the
    dialog closes with what `submit` returned.
    """

    DEFAULT_CSS = """
    PlaceHoldDialog { align: center middle; }
    PlaceHoldDialog > Vertical { width: 64; height: auto; max-height: 24; border: heavy $warning;
                                 padding: 0 2; background: $panel; }
    PlaceHoldDialog #hold-reason { height: 5; border: none; padding: 0; }
    PlaceHoldDialog .field-error { color: $state-danger; text-style: $state-danger-text-style; height: auto; }
    PlaceHoldDialog .label { color: $text-muted; }
    """
    AUTO_FOCUS = "#hold-customer"
    BINDINGS = [
        Binding("f2", "confirm", "Place hold", id="hold.confirm", tooltip="Place the legal hold"),
        Binding("escape", "cancel", "Cancel", id="hold.cancel", tooltip="Go back; nothing changes"),
    ]

    @dataclass
    class Refused(Message):
        errors: dict[str, str]

    @dataclass
    class Accepted(Message):
        result: object

    def __init__(self, form: HoldForm | None = None, *, submit: Callable[[HoldForm], object]) -> None:
        super().__init__()
        self.form = form or HoldForm("", HOLD_REASONS[0], "")
        self.errors: dict[str, str] = {}
        self.submit = submit
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(_("Place a legal hold: never destroyed while it lasts")), classes="title")
            yield Static(Content(_("Customer number")), classes="label")
            yield FieldInput(self.form.customer_no, id="hold-customer", max_length=20, select_on_focus=False)
            yield Static("", id="hold-customer-error", classes="field-error")
            yield Static(Content(_("Reason")), classes="label")
            yield OptionList(*[Option(Content(_(HOLD_REASON_LABELS[code])), id=code) for code in HOLD_REASONS],
                             id="hold-reason")
            yield Static("", id="hold-reason-error", classes="field-error")
            yield Static(Content(_("Note (claim or case number; no personal details)")), classes="label")
            yield FieldInput(self.form.note, id="hold-note", max_length=200, enter_moves_on=False,
                             select_on_focus=False)
            yield Static("", id="hold-note-error", classes="field-error")
            yield Static(Content(_("F2: place hold    Esc: cancel")), classes="muted")

    def on_mount(self) -> None:
        self._show_errors()
        reasons = self.query_one("#hold-reason", OptionList)
        reasons.highlighted = HOLD_REASONS.index(self.form.reason) if self.form.reason in HOLD_REASONS else 0
        if self.form.customer_no:
            reasons.focus()

    def _show_errors(self) -> None:
        for name, fields in (("customer", ("customer", "customer_no")), ("reason", ("reason",)),
                             ("note", ("note",))):
            error = self.query_one(f"#hold-{name}-error", Static)
            text = " ".join(_(self.errors[f]) for f in fields if f in self.errors)
            error.update(safe_text(text, 200))
            error.display = bool(text)

    @on(OptionList.OptionSelected, "#hold-reason")
    def _reason_chosen(self) -> None:
        self.query_one("#hold-note", Input).focus()

    @on(Input.Submitted, "#hold-note")
    def _note_entered(self) -> None:
        self.action_confirm()

    def action_confirm(self) -> None:
        if self.busy:
            return
        reasons = self.query_one("#hold-reason", OptionList)
        index = reasons.highlighted if reasons.highlighted is not None else 0
        self.busy = True
        self._run(HoldForm(self.query_one("#hold-customer", Input).value.strip(), HOLD_REASONS[index],
                           self.query_one("#hold-note", Input).value))

    @work(thread=True, exclusive=True, group="hold-submit", exit_on_error=False)
    def _run(self, form: HoldForm) -> None:
        try:
            result = self.submit(form)
        except ValidationError as exc:
            self.post_message(self.Refused(exc.by_field()))
        except RecordKeeperError as exc:
            self.post_message(self.Refused({"customer": str(exc)}))
        else:
            self.post_message(self.Accepted(result))

    @on(Refused)
    def _refused(self, message: Refused) -> None:
        self.busy = False
        self.errors = message.errors
        self._show_errors()
        first = next((name for name in FOCUS_FOR if name in self.errors), "customer")
        self.query_one(FOCUS_FOR[first]).focus()

    @on(Accepted)
    def _accepted(self, message: Accepted) -> None:
        self.dismiss(message.result)

    def action_cancel(self) -> None:
        if not self.busy:
            self.dismiss(None)
