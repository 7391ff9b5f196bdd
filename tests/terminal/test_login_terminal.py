"""The login journey in a real terminal at 80×24: login → home → idle lock → unlock → quit."""

from __future__ import annotations

import pytest

from tests.terminal.tmux import needs_tmux

pytestmark = [pytest.mark.terminal, needs_tmux]


def test_login_home_idle_lock_unlock_quit(pane_factory, demo_home):
    _home, password = demo_home
    pane = pane_factory(RECORDKEEPER_IDLE_LOCK_MINUTES="0.1")
    pane.wait_for("Username", "Password")
    pane.type("clerk")
    pane.send("Enter")
    pane.type(password)
    pane.send("Enter")
    screen = pane.wait_for("Logged in as", "Intake")
    assert "Audit log" not in screen
    screen = pane.wait_for("Screen locked", timeout=30)  # idle lock after 6 s
    assert "Intake" not in screen  # nothing of the session shows through
    pane.type("not my password")
    pane.send("Enter")
    pane.wait_for("Wrong username or password.")
    pane.type(password)
    pane.send("Enter")
    pane.wait_for("Logged in as")
    pane.send("C-q")
    pane.wait_for("[exited 0]")


def test_every_demo_account_reaches_its_home(pane_factory, demo_home):
    _home, password = demo_home
    expected = {"reviewer": "Review queue", "supervisor": "Change requests", "officer": "Retention",
                "auditor": "Audit log", "admin": "Staff", "clerk": "Intake"}
    for username, entry in expected.items():
        pane = pane_factory()
        pane.wait_for("Username")
        pane.type(username)
        pane.send("Enter")
        pane.type(password)
        pane.send("Enter")
        screen = pane.wait_for("Logged in as", entry)
        assert len(screen.splitlines()) <= 24
        pane.send("C-q")
        pane.wait_for("[exited 0]")
        pane.close()
