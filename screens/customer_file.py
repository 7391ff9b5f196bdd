"""One customer's file: every section masked by default; a field is shown only for a stated purpose.

F3 on a field shows it (on a section heading, the whole section): the purpose is asked, the
reveal is audited before anything is decrypted, and every shown value is masked again when
the screen is left or covered (help, another screen, the idle lock). Documents are exported
decrypted to the export folder for printing, never shown here.
"""

from __future__ import annotations

import datetime as dt
import importlib
from dataclasses import dataclass

from rich.cells import cell_len
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from models import browse, customers, datacopy, labels as labels_mod
from models.browse import CustomerFile
from models.errors import NotFound, PermissionDenied, RecordKeeperError, ValidationError
from models.fields import CUSTOMER_FIELDS, FIELDS_BY_NAME, PERSONAL_FIELDS, Kind
from models.labels import LabelView
from models.permissions import Actor
from tui.i18n import N_, _, current_language
from tui.safe_text import safe_plain, safe_text
from tui.widgets.footer import Footer

LABEL_CELLS = 20
SECTIONS = (("identity", N_("Identity")), ("contact", N_("Contact")), ("address", N_("Address")),
            ("work", N_("Work")), ("relationship", N_("Relationship")), ("paper", N_("Paper file")),
            ("consent", N_("Consent")))
CHOICE_WORDS = {
    "male": N_("male"), "female": N_("female"), "resident_id": N_("resident ID"), "passport": N_("passport"),
    "hkmo_permit": N_("HK/Macau permit"), "taiwan_permit": N_("Taiwan permit"), "other": N_("other"),
    "prospect": N_("prospect"), "active": N_("active"), "terminated": N_("terminated"), "phone": N_("phone"),
    "sms": N_("SMS"), "email": N_("email"), "post": N_("post"), "visit": N_("visit"), "counter": N_("counter"),
    "agent": N_("agent"), "online": N_("online"), "referral": N_("referral"), "bancassurance": N_("bancassurance"),
    "created": N_("created"), "labelled": N_("labelled"), "changed": N_("changed"), "verified": N_("verified"),
    "intake_approved": N_("intake approved"), "pending": N_("pending"), "returned": N_("returned"),
    "approved": N_("approved"),
}
EXPORT_PURPOSE = "print for the customer's paper file"


def field_label(name: str) -> str:
    spec = FIELDS_BY_NAME[name]
    return spec.label_zh if current_language() == "zh" else _(spec.label_en)


def word(code: str) -> str:
    return _(CHOICE_WORDS.get(code, code))


def pad(text: str, cells: int) -> str:
    return text + " " * max(cells - cell_len(text), 0)


def shown_value(name: str, value: object) -> str:
    """A plain (not personal) value or a masked one, as text; choices translated, booleans as yes/no."""
    if value is None or value == "":
        return ""
    spec = FIELDS_BY_NAME.get(name)
    if isinstance(value, bool) or (spec is not None and spec.kind is Kind.BOOL and value in ("True", "False")):
        return _("yes") if value in (True, "True") else _("no")
    if spec is not None and spec.kind is Kind.CHOICE:
        return word(str(value))
    return str(value)


def fmt_date(value) -> str:
    """A date as stored; a moment (stored in UTC) in this computer's time zone."""
    if value is None:
        return "—"
    if hasattr(value, "hour"):
        local = value.replace(tzinfo=dt.timezone.utc).astimezone() if value.tzinfo is None else value.astimezone()
        return local.strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


@dataclass(frozen=True)
class Line:
    """What one row of the file is: a field (revealable if personal), a section, a document, or text."""

    kind: str  # field, section, document, text
    key: str = ""


