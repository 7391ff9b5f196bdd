"""Retention to destruction in a real terminal at 80×24, then a restore of an older backup that must not
bring the destroyed customers back."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess

import pytest

from tests.terminal.tmux import RECORDKEEPER, ROOT, needs_tmux

pytestmark = [pytest.mark.terminal, needs_tmux]


def cli(home, password: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "RECORDKEEPER_HOME": str(home), "RECORDKEEPER_ARGON2_MEMORY_KIB": "8192",
           "RECORDKEEPER_ARGON2_TIME_COST": "1"}
    env.pop("RECORDKEEPER_DATABASE_URL", None)
    return subprocess.run([str(RECORDKEEPER), *args], env=env, cwd=ROOT, input=password + "\n", capture_output=True,
                          text=True, check=check)


def login(pane, username: str, password: str) -> str:
    pane.wait_for("Username")
    pane.type(username)
    pane.send("Enter")
    pane.type(password)
    pane.send("Enter")
    return pane.wait_for("Logged in as")


def open_entry(pane, _screen: str, label: str) -> None:
    screen = pane.wait_for(label)  # the menu fills in after the login
    number = re.search(rf"(\d+)\s+{re.escape(label)}", screen)
    assert number, screen
    pane.type(number.group(1))


def test_officer_and_supervisor_destroy_and_an_old_backup_does_not_bring_them_back(pane_factory, demo_home):
    home, password = demo_home
    year = dt.date.today().year
    held = cli(home, password, "retention", "--as", "officer", "--password-stdin", "holds").stdout
    targets = [number for number in (f"C{year}{n:06d}" for n in range(2, 20)) if number not in held][:2]
    for number in targets:
        cli(home, password, "retention", "--as", "officer", "--password-stdin", "terminate", number,
            "--on", "2014-06-30", "--short")
    taken = cli(home, password, "backup").stdout
    db_backup = re.search(r"database backup: (\S+)", taken).group(1)
    keys_backup = re.search(r"key-store backup: (\S+)", taken).group(1)

    pane = pane_factory()
    open_entry(pane, login(pane, "officer", password), "Retention")
    screen = pane.wait_for("Retention ·", *targets)
    assert len(screen.splitlines()) <= 24 and "5y from end 2014-06-30" in screen
    pane.send("a")
    pane.send("F2")
    pane.wait_for("Destruction request for")
    pane.type("retention period over")
    pane.send("Enter")
    pane.wait_for("waiting")
    pane.send("C-q")
    pane.wait_for("[exited 0]")
    pane.close()

    pane = pane_factory()
    open_entry(pane, login(pane, "supervisor", password), "Destruction approvals")
    pane.wait_for("Destruction requests to approve", *targets)
    pane.send("F2")
    pane.wait_for("Approve DR")
    pane.type("checked against the paper files")
    pane.send("Enter")
    pane.wait_for("No destruction request is waiting")
    pane.send("C-q")
    pane.wait_for("[exited 0]")
    pane.close()

    pane = pane_factory()
    open_entry(pane, login(pane, "officer", password), "Retention")
    pane.wait_for("approved")
    pane.send("Tab")
    pane.send("F9")
    pane.wait_for("Destroy the 2 customer(s)")
    pane.send("y")
    pane.wait_for("destroyed", "Destruction complete")
    pane.send("Escape")
    open_entry(pane, pane.wait_for("Destruction register"), "Destruction register")
    pane.wait_for("Destruction register", *targets)
    pane.send("Enter")
    screen = pane.wait_for("CERTIFICATE OF DESTRUCTION")
    assert len(screen.splitlines()) <= 24
    pane.send("Escape")
    pane.send("C-q")
    pane.wait_for("[exited 0]")
    pane.close()

    restored = cli(home, password, "restore", db_backup, "--keys", keys_backup, "--force").stdout
    assert "destroyed again" in restored
    register = cli(home, password, "destruction", "--as", "auditor", "--password-stdin", "register").stdout
    assert all(number in register for number in targets)
    for number in targets:
        gone = cli(home, password, "retention", "--as", "officer", "--password-stdin", "terminate", number,
                   "--on", "2014-06-30", "--short", check=False)
        assert gone.returncode == 1 and "no customer" in gone.stderr

    pane = pane_factory()  # and the app starts on the restored office
    screen = login(pane, "officer", password)
    open_entry(pane, screen, "Retention")
    screen = pane.wait_for("Retention ·")
    assert not any(number in screen for number in targets)
    pane.send("C-q")
    pane.wait_for("[exited 0]")
