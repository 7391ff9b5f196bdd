"""Each person's home screen: what their roles let them do, with queue counts."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from models import home, staff
from models.permissions import Actor
from tui.widgets.footer import Footer
from tui.i18n import _, current_language, set_language
from tui.safe_text import safe_plain, safe_text

ROLE_LABELS = {"clerk": "clerk", "reviewer": "reviewer", "supervisor": "supervisor",
               "records_officer": "records officer", "auditor": "auditor", "admin": "admin"}


class HomeScreen(Screen[None]):
    """The menu of work for the logged-in person."""

    CSS_PATH = "home.tcss"
    AUTO_FOCUS = "#menu"
    BINDINGS = [
        Binding("enter", "open", "Open", id="home.open", tooltip="Open the selected work", show=False),
        Binding("f8", "language", "Language", id="home.language", tooltip="Switch between 中文 and English"),
        Binding("f12", "app.lock", "Lock", id="home.lock", tooltip="Lock the screen now"),
        Binding("f5", "refresh", "Refresh", id="home.refresh", tooltip="Recount the queues"),
        Binding("question_mark", "app.help", "Help", id="home.help", tooltip="Show the keys", show=False),
    ]

    @dataclass
    class MenuLoaded(Message):
        entries: list[home.MenuEntry]
        notices: tuple = ()

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        self.entries: list[home.MenuEntry] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="home"):
            yield Static(self._heading(), id="home-heading", classes="title")
            with Horizontal(id="home-body"):
                yield OptionList(id="menu")
                yield Static("", id="home-side", classes="muted")
        yield Footer()

    def _heading(self) -> Content:
        roles = ", ".join(_(ROLE_LABELS[r]) for r in sorted(self.actor.roles) if r in ROLE_LABELS)
        who = safe_plain(self.actor.display_name, 30)
        return Content(f"RecordKeeper · {_('Logged in as {name}').format(name=who)} · {roles}")

    def on_mount(self) -> None:
        self.load_menu()

    def action_refresh(self) -> None:
        self.load_menu()

    @work(thread=True, exclusive=True, group="home-menu", exit_on_error=False)
    def load_menu(self) -> None:
        self.post_message(self.MenuLoaded(home.home_menu(self.actor), tuple(home.home_notices(self.actor))))

    @on(MenuLoaded)
    def _show_menu(self, message: MenuLoaded) -> None:
        self.entries = message.entries
        menu = self.query_one("#menu", OptionList)
        highlighted = menu.highlighted
        menu.clear_options()
        for number, entry in enumerate(self.entries, start=1):
            count = "" if entry.count is None else f"  ({entry.count})"
            soon = "" if entry.screen else f"  · {_('Coming soon')}"
            menu.add_option(Option(Content(f"{number:>2}  {_(entry.label)}{count}{soon}"), id=entry.entry_id))
        if self.entries:
            menu.highlighted = highlighted if highlighted is not None and highlighted < len(self.entries) else 0
        notices = [safe_plain(_(n.msgid).format(**n.params), 40) for n in message.notices]
        self.query_one("#home-side", Static).update(Content("\n".join([*notices, *([""] if notices else []),
                                                                    _("Press F1 for help")])))

    def on_key(self, event) -> None:
        if event.character and event.character.isdigit() and event.character != "0":
            index = int(event.character) - 1
            if index < len(self.entries):
                self.query_one("#menu", OptionList).highlighted = index
                self.action_open()
                event.stop()

    @on(OptionList.OptionSelected, "#menu")
    def _selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        menu = self.query_one("#menu", OptionList)
        if menu.highlighted is None or not self.entries:
            return
        entry = self.entries[menu.highlighted]
        if not entry.screen:
            self.notify(_("Coming soon"), title=_(entry.label))
            return
        module_name, _sep, class_name = entry.screen.partition(":")
        screen_class = getattr(importlib.import_module(module_name), class_name)
        self.app.push_screen(screen_class(self.actor), callback=lambda _result: self.load_menu())

    def action_language(self) -> None:
        language = "en" if current_language() == "zh" else "zh"
        set_language(language)
        self.run_worker(lambda: staff.set_language(self.actor, language), thread=True, group="prefs",
                        exit_on_error=False)
        self.app.switch_screen(HomeScreen(self.actor))
