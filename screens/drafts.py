"""At login: the clerk's unfinished forms (drafts and returned ones), to resume or discard."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from models import intake
from models.errors import RecordKeeperError
from models.permissions import Actor, Perm
from screens.dialogs.confirm import ConfirmDialog
from tui.i18n import _
from tui.safe_text import safe_plain


def offer_unfinished(app: App, actor: Actor) -> None:
    """Look for the actor's unfinished forms in a worker and, if there are any, offer them."""
    if not actor.has(Perm.INTAKE):
        return

    def look() -> None:
        try:
            items = intake.list_unfinished(actor)
        except RecordKeeperError:
            return
        if items:
            app.call_from_thread(offer, items)

    def offer(items: list[intake.SubmissionSummary]) -> None:
        from screens.home import HomeScreen

        if isinstance(app.screen, HomeScreen):  # the clerk has not already gone on to other work
            app.push_screen(UnfinishedFormsDialog(actor, items))

    app.run_worker(look, thread=True, group="unfinished-forms", exit_on_error=False)


def _recount(app: App) -> None:
    """Refresh the home screen's counts after a form offered at login is closed."""
    for screen in app.screen_stack:
        load_menu = getattr(screen, "load_menu", None)
        if callable(load_menu):
            load_menu()


def describe(item: intake.SubmissionSummary) -> str:
    from screens.intake import local_time, pad, waited

    if item.status == "returned":
        state, when = _("RETURNED"), _("returned {ago} ago").format(ago=waited(item.updated_at))
    else:
        state, when = _("DRAFT"), _("saved {time}").format(time=local_time(item.updated_at))
    name = pad(safe_plain(item.masked_name or _("(no name yet)"), 16), 18)
    return f"{pad(state, 10)}{item.ref:<12}{name}{when}"


class UnfinishedFormsDialog(ModalScreen[None]):
    """Enter resumes the highlighted form, D discards a draft (after asking), Esc leaves them for later."""

    DEFAULT_CSS = """
    UnfinishedFormsDialog { align: center middle; }
    UnfinishedFormsDialog > Vertical { width: 72; height: auto; max-height: 20; border: heavy $primary;
                                       background: $panel; padding: 0 1; }
    UnfinishedFormsDialog #unfinished { height: auto; max-height: 12; border: round $primary; }
    """
    BINDINGS = [
        Binding("escape", "later", "Later", id="unfinished.later", tooltip="Keep them for later"),
        Binding("delete,d", "discard", "Discard", id="unfinished.discard",
                tooltip="Throw away the highlighted draft (asks first)"),
    ]

    @dataclass
    class Discarded(Message):
        submission_id: str

    @dataclass
    class DiscardFailed(Message):
        message: str

    def __init__(self, actor: Actor, items: list[intake.SubmissionSummary]) -> None:
        super().__init__()
        self.actor = actor
        self.items = {item.submission_id: item for item in items}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(_("You have unfinished customer forms"), classes="title")
            yield OptionList(*[Option(Content(describe(i)), id=i.submission_id) for i in self.items.values()],
                             id="unfinished")
            yield Static(_("Enter: resume · D: discard a draft · Esc: later"), classes="muted")

    def on_mount(self) -> None:
        self.query_one("#unfinished", OptionList).focus()

    def action_later(self) -> None:
        self.dismiss(None)

    @on(OptionList.OptionSelected, "#unfinished")
    def _resume(self, event: OptionList.OptionSelected) -> None:
        from screens.intake import IntakeFormScreen

        app = self.app
        self.dismiss(None)
        app.push_screen(IntakeFormScreen(self.actor, event.option.id), callback=lambda _result: _recount(app))

    def action_discard(self) -> None:
        menu = self.query_one("#unfinished", OptionList)
        if menu.highlighted is None:
            return
        item = self.items.get(menu.get_option_at_index(menu.highlighted).id or "")
        if item is None:
            return
        if item.status != "draft":
            self.notify(_("A returned form cannot be discarded; resume it and correct it."), severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.discard(item.submission_id)

        self.app.push_screen(ConfirmDialog(Content(
            _("Discard draft {ref}? What was typed and its documents are destroyed.").format(ref=item.ref))),
            callback=answered)

    @work(thread=True, exclusive=True, group="unfinished-discard", exit_on_error=False)
    def discard(self, submission_id: str) -> None:
        try:
            intake.discard_draft(self.actor, submission_id)
        except RecordKeeperError as error:
            self.post_message(self.DiscardFailed(str(error)))
            return
        self.post_message(self.Discarded(submission_id))

    @on(DiscardFailed)
    def _discard_failed(self, message: DiscardFailed) -> None:
        self.notify(_(message.message), severity="error")

    @on(Discarded)
    def _discarded(self, message: Discarded) -> None:
        ref = self.items.pop(message.submission_id).ref
        self.notify(_("Draft {ref} discarded.").format(ref=ref))
        if not self.items:
            self.dismiss(None)
            return
        menu = self.query_one("#unfinished", OptionList)
        menu.clear_options()
        menu.add_options([Option(Content(describe(i)), id=i.submission_id) for i in self.items.values()])
        menu.highlighted = 0
