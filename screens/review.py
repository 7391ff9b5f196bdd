"""The review queue and the review of one submission: the whole record, the diff of a resubmission,
reasons per field, return or approve.

Opening a submission is an audited view; nobody can open their own (the service refuses).
Changed fields are marked with "*" and the word "changed", so the diff reads without colour.
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
from textual.screen import Screen
from textual.widgets import DataTable, Static

from models import documents, intake
from models.errors import RecordKeeperError, ValidationError
from models.fields import FIELDS_BY_NAME
from models.permissions import Actor
from screens.dialogs.attach_document import size_text
from screens.dialogs.confirm import ConfirmDialog
from screens.dialogs.review_reason import ReasonDialog, ReturnDialog, RevisionHistoryDialog
from screens.intake import field_label, local_time, ordered_fields, waited
from tui.i18n import _
from tui.safe_text import safe_plain, safe_text
from tui.widgets.footer import Footer


class ReviewQueueScreen(Screen[None]):
    """Submissions waiting for review, oldest first."""

    CSS_PATH = "review.tcss"
    AUTO_FOCUS = "#queue"
    BINDINGS = [
        Binding("escape", "back", "Back", id="queue.back", tooltip="Back to the home screen"),
        Binding("f5", "refresh", "Refresh", id="queue.refresh", tooltip="Reload the queue"),
    ]

    @dataclass
    class QueueLoaded(Message):
        items: list[intake.QueueItem]

    @dataclass
    class QueueFailed(Message):
        message: str

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        self.items: list[intake.QueueItem] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="queue-box"):
            yield Static(_("Review queue · oldest first"), classes="title", id="queue-title")
            yield DataTable(id="queue", cursor_type="row", zebra_stripes=False)
            yield Static(_("Enter: open and review"), classes="muted", id="queue-keys")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#queue", DataTable)
        for label, width in ((_("Waiting"), 8), (_("Form"), 11), (_("From"), 12), (_("Revision"), 14),
                             (_("Name"), 10), (_("Docs"), 4)):
            table.add_column(label, width=width)

    def on_screen_resume(self) -> None:  # also sent when the screen is first shown
        self.load()

    def action_refresh(self) -> None:
        self.load()

    def action_back(self) -> None:
        self.dismiss(None)

    @work(thread=True, exclusive=True, group="review-queue", exit_on_error=False)
    def load(self) -> None:
        try:
            self.post_message(self.QueueLoaded(intake.review_queue(self.actor)))
        except RecordKeeperError as error:
            self.post_message(self.QueueFailed(str(error)))

    @on(QueueFailed)
    def _failed(self, message: QueueFailed) -> None:
        self.notify(_(message.message), severity="error")

    @on(QueueLoaded)
    def _loaded(self, message: QueueLoaded) -> None:
        self.items = message.items
        table = self.query_one("#queue", DataTable)
        keep = table.cursor_row
        table.clear()
        for item in self.items:
            revision = f"r{item.revision} " + (_("resubmitted") if item.resubmission else _("new"))
            table.add_row(waited(item.submitted_at), item.ref, Text(safe_plain(item.submitted_by, 12)),
                          revision, Text(safe_plain(item.masked_name, 10)), str(item.documents),
                          key=item.submission_id)
        if self.items:
            table.move_cursor(row=min(keep, len(self.items) - 1))
        count = len(self.items)
        self.query_one("#queue-title", Static).update(Content(
            _("Review queue · oldest first · {n} waiting").format(n=count)))

    @on(DataTable.RowSelected, "#queue")
    def _open(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.app.push_screen(ReviewScreen(self.actor, event.row_key.value))


class ReviewScreen(Screen[None]):
    """One submission under review."""

    CSS_PATH = "review.tcss"
    AUTO_FOCUS = "#record"
    BINDINGS = [
        Binding("r", "reason", "Reason", id="review.reason", tooltip="Give a reason to correct the highlighted field"),
        Binding("f6", "return", "Return", id="review.return", tooltip="Send back to the clerk with the reasons"),
        Binding("f9", "approve", "Approve", id="review.approve", tooltip="Approve: the customer is created"),
        Binding("e", "export", "Export doc", id="review.export", show=False,
                tooltip="Decrypt the highlighted document into the export folder (audited)"),
        Binding("h", "history", "History", id="review.history", tooltip="Every submitted revision"),
        Binding("c", "changed_only", "Changed only", id="review.changed", show=False,
                tooltip="Show only the changed fields of a resubmission, or all again"),
        Binding("escape", "back", "Back", id="review.back", tooltip="Back to the queue; nothing is decided"),
    ]

    @dataclass
    class ReviewLoaded(Message):
        view: intake.ReviewView

    @dataclass
    class ReviewFailed(Message):
        message: str
        leave: bool = False

    @dataclass
    class Decided(Message):
        decision: intake.Decision

    @dataclass
    class DocumentExported(Message):
        exported: documents.ExportedDocument

    def __init__(self, actor: Actor, submission_id: str) -> None:
        super().__init__()
        self.actor = actor
        self.submission_id = submission_id
        self.view: intake.ReviewView | None = None
        self.reasons: dict[str, str] = {}
        self.changed_only = False
        self.row_names: list[str] = []
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="review-box"):
            yield Static(_("Loading…"), classes="title", id="review-title")
            yield Static("", id="review-info")
            yield DataTable(id="record", cursor_type="row", zebra_stripes=False)
            yield Static("", id="review-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="review-open", exit_on_error=False)
    def load(self) -> None:
        try:
            self.post_message(self.ReviewLoaded(intake.open_review(self.actor, self.submission_id)))
        except RecordKeeperError as error:
            self.post_message(self.ReviewFailed(str(error), leave=True))

    @on(ReviewFailed)
    def _failed(self, message: ReviewFailed) -> None:
        self.busy = False
        self.notify(_(message.message), severity="error", timeout=8)
        if message.leave:
            self.dismiss(None)

    @on(ReviewLoaded)
    def _loaded(self, message: ReviewLoaded) -> None:
        view = self.view = message.view
        kind = _("resubmission") if view.diff is not None else _("first submission")
        title = _("Review {ref} · r{n} {kind} · from {who} · waiting {ago}").format(
            ref=view.ref, n=view.revision, kind=kind, who=safe_plain(view.submitted_by, 12),
            ago=waited(view.submitted_at))
        self.query_one("#review-title", Static).update(Content(title))
        info = []
        for hit in view.duplicates:
            what = _("ID number") if hit.field == "id_number" else _("Mobile phone")
            where = _("customer {no}").format(no=hit.reference) if hit.where == "customer" else \
                _("form {ref} ({status})").format(ref=hit.reference, status=_(hit.status))
            info.append("! " + _("{what} also on {where}").format(what=what, where=where))
        if view.previous_reasons is not None:
            info.append("↩ " + _("r{n} was returned for: {fields}").format(
                n=view.previous_reasons.revision,
                fields=", ".join(self._label(n) for n in view.previous_reasons.fields) or _("see the note")))
        panel = self.query_one("#review-info", Static)
        panel.update(safe_text("\n".join(info), 400, multiline=True))
        panel.set_class(bool(view.duplicates), "-danger")
        panel.set_class(bool(info), "-shown")
        self._build_table()

    def _label(self, name: str) -> str:
        if name in FIELDS_BY_NAME:
            return field_label(FIELDS_BY_NAME[name])
        return {"labels": _("Labels"), "documents": _("Documents")}.get(name, name)

    def _build_table(self) -> None:
        view = self.view
        if view is None:
            return
        table = self.query_one("#record", DataTable)
        keep = table.cursor_row
        table.clear(columns=True)
        diff = {d.field: d for d in view.diff} if view.diff is not None else None
        if diff is None:
            columns = ((_("Field"), 18), (_("Value"), 44), (_("Reason"), 8))
        else:
            columns = ((_("Field"), 17), (_("Change"), 9), (_("Previous"), 17), (_("Now"), 17), (_("Reason"), 6))
        for label, width in columns:
            table.add_column(label, width=width)
        self.row_names = []
        names = [s.name for s in ordered_fields()] + ["labels"]
        for name in names:
            value = ", ".join(view.labels) if name == "labels" else view.values.get(name, "")
            flag = "✎" + (_("yes") if diff is None else "") if name in self.reasons else ""
            label = Text(safe_plain(self._label(name), 18 if diff is None else 17))
            if diff is None:
                table.add_row(label, Text(safe_plain(value or "", 44)), flag, key=name)
            else:
                row = diff.get(name)
                changed = row is not None and row.changed
                if self.changed_only and not changed:
                    continue
                style = "bold reverse" if changed else ""
                marker = Text("* " + _("changed"), style=style) if changed else Text("")
                old = row.old if row else ""
                table.add_row(label, marker, Text(safe_plain(old or "", 17)),
                              Text(safe_plain(value or "", 17), style="bold" if changed else ""), flag, key=name)
            self.row_names.append(name)
        for doc in view.documents:
            kind = _(documents.DOC_TYPE_LABELS.get(doc.doc_type, doc.doc_type))
            text = f"{kind} · {doc.content_type.split('/')[-1].upper()} · {size_text(doc.size)}"
            flag = "✎" if "documents" in self.reasons else ""
            if diff is None:
                table.add_row(Text(_("Document")), Text(safe_plain(text, 44)), flag, key=f"doc:{doc.document_id}")
            else:
                table.add_row(Text(_("Document")), "", "", Text(safe_plain(text, 17)), flag,
                              key=f"doc:{doc.document_id}")
            self.row_names.append(f"doc:{doc.document_id}")
        if not view.documents:
            empty = Text(_("(no documents attached)"))
            if diff is None:
                table.add_row(Text(_("Documents")), empty, "", key="documents")
            else:
                table.add_row(Text(_("Documents")), "", "", empty, "", key="documents")
            self.row_names.append("documents")
        if self.row_names:
            table.move_cursor(row=min(keep, len(self.row_names) - 1))
        self._show_detail()

    def _highlighted_name(self) -> str | None:
        table = self.query_one("#record", DataTable)
        if not self.row_names or not (0 <= table.cursor_row < len(self.row_names)):
            return None
        return self.row_names[table.cursor_row]

    def _reason_key(self, name: str) -> str:
        return "documents" if name.startswith("doc:") else name

    def _show_detail(self) -> None:
        view, name = self.view, self._highlighted_name()
        detail = self.query_one("#review-detail", Static)
        if view is None or name is None:
            detail.update("")
            return
        lines = []
        if name.startswith("doc:"):
            doc = next(d for d in view.documents if d.document_id == name[4:])
            lines.append(f"{_('Document')}: {_(documents.DOC_TYPE_LABELS.get(doc.doc_type, doc.doc_type))} · "
                         f"{safe_plain(doc.name, 40)} · SHA-256 {doc.sha256[:16]}…")
            lines.append(_("added by {who} at {time} · E: export to print").format(
                who=safe_plain(doc.added_by, 16), time=local_time(doc.added_at)))
        elif name == "documents":
            lines.append(_("No documents are attached."))
        else:
            value = ", ".join(view.labels) if name == "labels" else view.values.get(name, "")
            row = next((d for d in view.diff or [] if d.field == name), None)
            if row is not None and row.changed:
                lines.append(f"{self._label(name)} [* {_('changed')}]: {safe_plain(row.old or _('(empty)'), 120)}"
                             f" → {safe_plain(value or _('(empty)'), 120)}")
            else:
                lines.append(f"{self._label(name)}: {safe_plain(value or _('(empty)'), 240)}")
        key = self._reason_key(name)
        if view.previous_reasons is not None and key in view.previous_reasons.fields:
            lines.append("↩ " + _("Returned before: ") + safe_plain(view.previous_reasons.fields[key], 160))
        if key in self.reasons:
            lines.append("✎ " + _("Your reason: ") + safe_plain(self.reasons[key], 160))
        else:
            keys = _("R: reason · F6: return · F9: approve · H: history")
            if view.diff is not None:
                keys += " · " + (_("C: all fields") if self.changed_only else _("C: changed only"))
            lines.append(keys)
        detail.update(Content("\n".join(lines)))

    @on(DataTable.RowHighlighted, "#record")
    def _moved(self) -> None:
        self._show_detail()

    @on(DataTable.RowSelected, "#record")
    def _selected(self) -> None:
        self.action_reason()

    def action_changed_only(self) -> None:
        if self.view is None or self.view.diff is None:
            self.notify(_("This is a first submission: there is nothing to compare."))
            return
        self.changed_only = not self.changed_only
        self._build_table()

    def action_reason(self) -> None:
        name = self._highlighted_name()
        if self.view is None or name is None:
            return
        key = self._reason_key(name)
        value = self.view.values.get(name, "") if name in FIELDS_BY_NAME else ""

        def given(reason: str | None) -> None:
            if reason is None:
                return
            if reason:
                self.reasons[key] = reason
            else:
                self.reasons.pop(key, None)
            self._build_table()

        self.app.push_screen(ReasonDialog(self._label(key), value, self.reasons.get(key, "")), callback=given)

    def action_history(self) -> None:
        if self.view is not None:
            self.app.push_screen(RevisionHistoryDialog(self.view.ref, self.view.history))

    def action_return(self) -> None:
        if self.view is None or self.busy:
            return

        def confirmed(note: str | None) -> None:
            if note is None:
                return
            if not note and not self.reasons:
                self.notify(_("Give a reason beside a field (R) or an overall note."), severity="warning")
                return
            self.busy = True
            self.send_back(dict(self.reasons), note)

        self.app.push_screen(ReturnDialog([self._label(n) for n in self.reasons]), callback=confirmed)

    def action_approve(self) -> None:
        if self.view is None or self.busy:
            return
        if self.reasons:
            self.notify(_("You gave reasons to correct fields: return the form (F6) or remove them first."),
                        severity="warning")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.busy = True
                self.approve()

        self.app.push_screen(ConfirmDialog(Content(
            _("Approve {ref}? The customer record is created from revision {n}.").format(
                ref=self.view.ref, n=self.view.revision))), callback=confirmed)

    @work(thread=True, exclusive=True, group="review-decide", exit_on_error=False)
    def send_back(self, reasons: dict[str, str], note: str) -> None:
        try:
            self.post_message(self.Decided(intake.return_submission(
                self.actor, self.submission_id, self.view.revision, reasons, note)))
        except ValidationError as error:
            self.post_message(self.ReviewFailed("; ".join(e.message for e in error.errors)))
        except RecordKeeperError as error:
            self.post_message(self.ReviewFailed(str(error)))

    @work(thread=True, exclusive=True, group="review-decide", exit_on_error=False)
    def approve(self) -> None:
        try:
            self.post_message(self.Decided(intake.approve_submission(self.actor, self.submission_id,
                                                                     self.view.revision)))
        except ValidationError as error:
            self.post_message(self.ReviewFailed(
                _("Cannot approve: ") + "; ".join(_(e.message) for e in error.errors) + " " +
                _("Return it for correction.")))
        except RecordKeeperError as error:
            self.post_message(self.ReviewFailed(str(error)))

    @on(Decided)
    def _decided(self, message: Decided) -> None:
        decision = message.decision
        if decision.status == "approved":
            self.notify(_("Approved {ref}: customer {no} created.").format(ref=decision.ref, no=decision.customer_no),
                        title=_("Approved"), timeout=8)
        else:
            self.notify(_("{ref} returned to its clerk.").format(ref=decision.ref), title=_("Returned"))
        self.dismiss(None)

    def action_export(self) -> None:
        name = self._highlighted_name()
        if name is None or not name.startswith("doc:"):
            self.notify(_("Highlight a document first."), severity="warning")
            return
        self.export(name[4:])

    @work(thread=True, exclusive=True, group="review-export", exit_on_error=False)
    def export(self, document_id: str) -> None:
        try:
            self.post_message(self.DocumentExported(documents.export_document(self.actor, document_id,
                                                                              "intake review")))
        except RecordKeeperError as error:
            self.post_message(self.ReviewFailed(str(error)))

    @on(DocumentExported)
    def _exported(self, message: DocumentExported) -> None:
        self.notify(_("Exported to {path}").format(path=safe_plain(str(message.exported.path), 120)), timeout=10)

    def action_back(self) -> None:
        self.dismiss(None)
