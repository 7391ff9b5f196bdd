"""The reviewer's dialogs: a reason for one field, the overall note when returning, the revision history."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from models import intake
from tui.i18n import _
from tui.safe_text import safe_plain, safe_text
from tui.widgets.field_input import FieldInput

_DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 72; height: auto; max-height: 20; border: heavy $primary; background: $panel;
                     padding: 0 1; }}
{name} Input {{ width: 1fr; margin: 1 0 0 0; }}
"""


class ReasonDialog(ModalScreen[str | None]):
    """Type why one field must be corrected; Enter keeps it (empty removes it), Esc changes nothing."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="ReasonDialog")
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="reason.cancel", tooltip="Leave the reason as it was")]

    def __init__(self, label: str, value: str, reason: str) -> None:
        super().__init__()
        self.label, self.value, self.reason = label, value, reason

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(_("Why must “{field}” be corrected?").format(field=safe_plain(self.label, 30))),
                         classes="title")
            yield Static(safe_text(self.value or _("(empty)"), 200, multiline=True), classes="muted")
            yield FieldInput(self.reason, id="reason", max_length=intake.MAX_REASON, enter_moves_on=False)
            yield Static(_("Enter: keep the reason (empty removes it) · Esc: cancel"), classes="muted")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    @on(Input.Submitted, "#reason")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class ReturnDialog(ModalScreen[str | None]):
    """Confirm a return: lists the fields with reasons and asks for the overall note."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="ReturnDialog")
    BINDINGS = [
        Binding("f10", "send", "Send back", id="return.send", tooltip="Return the form to its clerk"),
        Binding("escape", "cancel", "Cancel", id="return.cancel", tooltip="Do not return it"),
    ]

    def __init__(self, field_labels: list[str]) -> None:
        super().__init__()
        self.field_labels = field_labels

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(_("Return this form for correction"), classes="title")
            listed = ", ".join(self.field_labels) if self.field_labels else _("none (say what is wrong below)")
            yield Static(safe_text(_("Reasons given for: ") + listed, 300, multiline=True))
            yield Static(_("Overall note to the clerk:"), classes="muted")
            yield FieldInput(id="note", max_length=intake.MAX_NOTE, enter_moves_on=False)
            yield Static(_("Enter or F10: send back · Esc: cancel"), classes="muted")

    def on_mount(self) -> None:
        self.query_one("#note", Input).focus()

    @on(Input.Submitted, "#note")
    def _submitted(self) -> None:
        self.action_send()

    def action_send(self) -> None:
        self.dismiss(self.query_one("#note", Input).value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class RevisionHistoryDialog(ModalScreen[None]):
    """Every submitted revision: who sent it and when, and who decided what."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="RevisionHistoryDialog")
    BINDINGS = [Binding("escape,h,enter", "close", "Close", id="history.close", tooltip="Close the history")]

    def __init__(self, ref: str, history: list[intake.RevisionInfo]) -> None:
        super().__init__()
        self.ref, self.history = ref, history

    def compose(self) -> ComposeResult:
        from screens.intake import local_time

        lines = []
        for info in self.history:
            line = _("r{n} sent by {who} at {time}").format(n=info.number, who=safe_plain(info.submitted_by, 16),
                                                           time=local_time(info.submitted_at))
            if info.outcome == "pending":
                line += " · " + _("waiting for review")
            else:
                line += " · " + _("{outcome} by {who} at {time}").format(
                    outcome=_(info.outcome), who=safe_plain(info.reviewed_by, 16), time=local_time(info.reviewed_at))
            if info.reason_fields:
                line += "\n     " + _("reasons: ") + ", ".join(info.reason_fields)
            lines.append(line)
        with Vertical():
            yield Static(Content(_("Revisions of {ref}").format(ref=self.ref)), classes="title")
            yield Static(safe_text("\n".join(lines), 2000, multiline=True))
            yield Static(_("Esc: close"), classes="muted")

    def action_close(self) -> None:
        self.dismiss(None)
