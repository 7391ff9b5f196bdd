"""Two real processes: an admin disables an account from the command line while that person is
logged in to the app in a tmux pane at 80×24; the session ends within 30 seconds."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.terminal.tmux import RECORDKEEPER, ROOT, needs_tmux

pytestmark = [pytest.mark.terminal, needs_tmux]


def staff_command(home, password: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RECORDKEEPER_HOME": str(home), "RECORDKEEPER_ARGON2_MEMORY_KIB": "8192",
           "RECORDKEEPER_ARGON2_TIME_COST": "1"}
    env.pop("RECORDKEEPER_DATABASE_URL", None)
    return subprocess.run([str(RECORDKEEPER), "staff", "--as", "admin", "--password-stdin", *args],
                          input=password + "\n", env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_disabling_an_account_ends_its_live_session_within_30_seconds(pane_factory, demo_home):
    home, password = demo_home
    pane = pane_factory()
    pane.wait_for("Username", "Password")
    pane.type("reviewer")
    pane.send("Enter")
    pane.type(password)
    pane.send("Enter")
    pane.wait_for("Logged in as", "Review queue")
    try:
        result = staff_command(home, password, "disable", "reviewer")
        assert result.returncode == 0, result.stderr
        disabled_at = time.monotonic()
        screen = pane.wait_for("administrator ended your session", "Username", timeout=30)
        assert time.monotonic() - disabled_at < 30
        assert "Review queue" not in screen
        # The disabled account cannot log in again.
        pane.type("reviewer")
        pane.send("Enter")
        pane.type(password)
        pane.send("Enter")
        pane.wait_for("Wrong username or password.")
    finally:
        assert staff_command(home, password, "enable", "reviewer").returncode == 0
    pane.send("C-q")
    pane.wait_for("[exited 0]")
