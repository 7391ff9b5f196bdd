"""An unexpected exception is logged without data, shown as one short message, and exits with code 1."""

from __future__ import annotations

import stat
from importlib.metadata import version
from pathlib import Path

import pytest
import rich.traceback
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import Static

from tui.errors import SafeErrorsMixin, format_redacted_exception

ID_NUMBER = "110105198507140000"
SECRET = f"{ID_NUMBER} secret"
SHORT_MESSAGE = "Something went wrong. The error was logged; nothing was saved half-way."


class ExplodingApp(SafeErrorsMixin, App[None]):
    """Raises from a key handler, a worker or a chained exception, each carrying personal data."""

    BINDINGS = [
        Binding("x", "explode", "Explode", id="explode", tooltip="Raise with personal data."),
        Binding("w", "explode_in_worker", "Worker", id="worker", tooltip="Fail in a worker."),
        Binding("c", "explode_chained", "Chained", id="chained", tooltip="Raise a chain."),
    ]

    def __init__(self, error_log_path: Path) -> None:
        super().__init__()
        self.error_log_path = error_log_path

    def compose(self) -> ComposeResult:
        yield Static(Content("Press x"))

    def action_explode(self) -> None:
        customer_id_number = ID_NUMBER  # a local that Textual's traceback would print
        raise ValueError(f"{customer_id_number} secret")

    def action_explode_chained(self) -> None:
        try:
            raise KeyError(SECRET)
        except KeyError as error:
            raise RuntimeError(f"lookup failed for {ID_NUMBER}") from error

    def action_explode_in_worker(self) -> None:
        self.fail_in_thread()

    @work(thread=True, exit_on_error=True, name="fail-in-thread", group="tests")
    def fail_in_thread(self) -> None:
        raise LookupError(SECRET)


def assert_no_personal_data(text: str) -> None:
    assert "secret" not in text
    assert ID_NUMBER not in text


async def run_until_crash(app: ExplodingApp, key: str, expected: type[Exception]) -> None:
    with pytest.raises(expected):  # run_test re-raises the first error for test frameworks
        async with app.run_test() as pilot:
            await pilot.press(key)
            await app.workers.wait_for_complete()
            await pilot.pause()


async def test_key_handler_error_is_logged_without_data_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_path = tmp_path / "logs" / "errors.log"
    app = ExplodingApp(log_path)
    await run_until_crash(app, "x", ValueError)

    assert app.return_code == 1
    logged = log_path.read_text(encoding="utf-8")
    assert_no_personal_data(logged)
    assert "ValueError" in logged
    assert f'File "{__file__}"' in logged
    assert "in action_explode" in logged
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600

    printed = capsys.readouterr()
    assert_no_personal_data(printed.out + printed.err)
    assert "customer_id_number" not in printed.out + printed.err
    assert SHORT_MESSAGE in printed.err
    error_id = printed.err.split("Error id: ", 1)[1].split()[0]
    assert f"error {error_id}" in logged


async def test_existing_log_is_appended_and_tightened_to_0600(tmp_path: Path) -> None:
    log_path = tmp_path / "errors.log"
    log_path.write_text("earlier entry\n", encoding="utf-8")
    log_path.chmod(0o644)
    await run_until_crash(ExplodingApp(log_path), "x", ValueError)
    assert log_path.read_text(encoding="utf-8").startswith("earlier entry\n")
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600


async def test_chained_exception_logs_every_type_and_no_message(tmp_path: Path) -> None:
    log_path = tmp_path / "errors.log"
    app = ExplodingApp(log_path)
    await run_until_crash(app, "c", RuntimeError)
    logged = log_path.read_text(encoding="utf-8")
    assert_no_personal_data(logged)
    assert "KeyError" in logged and "RuntimeError" in logged
    assert app.return_code == 1


async def test_worker_error_logs_the_inner_type_without_data(tmp_path: Path) -> None:
    from textual.worker import WorkerFailed

    log_path = tmp_path / "errors.log"
    app = ExplodingApp(log_path)
    await run_until_crash(app, "w", WorkerFailed)  # its message is repr(error): personal data
    logged = log_path.read_text(encoding="utf-8")
    assert_no_personal_data(logged)
    assert "LookupError" in logged and "in fail_in_thread" in logged
    assert app.return_code == 1


async def test_fatal_error_never_builds_a_rich_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[dict[str, object]] = []

    class RecordingTraceback(rich.traceback.Traceback):
        def __init__(self, *args: object, **kwargs: object) -> None:
            built.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(rich.traceback, "Traceback", RecordingTraceback)
    log_path = tmp_path / "errors.log"
    app = ExplodingApp(log_path)
    with pytest.raises(ValueError):
        async with app.run_test() as pilot:
            try:
                raise ValueError(SECRET)
            except ValueError:
                app._fatal_error()
            await pilot.pause()
    assert built == []
    assert app.return_code == 1
    assert_no_personal_data(log_path.read_text(encoding="utf-8"))


async def test_panic_with_a_traceback_is_logged_not_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Textual's Linux driver panics with a Rich traceback when its input thread fails."""
    log_path = tmp_path / "errors.log"
    app = ExplodingApp(log_path)
    async with app.run_test():
        try:
            raise OSError(SECRET)
        except OSError:
            app.panic(rich.traceback.Traceback(show_locals=True))
        # No pilot.pause(): panic closes the app without an error for the pilot to wait on.
    assert app.return_code == 1
    logged = log_path.read_text(encoding="utf-8")
    assert_no_personal_data(logged)
    assert "OSError" in logged
    printed = capsys.readouterr()
    assert_no_personal_data(printed.out + printed.err)
    assert SHORT_MESSAGE in printed.err


def test_unwritable_log_still_exits_with_a_message(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    app = ExplodingApp(blocker / "errors.log")
    assert app._write_error_log("0000", lambda: "x") is False


def test_redacted_format_has_frames_but_no_message() -> None:
    def lookup(customer_name: str) -> None:
        raise ValueError(f"no policy for {customer_name}")

    try:
        lookup("张三 " + SECRET)
    except ValueError as error:
        report = format_redacted_exception(error)
    assert_no_personal_data(report)
    assert "张三" not in report
    assert "in lookup" in report and "ValueError" in report


def test_private_textual_hooks_still_exist_in_the_pinned_version(tmp_path: Path) -> None:
    # tui/errors.py replaces private Textual methods: re-check it before changing the pin.
    assert version("textual") == "8.2.8"
    for method in ("_handle_exception", "_fatal_error", "panic", "_close_messages_no_wait", "bell"):
        assert callable(getattr(App, method, None)), method
    app = ExplodingApp(tmp_path / "errors.log")
    for attribute in ("_exit_renderables", "_exception", "_return_code"):
        assert hasattr(app, attribute), attribute
    assert ExplodingApp._handle_exception is SafeErrorsMixin._handle_exception
    assert ExplodingApp._fatal_error is SafeErrorsMixin._fatal_error
    assert ExplodingApp.panic is SafeErrorsMixin.panic
