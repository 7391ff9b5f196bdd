"""The shape the queue screens share: a service call in a thread worker, its result or refusal
posted back, refresh and back keys, an optional table whose cursor survives a reload, and the
note asked before a decision.

Textual calls `on_mount` of every class in the chain, the subclass's first, so a subclass's
`on_mount` only adds what it needs; this one adds the table's columns and starts the load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Iterable, Sequence, TypeVar

from rich.text import Text
from textual import on
from textual.message import Message
from textual.screen import Screen, ScreenResultType
from textual.widgets import DataTable, Static

from models.errors import RecordKeeperError
from models.permissions import Actor
from screens.dialogs.note import NoteDialog
from tui.i18n import _
from tui.safe_text import safe_text

Item = TypeVar("Item")


class QueueScreen(Screen[ScreenResultType]):
    """A screen showing what `fetch` returns; F5 loads it again, Esc goes back."""

    LOAD_GROUP: ClassVar[str]
    """The worker group of the load (a new load cancels the one still running)."""
    MESSAGE_ID: ClassVar[str]
    """The Static that says "Loading…" and shows a refusal."""
    TABLE_ID: ClassVar[str] = ""
    COLUMNS: ClassVar[tuple[tuple[str, int], ...]] = ()
    """The table's headers (marked with N_) and widths, added on mount."""

    @dataclass
    class Loaded(Message):
        result: object

    @dataclass
    class Failed(Message):
        message: str

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        self.busy = False

    def on_mount(self) -> None:
        if self.COLUMNS:
            table = self.query_one(self.TABLE_ID, DataTable)
            for header, width in self.COLUMNS:
                table.add_column(Text(_(header)), width=width)
        self.load()

    def fetch(self) -> object:
        """Call the service; runs in a thread worker, so it must not touch widgets."""
        raise NotImplementedError

    def show(self, result: object) -> None:
        """Draw what `fetch` returned."""
        raise NotImplementedError

    def show_failure(self, message: str) -> None:
        """Show a service's refusal (an English message, translated here)."""
        self.query_one(self.MESSAGE_ID, Static).update(safe_text(_(message), 200))

    def load(self) -> None:
        self.run_worker(self._fetch_and_post, thread=True, exclusive=True, group=self.LOAD_GROUP,
                        exit_on_error=False)

    def _fetch_and_post(self) -> None:
        try:
            self.post_message(self.Loaded(self.fetch()))
        except RecordKeeperError as exc:
            self.post_message(self.Failed(str(exc)))

    @on(Loaded)
    def _queue_loaded(self, message: Loaded) -> None:
        self.show(message.result)

    @on(Failed)
    def _queue_failed(self, message: Failed) -> None:
        self.show_failure(message.message)

    def refill(self, rows: Iterable[tuple[Sequence[Text], str | None]]) -> None:
        """Replace the table's rows (cells, key), keeping the cursor on the same line where it still exists."""
        table = self.query_one(self.TABLE_ID, DataTable)
        keep = table.cursor_row
        table.clear()
        for cells, key in rows:
            table.add_row(*cells, key=key)
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))

    def cursor_item(self, items: Sequence[Item]) -> Item | None:
        """The item on the table's cursor line, or None when the list is empty."""
        row = self.query_one(self.TABLE_ID, DataTable).cursor_row
        return items[row] if items and row < len(items) else None

    def ask_note(self, question: str, decide: Callable[[str], object], *, required: bool, placeholder: str = "",
                 value: str = "") -> None:
        """Ask for the decision's note; with one, mark the screen busy and call `decide` with it."""

        def with_note(note: str | None) -> None:
            if note is None:
                return
            self.busy = True
            self.refresh_bindings()
            decide(note)

        self.app.push_screen(NoteDialog(question, required=required, placeholder=placeholder, value=value),
                             with_note)

    def action_refresh(self) -> None:
        self.load()

    def action_back(self) -> None:
        self.dismiss(None)
