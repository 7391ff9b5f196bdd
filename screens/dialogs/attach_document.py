"""Pick a file from the scanner inbox and say what kind of document it is."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from models import documents
from models.errors import RecordKeeperError
from models.permissions import Actor
from tui.i18n import _
from tui.safe_text import safe_plain


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    return f"{size / 1024:.0f} KB" if size < 1024 * 1024 else f"{size / 1048576:.1f} MB"


class AttachDocumentDialog(ModalScreen[tuple[str, str] | None]):
    """Two lists: the inbox's files, then the document type; the result is (file name, type) or None."""

    DEFAULT_CSS = """
    AttachDocumentDialog { align: center middle; }
    AttachDocumentDialog > Vertical { width: 76; height: auto; max-height: 22; border: heavy $primary;
                                      background: $panel; padding: 0 1; }
    AttachDocumentDialog #inbox-files { height: auto; max-height: 10; border: round $primary; }
    AttachDocumentDialog #doc-types { height: auto; border: round $primary; }
    AttachDocumentDialog #attach-problem { height: auto; color: $state-danger; text-style: bold; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="attach.cancel", tooltip="Attach nothing"),
        Binding("f5", "refresh", "Refresh", id="attach.refresh", tooltip="Look in the inbox again"),
    ]

    @dataclass
    class InboxListed(Message):
        files: list[documents.InboxFile]

    @dataclass
    class InboxFailed(Message):
        message: str

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        self.files: dict[str, documents.InboxFile] = {}
        self.chosen: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(_("Attach a document from the scanner inbox"), classes="title")
            yield Static(_("1. The file (only PDF, JPEG, PNG or TIFF; Enter picks it)"), classes="muted")
            yield OptionList(id="inbox-files")
            yield Static("", id="attach-problem")
            yield Static(_("2. What it is (Enter attaches)"), classes="muted")
            yield OptionList(*[Option(Content(f"{n}  {_(documents.DOC_TYPE_LABELS[t])}"), id=t)
                               for n, t in enumerate(documents.DOC_TYPES, start=1)], id="doc-types")

    def on_mount(self) -> None:
        self.query_one("#inbox-files", OptionList).focus()
        self.list_inbox()

    def action_refresh(self) -> None:
        self.list_inbox()

    @work(thread=True, exclusive=True, group="inbox", exit_on_error=False)
    def list_inbox(self) -> None:
        try:
            self.post_message(self.InboxListed(documents.list_inbox(self.actor)))
        except RecordKeeperError as error:
            self.post_message(self.InboxFailed(str(error)))

    @on(InboxFailed)
    def _failed(self, message: InboxFailed) -> None:
        self.query_one("#attach-problem", Static).update(Content(_(message.message)))

    @on(InboxListed)
    def _listed(self, message: InboxListed) -> None:
        from screens.intake import pad

        files = self.query_one("#inbox-files", OptionList)
        files.clear_options()
        self.files = {}
        for index, found in enumerate(message.files):
            option_id = f"file-{index}"
            self.files[option_id] = found
            name = safe_plain(found.name, 30)
            detail = _(found.problem) if found.problem else f"{found.content_type.split('/')[-1].upper():<5}" \
                f"{size_text(found.size):>9}"
            files.add_option(Option(Content(f"{pad(name, 31)}{safe_plain(detail, 37)}"), id=option_id,
                                    disabled=bool(found.problem)))
        if not message.files:
            files.add_option(Option(Content(_("The scanner inbox is empty.")), id="empty", disabled=True))
            self.query_one("#attach-problem", Static).update(Content(""))
        usable = [i for i, found in enumerate(message.files) if not found.problem]
        if usable:
            files.highlighted = usable[0]

    @on(OptionList.OptionSelected, "#inbox-files")
    def _file_picked(self, event: OptionList.OptionSelected) -> None:
        found = self.files.get(event.option.id or "")
        if found is None:
            return
        self.chosen = found.name
        self.query_one("#attach-problem", Static).update(Content(_("File: ") + safe_plain(found.name, 60)))
        self.query_one("#doc-types", OptionList).focus()

    @on(OptionList.OptionSelected, "#doc-types")
    def _type_picked(self, event: OptionList.OptionSelected) -> None:
        if self.chosen is None:
            self.query_one("#inbox-files", OptionList).focus()
            return
        self.dismiss((self.chosen, event.option.id or "other"))

    def on_key(self, event) -> None:
        if self.focused is self.query_one("#doc-types", OptionList) and event.character in ("1", "2", "3", "4"):
            self.query_one("#doc-types", OptionList).highlighted = int(event.character) - 1
            event.stop()

    def action_cancel(self) -> None:
        self.dismiss(None)
