"""The destruction register: who destroyed which customer number, when, on what basis, and what went.

No personal data is in it (customer numbers, codes, staff usernames and counts). Enter shows the
certificate of destruction of the highlighted entry's request; F2 writes it to the export folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static

from models import destruction
from models.destruction import RegisterEntry
from models.errors import RecordKeeperError
from models.permissions import Actor
from screens.destruction import rule_short_text
from screens.retention import CATEGORY_LABELS
from tui.i18n import N_, _
from tui.safe_text import safe_plain, safe_text
from tui.widgets.footer import Footer

COUNT_LABELS = {"customer": N_("record"), "customer_event": N_("history"), "customer_label": N_("labels"),
                "legal_hold": N_("holds"), "data_key": N_("data key"), "intake_submission": N_("intake"),
                "document": N_("documents"), "change_request": N_("change requests"),
                "verification_check": N_("checks"), "verification_state": N_("verification"), "files": N_("files")}


def counts_text(counts: dict) -> str:
    return ", ".join(f"{_(COUNT_LABELS.get(name, name))} {value}" for name, value in sorted(counts.items()) if value)


class RegisterScreen(Screen[None]):
    """Every destruction, newest first."""

    CSS_PATH = "register.tcss"
    AUTO_FOCUS = "#register"
    BINDINGS = [
        Binding("enter", "certificate", "Certificate", id="register.certificate",
                tooltip="Show the certificate of destruction"),
        Binding("f2", "export", "Export", id="register.export",
                tooltip="Write the certificate to the export folder"),
        Binding("f5", "refresh", "Refresh", id="register.refresh", tooltip="Load the register again"),
        Binding("escape", "back", "Back", id="register.back", tooltip="Back to the home screen"),
    ]

    @dataclass
    class Loaded(Message):
        entries: list[RegisterEntry]

    @dataclass
    class Failed(Message):
        message: str

    @dataclass
    class CertificateReady(Message):
        request_no: str
        text: str

    @dataclass
    class Exported(Message):
        path: Path

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        self.entries: list[RegisterEntry] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="register-box"):
            yield Static(Content(_("Destruction register")), classes="title")
            yield Static(Content(_("Loading…")), id="register-message", classes="muted")
            yield DataTable(id="register", cursor_type="row", zebra_stripes=True)
            yield Static("", id="register-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#register", DataTable)
        for header, width in ((N_("Customer"), 11), (N_("Category"), 10), (N_("Rule"), 12), (N_("Request"), 11),
                              (N_("Destroyed (UTC)"), 16), (N_("Executor"), 10)):
            table.add_column(Text(_(header)), width=width)
        self.load()

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="register-load", exit_on_error=False)
    def load(self) -> None:
        try:
            self.post_message(self.Loaded(destruction.destruction_register(self.actor)))
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.query_one("#register-message", Static).update(safe_text(_(message.message), 200))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.entries = message.entries
        table = self.query_one("#register", DataTable)
        table.clear()
        for e in self.entries:
            table.add_row(Text(e.customer_no), Text(_(CATEGORY_LABELS.get(e.category, e.category))),
                          Text(rule_short_text(e.rule_code, e.rule_years)), Text(e.request_no),
                          Text(f"{e.destroyed_at:%Y-%m-%d %H:%M}"), Text(safe_plain(e.executed_by, 10)))
        text = (_("{n} customers destroyed. Enter shows the certificate, F2 exports it.").format(n=len(self.entries))
                if self.entries else _("Nobody has been destroyed yet."))
        self.query_one("#register-message", Static).update(Content(text))
        self._show_detail()

    def _highlighted(self) -> RegisterEntry | None:
        table = self.query_one("#register", DataTable)
        if not self.entries or table.cursor_row >= len(self.entries):
            return None
        return self.entries[table.cursor_row]

    @on(DataTable.RowHighlighted, "#register")
    def _show_detail(self) -> None:
        entry = self._highlighted()
        detail = self.query_one("#register-detail", Static)
        if entry is None:
            detail.update("")
            return
        lines = [
            _("Requested by {r}, approved by {a}, executed by {e}.").format(
                r=safe_plain(entry.requested_by, 20), a=safe_plain(entry.approved_by, 20),
                e=safe_plain(entry.executed_by, 20)),
            _("Kept until {until} · {basis}").format(until=entry.retention_until or "—", basis=_(entry.basis)),
            _("Method: {method}").format(method=_(entry.method)),
            _("Destroyed: {counts}").format(counts=counts_text(entry.counts))
            + (" · " + _("replayed after a restore") if entry.replayed else ""),
        ]
        detail.update(safe_text("\n".join(lines), 400, multiline=True))

    @on(DataTable.RowSelected, "#register")
    def _selected(self) -> None:
        self.action_certificate()

    def action_certificate(self) -> None:
        entry = self._highlighted()
        if entry is not None:
            self.fetch_certificate(entry.request_no)

    @work(thread=True, exclusive=True, group="register-certificate", exit_on_error=False)
    def fetch_certificate(self, request_no: str) -> None:
        try:
            self.post_message(self.CertificateReady(request_no, destruction.certificate(self.actor, request_no)))
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))

    @on(CertificateReady)
    def _show_certificate(self, message: CertificateReady) -> None:
        self.app.push_screen(CertificateScreen(message.request_no, message.text),
                             callback=lambda export: export and self.export(message.request_no))

    def action_export(self) -> None:
        entry = self._highlighted()
        if entry is not None:
            self.export(entry.request_no)

    @work(thread=True, exclusive=True, group="register-export", exit_on_error=False)
    def export(self, request_no: str) -> None:
        try:
            self.post_message(self.Exported(destruction.export_certificate(self.actor, request_no)))
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))

    @on(Exported)
    def _exported(self, message: Exported) -> None:
        self.notify(safe_plain(str(message.path), 200), title=_("Certificate written"), timeout=8)

    def action_back(self) -> None:
        self.dismiss(None)


class CertificateScreen(ModalScreen[bool]):
    """The certificate text, scrollable; F2 exports it, Esc closes."""

    CSS_PATH = "register.tcss"
    AUTO_FOCUS = "#certificate-scroll"
    BINDINGS = [
        Binding("f2", "export", "Export", id="certificate.export", tooltip="Write it to the export folder"),
        Binding("escape", "close", "Close", id="certificate.close", tooltip="Back to the register"),
    ]

    def __init__(self, request_no: str, text: str) -> None:
        super().__init__()
        self.request_no = request_no
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="certificate-box"):
            yield Static(Content(_("Certificate of destruction · F2 export · Esc close")), classes="title")
            with VerticalScroll(id="certificate-scroll"):
                yield Static(safe_text(self.text, max(200, len(self.text)), multiline=True), id="certificate-text")

    def action_export(self) -> None:
        self.dismiss(True)

    def action_close(self) -> None:
        self.dismiss(False)
