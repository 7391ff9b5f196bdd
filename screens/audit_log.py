"""The audit log for auditors and supervisors: filters, keyset pages, one entry in its chain, verification.

Pages are fetched newest first, 50 at a time; moving past the last row loads the older page and
past the first row the newer one, so millions of entries scroll like one list. F9 replays the
whole chain against the signed checkpoints in a worker, with a progress bar.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.suggester import SuggestFromList
from textual.widgets import DataTable, Input, Label, ProgressBar, Static

from models import audit_browse
from models.audit import VerifyResult
from models.audit_browse import AuditDetail, AuditFilter, AuditPage
from models.errors import FieldError, NotFound, RecordKeeperError, ValidationError
from models.permissions import Actor
from tui.i18n import N_, _
from tui.safe_text import pad, safe_plain, safe_text
from tui.widgets.field_input import FieldInput
from tui.widgets.footer import Footer

OUTCOME_WORDS = {"ok": N_("ok"), "denied": N_("denied"), "failed": N_("failed")}
FILTER_FIELDS = (("since", N_("From"), 12), ("until", N_("To"), 12), ("staff", N_("Staff"), 14),
                 ("action", N_("Action"), 18), ("customer_no", N_("Customer"), 14), ("outcome", N_("Result"), 8))
FIELD_LABELS = {name: label for name, label, _w in FILTER_FIELDS}


def state_style(app: App, state: str) -> Style:
    """A Rich style for a business state, from the active theme (for DataTable cells)."""
    variables = app.get_css_variables()
    colour = Color.parse(variables[f"state-{state}"]).rich_color
    emphasis = variables.get(f"state-{state}-text-style", "none")
    return Style(color=colour) + (Style.parse(emphasis) if emphasis != "none" else Style())


def local_time(ts: str, pattern: str = "%m-%d %H:%M") -> str:
    try:
        return dt.datetime.fromisoformat(ts).astimezone().strftime(pattern)
    except ValueError:
        return safe_plain(ts, 24)


def outcome_text(app: App, outcome: str) -> Text:
    word = _(OUTCOME_WORDS.get(outcome, outcome))
    if outcome == "ok":
        return Text(word)
    return Text(safe_plain(word, 8), style=state_style(app, "danger"))


VALUE_CELLS = 56


def _wrapped(label: str, text: str) -> list[tuple[str, Content]]:
    """A long value over several lines of at most VALUE_CELLS cells, the label on the first only."""
    clean = safe_plain(text, 600)
    lines, line = [], ""
    for word in clean.split(" "):
        if line and cell_len(line) + 1 + cell_len(word) > VALUE_CELLS:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return [(label if index == 0 else "", Content(safe_plain(part, VALUE_CELLS)))
            for index, part in enumerate(lines)]


class AuditTable(DataTable):
    """A table that asks for the next page when the cursor moves past either end."""

    @dataclass
    class PastEnd(Message):
        older: bool

    def action_cursor_down(self) -> None:
        if self.row_count and self.cursor_row >= self.row_count - 1:
            self.post_message(self.PastEnd(older=True))
            return
        super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self.row_count and self.cursor_row <= 0:
            self.post_message(self.PastEnd(older=False))
            return
        super().action_cursor_up()

    def action_page_down(self) -> None:
        if self.row_count and self.cursor_row >= self.row_count - 1:
            self.post_message(self.PastEnd(older=True))
            return
        super().action_page_down()

    def action_page_up(self) -> None:
        if self.row_count and self.cursor_row <= 0:
            self.post_message(self.PastEnd(older=False))
            return
        super().action_page_up()


class AuditLogScreen(Screen[None]):
    """Filter the audit log and walk through it page by page."""

    CSS_PATH = "audit_log.tcss"
    AUTO_FOCUS = "#audit-table"
    BINDINGS = [
        Binding("enter", "open", "Open", id="audit.open", tooltip="Show the entry in full, with its chain position",
                show=False),
        # A priority binding: the focus moves at once, before the keys typed after it arrive.
        Binding("slash", "filter", "Filter", id="audit.filter", tooltip="Go to the filter fields", priority=True),
        Binding("f5", "apply", "Apply", id="audit.apply", tooltip="Apply the filter (or reload)"),
        Binding("f6", "newest", "Newest", id="audit.newest", tooltip="Back to the newest entries"),
        Binding("f7", "goto", "Go to", id="audit.goto", tooltip="Jump to an entry number"),
        Binding("f8", "clear", "Clear", id="audit.clear", tooltip="Clear every filter", show=False),
        Binding("f9", "verify", "Verify", id="audit.verify",
                tooltip="Replay the whole chain against the signed checkpoints"),
        Binding("escape", "back", "Back", id="audit.back", tooltip="Back (from the filter: to the list)"),
    ]

    @dataclass
    class PageLoaded(Message):
        page: AuditPage
        cursor_at_end: bool

    @dataclass
    class Refused(Message):
        errors: dict[str, str]

    @dataclass
    class ActionsLoaded(Message):
        actions: list[str]

    def __init__(self, actor: Actor, initial: AuditFilter | None = None, at_seq: int | None = None) -> None:
        super().__init__()
        self.actor = actor
        self.flt = initial or AuditFilter()
        self.at_seq = at_seq
        self.page: AuditPage | None = None
        self.fetching = False

    def compose(self) -> ComposeResult:
        with Vertical(id="audit-box"):
            yield Static(Content(_("Audit log")), id="audit-title", classes="title")
            values = {"since": self.flt.since.isoformat() if self.flt.since else "",
                      "until": self.flt.until.isoformat() if self.flt.until else "",
                      "staff": self.flt.staff, "action": self.flt.action, "customer_no": self.flt.customer_no,
                      "outcome": self.flt.outcome}
            for row in (FILTER_FIELDS[:3], FILTER_FIELDS[3:]):
                with Horizontal(classes="filter-row"):
                    for name, label, width in row:
                        yield Label(_(label), classes="filter-label")
                        field = FieldInput(values[name], id=f"f-{name}", max_length=32 if name != "action" else 48,
                                           enter_moves_on=name != "outcome", classes="filter-input")
                        field.styles.width = width
                        if name == "outcome":
                            field.suggester = SuggestFromList(list(OUTCOME_WORDS), case_sensitive=False)
                        if name in ("since", "until"):
                            field.placeholder = "YYYY-MM-DD"
                        yield field
            yield Static("", id="audit-error", classes="error")
            yield AuditTable(id="audit-table", cursor_type="row", zebra_stripes=True)
            yield Static(Content(_("Loading…")), id="audit-status", classes="muted")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(AuditTable)
        for header, width in ((N_("No."), 7), (N_("Time"), 11), (N_("Staff"), 10), (N_("Action"), 19),
                              (N_("Object"), 12), (N_("Result"), 6)):
            table.add_column(Text(_(header)), width=width)
        self.query_one("#audit-error", Static).display = False
        self.load_actions()
        if self.at_seq is not None:
            self.load(page_at=self.at_seq)
        else:
            self.load()

    # --- loading --------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="audit-actions", exit_on_error=False)
    def load_actions(self) -> None:
        self.post_message(self.ActionsLoaded(audit_browse.known_actions(self.actor)))

    @on(ActionsLoaded)
    def _actions(self, message: ActionsLoaded) -> None:
        self.query_one("#f-action", FieldInput).suggester = SuggestFromList(message.actions, case_sensitive=False)

    @work(thread=True, exclusive=True, group="audit-page", exit_on_error=False)
    def load(self, before: int | None = None, after: int | None = None, page_at: int | None = None) -> None:
        try:
            if page_at is not None:
                page = audit_browse.page_at(self.actor, self.flt, page_at)
            else:
                page = audit_browse.browse(self.actor, self.flt, before_seq=before, after_seq=after)
        except RecordKeeperError as exc:
            self.post_message(self.Refused({"": str(exc)}))
            return
        self.post_message(self.PageLoaded(page, cursor_at_end=after is not None))

    @on(PageLoaded)
    def _show(self, message: PageLoaded) -> None:
        self.fetching = False
        self.page = page = message.page
        table = self.query_one(AuditTable)
        table.clear()
        for row in page.rows:
            target = row.object_id or row.object_type
            table.add_row(Text(str(row.seq)), Text(local_time(row.ts)), Text(safe_plain(row.actor, 10)),
                          Text(safe_plain(row.action, 19)), Text(safe_plain(target, 12)),
                          outcome_text(self.app, row.outcome), key=str(row.seq))
        if page.rows:
            wanted = len(page.rows) - 1 if message.cursor_at_end else 0
            if self.at_seq is not None:
                wanted = next((i for i, r in enumerate(page.rows) if r.seq <= self.at_seq), 0)
                self.at_seq = None
            table.move_cursor(row=wanted)
        self.query_one("#audit-title", Static).update(Content(
            _("Audit log · {size} entries").format(size=f"{page.log_size:,}")
            + (" · " + _("filtered") if not self.flt.is_empty() else "")))
        self._status()

    def _status(self) -> None:
        page = self.page
        if page is None:
            return
        if not page.rows:
            text = _("No entries match the filter.")
        else:
            text = _("No. {newest}–{oldest}").format(newest=page.rows[0].seq, oldest=page.rows[-1].seq)
            more = []
            if page.has_newer:
                more.append(_("↑ at the top: newer"))
            if page.has_older:
                more.append(_("↓ at the end: older"))
            text += " · " + (" · ".join(more) if more else _("all shown"))
        self.query_one("#audit-status", Static).update(Content(text))

    @on(AuditTable.PastEnd)
    def _past_end(self, message: AuditTable.PastEnd) -> None:
        page = self.page
        if self.fetching or page is None or not page.rows:
            return
        if message.older and page.has_older:
            self.fetching = True
            self.load(before=page.rows[-1].seq)
        elif not message.older and page.has_newer:
            self.fetching = True
            self.load(after=page.rows[0].seq)

    # --- the filter -------------------------------------------------------------------------

    def _typed(self) -> dict[str, str]:
        return {name: self.query_one(f"#f-{name}", FieldInput).value for name, _l, _w in FILTER_FIELDS}

    def action_filter(self) -> None:
        if isinstance(self.focused, Input):  # in a field, "/" is just a character
            self.focused.insert_text_at_cursor("/")
            return
        self.set_focus(self.query_one("#f-since", FieldInput))

    @on(Input.Submitted, "#f-outcome")
    def _last_field(self) -> None:
        self.action_apply()

    def action_apply(self) -> None:
        try:
            self.flt = audit_browse.make_filter(**self._typed())
        except ValidationError as exc:
            self._show_errors(exc.by_field())
            return
        self._show_errors({})
        self.set_focus(self.query_one(AuditTable))
        self.load()

    def _show_errors(self, errors: dict[str, str]) -> None:
        parts = [f"{_(FIELD_LABELS[f])}: {_(m)}" if f in FIELD_LABELS else _(m) for f, m in errors.items()]
        error = self.query_one("#audit-error", Static)
        error.update(safe_text(" · ".join(parts), 160))
        error.display = bool(parts)
        first = next((f for f in errors if f in FIELD_LABELS), None)
        if first:
            self.set_focus(self.query_one(f"#f-{first}", FieldInput))

    @on(Refused)
    def _refused(self, message: Refused) -> None:
        self.fetching = False
        self._show_errors(message.errors)

    def action_clear(self) -> None:
        for name, _l, _w in FILTER_FIELDS:
            self.query_one(f"#f-{name}", FieldInput).value = ""
        self.action_apply()

    def action_newest(self) -> None:
        self.set_focus(self.query_one(AuditTable))
        self.load()

    def action_back(self) -> None:
        if isinstance(self.focused, FieldInput):
            self.set_focus(self.query_one(AuditTable))
            return
        self.dismiss(None)

    # --- one entry, jumping, verifying ------------------------------------------------------

    def action_open(self) -> None:
        table = self.query_one(AuditTable)
        if self.page is None or not self.page.rows or isinstance(self.focused, FieldInput):
            return
        seq = self.page.rows[min(table.cursor_row, len(self.page.rows) - 1)].seq
        self.app.push_screen(AuditEntryScreen(self.actor, seq))

    @on(DataTable.RowSelected, "#audit-table")
    def _selected(self) -> None:
        self.action_open()

    def action_goto(self) -> None:
        from screens.staff_admin import FormDialog, FormField

        def submit(values: dict) -> int:
            text = str(values["seq"]).strip()
            if not text.isdigit() or int(text) < 1:
                raise ValidationError([FieldError("seq", "type an entry number such as 1234", "bad_format")])
            return int(text)

        def chosen(seq: object) -> None:
            if isinstance(seq, int):
                self.show_entry(seq)

        self.app.push_screen(FormDialog(Content(_("Go to entry number")),
                                        [FormField("seq", N_("Entry number"), max_length=12, restrict=r"[0-9]*")],
                                        submit), callback=chosen)

    def show_entry(self, seq: int, *, open_detail: bool = False) -> None:
        """Show the page holding entry `seq` (newest at or before it), the filter cleared."""
        for name, _l, _w in FILTER_FIELDS:
            self.query_one(f"#f-{name}", FieldInput).value = ""
        self.flt = AuditFilter()
        self.at_seq = seq
        self.set_focus(self.query_one(AuditTable))
        self.load(page_at=seq)
        if open_detail:
            self.app.push_screen(AuditEntryScreen(self.actor, seq))

    def action_verify(self) -> None:
        def finished(bad_seq: int | None) -> None:
            if bad_seq:
                self.show_entry(bad_seq, open_detail=True)
            else:
                self.load()

        self.app.push_screen(VerifyScreen(self.actor), callback=finished)


class AuditEntryScreen(ModalScreen[None]):
    """One entry in full (it holds no personal data) and where it sits in the chain."""

    CSS_PATH = "audit_log.tcss"
    BINDINGS = [
        Binding("escape", "dismiss_entry", "Back", id="audit_entry.back", tooltip="Back to the list"),
        Binding("left", "step(-1)", "Previous", id="audit_entry.previous", tooltip="The entry before this one"),
        Binding("right", "step(1)", "Next", id="audit_entry.next", tooltip="The entry after this one"),
    ]

    @dataclass
    class Loaded(Message):
        detail: AuditDetail

    @dataclass
    class Missing(Message):
        message: str

    def __init__(self, actor: Actor, seq: int) -> None:
        super().__init__()
        self.actor = actor
        self.seq = seq
        self.detail: AuditDetail | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="entry-box"):
            yield Static(Content(_("Audit entry")), id="entry-title", classes="title")
            with VerticalScroll(id="entry-scroll"):
                yield Static(Content(_("Loading…")), id="entry-body")
            yield Static(Content(_("←/→: previous/next entry    Esc: back")), classes="muted")

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="audit-entry", exit_on_error=False)
    def load(self) -> None:
        try:
            self.post_message(self.Loaded(audit_browse.entry_detail(self.actor, self.seq)))
        except (NotFound, RecordKeeperError) as exc:
            self.post_message(self.Missing(str(exc)))

    @on(Missing)
    def _missing(self, message: Missing) -> None:
        self.query_one("#entry-body", Static).update(safe_text(message.message, 200))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.detail = d = message.detail
        yes, no = _("yes"), _("NO")
        lines: list[tuple[str, Content]] = [
            (N_("Entry"), Content(_("{seq} of {size}").format(seq=d.seq, size=f"{d.log_size:,}"))),
            (N_("Time"), Content(local_time(d.ts, "%Y-%m-%d %H:%M:%S %z"))),
            (N_("Staff"), safe_text(f"{d.actor} (#{d.actor_id})" if d.actor_id else d.actor, 50)),
            (N_("Session"), safe_text(d.session_id or "—", 40)),
            (N_("Action"), safe_text(d.action, 48)),
            (N_("Object"), safe_text(" ".join(p for p in (d.object_type, d.object_id) if p) or "—", 60)),
            (N_("Result"), Content(_(OUTCOME_WORDS.get(d.outcome, d.outcome)))),
            *_wrapped(N_("Fields"), d.fields.replace(",", ", ") or "—"),
            *_wrapped(N_("Purpose"), d.purpose or "—"),
        ]
        for key, value in d.details:
            lines += _wrapped("· " + key, value)
        link_ok = Content.styled(yes, "$state-ok") if d.links_to_previous else Content.styled(no, "$state-danger")
        hash_ok = Content.styled(yes, "$state-ok") if d.content_matches else Content.styled(no, "$state-danger")
        lines += [
            (N_("Previous hash"), Content("")), ("", Content(d.prev_hash)),
            (N_("Hash"), Content("")), ("", Content(d.hash)),
            (N_("Links back"), link_ok),
            (N_("Content matches"), hash_ok),
            (N_("Signed"), Content(_("by the checkpoint at entry {seq} ({time})").format(
                seq=d.checkpoint_seq, time=local_time(d.checkpoint_ts, "%Y-%m-%d %H:%M")))
             if d.checkpoint_seq else Content(_("not yet covered by a signed checkpoint"))),
        ]
        body = Content("\n").join(
            value if len(value.plain) > VALUE_CELLS else
            Content.assemble((pad(_(label) if label and not label.startswith('· ') else label, 15) + " ", "bold"),
                             value)
            for label, value in lines)
        self.query_one("#entry-title", Static).update(Content(_("Audit entry {seq}").format(seq=d.seq)))
        self.query_one("#entry-body", Static).update(body)

    def action_step(self, delta: int) -> None:
        if self.detail is None:
            return
        target = self.seq + delta
        if 1 <= target <= self.detail.log_size:
            self.seq = target
            self.load()

    def action_dismiss_entry(self) -> None:
        self.dismiss(None)


class VerifyCancelled(Exception):
    """Raised from the progress callback when the person leaves the verification."""


class VerifyScreen(ModalScreen[int | None]):
    """Replay the chain with a progress bar; the result names the first bad entry (dismissed with it)."""

    CSS_PATH = "audit_log.tcss"
    BINDINGS = [
        Binding("enter", "go", "Go to entry", id="verify.go", tooltip="Show the first bad entry"),
        Binding("escape", "close", "Close", id="verify.close", tooltip="Close (stops a running verification)"),
    ]

    @dataclass
    class Progressed(Message):
        done: int
        total: int

    @dataclass
    class Finished(Message):
        result: VerifyResult

    @dataclass
    class Stopped(Message):
        message: str

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        self.cancelled = False
        self.result: VerifyResult | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="verify-box"):
            yield Static(Content(_("Verifying the audit chain")), classes="title")
            yield ProgressBar(total=None, show_eta=False, id="verify-progress")
            yield Static(Content(_("Replaying every entry against the signed checkpoints…")), id="verify-result")
            yield Static(Content(_("Esc: stop and close")), id="verify-keys", classes="muted")

    def on_mount(self) -> None:
        self.run_verification()

    @work(thread=True, exclusive=True, group="audit-verify", exit_on_error=False)
    def run_verification(self) -> None:
        def progress(done: int, total: int) -> None:
            if self.cancelled:
                raise VerifyCancelled
            self.post_message(self.Progressed(done, total))

        try:
            result = audit_browse.verify_log(self.actor, progress=progress)
        except VerifyCancelled:
            return
        except RecordKeeperError as exc:
            self.post_message(self.Stopped(str(exc)))
            return
        self.post_message(self.Finished(result))

    @on(Progressed)
    def _progressed(self, message: Progressed) -> None:
        bar = self.query_one(ProgressBar)
        bar.update(total=max(message.total, 1), progress=message.done)

    @on(Stopped)
    def _stopped(self, message: Stopped) -> None:
        self.query_one("#verify-result", Static).update(safe_text(message.message, 200))
        self.query_one("#verify-keys", Static).update(Content(_("Esc: close")))

    @on(Finished)
    def _finished(self, message: Finished) -> None:
        self.result = r = message.result
        bar = self.query_one(ProgressBar)
        bar.update(total=max(r.entries, 1), progress=max(r.entries, 1) if r.ok else r.entries)
        if r.ok:
            text = Content.assemble((_("INTACT"), "$state-ok bold"), " · ", _(
                "{entries} entries replayed; {checkpoints} signed checkpoints agree.").format(
                entries=f"{r.entries:,}", checkpoints=r.checkpoints))
            if r.warning:
                text = Content.assemble(text, "\n", (_("Warning:"), "$state-warning bold"), " ", safe_text(r.warning))
            keys = _("Esc: close")
        else:
            text = Content.assemble((_("TAMPERED"), "$state-danger bold"), " · ", _(
                "first bad entry: {seq}").format(seq=r.first_bad_seq or "?"), "\n", safe_text(r.reason, 200))
            keys = _("Enter: show that entry    Esc: close")
        self.query_one("#verify-result", Static).update(text)
        self.query_one("#verify-keys", Static).update(Content(keys))

    def action_go(self) -> None:
        if self.result is not None and not self.result.ok and self.result.first_bad_seq:
            self.dismiss(self.result.first_bad_seq)

    def action_close(self) -> None:
        self.cancelled = True
        self.dismiss(None)
