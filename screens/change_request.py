"""The change request form (opened from a customer's file) and the requester's own requests.

The form starts empty: a blank field is left as it is, a typed value replaces the current one
(shown masked beside it), F6 marks a field to be cleared and F4 brings in the current value to
edit (an audited reveal). The service validates everything; each problem shows beside its field
and nothing typed is lost.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Input, Label, Select, SelectionList, Static
from textual.widgets.selection_list import Selection

from models import change_requests, clock, customers
from models.documents import DOC_TYPE_LABELS, DOC_TYPES
from models.change_requests import EDITABLE_FIELDS, REPORT_CHANNELS, SOURCES, ChangeRequestSummary, StaleForm
from models.errors import Conflict, NotFound, PermissionDenied, RecordKeeperError, ValidationError
from models.fields import FIELDS_BY_NAME, GROUPS, PERSONAL_FIELDS, Kind
from models.permissions import Actor
from rich.text import Text
from tui.i18n import N_, _, current_language
from tui.safe_text import safe_plain, safe_text
from tui.widgets.diff_table import DiffRow, DiffTable
from tui.widgets.field_input import FieldInput
from tui.widgets.footer import Footer

# English msgids for stored codes; the UI translates them.
CHOICE_LABELS: dict[str, str] = {
    "customer_report": N_("customer report"), "periodic_check": N_("periodic check"),
    "clerk_correction": N_("clerk correction"),
    "phone": N_("phone"), "visit": N_("visit"), "letter": N_("letter"), "email": N_("email"), "sms": N_("SMS"),
    "online": N_("online"), "post": N_("post"),
    "male": N_("male"), "female": N_("female"),
    "resident_id": N_("resident ID"), "passport": N_("passport"), "hkmo_permit": N_("HK/Macau permit"),
    "taiwan_permit": N_("Taiwan permit"), "other": N_("other"),
    "prospect": N_("prospect"), "active": N_("active"), "terminated": N_("terminated"),
    "counter": N_("counter"), "agent": N_("agent"), "referral": N_("referral"), "bancassurance": N_("bancassurance"),
    "pending": N_("pending"), "approved": N_("approved"), "rejected": N_("rejected"), "withdrawn": N_("withdrawn"),
    "confirmed": N_("confirmed"), "changed": N_("changed"), "unreachable": N_("unreachable"),
    "flag_cleared": N_("flag cleared"),
}
EXTRA_LABELS = {"terminated_on": (N_("Terminated on"), "终止日期"), "long_policy": (N_("Policy > 1 year"), "保单超过一年")}
META_FIELDS = ("source", "channel", "reported_on", "reason", "terminated_on", "long_policy")
LABEL_WIDTH = 18
REVEAL_PURPOSE = "change request: edit the current value"


def choice_label(code: str) -> str:
    return _(CHOICE_LABELS.get(code, code))


def field_label(name: str) -> str:
    """A customer field's label in the interface language."""
    spec = FIELDS_BY_NAME.get(name)
    if spec is not None:
        return spec.label_zh if current_language() == "zh" else _(spec.label_en)
    english, chinese = EXTRA_LABELS.get(name, (name, name))
    return chinese if current_language() == "zh" else _(english)


def display_value(name: str, value: object) -> str:
    """A stored value as shown in forms and diffs (choices and yes/no translated; data left as data)."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    spec = FIELDS_BY_NAME.get(name)
    if spec is not None and spec.kind is Kind.CHOICE and str(value) in CHOICE_LABELS:
        return choice_label(str(value))
    return str(value)


def format_age(age: dt.timedelta) -> str:
    """"3 d" / "5 h" / "12 min" — short enough for a queue column."""
    if age.days >= 1:
        return _("{n} d").format(n=age.days)
    hours = age.seconds // 3600
    if hours >= 1:
        return _("{n} h").format(n=hours)
    return _("{n} min").format(n=max(age.seconds // 60, 0))


def fields_summary(names: tuple[str, ...], width: int = 30) -> str:
    return safe_plain(", ".join(field_label(n) for n in names), width)


def _yes_no_options() -> list[tuple[str, str]]:
    return [(_("yes"), "yes"), (_("no"), "no")]


def _choice_options(name: str) -> list[tuple[str, str]]:
    spec = FIELDS_BY_NAME[name]
    if spec.kind is Kind.BOOL:
        return _yes_no_options()
    return [(choice_label(c), c) for c in spec.choices]


class FormScroll(VerticalScroll, can_focus=False):
    """The form's scrolling body: not a Tab stop of its own (it scrolls to the focused field)."""