class CustomerFileScreen(Screen[None]):
    """The file of one customer, masked; F3 reveals with a purpose, F4 asks for a change."""

    CSS_PATH = "customer_file.tcss"
    AUTO_FOCUS = "#file-lines"
    BINDINGS = [
        Binding("f3", "reveal", "Reveal", id="file.reveal",
                tooltip="Show the selected field, or a whole section (asks why; audited)", priority=True),
        Binding("f8", "hide", "Hide", id="file.hide", tooltip="Mask every shown field again"),
        Binding("f4", "change", "Change", id="file.change", tooltip="Ask for a change to this record (approved by a supervisor)"),
        Binding("f6", "labels", "Labels", id="file.labels", tooltip="Set this customer's labels"),
        Binding("f7", "copy", "Copy", id="file.copy",
                tooltip="Write the customer's copy of their data to the export folder (PIPL art. 45)"),
        Binding("f5", "refresh", "Refresh", id="file.refresh", tooltip="Read the file again", show=False),
        Binding("escape", "back", "Back", id="file.back", tooltip="Back to the list; shown fields are masked"),
        Binding("question_mark", "app.help", "Help", id="file.help", tooltip="Show the keys", show=False),
    ]

    @dataclass
    class FileLoaded(Message):
        file: CustomerFile

    @dataclass
    class Revealed(Message):
        values: dict[str, object]

    @dataclass
    class LabelsReady(Message):
        labels: list[LabelView]

    @dataclass
    class Done(Message):
        message: str
        reload: bool = False

    @dataclass
    class Failed(Message):
        message: str

    def __init__(self, actor: Actor, customer_no: str) -> None:
        super().__init__()
        self.pending_requests: list = []
        self.actor = actor
        self.customer_no = customer_no
        self.file: CustomerFile | None = None
        self.revealed: dict[str, object] = {}  # clear values, only while shown
        self.lines: list[Line] = []
        self.last_purpose = ""
        self.after_load_message = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="file"):
            yield Static(Content(self.customer_no), id="file-head", classes="title")
            yield OptionList(id="file-lines")
            yield Static("", id="file-message")
        yield Footer()

    def on_mount(self) -> None:
        self._message(_("Opening the file…"))
        self.load_file()

    # --- masking again whenever the screen is left or covered -----------------------------

    def on_screen_suspend(self) -> None:
        self.action_hide(quiet=True)

    def on_unmount(self) -> None:
        self.revealed.clear()

    def action_hide(self, quiet: bool = False) -> None:
        if not self.revealed:
            return
        self.revealed.clear()
        self._render_lines()
        if not quiet:
            self._message(_("Every shown field is masked again."))

    # --- loading ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="file", exit_on_error=False)
    def load_file(self) -> None:
        try:
            file = browse.open_customer_file(self.actor, self.customer_no)
            from models import change_requests  # the file lists the record's pending requests

            self.pending_requests = change_requests.pending_for_customer(self.actor, self.customer_no)
            self.post_message(self.FileLoaded(file))
        except NotFound:
            self.post_message(self.Failed(_("This customer does not exist (any more).")))
        except PermissionDenied:
            self.post_message(self.Failed(_("You may not open customer files.")))
        except RecordKeeperError:
            self.post_message(self.Failed(_("The file could not be read. Try again (F5).")))

    @on(FileLoaded)
    def _loaded(self, message: FileLoaded) -> None:
        self.file = message.file
        self.revealed.clear()
        self._render_lines()
        self._message(self.after_load_message or _("F3: show the selected field or section (asks why) · F1: all keys"))
        self.after_load_message = ""

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self._message(message.message)

    @on(Done)
    def _done(self, message: Done) -> None:
        self._message(message.message)
        if message.reload:
            self.after_load_message = message.message
            self.load_file()

    def _message(self, text: str) -> None:
        self.query_one("#file-message", Static).update(Content(text))

    # --- drawing ---------------------------------------------------------------------------

    def _render_lines(self) -> None:
        file = self.file
        if file is None:
            return
        record = file.record
        values = record.values
        head = [record.customer_no, str(values.get("full_name", "")), word(file.category), file.branch]
        if record.legal_hold:
            head.append(_("LEGAL HOLD"))
        self.query_one("#file-head", Static).update(safe_text(" · ".join(p for p in head if p), 78))
        options: list[Option] = []
        self.lines = []

        def add(line: Line, prompt: Content, disabled: bool = False) -> None:
            self.lines.append(line)
            options.append(Option(prompt, disabled=disabled))

        def add_text(label: str, value: str, style: str = "") -> None:
            add(Line("text"), Content.assemble(pad(safe_plain(label, LABEL_CELLS - 1), LABEL_CELLS),
                                               (safe_plain(value, 56), style) if style else safe_plain(value, 56)))

        for group, title in SECTIONS:
            add(Line("section", group), Content.assemble(("── " + _(title) + " ", "bold")))
            for spec in CUSTOMER_FIELDS:
                in_group = spec.group == group and spec.name != "paper_location"
                if group == "paper":
                    in_group = spec.name == "paper_location"
                if not in_group:
                    continue
                add(Line("field", spec.name), self._field_prompt(spec.name, values.get(spec.name)))
            if group == "relationship":
                add_text(_("Customer number"), record.customer_no)
                add_text(_("Responsible clerk"), record.responsible_clerk or "—")
        add(Line("section", "dates"), Content.assemble(("── " + _("Dates and retention") + " ", "bold")))
        add_text(_("Created"), fmt_date(record.created_at))
        add_text(_("Approved"), fmt_date(record.approved_at))
        add_text(_("Last verified"), fmt_date(record.last_verified))
        add_text(_("Next verification"), fmt_date(record.next_verification_due))
        add_text(_("Terminated on"), fmt_date(record.terminated_on))
        add_text(_("Retention until"), fmt_date(record.retention_until))
        add_text(_("Legal hold"), _("yes — destruction blocked") if record.legal_hold else _("no"),
                 "$state-warning" if record.legal_hold else "")
        add(Line("section", "labels"), Content.assemble(("── " + _("Labels") + " ", "bold")))
        if not file.labels:
            add_text("", _("none (F6 sets labels)"))
        for label in file.labels:
            add(Line("text"), Content.assemble(("■ ", f"${label.colour}"), pad(safe_plain(label.name, 18), 18), " ",
                                               (safe_plain(label.description, 50), "dim")))
        add(Line("section", "documents"), Content.assemble(("── " + _("Documents") + " ", "bold")))
        if file.documents is None:
            add_text("", _("documents are not available in this version"))
        elif not file.documents:
            add_text("", _("none"))
        for doc in file.documents or ():
            add(Line("document", doc.document_id), Content.assemble(
                pad(safe_plain(doc.doc_type, LABEL_CELLS - 1), LABEL_CELLS), safe_plain(doc.name, 30),
                f"  {doc.size // 1024 + 1} KB  {fmt_date(doc.added_at)}"))
        add(Line("section", "revisions"), Content.assemble(("── " + _("Intake revisions") + " ", "bold")))
        if file.revisions is None:
            add_text("", _("revisions are not available in this version"))
        elif not file.revisions:
            add_text("", _("none (not created through intake)"))
        for rev in file.revisions or ():
            add_text(_("Revision {n}").format(n=rev.number),
                     f"{fmt_date(rev.submitted_at)}  {rev.submitted_by}  {word(rev.outcome)}"
                     + (f"  {_('by')} {rev.reviewed_by}" if rev.reviewed_by else ""))
        add(Line("section", "pending"), Content.assemble(("── " + _("Pending change requests") + " ", "bold")))
        if not self.pending_requests:
            add_text("", _("none"))
        for request in self.pending_requests:
            fields = ", ".join(field_label(f) if f in FIELDS_BY_NAME else f for f in request.fields)
            add_text(fmt_date(request.requested_at),
                     f"{safe_plain(request.requester, 16)}  {word(request.source)}  {fields}"
                     + (f"  ~{_('record changed since')}" if request.stale else ""))
        add(Line("section", "history"), Content.assemble(("── " + _("Change history") + " ", "bold")))
        if file.imported is not None:
            add_text(fmt_date(file.imported.imported_at), _("imported by {who} (batch {batch})").format(
                who=file.imported.imported_by or "—", batch=file.imported.batch_id[:8]))
        if not file.history and file.imported is None:
            add_text("", _("none"))
        for event in file.history:
            fields = ", ".join(field_label(f) if f in FIELDS_BY_NAME else f for f in event.fields)
            add_text(fmt_date(event.at), f"{event.actor}  {word(event.kind)}  {fields}")
        for note in file.notes:
            add_text(_("Not shown"), note)
        menu = self.query_one("#file-lines", OptionList)
        highlighted = menu.highlighted
        menu.clear_options()
        menu.add_options(options)
        if options:
            menu.highlighted = min(highlighted, len(options) - 1) if highlighted is not None else 1

    def _field_prompt(self, name: str, masked: object) -> Content:
        label = pad(safe_plain(field_label(name), LABEL_CELLS - 1), LABEL_CELLS)
        if name in self.revealed:
            return Content.assemble(label, (safe_plain(shown_value(name, self.revealed[name]), 44), "bold"),
                                    ("  ◂ " + _("shown"), "$state-warning"))
        text = shown_value(name, masked)
        if name in PERSONAL_FIELDS and text:
            return Content.assemble(label, (safe_plain(text, 44), "$state-muted"))
        return Content.assemble(label, safe_plain(text, 56))

    # --- revealing -------------------------------------------------------------------------

    def _selected(self) -> Line | None:
        menu = self.query_one("#file-lines", OptionList)
        if menu.highlighted is None or menu.highlighted >= len(self.lines):
            return None
        return self.lines[menu.highlighted]

    def _fields_to_reveal(self, line: Line | None) -> list[str]:
        if line is None or self.file is None:
            return []
        values = self.file.record.values
        if line.kind == "field" and line.key in PERSONAL_FIELDS:
            return [line.key] if line.key not in self.revealed and values.get(line.key) not in ("", None) else []
        if line.kind == "section":
            return [s.name for s in CUSTOMER_FIELDS if s.name in PERSONAL_FIELDS and s.name not in self.revealed
                    and values.get(s.name) not in ("", None)
                    and (s.group == line.key or (line.key == "paper" and s.name == "paper_location"))]
        return []

    def action_reveal(self) -> None:
        from screens.dialogs.reveal_purpose import RevealPurposeDialog

        names = self._fields_to_reveal(self._selected())
        if not names:
            self._message(_("Select a masked field (or a section heading) to show it."))
            return
        what = field_label(names[0]) if len(names) == 1 else _("{n} fields").format(n=len(names))
        self.app.push_screen(RevealPurposeDialog(what, self.last_purpose),
                             callback=lambda purpose: self._purpose_given(names, purpose))

    def _purpose_given(self, names: list[str], purpose: str | None) -> None:
        if purpose is None:
            self._message(_("Nothing was shown."))
            return
        self.last_purpose = purpose
        self._message(_("Showing…"))
        self.reveal(names, purpose)

    @work(thread=True, exclusive=True, group="reveal", exit_on_error=False)
    def reveal(self, names: list[str], purpose: str) -> None:
        try:
            record = customers.reveal_fields(self.actor, self.customer_no, names, purpose)
        except ValidationError:
            self.post_message(self.Failed(_("State why you need to see this (at least 4 characters).")))
            return
        except PermissionDenied as exc:
            message = _("You may not reveal personal data.")
            if "training" in str(exc):
                message = _("Your data-protection training has lapsed: renew it to reveal personal data.")
            self.post_message(self.Failed(message))
            return
        except RecordKeeperError:
            self.post_message(self.Failed(_("The field could not be shown.")))
            return
        self.post_message(self.Revealed({name: record.values[name] for name in record.revealed}))

    @on(Revealed)
    def _revealed(self, message: Revealed) -> None:
        if self.app.screen is not self:
            return  # left or locked meanwhile: stay masked
        self.revealed.update(message.values)
        self._render_lines()
        self._message(_("Shown for your purpose (audited). F8 or leaving masks it again."))

    @on(OptionList.OptionSelected, "#file-lines")
    def _line_chosen(self, event: OptionList.OptionSelected) -> None:
        line = self.lines[event.option_index] if event.option_index < len(self.lines) else None
        if line is not None and line.kind == "document":
            self._export_document(line.key)
        elif self._fields_to_reveal(line):
            self.action_reveal()

    # --- documents, labels, the data copy, change requests ---------------------------------

    def _export_document(self, document_id: str) -> None:
        from screens.dialogs.confirm import ConfirmDialog

        question = _("Export this document decrypted to the export folder for printing? (audited)")
        self.app.push_screen(ConfirmDialog(question),
                             callback=lambda yes: self.export_document(document_id) if yes else None)

    @work(thread=True, exclusive=True, group="file-action", exit_on_error=False)
    def export_document(self, document_id: str) -> None:
        from models import documents

        try:
            exported = documents.export_document(self.actor, document_id, EXPORT_PURPOSE)
        except PermissionDenied:
            self.post_message(self.Failed(_("You may not export documents.")))
            return
        except RecordKeeperError:
            self.post_message(self.Failed(_("The document could not be exported.")))
            return
        self.post_message(self.Done(_("Exported for printing: {name} (delete it after printing).").format(
            name=safe_plain(exported.path.name, 40))))

    def action_labels(self) -> None:
        self.load_labels()

    @work(thread=True, exclusive=True, group="file-action", exit_on_error=False)
    def load_labels(self) -> None:
        try:
            self.post_message(self.LabelsReady(labels_mod.list_labels(self.actor)))
        except RecordKeeperError:
            self.post_message(self.Failed(_("The labels could not be read.")))

    @on(LabelsReady)
    def _labels_ready(self, message: LabelsReady) -> None:
        from screens.dialogs.label_picker import LabelPickerDialog

        if not message.labels:
            self._message(_("There are no labels yet; the records officer makes them."))
            return
        chosen = {label.label_id for label in self.file.labels} if self.file else set()
        self.app.push_screen(LabelPickerDialog(message.labels, chosen),
                             callback=lambda ids: self.save_labels(ids) if ids is not None else None)

    @work(thread=True, exclusive=True, group="file-action", exit_on_error=False)
    def save_labels(self, label_ids: list[int]) -> None:
        # Labels the picker did not show (inactive ones) stay as they are.
        kept = [label.label_id for label in (self.file.labels if self.file else ()) if not label.active]
        try:
            labels_mod.label_customer(self.actor, self.customer_no, sorted(set(label_ids) | set(kept)))
        except PermissionDenied:
            self.post_message(self.Failed(_("You may not label customers.")))
            return
        except RecordKeeperError:
            self.post_message(self.Failed(_("The labels could not be saved.")))
            return
        self.post_message(self.Done(_("Labels saved (recorded in the history)."), reload=True))

    def action_copy(self) -> None:
        from screens.dialogs.confirm import ConfirmDialog

        question = _("Write a copy of everything held on this customer to the export folder, "
                     "for the customer (PIPL art. 45)? It is audited.")
        self.app.push_screen(ConfirmDialog(question), callback=lambda yes: self.make_copy() if yes else None)

    @work(thread=True, exclusive=True, group="file-action", exit_on_error=False)
    def make_copy(self) -> None:
        try:
            made = datacopy.export_customer_copy(self.actor, self.customer_no)
        except PermissionDenied as exc:
            message = _("You may not make the customer's copy.")
            if "training" in str(exc):
                message = _("Your data-protection training has lapsed: renew it first.")
            self.post_message(self.Failed(message))
            return
        except RecordKeeperError:
            self.post_message(self.Failed(_("The copy could not be made.")))
            return
        self.post_message(self.Done(_("Copy written to export/{folder} (JSON and text). Hand it over, then delete it.")
                                    .format(folder=made.folder.name), reload=True))

    def action_change(self) -> None:
        try:
            screen_class = getattr(importlib.import_module("screens.change_request"), "ChangeRequestScreen")
        except (ImportError, AttributeError):
            self.notify(_("Coming soon"), title=_("Change"))
            return
        self.app.push_screen(screen_class(self.actor, self.customer_no), callback=lambda _r: self.load_file())

    def action_refresh(self) -> None:
        self.load_file()

    def action_back(self) -> None:
        self.revealed.clear()
        self.dismiss(None)
