"""Losing the terminal in a real pty: the app leaves cleanly whether or not a SIGHUP reaches it."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from tests.terminal.sshd import alive
from tests.terminal.tmux import RECORDKEEPER, ROOT, Pane, needs_tmux

pytestmark = [pytest.mark.terminal, needs_tmux]

# A parent that ignores SIGHUP and stays the session leader, so the kernel never signals the
# app when the terminal goes: the app must notice the dead terminal by itself.
PARENT = """
import signal, subprocess, sys
signal.signal(signal.SIGHUP, signal.SIG_IGN)
child = subprocess.Popen(sys.argv[2:])
open(sys.argv[1] + ".pid", "w").write(str(child.pid))
code = child.wait()
open(sys.argv[1] + ".rc", "w").write(str(code))
"""


def _env(home) -> dict[str, str]:
    return {"RECORDKEEPER_HOME": str(home), "LANG": "en_US.UTF-8", "TERM": "xterm-256color",
            "RECORDKEEPER_ARGON2_MEMORY_KIB": "8192", "RECORDKEEPER_ARGON2_TIME_COST": "1"}


def _wait(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {timeout:.0f} s")
        time.sleep(0.1)  # polling, not a fixed wait


def _log(home) -> str:
    path = home / "recordkeeper.log"
    return path.read_text() if path.exists() else ""


def test_terminal_gone_without_sighup_ends_the_app(demo_home, tmp_path):
    home, password = demo_home
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    status = tmp_path / "app"
    pane = Pane(f"cd {ROOT} && {sys.executable} {script} {status} {RECORDKEEPER}", _env(home))
    try:
        pane.wait_for("Username", "Password")
        pane.type("clerk")
        pane.send("Enter")
        pane.type(password)
        pane.send("Enter")
        pane.wait_for("Logged in as")
        app_pid = int(status.with_suffix(".pid").read_text())
    finally:
        pane.close()  # the terminal goes away; the parent ignores the SIGHUP
    _wait(lambda: status.with_suffix(".rc").exists(), "the app exiting on its own")
    assert status.with_suffix(".rc").read_text() == "0"
    assert not alive(app_pid)
    assert "Traceback" not in _log(home)


def test_sigterm_ends_the_session_and_exits_zero(demo_home, tmp_path):
    home, password = demo_home
    status = tmp_path / "app"
    inner = f"echo $$ > {status}.pid; exec {RECORDKEEPER}"
    pane = Pane(f"cd {ROOT} && sh -c '{inner}'; echo \"[rc $?]\"", _env(home))
    try:
        pane.wait_for("Username", "Password")
        pane.type("clerk")
        pane.send("Enter")
        pane.type(password)
        pane.send("Enter")
        pane.wait_for("Logged in as")
        os.kill(int(status.with_suffix(".pid").read_text()), signal.SIGTERM)
        pane.wait_for("[rc 0]")
    finally:
        pane.close()
    assert "Traceback" not in _log(home)