class ChangeRequestScreen(Screen[bool]):
    """Propose changes to one customer's record, for a supervisor to approve beside a diff."""

    CSS_PATH = "change_request.tcss"
    AUTO_FOCUS = "#in-source"
    BINDINGS = [
        Binding("f2", "send", "Send", id="change.send", tooltip="Send the request for approval"),
        Binding("f4", "current", "Current value", id="change.current",
                tooltip="Bring in the field's current value to edit it (an audited reveal)"),
        Binding("f6", "clear_field", "Clear field", id="change.clear", tooltip="Mark the field to be emptied"),
        Binding("escape", "back", "Back", id="change.back", tooltip="Leave the form (asks first if you typed)"),
    ]

    @dataclass
    class FormLoaded(Message):
        record: customers.CustomerRecord
        pending: list[ChangeRequestSummary]
        inbox: list
        reloaded: bool

    @dataclass
    class CurrentRevealed(Message):
        field: str
        value: object

    @dataclass
    class RequestSent(Message):
        summary: ChangeRequestSummary
        attach_problems: list[str]

    @dataclass
    class RequestRefused(Message):
        errors: list  # FieldError
        message: str

    @dataclass
    class LoadFailed(Message):
        message: str

    def __init__(self, actor: Actor, customer_no: str, *, prefill: dict[str, object] | None = None,
                 source: str | None = None, reason: str = "") -> None:
        super().__init__()
        self.actor = actor
        self.customer_no = customer_no
        self.prefill = dict(prefill or {})
        self.initial_source = source or "customer_report"
        self.initial_reason = reason
        self.record: customers.CustomerRecord | None = None
        self.cleared: set[str] = set()
        self.sending = False
        self.sent = False

    # --- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="cr"):
            yield Static(Content(_("Change request · {number}").format(number=safe_plain(self.customer_no, 16))),
                         id="cr-head", classes="title")
            yield Static(Content(_("Loading…")), id="cr-message", classes="muted")
            with FormScroll(id="cr-form"):
                yield Static(Content(_("Request")), classes="cr-group")
                yield from self._select_row("source", _("Source"),
                                            [(choice_label(s), s) for s in SOURCES], self.initial_source, False)
                yield from self._select_row("channel", _("Channel"),
                                            [(choice_label(c), c) for c in REPORT_CHANNELS],
                                            "phone" if self.initial_source == "customer_report" else None, True)
                yield from self._input_row("reported_on", _("Reported on"),
                                           clock.today().isoformat() if self.initial_source == "customer_report"
                                           else "", placeholder="YYYY-MM-DD")
                yield from self._input_row("reason", _("Reason"), self.initial_reason,
                                           placeholder=_("why the record changes"), max_length=500)
                for group in GROUPS:
                    names = [n for n in EDITABLE_FIELDS if FIELDS_BY_NAME[n].group == group]
                    if not names:
                        continue
                    yield Static(Content(_(group.capitalize())), classes="cr-group")
                    for name in names:
                        spec = FIELDS_BY_NAME[name]
                        prefilled = self.prefill.get(name)
                        if spec.kind in (Kind.CHOICE, Kind.BOOL):
                            value = None
                            if prefilled is not None and prefilled != "":
                                value = ("yes" if prefilled else "no") if isinstance(prefilled, bool) else str(prefilled)
                            yield from self._select_row(name, field_label(name), _choice_options(name), value, True,
                                                        now=True)
                        else:
                            yield from self._input_row(name, field_label(name),
                                                       "" if prefilled is None else str(prefilled),
                                                       max_length=max(spec.max_length * 2, 20), now=True)
                        if name == "category":
                            yield from self._input_row("terminated_on", field_label("terminated_on"),
                                                       str(self.prefill.get("terminated_on") or ""),
                                                       placeholder=_("only to terminate: YYYY-MM-DD"))
                            long_value = self.prefill.get("long_policy")
                            yield from self._select_row("long_policy", field_label("long_policy"), _yes_no_options(),
                                                        None if long_value is None else ("yes" if long_value else "no"),
                                                        True)
                yield Static(Content(_("Evidence from the scanner inbox (Space selects)")), classes="cr-group")
                yield SelectionList[str](id="cr-inbox")
                with Horizontal(classes="cr-row"):
                    yield Label(Content(_("Document type")), classes="cr-label")
                    yield Select([(_(DOC_TYPE_LABELS[t]), t) for t in DOC_TYPES], value="other", allow_blank=False,
                                 compact=True, id="cr-doc-type", classes="cr-input")
        yield Footer()

    def _input_row(self, name: str, label: str, value: str, *, placeholder: str = "", max_length: int = 100,
                   now: bool = False):
        with Horizontal(classes="cr-row", id=f"row-{name}"):
            yield Label(Content(safe_plain(label, LABEL_WIDTH - 1)), classes="cr-label")
            yield FieldInput(value, id=f"in-{name}", placeholder=placeholder, max_length=max_length,
                             classes="cr-input")
            if now:
                yield Static("", id=f"now-{name}", classes="cr-now")
        yield Static("", id=f"err-{name}", classes="cr-error")

    def _select_row(self, name: str, label: str, options, value, allow_blank: bool, *, now: bool = False,
                    prompt: str | None = None):
        with Horizontal(classes="cr-row", id=f"row-{name}"):
            yield Label(Content(safe_plain(label, LABEL_WIDTH - 1)), classes="cr-label")
            kwargs = {"value": value} if value is not None else {}
            prompt = prompt or (_("(no change)") if now else "—")
            yield Select(options, prompt=prompt, allow_blank=allow_blank,
                         compact=True, id=f"in-{name}", classes="cr-input", **kwargs)
            if now:
                yield Static("", id=f"now-{name}", classes="cr-now")
        yield Static("", id=f"err-{name}", classes="cr-error")

    def on_mount(self) -> None:
        for error in self.query(".cr-error"):
            error.display = False
        self.load()

    # --- loading ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="change-form", exit_on_error=False)
    def load(self, reloaded: bool = False) -> None:
        try:
            record = customers.get_customer(self.actor, self.customer_no)
            pending = change_requests.pending_for_customer(self.actor, self.customer_no)
        except (NotFound, PermissionDenied) as exc:
            self.post_message(self.LoadFailed(str(exc)))
            return
        inbox: list = []
        try:
            from models import documents

            inbox = documents.list_inbox(self.actor)
        except (ImportError, RecordKeeperError, OSError):
            inbox = []
        self.post_message(self.FormLoaded(record, pending, inbox, reloaded))

    @on(LoadFailed)
    def _load_failed(self, message: LoadFailed) -> None:
        self._say(_(message.message), error=True)

    @on(FormLoaded)
    def _loaded(self, message: FormLoaded) -> None:
        self.record = message.record
        record = message.record
        name = safe_plain(record.values.get("full_name", ""), 20)
        head = _("Change request · {number} · {name} · {category} · version {version}").format(
            number=record.customer_no, name=name, category=choice_label(str(record.values.get("category", ""))),
            version=record.version)
        self.query_one("#cr-head", Static).update(Content(head))
        for field_name in EDITABLE_FIELDS:
            self._show_now(field_name)
        inbox_list = self.query_one("#cr-inbox", SelectionList)
        chosen = set(inbox_list.selected)
        inbox_list.clear_options()
        for item in message.inbox:
            label = f"{safe_plain(item.name, 40)}  {item.size // 1024} KB"
            if item.problem:
                label += f"  · {_(item.problem)}"
            inbox_list.add_option(Selection(Content(label), item.name, item.name in chosen, disabled=bool(item.problem)))
        if not message.inbox:
            inbox_list.add_option(Selection(Content(_("(the inbox is empty)")), "", False, disabled=True))
        else:
            inbox_list.highlighted = 0  # Space selects at once
        if message.reloaded:
            self._say(_("The record changed after you opened the form; it has been reloaded. "
                        "Check your changes against the current values and send again."), error=True)
        elif message.pending:
            lines = "; ".join(f"{fields_summary(p.fields, 24)} ({p.requester}, {format_age(p.age)})"
                              for p in message.pending[:3])
            self._say(_("Pending requests on this record: {n} — {list}").format(n=len(message.pending), list=lines))
        else:
            self._say(_("Leave a field blank to keep it. F4 brings in the current value, F6 clears a field."))
        if self.focused is None:
            self.query_one("#in-source").focus()

    def _show_now(self, name: str) -> None:
        if self.record is None:
            return
        widget = self.query_one(f"#now-{name}", Static)
        if name in self.cleared:
            widget.update(Content(_("→ will be cleared")))
            widget.add_class("-cleared")
            return
        widget.remove_class("-cleared")
        shown = display_value(name, self.record.values.get(name))
        widget.update(Content(_("now: {value}").format(value=safe_plain(shown or "—", 20))))

    def _say(self, text: str, *, error: bool = False) -> None:
        widget = self.query_one("#cr-message", Static)
        widget.update(safe_text(text, 240, multiline=True))
        widget.set_class(error, "error")
        widget.set_class(not error, "muted")

    # --- editing helpers ------------------------------------------------------------------------

    def _focused_field(self) -> str | None:
        focused = self.focused
        if focused is None or not focused.id or not focused.id.startswith("in-"):
            return None
        name = focused.id[3:]
        return name if name in EDITABLE_FIELDS else None

    def action_clear_field(self) -> None:
        name = self._focused_field()
        if name is None:
            self.notify(_("Move to a customer field first."), severity="warning")
            return
        widget = self.query_one(f"#in-{name}")
        if name in self.cleared:
            self.cleared.discard(name)
        else:
            self.cleared.add(name)
            if isinstance(widget, Input):
                widget.value = ""
            elif isinstance(widget, Select):
                widget.clear()
        self._show_now(name)

    def action_current(self) -> None:
        name = self._focused_field()
        if name is None or self.record is None:
            self.notify(_("Move to a customer field first."), severity="warning")
            return
        if name in PERSONAL_FIELDS:
            self.reveal(name)
        else:
            self._put_value(name, self.record.values.get(name))

    @work(thread=True, exclusive=True, group="change-reveal", exit_on_error=False)
    def reveal(self, name: str) -> None:
        try:
            record = customers.reveal_fields(self.actor, self.customer_no, [name], REVEAL_PURPOSE)
        except RecordKeeperError as exc:
            self.app.call_from_thread(self.notify, _(str(exc)), severity="error")
            return
        self.post_message(self.CurrentRevealed(name, record.values.get(name)))

    @on(CurrentRevealed)
    def _revealed(self, message: CurrentRevealed) -> None:
        self._put_value(message.field, message.value)

    def _put_value(self, name: str, value: object) -> None:
        self.cleared.discard(name)
        widget = self.query_one(f"#in-{name}")
        if isinstance(widget, Select):
            if isinstance(value, bool):
                widget.value = "yes" if value else "no"
            elif value not in (None, ""):
                widget.value = str(value)
        elif isinstance(widget, Input):
            widget.value = "" if value is None else str(value)
            widget.cursor_position = len(widget.value)
        self._show_now(name)

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        name = (event.input.id or "")[3:]
        if name in self.cleared and event.value:
            self.cleared.discard(name)
            self._show_now(name)

    @on(Select.Changed)
    def _chose(self, event: Select.Changed) -> None:
        name = (event.select.id or "")[3:]
        if name in self.cleared and not event.select.is_blank():
            self.cleared.discard(name)
            self._show_now(name)
        if name == "source":
            channel = self.query_one("#in-channel", Select)
            reported = self.query_one("#in-reported_on", Input)
            if event.value == "customer_report":
                if channel.is_blank():
                    channel.value = "phone"
                if not reported.value:
                    reported.value = clock.today().isoformat()
            else:
                channel.clear()
                reported.value = ""

    # --- collecting and sending --------------------------------------------------------------------

    def _value(self, name: str) -> object:
        widget = self.query_one(f"#in-{name}")
        if isinstance(widget, Select):
            if widget.is_blank():
                return None
            value = widget.value
            if name == "long_policy" or FIELDS_BY_NAME.get(name, None) and FIELDS_BY_NAME[name].kind is Kind.BOOL:
                return value == "yes"
            return value
        assert isinstance(widget, Input)
        return widget.value

    def changes(self) -> dict[str, object]:
        """The customer fields the form changes: typed or chosen values, and fields marked to clear."""
        out: dict[str, object] = {}
        for name in EDITABLE_FIELDS:
            if name in self.cleared:
                out[name] = False if FIELDS_BY_NAME[name].kind is Kind.BOOL else ""
                continue
            value = self._value(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            out[name] = value
        return out

    def is_dirty(self) -> bool:
        return bool(self.changes()) or bool(self.query_one("#in-reason", Input).value.strip())

    def action_send(self) -> None:
        if self.record is None or self.sending:
            return
        for error in self.query(".cr-error"):
            error.update("")
            error.display = False
        source = self._value("source")
        payload = {
            "changes": self.changes(), "source": source or "", "reason": self._value("reason") or "",
            "channel": self._value("channel") or "", "reported_on": self._value("reported_on") or None,
            "terminated_on": self._value("terminated_on") or None, "long_policy": self._value("long_policy"),
        }
        inbox = [name for name in self.query_one("#cr-inbox", SelectionList).selected if name]
        doc_type = self.query_one("#cr-doc-type", Select).value
        self.sending = True
        self._say(_("Sending…"))
        self.send(self.record.version, payload, inbox, str(doc_type))

    @work(thread=True, exclusive=True, group="change-send", exit_on_error=False)
    def send(self, base_version: int, payload: dict, inbox: list[str], doc_type: str) -> None:
        try:
            summary = change_requests.submit_change_request(
                self.actor, self.customer_no, base_version, payload["changes"], source=payload["source"],
                reason=payload["reason"], channel=payload["channel"], reported_on=payload["reported_on"],
                terminated_on=payload["terminated_on"], long_policy=payload["long_policy"])
        except ValidationError as exc:
            self.post_message(self.RequestRefused(exc.errors, ""))
            return
        except StaleForm:
            self.post_message(self.RequestRefused([], "stale"))
            return
        except (Conflict, NotFound, PermissionDenied) as exc:
            self.post_message(self.RequestRefused([], str(exc)))
            return
        problems: list[str] = []
        if inbox:
            from models import documents

            for name in inbox:
                try:
                    documents.attach_document(self.actor, change_requests.TABLE, summary.request_id, name, doc_type)
                except (RecordKeeperError, OSError) as exc:
                    problems.append(f"{safe_plain(name, 40)}: {exc}")
        self.post_message(self.RequestSent(summary, problems))

    @on(RequestRefused)
    def _refused(self, message: RequestRefused) -> None:
        self.sending = False
        if message.message == "stale":
            self.load(reloaded=True)
            return
        if message.message:
            self._say(_(message.message), error=True)
            return
        general: list[str] = []
        first: Widget | None = None
        for error in message.errors:
            target = self.query(f"#err-{error.field}")
            if target and (error.field in EDITABLE_FIELDS or error.field in META_FIELDS):
                widget = target.first(Static)
                widget.update(safe_text(_(error.message), 200, multiline=True))
                widget.display = True
                first = first or self.query_one(f"#in-{error.field}")
            else:
                general.append(_(error.message))
        count = len(message.errors)
        summary = _("{n} problem(s): the request was not sent. Nothing you typed is lost.").format(n=count)
        self._say(" ".join([summary, *general]), error=True)
        if first is not None:
            first.focus()
            self.query_one("#cr-form", FormScroll).scroll_to_widget(first, animate=False)

    @on(RequestSent)
    def _sent(self, message: RequestSent) -> None:
        self.sending = False
        self.sent = True
        text = _("Change request sent for approval: {fields}.").format(fields=fields_summary(message.summary.fields, 60))
        self.app.notify(text, title=message.summary.customer_no)
        for problem in message.attach_problems:
            self.app.notify(_("Evidence not attached: {problem}").format(problem=problem), severity="warning",
                            timeout=15)
        self.dismiss(True)

    def action_back(self) -> None:
        if self.sent or self.record is None or not self.is_dirty():
            self.dismiss(False)
            return
        from screens.dialogs.confirm import ConfirmDialog

        def answered(leave: bool | None) -> None:
            if leave:
                self.dismiss(False)

        self.app.push_screen(ConfirmDialog(_("Leave without sending? What you typed here will be lost.")), answered)


# --- the requester's own requests ----------------------------------------------------------------


class MyRequestsScreen(Screen[None]):
    """The change requests I filed, newest first, with their outcomes (new outcomes are marked)."""

    CSS_PATH = "change_request.tcss"
    AUTO_FOCUS = "#mine"
    BINDINGS = [
        Binding("enter", "open", "Open", id="mine.open", tooltip="Show the request and its outcome"),
        Binding("f5", "refresh", "Refresh", id="mine.refresh", tooltip="Load the list again"),
        Binding("escape", "back", "Back", id="mine.back", tooltip="Back to the home screen"),
    ]

    @dataclass
    class Loaded(Message):
        requests: list[ChangeRequestSummary]

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        self.requests: list[ChangeRequestSummary] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="mine-box"):
            yield Static(Content(_("My change requests")), classes="title")
            yield Static(Content(_("Loading…")), id="mine-message", classes="muted")
            yield DataTable(id="mine", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#mine", DataTable)
        for header, width in ((N_("Sent"), 11), (N_("Customer"), 12), (N_("Changes"), 20), (N_("Outcome"), 16),
                              (N_("By"), 10)):
            table.add_column(Text(_(header)), width=width)
        self.load()

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="my-requests", exit_on_error=False)
    def load(self) -> None:
        self.post_message(self.Loaded(change_requests.my_requests(self.actor, mark_seen=True)))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.requests = message.requests
        table = self.query_one("#mine", DataTable)
        table.clear()
        for r in self.requests:
            outcome = choice_label(r.status)
            if not r.outcome_seen and r.status in ("approved", "rejected"):
                outcome = _("NEW") + " " + outcome
            table.add_row(Text(r.requested_at.strftime("%m-%d %H:%M")), Text(r.customer_no),
                          Text(fields_summary(r.fields, 20)), Text(safe_plain(outcome, 16)),
                          Text(safe_plain(r.decider, 10)), key=r.request_id)
        new = sum(1 for r in self.requests if not r.outcome_seen and r.status in ("approved", "rejected"))
        text = (_("{n} new outcome(s) since you last looked.").format(n=new) if new
                else _("{n} request(s). Enter shows one.").format(n=len(self.requests)))
        self.query_one("#mine-message", Static).update(Content(text))

    def action_open(self) -> None:
        table = self.query_one("#mine", DataTable)
        if not self.requests or table.cursor_row >= len(self.requests):
            return
        chosen = self.requests[table.cursor_row]
        self.app.push_screen(RequestOutcomeScreen(self.actor, chosen.request_id), callback=lambda _r: self.load())

    @on(DataTable.RowSelected, "#mine")
    def _selected(self) -> None:
        self.action_open()

    def action_back(self) -> None:
        self.dismiss(None)


