"""The records officer's retention screen: customers past retention and not held, requests, execution.

Space marks customers, F2 files a destruction request for them (a supervisor other than the
officer approves it), F9 executes an approved request after a confirmation, with a progress bar.
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
from textual.widgets import DataTable, ProgressBar, Static

from models import destruction, retention
from models.destruction import EligibleCustomer, ExecutionResult, RequestView, SweepResult
from models.retention import HoldView
from models.errors import RecordKeeperError
from models.permissions import Actor
from screens.dialogs.confirm import ConfirmDialog
from screens.dialogs.place_hold import HoldForm, PlaceHoldDialog
from screens.dialogs.text_prompt import TextPromptDialog
from tui.i18n import N_, _
from tui.safe_text import safe_plain, safe_text
from tui.widgets.footer import Footer

# Short reasons for the table (the full legal basis shows below it).
SHORT_WHY = {
    retention.TERMINATED_SHORT: N_("≤1y policy, {years}y from end {start}"),
    retention.TERMINATED_LONG: N_(">1y policy, {years}y from end {start}"),
    retention.PROSPECT: N_("prospect, {years}y from contact {start}"),
}
CATEGORY_LABELS = {"terminated": N_("terminated"), "prospect": N_("prospect"), "active": N_("active")}
STATUS_LABELS = {"pending": N_("waiting"), "approved": N_("approved"), "rejected": N_("rejected"),
                 "withdrawn": N_("withdrawn"), "executing": N_("running"), "done": N_("destroyed")}


def short_why(entry: EligibleCustomer) -> str:
    return _(SHORT_WHY.get(entry.rule_code, "{start}")).format(years=entry.rule_years, start=entry.start_date or "")


def status_label(status: str) -> str:
    return _(STATUS_LABELS.get(status, status))


class RetentionScreen(Screen[None]):
    """Eligible customers above, destruction requests below."""

    CSS_PATH = "retention.tcss"
    AUTO_FOCUS = "#eligible"
    BINDINGS = [
        Binding("space", "mark", "Mark", id="retention.mark", tooltip="Mark or unmark for a request"),
        Binding("a", "mark_all", "All", id="retention.mark_all", tooltip="Mark everyone listed, or no one",
                show=False),
        Binding("f2", "file_request", "Request", id="retention.request",
                tooltip="Request destruction of the marked"),
        Binding("h", "hold", "Hold", id="retention.hold", tooltip="Put this customer on legal hold"),
        Binding("f9", "execute", "Execute", id="retention.execute",
                tooltip="Destroy an approved request (asks)"),
        Binding("w", "withdraw", "Withdraw", id="retention.withdraw",
                tooltip="Withdraw your waiting request (asks)", show=False),
        Binding("f5", "refresh", "Refresh", id="retention.refresh", tooltip="Run the sweep again", show=False),
        Binding("escape", "back", "Back", id="retention.back", tooltip="Back to the home screen"),
    ]

    @dataclass
    class Loaded(Message):
        sweep: SweepResult
        requests: list[RequestView]

    @dataclass
    class Failed(Message):
        message: str

    class Withdrawn(Message):
        pass

    @dataclass
    class RunProgressed(Message):
        done: int
        total: int

    @dataclass
    class RunFinished(Message):
        result: ExecutionResult

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        self.eligible: list[EligibleCustomer] = []
        self.requests: list[RequestView] = []
        self.marked: set[str] = set()
        self.running = False
        self.sweep: SweepResult | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="retention-box"):
            yield Static(Content(_("Retention · customers past retention, not on hold")), classes="title")
            yield Static(Content(_("Loading…")), id="retention-message", classes="muted")
            yield DataTable(id="eligible", cursor_type="row", zebra_stripes=True)
            yield Static("", id="retention-basis")
            yield Static(Content(_("Destruction requests")), classes="subtitle")
            yield DataTable(id="requests", cursor_type="row")
            yield ProgressBar(id="run-progress", show_eta=False)
        yield Footer()

    def on_mount(self) -> None:
        eligible = self.query_one("#eligible", DataTable)
        for key, header, width in (("mark", "", 1), ("customer", N_("Customer"), 11),
                                   ("category", N_("Category"), 10), ("until", N_("Kept until"), 10),
                                   ("why", N_("Why eligible"), 36)):
            eligible.add_column(Text(_(header)) if header else "", width=width, key=key)
        requests = self.query_one("#requests", DataTable)
        for key, header, width in (("no", N_("Request"), 11), ("status", N_("Status"), 9),
                                   ("count", N_("Cust."), 5), ("by", N_("By"), 10), ("decided", N_("Decided"), 10),
                                   ("reason", N_("Reason"), 18)):
            requests.add_column(Text(_(header)), width=width, key=key)
        self.query_one("#run-progress", ProgressBar).display = False
        self.load()

    # --- loading -------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="retention-load", exit_on_error=False)
    def load(self) -> None:
        try:
            sweep = destruction.retention_sweep(self.actor)
            requests = destruction.list_requests(self.actor, limit=50)
            self.post_message(self.Loaded(sweep, requests))
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.query_one("#retention-message", Static).update(safe_text(_(message.message), 200))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        sweep = message.sweep
        self.eligible = sweep.eligible
        numbers = {e.customer_no for e in self.eligible}
        self.marked &= numbers
        table = self.query_one("#eligible", DataTable)
        keep = table.cursor_row
        table.clear()
        for entry in self.eligible:
            table.add_row(self._mark_cell(entry.customer_no), Text(entry.customer_no),
                          Text(_(CATEGORY_LABELS.get(entry.category, entry.category))),
                          Text(str(entry.retention_until)), Text(safe_plain(short_why(entry), 36)),
                          key=entry.customer_no)
        if self.eligible:
            table.move_cursor(row=min(keep, len(self.eligible) - 1))
        self._show_summary(sweep)
        self._show_basis()
        self._fill_requests(message.requests)

    def _show_summary(self, sweep: SweepResult | None) -> None:
        if sweep is None:
            return
        if sweep.eligible_total:
            text = _("{n} eligible ({held} on hold, {requested} in requests). Space marks, F2 files a request.")
        else:
            text = _("Nobody is eligible ({held} on hold, {requested} in requests).")
        text = text.format(n=sweep.eligible_total, held=sweep.held_past_retention, requested=sweep.already_requested)
        if self.marked:
            text = _("{marked} marked. ").format(marked=len(self.marked)) + text
        self.query_one("#retention-message", Static).update(Content(text))
        self.sweep = sweep

    def _fill_requests(self, requests: list[RequestView]) -> None:
        self.requests = requests
        table = self.query_one("#requests", DataTable)
        keep = table.cursor_row
        table.clear()
        for r in requests:
            table.add_row(Text(r.request_no), Text(status_label(r.status)), Text(str(r.customer_count)),
                          Text(safe_plain(r.requested_by, 10)), Text(safe_plain(r.decided_by or "—", 10)),
                          Text(safe_plain(r.reason, 18)), key=r.request_id)
        if requests:
            table.move_cursor(row=min(keep, len(requests) - 1))

    def _mark_cell(self, customer_no: str) -> Text:
        return Text("✓" if customer_no in self.marked else " ")

    def _highlighted_eligible(self) -> EligibleCustomer | None:
        table = self.query_one("#eligible", DataTable)
        if not self.eligible or table.cursor_row >= len(self.eligible):
            return None
        return self.eligible[table.cursor_row]

    def _highlighted_request(self) -> RequestView | None:
        table = self.query_one("#requests", DataTable)
        if not self.requests or table.cursor_row >= len(self.requests):
            return None
        return self.requests[table.cursor_row]

    @on(DataTable.RowHighlighted, "#eligible")
    def _show_basis(self) -> None:
        entry = self._highlighted_eligible()
        basis = self.query_one("#retention-basis", Static)
        if entry is None:
            basis.update("")
            return
        basis.update(safe_text(_(entry.why_template).format(start=entry.start_date, years=entry.rule_years,
                                                            until=entry.retention_until)
                               + " · " + _(entry.basis), 160, multiline=False))

    # --- marking and requests -------------------------------------------------------------

    def action_mark(self) -> None:
        entry = self._highlighted_eligible()
        if entry is None or self.focused is not self.query_one("#eligible", DataTable):
            return
        self.marked.symmetric_difference_update({entry.customer_no})
        table = self.query_one("#eligible", DataTable)
        table.update_cell(entry.customer_no, "mark", self._mark_cell(entry.customer_no))
        if table.cursor_row < len(self.eligible) - 1:
            table.move_cursor(row=table.cursor_row + 1)
        self._show_summary(self.sweep)

    def action_mark_all(self) -> None:
        everyone = {e.customer_no for e in self.eligible}
        self.marked = set() if self.marked >= everyone else everyone
        table = self.query_one("#eligible", DataTable)
        for entry in self.eligible:
            table.update_cell(entry.customer_no, "mark", self._mark_cell(entry.customer_no))
        self._show_summary(self.sweep)

    def action_file_request(self) -> None:
        if not self.marked:
            entry = self._highlighted_eligible()
            if entry is None:
                self.notify(_("Nobody is eligible, so there is nothing to request."), severity="warning")
                return
            self.marked = {entry.customer_no}
            self.query_one("#eligible", DataTable).update_cell(entry.customer_no, "mark",
                                                               self._mark_cell(entry.customer_no))
        numbers = sorted(self.marked)
        question = _("Destruction request for {n} customer(s). Reason (no personal details):").format(n=len(numbers))
        self.app.push_screen(
            TextPromptDialog(question, submit=lambda reason: destruction.file_request(self.actor, numbers, reason),
                             placeholder=_("e.g. retention period over, annual sweep")),
            callback=self._request_filed)

    def _request_filed(self, request: RequestView | None) -> None:
        if request is None:
            return
        self.marked.clear()
        self.notify(_("Filed {no} for {n} customer(s); a supervisor must approve it.").format(
            no=request.request_no, n=request.customer_count), title=_("Request filed"))
        self.load()

    # --- holds ---------------------------------------------------------------------------

    def action_hold(self) -> None:
        entry = self._highlighted_eligible()
        form = HoldForm(entry.customer_no if entry else "", retention.HOLD_REASONS[0], "")
        self.app.push_screen(
            PlaceHoldDialog(form, submit=lambda f: retention.place_hold(self.actor, f.customer_no, f.reason, f.note)),
            callback=self._hold_placed)

    def _hold_placed(self, hold: HoldView | None) -> None:
        if hold is None:
            return
        self.notify(_("{no} is on legal hold and will not be destroyed.").format(no=hold.customer_no),
                    title=_("Hold placed"))
        self.load()

    # --- execution -------------------------------------------------------------------------

    def action_execute(self) -> None:
        request = self._highlighted_request()
        if self.running:
            return
        if request is None or request.status not in ("approved", "executing"):
            self.notify(_("Highlight an approved request in the lower list first (Tab moves there)."),
                        severity="warning")
            return
        question = Content(_("Destroy the {n} customer(s) of {no}? Their data keys are deleted and their records "
                             "cannot be recovered.").format(n=request.customer_count, no=request.request_no))
        self.app.push_screen(ConfirmDialog(question), callback=lambda yes: yes and self._start(request))

    def _start(self, request: RequestView) -> None:
        self.running = True
        bar = self.query_one("#run-progress", ProgressBar)
        bar.update(total=max(request.customer_count, 1), progress=0)
        bar.display = True
        self.execute(request.request_no)

    @work(thread=True, exclusive=True, group="retention-execute", exit_on_error=False)
    def execute(self, request_no: str) -> None:
        try:
            result = destruction.execute_request(
                self.actor, request_no, progress=lambda done, total: self.post_message(self.RunProgressed(done, total)))
            self.post_message(self.RunFinished(result))
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))
            self.post_message(self.RunProgressed(0, 0))

    @on(RunProgressed)
    def _progressed(self, message: RunProgressed) -> None:
        bar = self.query_one("#run-progress", ProgressBar)
        if message.total:
            bar.update(total=message.total, progress=message.done)
        else:
            bar.display = False
            self.running = False

    @on(RunFinished)
    def _finished(self, message: RunFinished) -> None:
        self.running = False
        self.query_one("#run-progress", ProgressBar).display = False
        result = message.result
        text = _("{no}: {n} destroyed, {kept} kept (on hold or no longer eligible).").format(
            no=result.request_no, n=result.destroyed, kept=result.excluded)
        self.notify(text, title=_("Destruction complete"), timeout=8)
        self.load()

    def action_withdraw(self) -> None:
        request = self._highlighted_request()
        if request is None or request.status != "pending":
            self.notify(_("Highlight a request that is still waiting (Tab moves to the lower list)."),
                        severity="warning")
            return
        question = Content(_("Withdraw {no}? Its customers become eligible again.").format(no=request.request_no))
        self.app.push_screen(ConfirmDialog(question), callback=lambda yes: yes and self.withdraw(request.request_id))

    @work(thread=True, exclusive=True, group="retention-withdraw", exit_on_error=False)
    def withdraw(self, request_id: str) -> None:
        try:
            destruction.withdraw_request(self.actor, request_id)
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))
        else:
            self.post_message(self.Withdrawn())

    @on(Withdrawn)
    def _withdrawn(self) -> None:
        self.load()

    def action_back(self) -> None:
        if self.running:
            self.notify(_("Destruction is running; wait for it to finish."), severity="warning")
            return
        self.dismiss(None)
