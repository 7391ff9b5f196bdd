"""The RecordKeeper application: login, home, idle lock, help, and the shared key grammar."""

from __future__ import annotations

import asyncio
import os
import signal
import termios
import threading
from collections.abc import Callable
from pathlib import Path

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.reactive import Reactive

from models import clock
from models.permissions import Actor
from models.settings import Settings
from themes import (DEFAULT_THEME, THEME_VARIABLE_DEFAULTS, ansi_color_for, no_color_requested, register_themes,
                    sixteen_colours, theme_for)
from tui.errors import SafeErrorsMixin, format_redacted_exception
from tui.i18n import _, detect_language, set_language
from tui.widgets.field_input import move_focus_now

IDLE_CHECK_SECONDS = 1.0
SESSION_CHECK_SECONDS = 10.0  # a disabled account's open sessions end within this (the rule: 30 s)
HANGUP_SIGNALS = (signal.SIGHUP, signal.SIGTERM)
# Textual repaints the whole screen several times while one screen replaces another (resume,
# removal, focus); holding output this long sends one frame instead of four over a slow link.
SCREEN_CHANGE_SETTLE_SECONDS = 0.08
OFFICE_OPEN_DELAY_SECONDS = 0.1


class RecordKeeperApp(SafeErrorsMixin, App[int]):
    """One staff member's session, from login to quit."""

    CSS_PATH = "app.tcss"
    TITLE = "RecordKeeper"
    ALLOW_SELECT = False  # Textual's copy writes OSC 52: customer data would leave unaudited
    ENABLE_COMMAND_PALETTE = False
    ESCAPE_TO_MINIMIZE = False
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", tooltip="Leave RecordKeeper", priority=True),
        # Priority, so that they also work on dialogs (a modal screen hides the app's other keys).
        Binding("f1", "help", "Help", id="app.help", tooltip="Show the keys of this screen", priority=True),
        Binding("f12", "lock", "Lock", id="app.lock", tooltip="Lock the screen now", show=False, priority=True),
    ]

    def __init__(self, settings: Settings, *, environ: dict[str, str] | None = None,
                 open_office: Callable[[], tuple[int, str] | None] | None = None):
        env = os.environ if environ is None else environ
        # NO_COLOR, or a 16-colour terminal with the default theme: the mono theme in ANSI colours.
        no_color = no_color_requested(env) or (settings.theme == DEFAULT_THEME and sixteen_colours(env))
        super().__init__(ansi_color=ansi_color_for(no_color))
        self.settings = settings
        self.error_log_path = Path(settings.log_path)
        self.actor: Actor | None = None
        self.locked = False
        self.hung_up = False
        # Opening the office (keys, database, schema check) waits until the login screen is
        # drawn; `open_office` returns None, or the exit code and message when it cannot open.
        self._open_office = open_office
        self.office_ready = threading.Event()
        if open_office is None:
            self.office_ready.set()
        self.last_input = self.session_started = clock.monotonic()
        self.animation_level = "none"
        register_themes(self)
        self.theme = theme_for(settings.theme, no_color)
        set_language(detect_language(settings.language or None))

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return {**super().get_theme_variable_defaults(), **THEME_VARIABLE_DEFAULTS}

    def on_mount(self) -> None:
        from screens.login import LoginScreen

        self.push_screen(LoginScreen())
        self.set_interval(IDLE_CHECK_SECONDS, self.check_idle_lock, name="idle-check")
        self.set_interval(SESSION_CHECK_SECONDS, self.check_session, name="session-check")
        if self._open_office is not None:
            # Once the login screen has reached the terminal: opening imports the database drivers,
            # which would otherwise hold the interpreter while the first frame is being written.
            self.set_timer(OFFICE_OPEN_DELAY_SECONDS, lambda: self.run_worker(
                self._open_office_now, thread=True, group="office", exit_on_error=False))
        if not self.is_headless:
            self._install_hangup_handlers()
            self.set_interval(IDLE_CHECK_SECONDS, self._check_terminal, name="terminal-check")

    def _open_office_now(self) -> None:
        failure = self._open_office()
        if failure is None:
            self.office_ready.set()
        else:
            return_code, message = failure
            self.call_from_thread(self.exit, None, return_code, message)

    def _settle_screen_change(self) -> None:
        # Not for the first screen (the login screen): there is nothing to mask, and it would wait.
        if not self.is_headless and self._running and len(self.screen_stack) > 1:
            self.delay_update(SCREEN_CHANGE_SETTLE_SECONDS)

    def push_screen(self, *args, **kwargs):
        self._settle_screen_change()
        return super().push_screen(*args, **kwargs)

    def switch_screen(self, screen):
        self._settle_screen_change()
        return super().switch_screen(screen)

    def pop_screen(self):
        self._settle_screen_change()
        return super().pop_screen()

    def _register_child(self, parent, child, before, after) -> None:
        # Every text cursor follows the `cursor_blink` setting (off by default: a blinking
        # cursor redraws twice a second, which a slow SSH link pays for).
        if isinstance(getattr(type(child), "cursor_blink", None), Reactive):  # Input, TextArea, …
            child.cursor_blink = self.settings.cursor_blink
        super()._register_child(parent, child, before, after)

    # --- losing the terminal --------------------------------------------------------------

    def _install_hangup_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in HANGUP_SIGNALS:
            try:
                loop.add_signal_handler(signum, self.hang_up, signum.name)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / not POSIX
                pass

    def hang_up(self, reason: str = "SIGHUP") -> None:
        """The terminal is gone (SSH dropped, SIGHUP) or we were told to stop (SIGTERM).

        Open screens save their drafts (`save_draft_now()`), the session ends in the audit log, and
        the app exits without writing to the dead terminal.
        """
        if self.hung_up:
            return
        self.hung_up = True
        self._silence_terminal()
        for screen in reversed(self.screen_stack):
            save_draft_now = getattr(screen, "save_draft_now", None)
            if callable(save_draft_now):
                try:
                    save_draft_now()
                except Exception as error:  # noqa: BLE001 - one failing draft must not stop the others
                    self._write_error_log("hangup", lambda error=error: format_redacted_exception(error))
        actor, self.actor = self.actor, None
        if actor is not None:
            try:
                from models import staff

                staff.logout(actor)
            except Exception:  # noqa: BLE001 - leaving must never fail
                pass
        self.exit(0)

    def _check_terminal(self) -> None:
        """Hang up if the terminal has gone without a SIGHUP reaching us (e.g. a parent ignored it).

        A hung-up terminal answers every ioctl with EIO, and its reads return at once, which
        would leave Textual's input thread spinning.
        """
        driver = self._driver
        fileno = getattr(driver, "fileno", None)
        if self.hung_up or not isinstance(fileno, int):
            return
        try:
            termios.tcgetattr(fileno)
        except termios.error:
            self.hang_up("terminal-lost")

    def _silence_terminal(self) -> None:
        """Drop all further output: writes to a hung-up terminal fail, and a full output queue would block."""
        driver = self._driver
        if driver is None or self.is_headless:
            return
        driver.write = lambda data: None
        driver.flush = lambda: None
        if getattr(driver, "_writer_thread", None) is not None:
            driver._writer_thread = None

    def panic(self, *renderables) -> None:
        if self.hung_up or _terminal_read_failed(renderables):
            # The input thread could not read the terminal: the link is gone, not a bug.
            self.hang_up("terminal-lost")
            return
        super().panic(*renderables)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown)):
            self.last_input = clock.monotonic()
            if isinstance(event, events.Key) and not event.is_forwarded and move_focus_now(self.screen, event):
                return
        await super().on_event(event)

    def copy_to_clipboard(self, text: str) -> None:
        """Copying is refused: personal data must not leave the app unaudited."""
        self.notify(_("Copying is not allowed."), severity="warning")

    # --- session -----------------------------------------------------------------------

    def logged_in(self, actor: Actor) -> None:
        """Called by the login screen: open the person's home screen (after a forced password change)."""
        from screens.change_password import ChangePasswordScreen
        from screens.home import HomeScreen

        self.actor = actor
        self.last_input = self.session_started = clock.monotonic()
        set_language(detect_language(actor.language or self.settings.language or None))
        from screens.training import tell_training_status

        tell_training_status(self, actor)  # lapsed training is said at login
        if actor.must_change_password:
            self.switch_screen(ChangePasswordScreen(actor, forced=True))
        else:
            self.switch_screen(HomeScreen(actor))
            self._offer_unfinished_work(actor)

    def password_changed(self, actor: Actor) -> None:
        from screens.home import HomeScreen

        self.actor = actor
        self.switch_screen(HomeScreen(actor))
        self._offer_unfinished_work(actor)

    def _offer_unfinished_work(self, actor: Actor) -> None:
        """At login, offer the clerk's unfinished intake forms (drafts to resume or discard, returned ones)."""
        from screens.drafts import offer_unfinished

        offer_unfinished(self, actor)

    def check_session(self) -> None:
        """End this session soon after an admin disables the account or resets its password."""
        from screens.staff_admin import poll_session

        poll_session(self)

    def check_idle_lock(self) -> None:
        if self.actor is None:
            return
        if clock.monotonic() - self.session_started >= self.settings.session_hours * 3600:
            self.end_session(_("Your session has ended; please log in again."))
            return
        if self.locked:
            return
        idle_seconds = clock.monotonic() - self.last_input
        if idle_seconds >= self.settings.idle_lock_minutes * 60:
            self.lock_screen("idle")

    def action_lock(self) -> None:
        if self.actor is not None and not self.locked:
            self.lock_screen("manual")

    def lock_screen(self, reason: str) -> None:
        from models import staff
        from screens.lock import LockScreen

        self.locked = True
        self.run_worker(lambda: staff.record_screen_lock(self.actor, reason), thread=True,
                        group="audit", exit_on_error=False)
        self.push_screen(LockScreen(self.actor), callback=self._unlocked)

    def _unlocked(self, _result: object) -> None:
        self.locked = False
        self.last_input = clock.monotonic()

    def end_session(self, message: str) -> None:
        """Log out and return to the login screen, dropping every screen of the session."""
        from models import staff
        from screens.login import LoginScreen

        actor, self.actor, self.locked = self.actor, None, False
        if actor is not None:
            self.run_worker(lambda: staff.logout(actor), thread=True, group="audit", exit_on_error=False)
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.switch_screen(LoginScreen())
        self.notify(message, severity="warning", timeout=30)

    def action_help(self) -> None:
        from screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)  # F1 again closes the help
        else:
            self.push_screen(HelpScreen(self.screen))

    async def action_quit(self) -> None:
        if self.actor is not None:
            actor = self.actor
            self.actor = None
            try:
                from models import staff

                staff.logout(actor)
            except Exception:  # leaving must never fail; the session ends either way
                pass
        self.exit(0)

    def run(self, *args, **kwargs):
        kwargs.setdefault("mouse", False)
        return super().run(*args, **kwargs)


def _terminal_read_failed(renderables) -> bool:
    """Whether Textual's input thread died with an OSError (EIO once the terminal has hung up)."""
    from rich.traceback import Traceback

    for renderable in renderables:
        if isinstance(renderable, Traceback) and renderable.trace.stacks:
            if renderable.trace.stacks[-1].exc_type in ("OSError", "EOFError"):
                return True
    return False
