"""The real app in tmux at 80×24: browse the customers, search a number, open the file masked,
reveal one field for a purpose, and see it masked again after the lock and on the way back."""

from __future__ import annotations

import re

import pytest

from tests.terminal.tmux import needs_tmux

pytestmark = [pytest.mark.terminal, needs_tmux]


def test_browse_search_open_reveal_lock(pane_factory, demo_home):
    _home, password = demo_home
    pane = pane_factory()
    pane.wait_for("Username")
    pane.type("clerk")
    pane.send("Enter")
    pane.type(password)
    pane.send("Enter")
    home = pane.wait_for("Customers")
    entry = next(line for line in home.splitlines() if "Customers" in line)
    pane.type(re.search(r"(\d+)\s+Customers", entry).group(1))
    screen = pane.wait_for("No.", "Category", "Prospect", "Labels")
    numbers = re.findall(r"C\d{10}", "\n".join(screen.splitlines()[:-2]))  # the table, not the status line
    assert len(numbers) >= 10 and numbers == sorted(numbers)
    for line in screen.splitlines()[:-2]:
        assert len(line) <= 80
    pane.send("End")
    pane.wait_for("last page")
    pane.send("Home")
    pane.wait_for("page 1")

    pane.type("/" + numbers[3])  # typed ahead: the dialog opens before the number arrives
    pane.send("Enter")
    pane.wait_for("Search by customer number: 1 found")
    pane.send("Enter")
    file_screen = pane.wait_for("── Identity", "Full name", numbers[3])
    masked = re.search(r"Full name\s+(\S+)", file_screen).group(1)
    assert masked.endswith("*")
    assert "◂ shown" not in file_screen

    pane.send("F3")
    pane.wait_for("Why do you need to see it?")
    pane.send("Enter")
    pane.wait_for("at least 4 characters).")
    pane.send("Down")
    pane.send("Enter")  # a common purpose
    shown = pane.wait_for("◂ shown")
    clear = re.search(r"Full name\s+(\S+)", shown).group(1)
    assert clear != masked and clear[0] == masked[0] and "*" not in clear

    pane.send("F12")
    pane.wait_for("Screen locked")
    pane.type(password)
    pane.send("Enter")
    after_lock = pane.wait_for("── Identity")
    assert "◂ shown" not in after_lock and clear not in after_lock

    pane.send("F3")
    pane.type("customer called in")  # typed ahead into the purpose
    pane.send("Enter")
    pane.wait_for("◂ shown")
    pane.send("Escape")
    pane.wait_for("Search by customer number")
    pane.send("Enter")
    reopened = pane.wait_for("── Identity")
    assert "◂ shown" not in reopened and clear not in reopened
