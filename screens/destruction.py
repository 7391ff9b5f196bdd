"""The supervisor's destruction approvals: each waiting request beside its customers, approve or reject.

For every customer the list shows the category, when the retention period started, the last day
it ran to, the rule and its legal basis, and whether the customer is on legal hold now. Nobody
can decide their own request (the service refuses it and audits the attempt).
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

from models import destruction
from models.destruction import ItemView, RequestDetail, RequestView
from models.errors import RecordKeeperError
from models.permissions import Actor
from screens.dialogs.text_prompt import TextPromptDialog
from screens.queue import QueueScreen
from screens.retention import CATEGORY_LABELS
from tui.i18n import N_, _
from tui.safe_text import safe_plain, safe_text
from tui.widgets.footer import Footer

RULE_SHORT = {"terminated_short": N_("≤1y, {years}y"), "terminated_long": N_(">1y, {years}y"),
              "prospect": N_("prospect, {years}y")}


def rule_short_text(rule_code: str, years: int) -> str:
    return _(RULE_SHORT.get(rule_code, "{years}y")).format(years=years)


def rule_short(item: ItemView) -> str:
    return rule_short_text(item.rule_code, item.rule_years)


class DestructionApprovalScreen(QueueScreen[None]):
    """Waiting destruction requests above, the highlighted request's customers below."""

    CSS_PATH = "destruction.tcss"
    AUTO_FOCUS = "#pending"
    LOAD_GROUP = "destruction-load"
    MESSAGE_ID = "#destruction-message"
    TABLE_ID = "#pending"
    COLUMNS = ((N_("Request"), 11), (N_("Cust."), 5), (N_("Requested by"), 12), (N_("Filed"), 10), (N_("Reason"), 28))
    BINDINGS = [
        Binding("f2", "approve", "Approve", id="destruction.approve",
                tooltip="Approve the request, with a note"),
        Binding("f4", "reject", "Reject", id="destruction.reject", tooltip="Reject the request, with a note"),
        Binding("f5", "refresh", "Refresh", id="destruction.refresh", tooltip="Load the requests again"),
        Binding("escape", "back", "Back", id="destruction.back", tooltip="Back to the home screen"),
    ]

    @dataclass
    class DetailLoaded(Message):
        detail: RequestDetail

    def __init__(self, actor: Actor) -> None:
        super().__init__(actor)
        self.requests: list[RequestView] = []
        self.detail: RequestDetail | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="destruction-box"):
            yield Static(Content(_("Destruction requests to approve")), classes="title")
            yield Static(Content(_("Loading…")), id="destruction-message", classes="muted")
            yield DataTable(id="pending", cursor_type="row")
            yield Static("", id="request-reason")
            yield DataTable(id="items", cursor_type="row", zebra_stripes=True)
            yield Static("", id="item-basis")
        yield Footer()

    def on_mount(self) -> None:
        items = self.query_one("#items", DataTable)
        for header, width in ((N_("Customer"), 11), (N_("Category"), 10), (N_("From"), 10), (N_("Kept until"), 10),
                              (N_("Rule"), 13), (N_("Hold"), 7)):
            items.add_column(Text(_(header)), width=width)

    def fetch(self) -> list[RequestView]:
        return destruction.list_requests(self.actor, statuses=("pending",))

    def show(self, requests: list[RequestView]) -> None:
        self.requests = list(reversed(requests))  # oldest first
        self.refill(([Text(r.request_no), Text(str(r.customer_count)), Text(safe_plain(r.requested_by, 12)),
                      Text(f"{r.requested_at:%Y-%m-%d}"), Text(safe_plain(r.reason, 28))], r.request_id)
                    for r in self.requests)
        if self.requests:
            text = _("{n} waiting, oldest first. F2 approves, F4 rejects; you cannot decide your own.").format(
                n=len(self.requests))
        else:
            text = _("No destruction request is waiting.")
            self.detail = None
            self.query_one("#items", DataTable).clear()
            self.query_one("#request-reason", Static).update("")
            self.query_one("#item-basis", Static).update("")
        self.query_one("#destruction-message", Static).update(Content(text))
        self._load_highlighted()

    @on(DataTable.RowHighlighted, "#pending")
    def _load_highlighted(self) -> None:
        request = self.cursor_item(self.requests)
        if request is not None and (self.detail is None or self.detail.request.request_id != request.request_id):
            self.load_detail(request.request_id)

    @work(thread=True, exclusive=True, group="destruction-detail", exit_on_error=False)
    def load_detail(self, request_id: str) -> None:
        try:
            self.post_message(self.DetailLoaded(destruction.request_detail(self.actor, request_id)))
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))

    @on(DetailLoaded)
    def _detail_loaded(self, message: DetailLoaded) -> None:
        self.detail = detail = message.detail
        request = detail.request
        held = sum(1 for item in detail.items if item.legal_hold)
        line = _("{no} by {who}: {reason}").format(no=request.request_no, who=safe_plain(request.requested_by, 20),
                                                   reason=safe_plain(request.reason, 120))
        if held:
            line += " · " + _("{n} now ON HOLD: they will be kept").format(n=held)
        self.query_one("#request-reason", Static).update(safe_text(line, 160))
        table = self.query_one("#items", DataTable)
        table.clear()
        for item in detail.items:
            table.add_row(Text(item.customer_no), Text(_(CATEGORY_LABELS.get(item.category, item.category))),
                          Text(str(item.start_date or "—")), Text(str(item.retention_until or "—")),
                          Text(rule_short(item)), Text(_("ON HOLD") if item.legal_hold else _("no")))
        self._show_basis()

    @on(DataTable.RowHighlighted, "#items")
    def _show_basis(self) -> None:
        basis = self.query_one("#item-basis", Static)
        table = self.query_one("#items", DataTable)
        if self.detail is None or not self.detail.items or table.cursor_row >= len(self.detail.items):
            basis.update("")
            return
        item = self.detail.items[table.cursor_row]
        basis.update(safe_text(_(item.basis), 160))

    # --- deciding ---------------------------------------------------------------------------

    def action_approve(self) -> None:
        self._ask(True)

    def action_reject(self) -> None:
        self._ask(False)

    def _ask(self, approve: bool) -> None:
        request = self.cursor_item(self.requests)
        if request is None:
            return
        question = (_("Approve {no}: destroy {n} customer(s) once executed. Your note:") if approve
                    else _("Reject {no}. Why? (the officer sees this note)")).format(
            no=request.request_no, n=request.customer_count)
        decide = lambda note: destruction.decide_request(self.actor, request.request_id, approve, note)  # noqa: E731
        self.app.push_screen(TextPromptDialog(question, submit=decide), callback=self._decided)

    def _decided(self, request: RequestView | None) -> None:
        if request is None:
            return
        text = (_("{no} approved: the records officer can now execute it.") if request.status == "approved"
                else _("{no} rejected.")).format(no=request.request_no)
        self.notify(text, title=_("Decision recorded"))
        self.detail = None
        self.load()
