"""A field-by-field diff: old and new values (and optionally a base), each change marked in words.

Generic: change requests, intake revisions and anything else that compares two or three
versions of a record hand it rows of (field label, old, new[, base]) as display strings.
Every state has a symbol and a word ("* changed", "- cleared"), so the diff reads the same
without colour; colour comes from the theme's state variables. The highlighted row is shown in
full under the table, since long values are cut to fit 80 columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import DataTable, Static

from tui.i18n import N_, _
from tui.safe_text import safe_plain

__all__ = ["DiffGrid", "DiffRow", "DiffState", "DiffTable", "diff_state", "marker_text"]


class DiffState(str, Enum):
    UNCHANGED = "unchanged"
    CHANGED = "changed"
    ADDED = "added"
    CLEARED = "cleared"
    CONFLICT = "conflict"  # three-way: the record and the proposal both changed it, differently
    SINCE = "since"  # three-way: the record changed it since the base; the proposal agrees or leaves it


MARKERS: dict[DiffState, tuple[str, str]] = {
    DiffState.UNCHANGED: ("", ""),
    DiffState.CHANGED: ("*", N_("changed")),
    DiffState.ADDED: ("+", N_("added")),
    DiffState.CLEARED: ("-", N_("cleared")),
    DiffState.CONFLICT: ("!", N_("conflict")),
    DiffState.SINCE: ("~", N_("since")),
}


def _empty(value: str | None) -> bool:
    return value is None or value == ""


def diff_state(old: str | None, new: str | None, base: str | None = None, *, three_way: bool = False) -> DiffState:
    """The state of one row: two-way compares old → new; three-way compares base, current (old), proposed (new)."""
    old, new = old or "", new or ""
    if three_way:
        base = base or ""
        if old != base:
            return DiffState.SINCE if new == old else DiffState.CONFLICT
        old = base
    if old == new:
        return DiffState.UNCHANGED
    if _empty(new):
        return DiffState.CLEARED
    if _empty(old):
        return DiffState.ADDED
    return DiffState.CHANGED


def marker_text(state: DiffState) -> str:
    """The marker shown in the table, e.g. "* changed" (translated)."""
    symbol, word = MARKERS[state]
    return f"{symbol} {_(word)}" if symbol else ""


@dataclass(frozen=True)
class DiffRow:
    """One field: label and display strings (already masked or formatted by the caller)."""

    label: str
    old: str
    new: str
    base: str | None = None

    def state(self, three_way: bool = False) -> DiffState:
        return diff_state(self.old, self.new, self.base, three_way=three_way)


class DiffGrid(DataTable):
    """The table part of a DiffTable; its component classes carry the state colours."""

    COMPONENT_CLASSES = DataTable.COMPONENT_CLASSES | {
        "diff-grid--changed", "diff-grid--added", "diff-grid--cleared", "diff-grid--conflict",
        "diff-grid--since", "diff-grid--empty",
    }
    DEFAULT_CSS = """
    DiffGrid { height: 1fr; scrollbar-size-vertical: 1; }
    DiffGrid > .diff-grid--changed { color: $state-warning; text-style: $state-warning-text-style; }
    DiffGrid > .diff-grid--added { color: $state-ok; text-style: bold; }
    DiffGrid > .diff-grid--cleared { color: $state-danger; text-style: $state-danger-text-style; }
    DiffGrid > .diff-grid--conflict { color: $state-danger; text-style: $state-danger-text-style; }
    DiffGrid > .diff-grid--since { color: $state-warning; text-style: italic; }
    DiffGrid > .diff-grid--empty { color: $state-muted; text-style: $state-muted-text-style; }
    """


class DiffTable(Vertical):
    """A DiffGrid with a line below it showing the highlighted field in full."""

    DEFAULT_CSS = """
    DiffTable { height: 1fr; }
    DiffTable > #diff-detail { height: auto; max-height: 4; padding: 0 1; background: $surface; }
    """

    def __init__(self, rows: list[DiffRow] | tuple[DiffRow, ...] = (), *, three_way: bool = False,
                 headers: tuple[str, ...] | None = None, show_unchanged: bool = True,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.rows: tuple[DiffRow, ...] = tuple(rows)
        self.three_way = three_way
        self.headers = headers
        self.show_unchanged = show_unchanged
        self._shown: list[DiffRow] = []

    def compose(self) -> ComposeResult:
        yield DiffGrid(cursor_type="row", zebra_stripes=False, id="diff-grid")
        yield Static(Content(""), id="diff-detail")

    def on_mount(self) -> None:
        self._rebuild()

    def on_resize(self) -> None:
        self._rebuild()

    def set_rows(self, rows: list[DiffRow] | tuple[DiffRow, ...], *, three_way: bool | None = None) -> None:
        self.rows = tuple(rows)
        if three_way is not None:
            self.three_way = three_way
        self._rebuild()

    def toggle_unchanged(self) -> bool:
        """Show or hide the rows that did not change; returns whether they are shown now."""
        self.show_unchanged = not self.show_unchanged
        self._rebuild()
        return self.show_unchanged

    def first_change(self) -> None:
        """Move the cursor to the first row that is not unchanged (so a change is on screen)."""
        for index, row in enumerate(self._shown):
            if row.state(self.three_way) is not DiffState.UNCHANGED:
                self.grid.move_cursor(row=index, scroll=True)
                return

    def states(self) -> list[DiffState]:
        """The state of each shown row (for callers and tests)."""
        return [row.state(self.three_way) for row in self._shown]

    @property
    def grid(self) -> DiffGrid:
        return self.query_one(DiffGrid)

    # --- drawing ---------------------------------------------------------------------------

    def _headers(self) -> tuple[str, ...]:
        if self.headers:
            return self.headers
        if self.three_way:
            return (N_("Field"), N_("Change"), N_("Base"), N_("Current"), N_("Proposed"))
        return (N_("Field"), N_("Change"), N_("Current"), N_("Proposed"))

    def _widths(self, total: int) -> list[int]:
        """Column widths that fill `total` cells (each column also takes 2 cells of padding)."""
        value_columns = 3 if self.three_way else 2
        label, marker = (12, 10) if self.three_way else (16, 10)
        room = max(total - 1 - 2 * (2 + value_columns) - label - marker, 6 * value_columns)
        each = room // value_columns
        return [label, marker] + [each] * value_columns

    def _style(self, state: DiffState):
        if state is DiffState.UNCHANGED:
            return None
        return self.grid.get_component_rich_style(f"diff-grid--{state.value}", partial=True)

    def _cell(self, value: str | None, width: int, style=None) -> Text:
        if _empty(value):
            return Text(_("(empty)"), style=self.grid.get_component_rich_style("diff-grid--empty", partial=True))
        return Text(safe_plain(value, max(width, 1)), style=style or "")

    def _rebuild(self) -> None:
        if not self.is_mounted:
            return
        grid = self.grid
        keep = grid.cursor_row
        grid.clear(columns=True)
        widths = self._widths(self.size.width or 80)
        for header, width in zip(self._headers(), widths):
            grid.add_column(Text(safe_plain(_(header), width)), width=width)
        self._shown = [r for r in self.rows if self.show_unchanged or r.state(self.three_way) is not DiffState.UNCHANGED]
        for row in self._shown:
            state = row.state(self.three_way)
            style = self._style(state)
            cells = [Text(safe_plain(row.label, widths[0])), Text(marker_text(state), style=style or "")]
            values = (row.base, row.old, row.new) if self.three_way else (row.old, row.new)
            for index, value in enumerate(values):
                is_last = index == len(values) - 1
                cells.append(self._cell(value, widths[2 + index], style if is_last else None))
            grid.add_row(*cells)
        if self._shown:
            grid.move_cursor(row=min(keep, len(self._shown) - 1))
        self._show_detail(grid.cursor_row)

    def _show_detail(self, index: int) -> None:
        detail = self.query_one("#diff-detail", Static)
        if not (0 <= index < len(self._shown)):
            detail.update(Content(""))
            return
        row = self._shown[index]
        state = row.state(self.three_way)

        def shown(value: str | None) -> str:
            return _("(empty)") if _empty(value) else safe_plain(value, 400)

        parts = [safe_plain(row.label, 40)]
        if state is not DiffState.UNCHANGED:
            parts[0] += f" [{marker_text(state)}]"
        if self.three_way:
            text = (f"{parts[0]}: {_('base')} {shown(row.base)} · {_('current')} {shown(row.old)} · "
                    f"{_('proposed')} {shown(row.new)}")
        elif state is DiffState.UNCHANGED:
            text = f"{parts[0]}: {shown(row.old)}"
        else:
            text = f"{parts[0]}: {shown(row.old)} → {shown(row.new)}"
        detail.update(Content(text))

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_detail(event.cursor_row)
