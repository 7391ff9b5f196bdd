"""The category browser: categories and labels with live counts on the left, customers on the right.

Pages are keyset pages of 50 rows fetched in a thread worker; only the visible page is kept
(and only its names were decrypted, masked). Arrows move, PgUp/PgDn page, Home/End jump to
the first and last page, `/` searches, Enter opens the customer's file.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, OptionList, Static
from textual.widgets.option_list import Option

from models import browse
from models.browse import BrowseCounts, BrowseFilter, BrowsePage, BrowseRow, Cursor
from models.errors import PermissionDenied, RecordKeeperError
from models.permissions import Actor
from tui.i18n import N_, _
from tui.safe_text import safe_plain, safe_text
from tui.widgets.footer import Footer

CATEGORY_LABELS = {"": N_("All"), "prospect": N_("Prospect"), "active": N_("Active"),
                   "terminated": N_("Terminated")}
SORT_LABELS = {"customer_no": N_("number"), "next_verification_due": N_("next verification"),
               "retention_until": N_("retention date")}
SEARCH_KIND_LABELS = {"customer_no": N_("customer number"), "id_number": N_("ID number"), "mobile": N_("mobile"),
                      "full_name": N_("name")}
SIDE_NAME_CELLS = 10
COUNTS_EVERY_SECONDS = 60


def category_label(code: str) -> str:
    return _(CATEGORY_LABELS.get(code, code))


def format_date(value) -> str:
    return value.isoformat() if value else "—"


def pad(text: str, cells: int) -> str:
    """`text` padded with spaces to `cells` terminal cells (a Han character takes two)."""
    return text + " " * max(cells - cell_len(text), 0)


def label_names(row: BrowseRow, width: int) -> str:
    return safe_plain(", ".join(label.name for label in row.labels), width) if row.labels else ""


class CustomerTable(DataTable):
    """The page of customers; moving past either end, PgUp/PgDn at the edges, Home and End ask for pages."""

    @dataclass
    class PageWanted(Message):
        direction: str  # next, previous, first, last

    def _want(self, direction: str) -> None:
        self.post_message(self.PageWanted(direction))

    def action_cursor_down(self) -> None:
        if self.row_count and self.cursor_row >= self.row_count - 1:
            self._want("next")
        else:
            super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self.row_count and self.cursor_row <= 0:
            self._want("previous")
        else:
            super().action_cursor_up()

    def action_page_down(self) -> None:
        if not self.row_count or self.cursor_row >= self.row_count - 1:
            self._want("next")
        else:
            super().action_page_down()

    def action_page_up(self) -> None:
        if not self.row_count or self.cursor_row <= 0:
            self._want("previous")
        else:
            super().action_page_up()

    def action_scroll_home(self) -> None:
        self._want("first")

    def action_scroll_end(self) -> None:
        self._want("last")

    def action_scroll_top(self) -> None:
        self._want("first")

    def action_scroll_bottom(self) -> None:
        self._want("last")


class BrowserScreen(Screen[None]):
    """Browse customers by category, label and branch; search; open a file."""

    CSS_PATH = "browser.tcss"
    AUTO_FOCUS = "#browse-table"
    BINDINGS = [
        # Priority: the dialog opens before the keys typed after "/" are handed on (type-ahead lands in it).
        Binding("slash", "search", "Search", id="browse.search", tooltip="Find a customer by number, ID, mobile or name",
                priority=True),
        Binding("enter", "open", "Open", id="browse.open", tooltip="Open the customer's file", show=False),
        Binding("f5", "refresh", "Refresh", id="browse.refresh", tooltip="Reload the page and the counts"),
        Binding("f6", "sort", "Sort", id="browse.sort",
                tooltip="Order by number, next verification or retention date"),
        Binding("f7", "branch", "Branch", id="browse.branch", tooltip="Show one branch, or all"),
        Binding("tab", "switch_panel", "Panel", id="browse.panel",
                tooltip="Move between the categories and the table", show=False, priority=True),
        Binding("escape", "back", "Back", id="browse.back", tooltip="Leave search results, or go home"),
        Binding("question_mark", "app.help", "Help", id="browse.help", tooltip="Show the keys", show=False),
    ]

    @dataclass
    class PageLoaded(Message):
        page: BrowsePage
        direction: str
        request: int

    @dataclass
    class CountsLoaded(Message):
        counts: BrowseCounts
        matching: int | None

    @dataclass
    class LoadFailed(Message):
        message: str

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        self.filter = BrowseFilter()
        self.sort = "customer_no"
        self.page: BrowsePage | None = None
        self.counts: BrowseCounts | None = None
        self.matching: int | None = None
        self.search_kind: str | None = None  # set while search results are shown (never the term)
        self.page_number: int | None = 1  # counted from the first page; None after End until Home
        self.pending_page_number: int | None = 1
        self.request = 0
        self.side_entries: list[tuple[str, object]] = []

    # --- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="browse"):
            yield Static("", id="browse-head", classes="title")
            with Horizontal(id="browse-body"):
                yield OptionList(id="browse-side")
                table = CustomerTable(id="browse-table", cursor_type="row", zebra_stripes=True, fixed_columns=1)
                yield table
            yield Static("", id="browse-status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(CustomerTable)
        for key, label, width in (("no", N_("No."), 11), ("name", N_("Name"), 6), ("category", N_("Category"), 10),
                                  ("due", N_("Next due"), 10), ("retention", N_("Retention"), 10),
                                  ("labels", N_("Labels"), 14), ("clerk", N_("Clerk"), 10)):
            table.add_column(Content(_(label)), width=width, key=key)
        self._show_head()
        self.load_page("first")
        self.load_counts()
        self.set_interval(COUNTS_EVERY_SECONDS, self.load_counts, name="browse-counts")  # live counts

    # --- loading (thread workers post past-tense messages) ----------------------------------------

    def _next_request(self) -> int:
        self.request += 1
        return self.request

    def load_page(self, direction: str) -> None:
        if self.search_kind is not None:
            return
        after = before = at = None
        rows = self.page.rows if self.page else ()
        if direction == "next":
            if self.page is not None and not self.page.has_after:
                self._note(_("This is the last page."))
                return
            after = rows[-1].cursor if rows else None
        elif direction == "previous":
            if self.page is not None and not self.page.has_before:
                self._note(_("This is the first page."))
                return
            before = rows[0].cursor if rows else None
        elif direction == "reload":
            at = rows[0].cursor if rows and self.page is not None and self.page.has_before else None
        self._note(_("Loading…"))
        self._fetch(self.filter, self.sort, after, before, at, direction == "last", direction, self._next_request())

    @work(thread=True, exclusive=True, group="browse-page", exit_on_error=False)
    def _fetch(self, flt: BrowseFilter, sort: str, after: Cursor | None, before: Cursor | None,
               at: Cursor | None, from_end: bool, direction: str, request: int) -> None:
        try:
            page = browse.browse_customers(self.actor, flt, sort, after=after, before=before, at=at,
                                           from_end=from_end)
        except PermissionDenied:
            self.post_message(self.LoadFailed(_("You may not browse customers.")))
            return
        except RecordKeeperError:
            self.post_message(self.LoadFailed(_("The customers could not be loaded. Try again (F5).")))
            return
        self.post_message(self.PageLoaded(page, direction, request))

    @work(thread=True, exclusive=True, group="browse-counts", exit_on_error=False)
    def load_counts(self) -> None:
        try:
            counts = browse.browse_counts(self.actor)
            matching = None
            if self.filter != BrowseFilter():
                matching = browse.count_matching(self.actor, self.filter)
        except RecordKeeperError:
            return
        self.post_message(self.CountsLoaded(counts, matching))

    @on(PageLoaded)
    def _page_loaded(self, message: PageLoaded) -> None:
        if message.request != self.request:
            return
        if not message.page.rows and message.direction in ("next", "previous") and self.page is not None:
            self._note(_("No more customers that way."))
            return
        self.page = message.page
        if message.direction == "first":
            self.page_number = 1
        elif message.direction == "last":
            self.page_number = None
        elif message.direction == "next" and self.page_number is not None:
            self.page_number += 1
        elif message.direction == "previous" and self.page_number is not None:
            self.page_number = max(1, self.page_number - 1)
        self._fill_table(message.page.rows, at_end=message.direction in ("previous", "last"))
        self._show_head()

    @on(CountsLoaded)
    def _counts_loaded(self, message: CountsLoaded) -> None:
        self.counts = message.counts
        self.matching = message.matching
        self._fill_side()
        self._show_head()

    @on(LoadFailed)
    def _load_failed(self, message: LoadFailed) -> None:
        self._note(message.message)

    # --- drawing -----------------------------------------------------------------------------

    def _fill_table(self, rows: tuple[BrowseRow, ...], at_end: bool = False) -> None:
        table = self.query_one(CustomerTable)
        table.clear()
        for row in rows:
            table.add_row(
                Content(row.customer_no), safe_text(row.masked_name, 8), Content(category_label(row.category)),
                Content(format_date(row.next_verification_due)), Content(format_date(row.retention_until)),
                safe_text(label_names(row, 14), 14), safe_text(row.responsible_clerk, 10),
                key=row.customer_no,
            )
        if rows:
            table.move_cursor(row=len(rows) - 1 if at_end else 0, animate=False)
        self._show_status()

    def _fill_side(self) -> None:
        side = self.query_one("#browse-side", OptionList)
        highlighted = side.highlighted
        side.clear_options()
        self.side_entries = []
        counts = self.counts
        if counts is None:
            return
        options: list[Option | None] = []
        for code in ("", "prospect", "active", "terminated"):
            count = counts.total if code == "" else counts.by_category.get(code, 0)
            mark = "▸" if self.filter.category == code else " "
            text = f"{mark}{pad(safe_plain(category_label(code), SIDE_NAME_CELLS), SIDE_NAME_CELLS)}{count:>9,}"
            options.append(Option(Content(text), id=f"cat-{code or 'all'}"))
            self.side_entries.append(("category", code))
        options.append(Option(Content(_("Labels")), id="labels-heading", disabled=True))
        self.side_entries.append(("heading", None))
        for label in counts.labels:
            mark = "▸" if self.filter.label_id == label.label_id else " "
            name = safe_plain(label.name, SIDE_NAME_CELLS)
            text = Content.assemble(mark, (name, f"${label.colour}"),
                                    " " * max(SIDE_NAME_CELLS - cell_len(name), 0) + f"{label.count:>9,}")
            options.append(Option(text, id=f"label-{label.label_id}"))
            self.side_entries.append(("label", label.label_id))
        side.add_options(options)
        current = ("category", self.filter.category)
        side.highlighted = highlighted if highlighted is not None and highlighted < len(options) \
            else self.side_entries.index(current)

    def _show_head(self) -> None:
        if self.search_kind is not None:
            found = len(self.page.rows) if self.page else 0
            text = _("Search by {kind}: {count} found · Esc: back to the list").format(
                kind=_(SEARCH_KIND_LABELS.get(self.search_kind, self.search_kind)), count=found)
            self.query_one("#browse-head", Static).update(Content(text))
            return
        parts = [_("Customers"), category_label(self.filter.category)]
        if self.filter.label_id is not None and self.counts is not None:
            names = [lc.name for lc in self.counts.labels if lc.label_id == self.filter.label_id]
            if names:
                parts.append(_("label {name}").format(name=safe_plain(names[0], 12)))
        if self.filter.branch:
            parts.append(safe_plain(self.filter.branch, 14))
        parts.append(_("by {sort}").format(sort=_(SORT_LABELS[self.sort])))
        total = self.matching if self.filter != BrowseFilter() else (self.counts.total if self.counts else None)
        if total is not None:
            parts.append(_("{count:,} customers").format(count=total))
        if self.page_number is not None:
            parts.append(_("page {n}").format(n=self.page_number))
        elif self.page is not None:
            parts.append(_("last page") if not self.page.has_after else _("near the end"))
        self.query_one("#browse-head", Static).update(safe_text(" · ".join(parts), 78))

    def _highlighted_row(self) -> BrowseRow | None:
        table = self.query_one(CustomerTable)
        if not self.page or not self.page.rows or table.row_count == 0:
            return None
        index = min(max(table.cursor_row, 0), len(self.page.rows) - 1)
        return self.page.rows[index]

    def _show_status(self) -> None:
        row = self._highlighted_row()
        if row is None:
            self._note(_("No customers here.") if self.page is not None else "")
            return
        parts = [row.customer_no, row.masked_name, safe_plain(row.branch, 14)]
        if row.labels:
            parts.append(_("labels: {names}").format(names=label_names(row, 24)))
        if row.responsible_clerk:
            parts.append(_("clerk: {name}").format(name=row.responsible_clerk))
        if row.legal_hold:
            parts.append(_("LEGAL HOLD"))
        if row.imported:
            parts.append(_("imported"))
        self.query_one("#browse-status", Static).update(safe_text(" · ".join(parts), 79))

    def _note(self, text: str) -> None:
        self.query_one("#browse-status", Static).update(Content(text))

    @on(DataTable.RowHighlighted, "#browse-table")
    def _row_highlighted(self) -> None:
        self._show_status()

    @on(CustomerTable.PageWanted)
    def _page_wanted(self, message: CustomerTable.PageWanted) -> None:
        if self.search_kind is not None:
            return
        self.load_page(message.direction)

    # --- actions -----------------------------------------------------------------------------

    @on(DataTable.RowSelected, "#browse-table")
    def _row_selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        row = self._highlighted_row()
        if row is None:
            return
        from screens.customer_file import CustomerFileScreen

        self.app.push_screen(CustomerFileScreen(self.actor, row.customer_no), callback=self._file_closed)

    def _file_closed(self, _result: object) -> None:
        if self.search_kind is None:
            self.load_page("reload")
        self.load_counts()

    def action_refresh(self) -> None:
        self.load_page("reload")
        self.load_counts()

    def action_sort(self) -> None:
        if self.search_kind is not None:
            return
        self.sort = browse.SORTS[(browse.SORTS.index(self.sort) + 1) % len(browse.SORTS)]
        self.page = None
        self.load_page("first")

    def action_branch(self) -> None:
        from screens.dialogs.choice import ChoiceDialog

        if self.search_kind is not None or self.counts is None:
            return
        choices = [("", _("All branches"))] + [(name, f"{safe_plain(name, 30)}  ({count:,})")
                                             for name, count in self.counts.branches if name]
        self.app.push_screen(ChoiceDialog(_("Show which branch?"), choices, self.filter.branch),
                             callback=self._branch_chosen)

    def _branch_chosen(self, branch: str | None) -> None:
        if branch is None or branch == self.filter.branch:
            return
        self._set_filter(BrowseFilter(self.filter.category, self.filter.label_id, branch))

    def _set_filter(self, flt: BrowseFilter) -> None:
        self.filter = flt
        self.page = None
        self.matching = None
        self.load_page("first")
        self.load_counts()
        self._fill_side()
        self._show_head()

    @on(OptionList.OptionSelected, "#browse-side")
    def _side_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_index >= len(self.side_entries):
            return
        kind, value = self.side_entries[event.option_index]
        if kind == "category":
            label_id = None if value == "" else self.filter.label_id
            self._set_filter(BrowseFilter(str(value), label_id, self.filter.branch))
        elif kind == "label":
            label_id = None if self.filter.label_id == value else int(value)  # selecting it again clears it
            self._set_filter(BrowseFilter(self.filter.category, label_id, self.filter.branch))
        self.set_focus(self.query_one(CustomerTable))

    def action_switch_panel(self) -> None:
        # set_focus at once (not focus(), which waits a turn): the keys typed after Tab go to the new place.
        side = self.query_one("#browse-side", OptionList)
        self.set_focus(self.query_one(CustomerTable) if side.has_focus else side)

    def action_search(self) -> None:
        from screens.dialogs.search import SearchDialog

        self.app.push_screen(SearchDialog(self.actor), callback=self._searched)

    def _searched(self, result) -> None:
        if result is None:
            return
        self.search_kind = result.kind
        self.request += 1  # a page still loading must not replace the results
        self.page = result.page
        self._fill_table(result.page.rows)
        self._show_head()
        if not result.page.rows:
            self._note(_("Nobody found. Search is exact: check the spelling, or search by another field."))
        self.query_one(CustomerTable).focus()

    def action_back(self) -> None:
        if self.search_kind is not None:
            self.search_kind = None
            self.page = None
            self.load_page("first")
            self._show_head()
            return
        self.dismiss(None)
