"""Launching the app: it needs a terminal, shows the login screen first, and still refuses a bad office."""

from __future__ import annotations

import os
import sqlite3
import subprocess

import pytest

from tests.terminal.tmux import RECORDKEEPER, ROOT, Pane, needs_tmux

pytestmark = [pytest.mark.terminal]

FAST = {"RECORDKEEPER_ARGON2_MEMORY_KIB": "8192", "RECORDKEEPER_ARGON2_TIME_COST": "1"}


def test_without_a_terminal_nothing_runs(demo_home):
    home, _password = demo_home
    result = subprocess.run([str(RECORDKEEPER)], input="clerk\n", capture_output=True, text=True, timeout=60,
                            cwd=ROOT, env={**os.environ, "RECORDKEEPER_HOME": str(home), **FAST})
    assert result.returncode == 5
    assert "needs an interactive terminal" in result.stderr
    assert "\x1b[" not in result.stdout + result.stderr  # no screen was drawn


@needs_tmux
def test_an_office_that_cannot_open_stops_the_app_with_its_message(tmp_path):
    home = tmp_path / "office"
    env = {**os.environ, "RECORDKEEPER_HOME": str(home), **FAST}
    env.pop("RECORDKEEPER_DATABASE_URL", None)
    subprocess.run([str(RECORDKEEPER), "demo", "--customers", "1", "--no-launch"], env=env, cwd=ROOT,
                   capture_output=True, check=True)
    with sqlite3.connect(home / "recordkeeper.db") as connection:
        connection.execute("INSERT INTO schema_version (version, applied_at) VALUES (999, 'future')")
    pane = Pane(f"cd {ROOT} && {RECORDKEEPER}", {"RECORDKEEPER_HOME": str(home), "TERM": "xterm-256color", **FAST})
    try:
        screen = pane.wait_for("[exited 3]")
        assert "newer" in screen  # the schema message, printed once the terminal is restored
    finally:
        pane.close()
