"""Suggestions for improving the process: everyone writes them and sees the answers to their own;
supervisors see all of them, answer, mark them adopted or declined, and list a period's for the
review meeting (the periodic report carries the same list)."""

from __future__ import annotations

import datetime as dt

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from models import clock, suggestions
from models.permissions import Actor, Perm
from models.suggestions import SuggestionView
from screens.queue import QueueScreen
from screens.staff_admin import FormDialog, FormField
from tui.i18n import N_, _
from tui.safe_text import safe_plain, safe_text
from tui.widgets.footer import Footer

STATUS_WORDS = {"open": N_("open"), "under_review": N_("under review"), "adopted": N_("adopted"),
                "declined": N_("declined")}
VIEWS = ("", "open", "under_review", "adopted", "declined", "meeting")
MEETING_DAYS = 30


def _local(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    return moment.replace(tzinfo=dt.timezone.utc).astimezone().strftime("%Y-%m-%d")


class SuggestionsScreen(QueueScreen[None]):
    """Suggestions, newest first: one's own, or (supervisors) everyone's by status or for the meeting."""

    CSS_PATH = "suggestions.tcss"
    AUTO_FOCUS = "#suggestion-table"
    LOAD_GROUP = "suggestions"
    MESSAGE_ID = "#suggestion-status"
    TABLE_ID = "#suggestion-table"
    COLUMNS = ((N_("No."), 4), (N_("Date"), 10), (N_("Author"), 10), (N_("Status"), 12), (N_("Title"), 30))
    BINDINGS = [
        Binding("n", "new", "New", id="suggestions.new", tooltip="Write a suggestion"),
        Binding("enter", "open", "Read", id="suggestions.open", tooltip="Read the suggestion and its answer",
                show=False),
        Binding("r", "respond", "Respond", id="suggestions.respond",
                tooltip="Answer, and mark it under review, adopted or declined (supervisors)"),
        Binding("f6", "view", "Show", id="suggestions.view",
                tooltip="All, by status, or the list for the review meeting (supervisors)"),
        Binding("f5", "refresh", "Refresh", id="suggestions.refresh", tooltip="Load the list again"),
        Binding("escape", "back", "Back", id="suggestions.back", tooltip="Back to the home screen"),
    ]

    def __init__(self, actor: Actor) -> None:
        super().__init__(actor)
        self.reviewer = actor.has(Perm.SUGGESTION_REVIEW)
        self.view = ""
        self.items: list[SuggestionView] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="suggestion-box"):
            yield Static(Content(self._title()), id="suggestion-title", classes="title")
            yield DataTable(id="suggestion-table", cursor_type="row", zebra_stripes=True)
            yield Static(Content(_("Loading…")), id="suggestion-status", classes="muted")
        yield Footer()

    def _title(self) -> str:
        if not self.reviewer:
            return _("My suggestions")
        if self.view == "meeting":
            end = clock.today()
            return _("For the review meeting: {start} – {end}").format(
                start=end - dt.timedelta(days=MEETING_DAYS - 1), end=end)
        if self.view:
            return _("Suggestions · {status}").format(status=_(STATUS_WORDS[self.view]))
        return _("Suggestions · all")

    def fetch(self) -> list[SuggestionView]:
        if not self.reviewer:
            return suggestions.my_suggestions(self.actor)
        if self.view == "meeting":
            end = clock.today()
            return suggestions.meeting_list(self.actor, end - dt.timedelta(days=MEETING_DAYS - 1), end)
        return suggestions.list_suggestions(self.actor, self.view)

    def show(self, items: list[SuggestionView]) -> None:
        from screens.audit_log import state_style

        self.items = items
        adopted = state_style(self.app, "ok")
        self.refill(([Text(str(item.suggestion_id)), Text(_local(item.created_at)), Text(safe_plain(item.author, 10)),
                      Text(_(STATUS_WORDS[item.status]), style=adopted if item.status == "adopted" else ""),
                      Text(safe_plain(item.title, 30))], str(item.suggestion_id)) for item in items)
        self.query_one("#suggestion-title", Static).update(Content(self._title()))
        keys = _("n new · Enter read · r respond · F6 show") if self.reviewer else _("n new · Enter read")
        text = (_("{n} suggestions").format(n=len(self.items)) if self.items
                else _("No suggestions yet."))
        self.query_one("#suggestion-status", Static).update(Content(f"{text} · {keys}"))

    def _reload_after(self, message: str):
        def done(result: object) -> None:
            if result is not None:
                self.notify(message)
                self.load()
        return done

    def action_new(self) -> None:
        fields = [FormField("title", N_("Title"), max_length=suggestions.TITLE_MAX),
                  FormField("body", N_("Suggestion"), kind="multiline")]
        self.app.push_screen(
            FormDialog(Content(_("Suggest an improvement to the process")), fields,
                       lambda values: suggestions.submit_suggestion(self.actor, values["title"], values["body"]),
                       note=N_("About the process only: please write no customer details here.")),
            callback=self._reload_after(_("Thank you: your suggestion was recorded.")))

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        item = self.cursor_item(self.items)
        if item:
            self.app.push_screen(SuggestionScreen(item))

    def action_respond(self) -> None:
        if not self.reviewer:
            self.notify(_("Supervisors answer suggestions."), severity="warning")
            return
        item = self.cursor_item(self.items)
        if item is None:
            return
        fields = [FormField("status", N_("Decision"), item.status if item.status != "open" else "under_review",
                            kind="choice", choices=tuple((s, STATUS_WORDS[s]) for s in suggestions.DECISIONS)),
                  FormField("response", N_("Response"), item.response, kind="multiline")]
        self.app.push_screen(
            FormDialog(Content(_("Answer suggestion {n}: {title}").format(
                n=item.suggestion_id, title=safe_plain(item.title, 40))), fields,
                lambda values: suggestions.respond(self.actor, item.suggestion_id, values["status"],
                                                   values["response"])),
            callback=self._reload_after(_("Answer saved.")))

    def action_view(self) -> None:
        if not self.reviewer:
            return
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        self.load()


class SuggestionScreen(ModalScreen[None]):
    """One suggestion in full, with its answer."""

    CSS_PATH = "suggestions.tcss"
    BINDINGS = [Binding("escape,enter", "close", "Back", id="suggestion.back", tooltip="Back to the list")]

    def __init__(self, item: SuggestionView) -> None:
        super().__init__()
        self.item = item

    def compose(self) -> ComposeResult:
        item = self.item
        with Vertical(id="one-box"):
            yield Static(Content.assemble((f"{item.suggestion_id} · ", "bold"), safe_text(item.title, 70)),
                         classes="title")
            yield Static(Content(_("From {author} on {date} · {status}").format(
                author=safe_plain(item.author, 32), date=_local(item.created_at), status=_(STATUS_WORDS[item.status]))),
                classes="muted")
            with VerticalScroll(id="one-scroll"):
                yield Static(safe_text(item.body, 2000, multiline=True), id="one-body")
                if item.response:
                    yield Static(Content(_("Answer from {who} on {date}:").format(
                        who=safe_plain(item.responded_by, 32), date=_local(item.responded_at))), classes="title")
                    yield Static(safe_text(item.response, 1000, multiline=True), id="one-response")
            yield Static(Content(_("Esc: back")), classes="muted")

    def action_close(self) -> None:
        self.dismiss(None)
