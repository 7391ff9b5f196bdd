"""The compliance dashboard: the state of the office at a glance, anomalies that open the audit
entries behind them, charts that read as numbers too, and the periodic report (F4).

Charts are drawn with block characters; every bar carries its number, and a flagged bar also
carries a word, so neither colour nor the bar length is the only signal. F3 shows every chart
as a plain list of numbers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rich.cells import cell_len
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from models import clock, dashboard, report
from models.dashboard import Anomaly, Chart, Dashboard
from models.errors import RecordKeeperError
from models.permissions import Actor
from tui.i18n import N_, _
from tui.safe_text import pad, safe_plain, safe_text
from tui.widgets.footer import Footer

PERIODS = (7, 30, 90, 365)
EIGHTHS = " ▏▎▍▌▋▊▉█"
SPARKS = "▁▂▃▄▅▆▇█"
LABEL_CELLS = 13
MAX_BARS_AS_ROWS = 13


def _label(chart: Chart, index: int) -> str:
    bar = chart.bars[index]
    return _(bar.label) if bar.translate else bar.label


def bar_cells(value: int, widest: int, cells: int) -> str:
    """A horizontal bar of `cells` at most, in eighths of a cell; a non-zero value shows at least a sliver."""
    if widest <= 0 or value <= 0:
        return ""
    eighths = max(1, round(cells * 8 * value / widest))
    return "█" * (eighths // 8) + (EIGHTHS[eighths % 8] if eighths % 8 else "")


def _fit(text: str, cells: int) -> str:
    """`text` cut or padded to `cells` terminal cells."""
    cut = safe_plain(text, cells)
    return cut + " " * max(0, cells - cell_len(cut))


def chart_content(chart: Chart, numbers_only: bool = False, width: int = 35) -> Content:
    """A chart as text lines of at most `width` cells: label, bar, number, and a word for a flagged bar."""
    if not chart.available:
        return Content.styled(_("not available in this installation"), "$state-muted")
    if not chart.bars:
        return Content.styled(_("none in the period"), "$state-muted")
    flag_word = _("over") if chart.threshold is not None else _("check")
    widest = max(bar.value for bar in chart.bars)
    value_cells = max(4, len(str(widest)))
    bar_width = max(3, width - LABEL_CELLS - value_cells - 4 - cell_len(flag_word))
    lines: list[Content] = []
    if len(chart.bars) > MAX_BARS_AS_ROWS and not numbers_only:
        levels = "".join(SPARKS[min(7, (8 * b.value - 1) // widest)] if b.value and widest else " "
                         for b in chart.bars)
        peak = max(range(len(chart.bars)), key=lambda i: chart.bars[i].value)
        lines.append(Content.styled(levels, "$state-warning" if widest else ""))
        lines.append(Content(f"{safe_plain(_label(chart, 0), 8)}{' ' * max(1, len(levels) - 16)}"
                             f"{safe_plain(_label(chart, len(chart.bars) - 1), 8)}"))
        lines.append(Content(_("highest {value} on {label}").format(value=widest, label=_label(chart, peak))
                             if widest else _("none in the period")))
    else:
        for index, bar in enumerate(chart.bars):
            row = [(f"{_fit(_label(chart, index), LABEL_CELLS)} ", "")]
            if not numbers_only:
                row.append((f"{bar_cells(bar.value, widest, bar_width):<{bar_width}} ",
                            "$state-danger" if bar.flagged else "$accent"))
            row.append((f"{bar.value:>{value_cells}}", "bold" if bar.flagged else ""))
            if bar.flagged:
                row.append((f" ▲{flag_word}", "$state-danger bold"))
            lines.append(Content.assemble(*row))
    total = Content.styled(_("total {total}").format(total=chart.total)
                           + (" · " + _("flag above {n}").format(n=chart.threshold)
                              if chart.threshold is not None else ""), "$state-muted")
    return Content("\n").join([*lines, total])


class ChartPanel(Static):
    """One chart in a bordered box titled with its name."""

    chart: Chart | None = None
    numbers_only = False

    def show(self, chart: Chart, numbers_only: bool) -> None:
        self.chart, self.numbers_only = chart, numbers_only
        self.border_title = _(chart.title)
        self.update(chart_content(chart, numbers_only, self.content_region.width or 35))

    def on_resize(self) -> None:
        if self.chart is not None:
            self.update(chart_content(self.chart, self.numbers_only, self.content_region.width or 35))


class DashboardScreen(Screen[None]):
    """Queues, verification, retention, logins, reveals, training and the audit chain for a period."""

    CSS_PATH = "dashboard.tcss"
    AUTO_FOCUS = "#anomalies"
    BINDINGS = [
        Binding("enter", "drill", "Entries", id="dashboard.drill",
                tooltip="Open the audit entries behind the chosen anomaly", show=False),
        Binding("f3", "numbers", "Numbers", id="dashboard.numbers", tooltip="Show every chart as plain numbers",
                show=False),
        Binding("f4", "report", "Report", id="dashboard.report",
                tooltip="Write the period's compliance report (Markdown and HTML)"),
        Binding("f5", "refresh", "Refresh", id="dashboard.refresh", tooltip="Count everything again", show=False),
        Binding("f6", "period", "Period", id="dashboard.period", tooltip="7, 30, 90 or 365 days"),
        Binding("f7", "branch", "Branch", id="dashboard.branch", tooltip="All branches or one"),
        Binding("f9", "verify", "Verify", id="dashboard.verify", tooltip="Verify the audit chain now"),
        Binding("escape", "back", "Back", id="dashboard.back", tooltip="Back to the home screen"),
    ]

    @dataclass
    class Loaded(Message):
        board: Dashboard

    @dataclass
    class Failed(Message):
        message: str

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        self.days = 30
        self.branch = ""
        self.branch_names: list[str] = []
        self.board: Dashboard | None = None
        self.numbers_only = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dash-box"):
            yield Static(Content(_("Compliance")), id="dash-title", classes="title")
            yield Static(Content(_("Loading…")), id="dash-chain")
            yield Static("", id="dash-figures", classes="muted")
            anomalies = OptionList(id="anomalies")
            anomalies.border_title = _("Anomalies · Enter: audit entries")
            yield anomalies
            with VerticalScroll(id="dash-scroll", can_focus=True):
                with Grid(id="dash-grid"):
                    for chart_id in ("review_queue", "change_requests", "verification_overdue", "reveals",
                                     "failed_logins", "training", "destruction_due", "destructions"):
                        yield ChartPanel("", id=f"chart-{chart_id}", classes="chart")
                branches = Static("", id="dash-branches", classes="chart")
                branches.border_title = _("Branches and records persons")
                yield branches
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    def _period(self) -> tuple[dt.date, dt.date]:
        end = clock.today()
        return end - dt.timedelta(days=self.days - 1), end

    @work(thread=True, exclusive=True, group="dashboard", exit_on_error=False)
    def load(self) -> None:
        start, end = self._period()
        try:
            self.post_message(self.Loaded(dashboard.compliance_dashboard(self.actor, start, end, self.branch)))
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.query_one("#dash-chain", Static).update(safe_text(message.message, 200))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.board = board = message.board
        if not self.branch:
            self.branch_names = [row.name for row in board.branches]
        where = safe_plain(board.branch, 20) if board.branch else _("all branches")
        self.query_one("#dash-title", Static).update(Content(_("Compliance · {start} – {end} · {where}").format(
            start=board.start, end=board.end, where=where)))
        self.query_one("#dash-chain", Static).update(self._chain_line(board))
        self.query_one("#dash-figures", Static).update(self._figures_line(board))
        menu = self.query_one("#anomalies", OptionList)
        keep = menu.highlighted
        menu.clear_options()
        if board.anomalies:
            for index, anomaly in enumerate(board.anomalies):
                menu.add_option(Option(self._anomaly_line(anomaly), id=str(index)))
            menu.highlighted = min(keep or 0, len(board.anomalies) - 1)
        else:
            menu.add_option(Option(Content.styled(_("No anomalies in this period."), "$state-ok"), disabled=True))
        self._draw_charts()

    def _chain_line(self, board: Dashboard) -> Content:
        chain = board.chain
        label = (_("Audit chain"), "bold")
        if chain.ok is None:
            return Content.assemble(label, ": ", (_("NOT VERIFIED"), "$state-warning bold"), " · ",
                                    _("F9 verifies {n} entries").format(n=f"{chain.log_size:,}"))
        when = dt.datetime.fromisoformat(chain.verified_at).astimezone().strftime("%m-%d %H:%M")
        if chain.ok:
            return Content.assemble(label, ": ", (_("INTACT"), "$state-ok bold"), " · ", _(
                "verified {when}, {entries} entries").format(when=when, entries=f"{chain.entries:,}"))
        if not chain.first_bad_seq:
            return Content.assemble(label, ": ", (_("TAMPERED"), "$state-danger bold"), " · ",
                                    _("a signed checkpoint (checked {when})").format(when=when))
        return Content.assemble(label, ": ", (_("TAMPERED"), "$state-danger bold"), " · ", _(
            "first bad entry {seq} (checked {when})").format(seq=chain.first_bad_seq, when=when))

    def _figures_line(self, board: Dashboard) -> Content:
        names = {"review_queue": N_("Queue"), "change_requests": N_("Changes"),
                 "verification_overdue": N_("Overdue"), "reveals": N_("Reveals"),
                 "failed_logins": N_("Failed logins")}
        parts = []
        for chart in board.charts:
            if chart.chart_id in names:
                parts.append(f"{_(names[chart.chart_id])} {chart.total if chart.available else '—'}")
        return Content(" · ".join(parts))

    def _anomaly_line(self, anomaly: Anomaly) -> Content:
        word = _("SERIOUS") if anomaly.severity == "danger" else _("check")
        style = "$state-danger bold" if anomaly.severity == "danger" else "$state-warning bold"
        arrow = " →" if anomaly.drill is not None or anomaly.drill_seq else ""
        return Content.assemble((pad(word, 8), style), safe_text(anomaly.text(_), 62), arrow)

    def _draw_charts(self) -> None:
        board = self.board
        if board is None:
            return
        for chart in board.charts:
            for panel in self.query(f"#chart-{chart.chart_id}").results(ChartPanel):
                panel.show(chart, self.numbers_only)
        header = (f"{_fit(_('Branch'), 16)} {_fit(_('Person'), 10)} {_fit(_('Cust.'), 6)} "
                  f"{_fit(_('Overdue'), 7)} {_fit(_('Ret.90d'), 7)} {_fit(_('Changes'), 7)}")
        rows = [Content.styled(header, "bold")]
        for row in board.branches:
            person = row.records_person or ("—" if not row.code else _("NONE"))
            rows.append(Content.assemble(
                f"{_fit(row.name, 16)} ",
                (_fit(person, 10), "$state-danger bold" if row.code and not row.records_person else ""),
                f" {row.customers:>6} {row.overdue_verifications:>7} {row.due_for_destruction:>7} "
                f"{'—' if row.pending_changes is None else row.pending_changes:>7}"))
        if not board.branches:
            rows.append(Content.styled(_("No branches yet."), "$state-muted"))
        self.query_one("#dash-branches", Static).update(Content("\n").join(rows))

    # --- keys --------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.load()

    def action_period(self) -> None:
        self.days = PERIODS[(PERIODS.index(self.days) + 1) % len(PERIODS)]
        self.load()

    def action_branch(self) -> None:
        choices = ["", *self.branch_names]
        self.branch = choices[(choices.index(self.branch) + 1) % len(choices)] if self.branch in choices else ""
        self.load()

    def action_numbers(self) -> None:
        self.numbers_only = not self.numbers_only
        self._draw_charts()

    @on(OptionList.OptionSelected, "#anomalies")
    def _chosen(self) -> None:
        self.action_drill()

    def action_drill(self) -> None:
        from screens.audit_log import AuditLogScreen

        menu = self.query_one("#anomalies", OptionList)
        if self.board is None or not self.board.anomalies or menu.highlighted is None:
            return
        anomaly = self.board.anomalies[menu.highlighted]
        if anomaly.drill_seq:
            screen = AuditLogScreen(self.actor, at_seq=anomaly.drill_seq)
            self.app.push_screen(screen)
        elif anomaly.drill is not None:
            self.app.push_screen(AuditLogScreen(self.actor, anomaly.drill))
        elif anomaly.kind in ("training_expired", "training_missing"):
            from screens.training import TrainingScreen

            self.app.push_screen(TrainingScreen(self.actor), callback=lambda _r: self.load())
        else:
            self.notify(_("This finding has no audit entries of its own."), title=_("Anomalies"))

    def action_verify(self) -> None:
        from screens.audit_log import AuditLogScreen, VerifyScreen

        def finished(bad_seq: int | None) -> None:
            self.load()
            if bad_seq:
                self.app.push_screen(AuditLogScreen(self.actor, at_seq=bad_seq))

        self.app.push_screen(VerifyScreen(self.actor), callback=finished)

    def action_report(self) -> None:
        start, end = self._period()
        self.app.push_screen(ReportScreen(self.actor, start, end), callback=lambda _r: self.load())

    def action_back(self) -> None:
        self.dismiss(None)


class ReportScreen(ModalScreen[None]):
    """Write the periodic report: the chain is verified first (with a progress bar), then the files."""

    CSS_PATH = "dashboard.tcss"
    BINDINGS = [Binding("escape,enter", "close", "Close", id="report.close", tooltip="Close this window")]

    @dataclass
    class Progressed(Message):
        done: int
        total: int

    @dataclass
    class Written(Message):
        files: report.ReportFiles

    @dataclass
    class Failed(Message):
        message: str

    def __init__(self, actor: Actor, start: dt.date, end: dt.date) -> None:
        super().__init__()
        self.actor, self.start, self.end = actor, start, end

    def compose(self) -> ComposeResult:
        with Vertical(id="report-box"):
            yield Static(Content(_("Compliance report {start} – {end}").format(start=self.start, end=self.end)),
                         classes="title")
            yield ProgressBar(total=None, show_eta=False, id="report-progress")
            yield Static(Content(_("Verifying the audit chain, then writing the report…")), id="report-result")
            yield Static(Content(_("The report goes on while this window is open.")), id="report-keys",
                         classes="muted")

    def on_mount(self) -> None:
        self.write()

    @work(thread=True, exclusive=True, group="report", exit_on_error=False)
    def write(self) -> None:
        try:
            files = report.write_report(self.actor, self.start, self.end, translate=_,
                                        progress=lambda done, total: self.post_message(self.Progressed(done, total)))
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))
            return
        self.post_message(self.Written(files))

    @on(Progressed)
    def _progressed(self, message: Progressed) -> None:
        self.query_one(ProgressBar).update(total=max(message.total, 1), progress=message.done)

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.query_one("#report-result", Static).update(safe_text(_(message.message), 200))
        self.query_one("#report-keys", Static).update(Content(_("Esc: close")))

    @on(Written)
    def _written(self, message: Written) -> None:
        files = message.files
        bar = self.query_one(ProgressBar)
        bar.update(total=1, progress=1)
        chain = (Content.styled(_("INTACT"), "$state-ok bold") if files.chain_ok
                 else Content.styled(_("TAMPERED"), "$state-danger bold"))
        folder = safe_plain(str(files.markdown.parent), 500)
        if cell_len(folder) > 68:  # keep the end of a long folder path: that is the part that tells
            folder = "…" + folder[-67:]
        self.query_one("#report-result", Static).update(Content.assemble(
            _("Audit chain:"), " ", chain, " · ", _("{n} anomalies").format(n=files.anomalies), "\n",
            _("Written:"), " ", safe_text(files.markdown.name, 60), "\n", " " * len(_("Written:")), " ",
            safe_text(files.html.name, 60), "\n", _("in {folder}").format(folder=folder)))
        self.query_one("#report-keys", Static).update(Content(_("Enter / Esc: close")))

    def action_close(self) -> None:
        self.dismiss(None)
