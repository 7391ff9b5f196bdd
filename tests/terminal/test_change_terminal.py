"""The change journey in a real terminal at 80×24: a clerk's check finds a new phone → change request →
a supervisor approves it beside the diff; a stale request is refused with the three-way view; the
clerk's home shows the decision."""

from __future__ import annotations

import re

import pytest

from tests.terminal.tmux import needs_tmux

pytestmark = [pytest.mark.terminal, needs_tmux]
NEW_MOBILE = "13766668888"
TABS_TO_MOBILE = 10  # source, channel, reported on, reason, name, sex, birth date, ID type, ID number, nationality


def login(pane, username: str, password: str) -> str:
    pane.wait_for("Username")
    pane.type(username)
    pane.send("Enter")
    pane.type(password)
    pane.send("Enter")
    return pane.wait_for("Logged in as")


def open_entry(pane, screen: str, label: str) -> None:
    number = re.search(rf"(\d+)\s+{re.escape(label)}", screen)
    assert number, screen
    pane.type(number.group(1))


def test_check_change_approve_and_conflict(pane_factory, demo_home):
    _home, password = demo_home
    pane = pane_factory()
    login(pane, "clerk", password)
    open_entry(pane, pane.wait_for("Verification due"), "Verification due")
    pane.wait_for("Periodic verification", "overdue")
    pane.send("Enter")
    pane.wait_for("Check C", "Past checks")
    pane.send("F4")
    pane.wait_gone("(F4 reveals")
    pane.send("F3")
    screen = pane.wait_for("Change request ·", "periodic check")
    customer_no = re.search(r"Change request · (C\d+)", screen).group(1)
    pane.send(*["Tab"] * TABS_TO_MOBILE)
    pane.type(NEW_MOBILE)
    pane.send("F2")
    pane.wait_for("Change request sent for approval")
    assert len(pane.screen().splitlines()) <= 24
    pane.send("C-q")
    pane.wait_for("[exited 0]")
    pane.close()

    pane = pane_factory()
    login(pane, "supervisor", password)
    home = pane.wait_for("Change requests", "Unreachable customers")
    assert "Overdue verifications" in home and "Unreachable customers  (1)" in home
    open_entry(pane, home, "Change requests")
    screen = pane.wait_for("Change requests to approve", "4 waiting")
    assert "periodic check" in screen and screen.index("customer report") < screen.index("periodic check"), screen
    pane.send("Down", "Down", "Down", "Enter")
    screen = pane.wait_for("* changed", NEW_MOBILE)
    assert customer_no in screen and "Field" in screen and "Proposed" in screen
    pane.send("F2")
    pane.wait_for("Approve and apply")
    pane.send("Enter")
    pane.wait_for(f"Approved: {customer_no} is updated.")
    # two requests on one record: approve the phone, then the email request is stale
    pane.send("Up", "Up", "Up", "Enter")
    pane.wait_for("* changed", "13912345678")
    pane.send("F2")
    pane.wait_for("Approve and apply")
    pane.send("Enter")
    screen = pane.wait_for("~ = the record changed since")
    pane.send("Down", "Enter")
    pane.wait_for("The record changed since this request")
    pane.send("F2")
    pane.wait_for("Approve and apply")
    pane.send("Enter")
    screen = pane.wait_for("Conflict: the approval was refused", "version 1 → 2", "Base", "Current", "Proposed")
    assert "~ since" in screen and "+ added" in screen and "Nothing was written" in screen
    pane.send("F4")
    pane.wait_for("Reject this request?")
    pane.send("Enter")
    pane.wait_for("Rejected: the requester", "rejected")
    pane.send("C-q")
    pane.wait_for("[exited 0]")
    pane.close()

    pane = pane_factory()
    login(pane, "clerk", password)
    screen = pane.wait_for(f"Change approved: {customer_no}", "Change rejected:")
    assert "My change requests  (3)" in screen
    pane.send("C-q")
    pane.wait_for("[exited 0]")
