"""The last-resort handler: an unexpected exception is logged without data and the app exits with a short message.

Textual's default prints a Rich traceback with local variables (customer data) to the terminal;
this replaces the private hooks it uses, checked against Textual 8.2.8 (tests/pilot/test_errors.py).
"""

from __future__ import annotations

import os
import secrets
import sys
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import RenderableType
from rich.text import Text
from textual.worker import WorkerFailed

from tui.i18n import _

if TYPE_CHECKING:
    from rich.traceback import Trace
    from textual.app import App

    _AppBase = App[Any]
else:
    _AppBase = object

__all__ = ["SafeErrorsMixin", "default_error_log_path", "format_redacted_exception"]

_WITHHELD = "(message withheld: it may contain personal data)"
_MAX_CHAINED = 10


def default_error_log_path() -> Path:
    """Return the per-user error log used when the app sets no `error_log_path`."""
    from platformdirs import user_log_path

    return user_log_path("recordkeeper", appauthor=False) / "errors.log"


def _type_name(exception_type: type[BaseException]) -> str:
    module = exception_type.__module__
    name = exception_type.__qualname__
    return name if module == "builtins" else f"{module}.{name}"


def _format_frames(error: BaseException, indent: str) -> list[str]:
    return [
        f'{indent}  File "{frame.filename}", line {frame.lineno}, in {frame.name}'
        for frame in traceback.extract_tb(error.__traceback__)
    ]


def _causes(error: BaseException) -> list[BaseException]:
    """Return `error` and what led to it, oldest first, as Python prints a chained traceback."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < _MAX_CHAINED:
        chain.append(current)
        if isinstance(current, WorkerFailed):
            # Textual wraps a worker's exception without raising or chaining it.
            current = current.error
        elif current.__cause__ is not None:
            current = current.__cause__
        elif not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    return list(reversed(chain))


def format_redacted_exception(error: BaseException, indent: str = "") -> str:
    """Return a traceback of `error` with the exception types and frames (file, line, function) only.

    Exception messages, source lines and local variables are left out: they can hold personal data.
    """
    lines: list[str] = []
    for index, link in enumerate(_causes(error)):
        if index:
            lines.append(f"{indent}The above led to:")
        if link.__traceback__ is not None:
            lines.append(f"{indent}Traceback (most recent call last):")
            lines.extend(_format_frames(link, indent))
        lines.append(f"{indent}{_type_name(type(link))} {_WITHHELD}")
        if isinstance(link, BaseExceptionGroup):
            for number, member in enumerate(link.exceptions, start=1):
                lines.append(f"{indent}  [{number}]")
                lines.append(format_redacted_exception(member, indent + "    "))
    return "\n".join(lines)


def _format_rich_trace(trace: Trace) -> str:
    """Return the same redacted form for a `rich.traceback.Trace` (its messages and locals dropped)."""
    lines: list[str] = []
    for index, stack in enumerate(trace.stacks):
        if index:
            lines.append("The above led to:")
        lines.append("Traceback (most recent call last):")
        lines.extend(
            f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}'
            for frame in stack.frames
        )
        lines.append(f"{stack.exc_type} {_WITHHELD}")
    return "\n".join(lines)


def _append_private(path: Path, text: str) -> None:
    """Append `text` to `path`, creating it (and its folder) readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags, 0o600)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(descriptor, 0o600)  # an older file may have been created with a looser mode
        os.write(descriptor, text.encode("utf-8", errors="replace"))
    finally:
        os.close(descriptor)


class SafeErrorsMixin(_AppBase):
    """Put first in an App's bases: `class RecordKeeperApp(SafeErrorsMixin, App[None])`.

    Set `error_log_path` (from the config) before the app runs; without it the error goes to
    `default_error_log_path()`. Override `audit_fatal_error` to record APP_ERROR in the audit log.
    """

    error_log_path: Path | str | None = None
    _fatal_error_shown: bool = False

    def _handle_exception(self, error: Exception) -> None:
        """Log `error` without data, show the short message, and exit with return code 1 (replaces Textual's)."""
        self._return_code = 1
        # As Textual does: remember the first error so `run_test` re-raises it in tests.
        if self._exception is None:
            self._exception = error
            self._exception_event.set()
        self._log_and_exit(lambda: format_redacted_exception(error), _type_name(type(error)))

    def _fatal_error(self) -> None:
        """Route Textual's traceback printer (which shows locals) through `_handle_exception`."""
        error = sys.exc_info()[1]
        if isinstance(error, Exception):
            self._handle_exception(error)
        else:
            self._return_code = 1
            self._log_and_exit(lambda: "(no exception information)", "unknown")

    def panic(self, *renderables: RenderableType) -> None:
        """Exit with messages, except that a Rich traceback (the driver's input thread sends one) is logged instead."""
        from rich.traceback import Traceback  # imported here: it pulls in pygments, which start-up does not need

        traces = [renderable for renderable in renderables if isinstance(renderable, Traceback)]
        if not traces:
            super().panic(*renderables)
            return
        self._return_code = 1
        self._log_and_exit(
            lambda: "\n".join(_format_rich_trace(trace.trace) for trace in traces),
            traces[0].trace.stacks[-1].exc_type if traces[0].trace.stacks else "unknown",
        )

    def audit_fatal_error(self, error_id: str, exception_type: str) -> None:
        """Record the failure in the audit log; the default does nothing. Must not raise or block for long."""

    def _log_and_exit(self, describe: Callable[[], str], exception_type: str) -> None:
        """Write the redacted report to the error log, queue the short message, and close the app."""
        error_id = secrets.token_hex(4)
        logged = self._write_error_log(error_id, describe)
        try:
            self.audit_fatal_error(error_id, exception_type)
        except Exception:  # noqa: BLE001 - the app is already failing; the log has the error id
            pass
        if not self._fatal_error_shown:
            self._fatal_error_shown = True
            if logged:
                summary = _("Something went wrong. The error was logged; nothing was saved half-way.")
            else:
                summary = _("Something went wrong. The error could not be logged; nothing was saved half-way.")
            detail = _("Error id: {error_id}").format(error_id=error_id)
            # Printed to stderr once the terminal is restored; Text is never parsed as markup.
            self._exit_renderables.append(Text(f"{summary}\n{detail}"))
            self.bell()
        self._close_messages_no_wait()

    def _write_error_log(self, error_id: str, describe: Callable[[], str]) -> bool:
        """Append one redacted report to the error log; return False if it could not be written."""
        try:
            path = Path(self.error_log_path) if self.error_log_path else default_error_log_path()
            when = datetime.now(timezone.utc).isoformat(timespec="seconds")
            report = f"=== {when} error {error_id} in {type(self).__qualname__}\n{describe()}\n\n"
            _append_private(path, report)
        except Exception:  # noqa: BLE001 - a failing log must not hide the original failure
            return False
        return True
