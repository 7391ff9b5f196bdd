"""`/` search: customer number (exact or prefix), ID number, mobile or full name, found exactly.

The dialog runs the search itself so that a refused term keeps what was typed and says why
beside the field. The term never leaves the dialog: the browser gets the masked results only.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from models import browse
from models.browse import BrowsePage
from models.errors import PermissionDenied, RecordKeeperError, ValidationError
from models.permissions import Actor
from tui.i18n import N_, _
from tui.widgets.field_input import FieldInput

KINDS = (("auto", N_("Any")), ("customer_no", N_("Number")), ("id_number", N_("ID")), ("mobile", N_("Mobile")),
         ("full_name", N_("Name")))


@dataclass(frozen=True)
class SearchResult:
    kind: str  # what was searched (never the term)
    page: BrowsePage


class KindPicker(Static, can_focus=True):
    """What the term is: one choice of KINDS, moved with ←/→; the chosen one is written (•), not only coloured."""

    BINDINGS = [
        Binding("left", "move(-1)", "Previous", id="search.kind.left", tooltip="Previous kind", show=False),
        Binding("right", "move(1)", "Next", id="search.kind.right", tooltip="Next kind", show=False),
        Binding("enter", "screen.search", "Search", id="search.kind.enter", tooltip="Search now", show=False),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.index = 0

    def on_mount(self) -> None:
        self._draw()

    def _draw(self) -> None:
        parts = []
        for number, (_kind, label) in enumerate(KINDS):
            mark = "(•)" if number == self.index else "( )"
            parts.append((f"{mark} {_(label)}", "bold reverse" if number == self.index and self.has_focus
                          else ("bold" if number == self.index else "")))
            parts.append("  ")
        self.update(Content.assemble(*parts))

    def action_move(self, step: int) -> None:
        self.index = (self.index + step) % len(KINDS)
        self._draw()

    def on_focus(self) -> None:
        self._draw()

    def on_blur(self) -> None:
        self._draw()

    @property
    def kind(self) -> str:
        return KINDS[self.index][0]


class SearchDialog(ModalScreen[SearchResult | None]):
    """Type a term, pick what it is (or let the app guess), Enter searches; Esc cancels."""

    CSS_PATH = "search.tcss"
    AUTO_FOCUS = "#search-term"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="search.cancel", tooltip="Close without searching"),
        Binding("f2", "search", "Search", id="search.run", tooltip="Search now"),
    ]

    @dataclass
    class Found(Message):
        result: SearchResult

    @dataclass
    class Refused(Message):
        message: str

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="search-box"):
            yield Static(Content(_("Find a customer")), classes="title")
            with Horizontal(classes="search-row"):
                yield Static(Content(_("Search for")), classes="search-label")
                yield FieldInput(id="search-term", max_length=120, enter_moves_on=False,
                                 placeholder=_("number, ID, mobile or full name"))
            yield Static("", id="search-error")
            yield KindPicker(id="search-kind")
            yield Static(Content(_("Exact match after tidying spaces, width and case; a number may be a prefix.")),
                         classes="muted", id="search-hint")
            yield Static(Content(_("Enter: search   Tab, then ←/→: what it is   Esc: cancel")), classes="muted")

    def on_key(self, event) -> None:
        """Keys typed before the field has focus (right after `/`) go into it, not nowhere."""
        field = self.query_one("#search-term", Input)
        if field.has_focus or isinstance(self.focused, KindPicker):
            return
        if event.key == "enter":
            event.stop()
            self.action_search()
        elif event.key == "backspace":
            event.stop()
            field.value = field.value[:-1]
        elif event.is_printable and event.character:
            event.stop()
            field.value += event.character
            field.cursor_position = len(field.value)

    def _kind(self) -> str:
        return self.query_one("#search-kind", KindPicker).kind

    @on(Input.Submitted, "#search-term")
    def _submitted(self) -> None:
        self.action_search()

    def action_search(self) -> None:
        if self.busy:
            return
        term = self.query_one("#search-term", Input).value
        if not term.strip():
            self._refused(self.Refused(_("Type what to search for.")))
            return
        self.busy = True
        self.query_one("#search-error", Static).update(Content(_("Searching…")))
        self.run_search(self._kind(), term)

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def run_search(self, kind: str, term: str) -> None:
        try:
            resolved = browse.guess_search_kind(term) if kind == "auto" else kind
            page = browse.search(self.actor, resolved, term)
        except ValidationError as exc:
            codes = {e.code for e in exc.errors}
            message = _("Type at most 120 visible characters.") if codes & {"bad_format", "too_long"} \
                else _("This search is not possible.")
            self.post_message(self.Refused(message))
            return
        except PermissionDenied:
            self.post_message(self.Refused(_("You may not search customers.")))
            return
        except RecordKeeperError:
            self.post_message(self.Refused(_("The search failed. Try again.")))
            return
        self.post_message(self.Found(SearchResult(resolved, page)))

    @on(Found)
    def _found(self, message: Found) -> None:
        self.busy = False
        self.query_one("#search-term", Input).value = ""  # the term is personal data: do not keep it
        self.dismiss(message.result)

    @on(Refused)
    def _refused(self, message: Refused) -> None:
        self.busy = False
        self.query_one("#search-error", Static).update(Content(message.message))

    def action_cancel(self) -> None:
        self.query_one("#search-term", Input).value = ""
        self.dismiss(None)
