"""The real app in tmux at 80×24: kill -9 mid-form, then SIGHUP mid-field; the typed values are in the
draft offered at the next login, and no typed value is in clear in any file of the data directory."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import sqlite3
import subprocess
import time

import pytest

from models import demo
from tests.terminal.tmux import needs_tmux

pytestmark = [pytest.mark.terminal, needs_tmux]

NAME = "Killtest Qxzvb"
STREET = "Sentinel Lane 4711"
BIRTH = dt.date(1979, 12, 24)
ID_NUMBER = demo.resident_id(random.Random(77), BIRTH, "male")


def _app_pid(pane) -> int:
    """The recordkeeper process: the child of the pane's shell."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(pane.pid())], capture_output=True,
                             text=True).stdout.split()
        if out:
            return int(out[0])
        time.sleep(0.1)  # polling for the process to appear
    raise AssertionError("the app process was not found")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()[:1] \
        not in ("Z", "")


def _wait(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {timeout:.0f} s")
        time.sleep(0.1)  # polling, not a fixed wait


def _login(pane, password: str) -> None:
    pane.wait_for("Username", "Password")
    pane.type("clerk")
    pane.send("Enter")
    pane.type(password)
    pane.send("Enter")


def _draft_saved_since(home, moment: dt.datetime) -> bool:
    """Whether a draft was saved after `moment` (UTC), read from the database's plain timestamp column."""
    connection = sqlite3.connect(f"file:{home / 'recordkeeper.db'}?mode=ro", uri=True)
    try:
        (latest,) = connection.execute("SELECT max(updated_at) FROM intake_submission").fetchone()
    finally:
        connection.close()
    return latest is not None and dt.datetime.fromisoformat(latest) > moment


def _assert_nothing_in_clear(home, values) -> None:
    for path in (p for p in home.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        for value in values:
            for encoding in ("utf-8", "utf-16-le"):
                assert value.encode(encoding) not in raw, (path.name, value)


def _resume_draft(pane_factory, password: str):
    pane = pane_factory()
    _login(pane, password)
    pane.wait_for("You have unfinished customer forms", "DRAFT")
    pane.send("Enter")
    return pane


def test_kill_9_mid_form_then_sighup_mid_field(pane_factory, demo_home):
    home, password = demo_home
    pane = pane_factory()
    _login(pane, password)
    pane.wait_for("Logged in as", "Intake")
    pane.send("1")
    pane.wait_for("New customer form")
    pane.send("Enter")
    pane.wait_for("Customer form", "Full name")
    pane.type(NAME)
    pane.send("Enter", "Enter")  # name, then ID type (prefilled)
    pane.type(ID_NUMBER)
    pane.send("Enter")
    pane.wait_for("Filled in from the resident ID", BIRTH.isoformat())
    for _ in range(11):  # from sex down to the street, past the contact and address fields
        pane.send("Tab")
    pane.type(STREET)  # no field exit: only the timer can save it
    pane.wait_for(STREET)
    shown, shown_at = time.monotonic(), dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    _wait(lambda: _draft_saved_since(home, shown_at), "the draft autosave", timeout=10)
    assert time.monotonic() - shown < 4  # the timer saves every two seconds
    _wait(lambda: "*" not in pane.screen().splitlines()[0], "the unsaved marker going")
    app = _app_pid(pane)
    os.kill(app, signal.SIGKILL)
    _wait(lambda: not _alive(app), "the app dying")
    pane.close()
    # A killed app leaves its WAL behind: nothing typed is in clear there or anywhere else.
    assert any(p.name.endswith("-wal") for p in home.rglob("*"))
    _assert_nothing_in_clear(home, (NAME, STREET, ID_NUMBER))

    pane = _resume_draft(pane_factory, password)
    screen = pane.wait_for("Customer form", NAME, ID_NUMBER, STREET)
    assert "1979-12-24" in screen and "male" in screen
    # SIGHUP while a field is being typed: the app saves synchronously and leaves cleanly.
    pane.send("Tab")  # the street's text is selected; typing replaces it
    pane.type("Hangup Road 9")
    pane.wait_for("Hangup Road 9")
    app = _app_pid(pane)
    os.kill(app, signal.SIGHUP)
    _wait(lambda: not _alive(app), "the app leaving on SIGHUP")
    assert "[exited 0]" in pane.wait_for("[exited")
    pane.close()

    pane = _resume_draft(pane_factory, password)
    pane.wait_for("Customer form", NAME, "Hangup Road 9")
    pane.send("C-q")
    pane.wait_for("[exited")
    log = home / "recordkeeper.log"
    assert not log.exists() or "Traceback" not in log.read_text()

    _assert_nothing_in_clear(home, (NAME, STREET, "Hangup Road 9", ID_NUMBER))
