"""The supervisor's approval queue: oldest request first, a field-by-field diff, approve or reject.

Approving a request whose record changed since it was made is refused by the service; this
screen then shows the three-way picture (base / current / proposed) and offers only rejection.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable, Static

from models import change_requests
from models.documents import DOC_TYPE_LABELS
from models.change_requests import ChangeConflict, ChangeRequestDetail, ChangeRequestSummary, ThreeWayView
from models.errors import RecordKeeperError, ValidationError
from models.permissions import Actor
from screens.change_request import choice_label, diff_rows, display_value, field_label, fields_summary, format_age
from screens.queue import QueueScreen
from tui.i18n import N_, _
from tui.safe_text import safe_plain, safe_text
from tui.widgets.diff_table import DiffTable
from tui.widgets.footer import Footer

CONFLICT_NOTE = N_("The record changed since this request was made; please file it again against the current record.")


class ApprovalQueueScreen(QueueScreen[None]):
    """Pending change requests, oldest first, with their age."""

    CSS_PATH = "approvals.tcss"
    AUTO_FOCUS = "#queue"
    LOAD_GROUP = "approval-queue"
    MESSAGE_ID = "#queue-message"
    TABLE_ID = "#queue"
    COLUMNS = ((N_("Age"), 6), (N_("Customer"), 12), (N_("Name"), 5), (N_("Changes"), 20), (N_("Source"), 15),
               (N_("By"), 8))
    BINDINGS = [
        Binding("enter", "open", "Open", id="approvals.open", tooltip="Open the request beside the record"),
        Binding("f5", "refresh", "Refresh", id="approvals.refresh", tooltip="Load the queue again"),
        Binding("escape", "back", "Back", id="approvals.back", tooltip="Back to the home screen"),
    ]

    def __init__(self, actor: Actor) -> None:
        super().__init__(actor)
        self.requests: list[ChangeRequestSummary] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="queue-box"):
            yield Static(Content(_("Change requests to approve")), classes="title")
            yield Static(Content(_("Loading…")), id="queue-message", classes="muted")
            yield DataTable(id="queue", cursor_type="row")
        yield Footer()

    def fetch(self) -> list[ChangeRequestSummary]:
        return change_requests.approval_queue(self.actor)

    def show(self, requests: list[ChangeRequestSummary]) -> None:
        self.requests = requests
        self.refill(([Text(format_age(r.age)), Text(r.customer_no), Text(safe_plain(r.masked_name, 5)),
                      Text(safe_plain(("~ " if r.stale else "") + fields_summary(r.fields, 20), 20)),
                      Text(safe_plain(choice_label(r.source), 15)), Text(safe_plain(r.requester, 8))], r.request_id)
                    for r in requests)
        stale = sum(1 for r in self.requests if r.stale)
        text = _("{n} waiting, oldest first. Enter opens one.").format(n=len(self.requests))
        if stale:
            text += " " + _("~ = the record changed since the request ({n}).").format(n=stale)
        if not self.requests:
            text = _("Nothing is waiting for approval.")
        self.query_one("#queue-message", Static).update(Content(text))

    def action_open(self) -> None:
        chosen = self.cursor_item(self.requests)
        if chosen is not None:
            self.app.push_screen(ApprovalDetailScreen(self.actor, chosen.request_id), callback=lambda _r: self.load())

    @on(DataTable.RowSelected, "#queue")
    def _selected(self) -> None:
        self.action_open()


def _source_line(detail: ChangeRequestDetail) -> str:
    s = detail.summary
    parts = [choice_label(s.source)]
    if detail.channel:
        parts.append(choice_label(detail.channel))
    if detail.reported_on:
        parts.append(detail.reported_on.isoformat())
    return " · ".join(parts)


class ApprovalDetailScreen(QueueScreen[None]):
    """One request beside the record: source, reason, evidence and the field-by-field diff."""

    CSS_PATH = "approvals.tcss"
    AUTO_FOCUS = "DiffGrid"
    LOAD_GROUP = "approval-detail"
    BINDINGS = [
        Binding("f2", "approve", "Approve", id="approval.approve", tooltip="Apply the change to the record"),
        Binding("f4", "reject", "Reject", id="approval.reject", tooltip="Turn the request down with a note"),
        Binding("f6", "toggle_unchanged", "Only changes", id="approval.only_changes",
                tooltip="Show only the changed fields, or every field"),
        Binding("f7", "export_evidence", "Evidence", id="approval.evidence",
                tooltip="Decrypt the evidence into the export folder (audited)"),
        Binding("escape", "back", "Back", id="approval.back", tooltip="Back to the queue; nothing changes"),
    ]

    @dataclass
    class Decided(Message):
        status: str
        customer_no: str

    @dataclass
    class Refused(Message):
        message: str
        field_errors: bool = False

    @dataclass
    class Conflicted(Message):
        pass

    def __init__(self, actor: Actor, request_id: str) -> None:
        super().__init__(actor)
        self.request_id = request_id
        self.detail: ChangeRequestDetail | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="detail-box"):
            yield Static(Content(_("Change request")), id="detail-head", classes="title")
            yield Static(Content(_("Loading…")), id="detail-info")
            yield Static("", id="detail-warning")
            yield DiffTable(id="detail-diff")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#detail-warning", Static).display = False

    def fetch(self) -> ChangeRequestDetail:
        return change_requests.request_detail(self.actor, self.request_id)

    def show(self, detail: ChangeRequestDetail) -> None:
        self.detail = detail
        s = detail.summary
        self.query_one("#detail-head", Static).update(Content(_(
            "{number} {name} · by {who} · {age} ago · {status}").format(
                number=s.customer_no, name=safe_plain(s.masked_name, 10), who=safe_plain(s.requester, 16),
                age=format_age(s.age), status=choice_label(s.status))))
        lines = [_("Source: {source}").format(source=_source_line(detail)),
                 _("Reason: {reason}").format(reason=safe_plain(detail.reason, 66))]
        if detail.terminated_on:
            lines.append(_("Terminated on {day}; policy over one year: {long}; kept until {until}").format(
                day=detail.terminated_on.isoformat(), long=display_value("long_policy", detail.long_policy),
                until=detail.retention_until.isoformat() if detail.retention_until else "—"))
        evidence = "; ".join(f"{_(DOC_TYPE_LABELS.get(kind, kind))}: {safe_plain(name, 30)}"
                             for _id, kind, name in detail.documents) or _("none")
        lines.append(_("Evidence: {list}").format(list=safe_plain(evidence, 66)))
        self.query_one("#detail-info", Static).update(Content("\n".join(lines)))
        warning = self.query_one("#detail-warning", Static)
        if s.stale:
            warning.update(Content(_("~ The record changed since this request (version {old} → {new}); "
                                     "approving it will show the conflict.").format(old=s.base_version,
                                                                                   new=detail.current_version)))
        warning.display = s.stale
        diff = self.query_one(DiffTable)
        diff.set_rows(diff_rows(detail.rows))
        diff.first_change()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        pending = self.detail is not None and self.detail.summary.status == "pending"
        if action in ("approve", "reject"):
            return pending and not self.busy
        if action == "export_evidence":
            return bool(self.detail and self.detail.documents)
        return True

    def action_toggle_unchanged(self) -> None:
        shown = self.query_one(DiffTable).toggle_unchanged()
        self.notify(_("Showing every field.") if shown else _("Showing only the changed fields."))

    def action_approve(self) -> None:
        if self.detail is None:
            return
        question = _("Approve and apply the change to {number}? ({fields})").format(
            number=self.detail.summary.customer_no, fields=fields_summary(self.detail.summary.fields, 40))
        self.ask_note(question, lambda note: self.decide("approve", note), required=False,
                      placeholder=_("note (optional)"))

    def action_reject(self) -> None:
        if self.detail is None:
            return
        question = _("Reject the change to {number}? Say why; the requester sees your note.").format(
            number=self.detail.summary.customer_no)
        self.ask_note(question, lambda note: self.decide("reject", note), required=True,
                      placeholder=_("why it is rejected"))

    @work(thread=True, exclusive=True, group="approval-decide", exit_on_error=False)
    def decide(self, how: str, note: str) -> None:
        try:
            if how == "approve":
                decision = change_requests.approve_change_request(self.actor, self.request_id, note)
            else:
                decision = change_requests.reject_change_request(self.actor, self.request_id, note)
        except ChangeConflict:
            self.post_message(self.Conflicted())
            return
        except ValidationError as exc:
            self.post_message(self.Refused("; ".join(e.message for e in exc.errors), True))
            return
        except RecordKeeperError as exc:
            self.post_message(self.Refused(str(exc)))
            return
        self.post_message(self.Decided(decision.status, decision.customer_no))

    @on(Decided)
    def _decided(self, message: Decided) -> None:
        text = (_("Approved: {number} is updated.") if message.status == "approved"
                else _("Rejected: the requester will see your note.")).format(number=message.customer_no)
        self.app.notify(text)
        self.dismiss(None)

    @on(Refused)
    def _refused(self, message: Refused) -> None:
        self.show_failure(message.message)

    def show_failure(self, message: str) -> None:
        self.busy = False
        self.refresh_bindings()
        warning = self.query_one("#detail-warning", Static)
        warning.update(safe_text(_(message), 200, multiline=True))
        warning.display = True

    @on(Conflicted)
    def _conflicted(self) -> None:
        self.busy = False
        self.app.push_screen(ConflictScreen(self.actor, self.request_id), callback=lambda _r: self._after_conflict())

    def _after_conflict(self) -> None:
        self.load()

    def action_export_evidence(self) -> None:
        if self.detail and self.detail.documents:
            self.export([doc_id for doc_id, _kind, _name in self.detail.documents])

    @work(thread=True, exclusive=True, group="approval-export", exit_on_error=False)
    def export(self, document_ids: list[str]) -> None:
        from models import documents

        for doc_id in document_ids:
            try:
                done = documents.export_document(self.actor, doc_id, "change request approval")
            except RecordKeeperError as exc:
                self.app.call_from_thread(self.app.notify, _(str(exc)), severity="error")
                continue
            self.app.call_from_thread(self.app.notify, _("Exported to {path}").format(path=done.path.name),
                                      timeout=10)


class ConflictScreen(QueueScreen[None]):
    """The record moved on since the request: base, current and proposed side by side; reject only."""

    CSS_PATH = "approvals.tcss"
    AUTO_FOCUS = "DiffGrid"
    LOAD_GROUP = "conflict"
    MESSAGE_ID = "#conflict-info"
    BINDINGS = [
        Binding("f4", "reject", "Reject", id="conflict.reject",
                tooltip="Reject, asking the requester to file again against the current record"),
        Binding("escape", "back", "Back", id="conflict.back", tooltip="Back to the request; nothing changes"),
    ]

    @dataclass
    class Done(Message):
        message: str
        ok: bool

    def __init__(self, actor: Actor, request_id: str) -> None:
        super().__init__(actor)
        self.request_id = request_id
        self.view: ThreeWayView | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="conflict-box"):
            yield Static(Content(_("Conflict: the approval was refused")), id="conflict-head", classes="title")
            yield Static(Content(_("Loading…")), id="conflict-info")
            yield DiffTable(id="conflict-diff", three_way=True)
        yield Footer()

    def fetch(self) -> ThreeWayView:
        return change_requests.conflict_view(self.actor, self.request_id)

    def show(self, view: ThreeWayView) -> None:
        self.view = view
        s = view.summary
        conflicting = ", ".join(field_label(n) for n in view.conflicting) or _("none")
        lines = [
            _("{number} changed since {who}'s request: version {old} → {new}. Nothing was written.").format(
                number=s.customer_no, who=safe_plain(s.requester, 16), old=view.base_version, new=view.current_version),
            _("Both changed: {fields}").format(fields=safe_plain(conflicting, 56)),
            _("! both changed it · ~ the record changed it since · * + - this request changes it"),
        ]
        self.query_one("#conflict-info", Static).update(Content("\n".join(lines)))
        self.query_one(DiffTable).set_rows(diff_rows(view.rows, three_way=True))

    def action_reject(self) -> None:
        self.ask_note(_("Reject this request? The requester sees your note."), self.reject, required=True,
                      value=_(CONFLICT_NOTE))

    @work(thread=True, exclusive=True, group="conflict-reject", exit_on_error=False)
    def reject(self, note: str) -> None:
        try:
            change_requests.reject_change_request(self.actor, self.request_id, note)
        except RecordKeeperError as exc:
            self.post_message(self.Done(str(exc), False))
            return
        self.post_message(self.Done(_("Rejected: the requester will see your note."), True))

    @on(Done)
    def _done(self, message: Done) -> None:
        if message.ok:
            self.app.notify(message.message)
            self.dismiss(None)
        else:
            self.show_failure(message.message)