class RequestOutcomeScreen(Screen[None]):
    """One of my requests: the diff, the outcome and the supervisor's note; file again or withdraw."""

    CSS_PATH = "change_request.tcss"
    BINDINGS = [
        Binding("f3", "file_again", "File again", id="outcome.again",
                tooltip="Open the form with these values, against the current record"),
        Binding("f8", "withdraw", "Withdraw", id="outcome.withdraw", tooltip="Take back a pending request"),
        Binding("escape", "back", "Back", id="outcome.back", tooltip="Back to my requests"),
    ]

    @dataclass
    class Loaded(Message):
        detail: change_requests.ChangeRequestDetail

    @dataclass
    class Failed(Message):
        message: str

    @dataclass
    class Proposal(Message):
        values: dict

    def __init__(self, actor: Actor, request_id: str) -> None:
        super().__init__()
        self.actor = actor
        self.request_id = request_id
        self.detail: change_requests.ChangeRequestDetail | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="outcome-box"):
            yield Static(Content(_("Change request")), id="outcome-head", classes="title")
            yield Static(Content(_("Loading…")), id="outcome-info")
            yield DiffTable(id="outcome-diff", show_unchanged=False)
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="outcome", exit_on_error=False)
    def load(self) -> None:
        try:
            self.post_message(self.Loaded(change_requests.my_request_detail(self.actor, self.request_id)))
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.query_one("#outcome-info", Static).update(safe_text(_(message.message), 200))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.detail = detail = message.detail
        s = detail.summary
        self.query_one("#outcome-head", Static).update(Content(
            _("{number} {name} · {status}").format(number=s.customer_no, name=safe_plain(s.masked_name, 12),
                                                   status=choice_label(s.status))))
        lines = [_("Sent {when} · {source}").format(when=s.requested_at.strftime("%Y-%m-%d %H:%M"),
                                                      source=choice_label(s.source)),
                 _("Reason: {reason}").format(reason=safe_plain(detail.reason, 60))]
        if s.decided_at:
            lines.append(_("{status} by {who} on {when}").format(status=choice_label(s.status),
                                                               who=safe_plain(s.decider, 20),
                                                               when=s.decided_at.strftime("%Y-%m-%d %H:%M")))
        if detail.note:
            lines.append(_("Note: {note}").format(note=safe_plain(detail.note, 66)))
        self.query_one("#outcome-info", Static).update(Content("\n".join(lines)))
        self.query_one(DiffTable).set_rows(diff_rows(detail.rows))
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        status = self.detail.summary.status if self.detail else ""
        if action == "withdraw":
            return status == "pending"
        if action == "file_again":
            return status in ("rejected", "withdrawn")
        return True

    def action_file_again(self) -> None:
        self.fetch_proposal()

    @work(thread=True, exclusive=True, group="outcome-again", exit_on_error=False)
    def fetch_proposal(self) -> None:
        try:
            self.post_message(self.Proposal(change_requests.proposed_values(self.actor, self.request_id)))
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))

    @on(Proposal)
    def _again(self, message: Proposal) -> None:
        assert self.detail is not None
        s = self.detail.summary
        self.app.push_screen(ChangeRequestScreen(self.actor, s.customer_no, prefill=message.values,
                                                 source=s.source, reason=self.detail.reason))

    def action_withdraw(self) -> None:
        from screens.dialogs.confirm import ConfirmDialog

        def answered(yes: bool | None) -> None:
            if yes:
                self.withdraw()

        self.app.push_screen(ConfirmDialog(_("Withdraw this change request? A supervisor will no longer see it.")),
                             answered)

    @work(thread=True, exclusive=True, group="outcome-withdraw", exit_on_error=False)
    def withdraw(self) -> None:
        try:
            change_requests.withdraw_change_request(self.actor, self.request_id)
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))
            return
        self.app.call_from_thread(self.app.notify, _("Request withdrawn."))
        self.load()

    def action_back(self) -> None:
        self.dismiss(None)


def diff_rows(rows, *, three_way: bool = False) -> list[DiffRow]:
    """DiffRows (display strings) from the model's FieldChange rows."""
    return [DiffRow(field_label(r.field), display_value(r.field, r.old), display_value(r.field, r.new),
                    display_value(r.field, r.base) if three_way else None)
            for r in rows]
