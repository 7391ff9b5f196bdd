"""Hostile data on screen, through a real pseudo-terminal: none of its bytes reach the terminal.

The office holds hostile values in the places a person can put them (a draft typed in the form, a
label, the branch) and — as a tampered database or a legacy import would — raw terminal escapes in
a customer's encrypted name and street. The real app then runs in a pty at 80×24: a bracketed paste
of escapes into the login form, the login, the unfinished-draft offer, the customer browser, the
customer file and a reveal of the tampered name. Every byte the app writes is captured and searched
(security tests T21, T22): no OSC 52 (clipboard), OSC 8 (hyperlink), OSC 0 (title), DCS, C1 CSI,
bidi override, zero-width space or NUL; markup shows as text and binds nothing; the app is still
running at the end and leaves with exit code 0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.benchmarks.pty_session import PtySession

ROOT = Path(__file__).resolve().parents[2]
RECORDKEEPER = ROOT / ".venv" / "bin" / "recordkeeper"

OSC52 = "\x1b]52;c;ZXZpbA==\x07"
OSC8 = "\x1b]8;;https://evil.example\x1b\\"
PAYLOAD = (f"{OSC52}王{OSC8}伟\x1b]0;owned\x07\x1bPq#0~~\x1b\\\x9b2J\u202e\u200b\x00[@click=app.quit]"
           "[link=https://evil.example]点[/link]foo[/]")
FORBIDDEN = {  # as regular expressions over the bytes written to the terminal
    # Textual's own OSC 22 (pointer shape) is the only OSC the app writes; any other came from data
    "OSC (52 clipboard, 8 hyperlink, 0 title …)": rb"\x1b\](?!22;default\x07)",
    "OSC 52 (clipboard)": rb"\x1b\]52",
    "DCS / sixel": rb"\x1bP",
    "C1 CSI or OSC": rb"\xc2[\x9b\x9d\x90]",
    "right-to-left override": "\u202e".encode(),
    "zero-width space": "\u200b".encode(),
    "NUL": rb"\x00",
}
F3 = "\x1bOR"
ESC = "\x1b"
CTRL_Q = "\x11"
CTRL_U = "\x15"
END = "\x1b[F"


def _env(home) -> dict[str, str]:
    env = {**os.environ, "RECORDKEEPER_HOME": str(home), "RECORDKEEPER_ARGON2_MEMORY_KIB": "8192",
           "RECORDKEEPER_ARGON2_TIME_COST": "1", "TERM": "xterm-256color", "LANG": "en_US.UTF-8",
           "COLORTERM": "truecolor"}
    env.pop("RECORDKEEPER_DATABASE_URL", None)
    env.pop("RK_TEST_DATABASE", None)
    return env


def _plant_hostile_data(home, password: str) -> str:
    """Run in a child process: the office's staff put hostile text where they can, and the database
    is tampered with where they cannot. Returns the customer number of the tampered customer."""
    code = f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
from models import customers, intake, labels, office, staff
from models.customers import Customer
from models.db import write
from models.settings import load_settings
payload = {PAYLOAD!r}
office.open_office(load_settings())
clerk = staff.authenticate("clerk", {password!r})
officer = staff.authenticate("officer", {password!r})
intake.save_draft(clerk, None, {{"full_name": payload, "street": payload, "notes": payload}})
click = labels.create_label(officer, "[@click=app.quit]坏", "primary", "foo[/]")
link = labels.create_label(officer, "[link=https://evil.example]x", "primary", "")
row = Customer.select().order_by(Customer.customer_no).first()
labels.label_customer(clerk, row.customer_no, [click.label_id, link.label_id])
key = customers.keystore.load_data_key(row.key_id)
values = customers.decrypt_fields(row.id, row.key_id, key, Customer.select().where(Customer.id == row.id).dicts().get())
values.update(full_name=payload, street=payload)
sealed = customers.encrypt_fields(row.id, row.key_id, key, values)
with write():
    Customer.update(full_name=sealed["full_name"], street=sealed["street"],
                    branch="[link=https://evil.example]点[/link]").where(Customer.id == row.id).execute()
print(row.customer_no)
"""
    done = subprocess.run([sys.executable, "-c", code], env=_env(home), cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture
def hostile_office(tmp_path):
    home = tmp_path / "office"
    out = subprocess.run([str(RECORDKEEPER), "demo", "--customers", "20", "--no-launch"], env=_env(home),
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    password = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("password: "))
    return home, password, _plant_hostile_data(home, password)


def _step(session: PtySession, keys: str, needle: bytes | None, timeout: float = 30.0) -> None:
    mark = session.mark()
    session.send(keys)
    deadline = time.monotonic() + timeout
    while needle is not None and needle not in session.since(mark):
        if time.monotonic() > deadline or session._read_some(0.2) < 0:
            raise AssertionError(f"after {keys!r}, never saw {needle!r}; the app wrote:\n"
                                 f"{session.since(mark)[-3000:]!r}")
    session.settle(0.5)


def test_no_hostile_byte_reaches_the_terminal(hostile_office):
    home, password, number = hostile_office
    session = PtySession([str(RECORDKEEPER)], _env(home), cwd=str(ROOT))
    try:
        session.wait_for(b"Username")
        session.settle(0.5)
        _step(session, "\x1b[200~" + PAYLOAD + "\x1b[201~", None)  # pasted into the username field (it
        # takes only what a username can hold: the rest is refused with a bell)
        _step(session, "\t\x1b[200~" + PAYLOAD + "\x1b[201~", None)  # and into the password field
        _step(session, "\x1b[Z", None)  # back to the username (shift+tab)
        _step(session, END + CTRL_U, None)  # clear each field (keys sent apart: a burst is type-ahead)
        _step(session, "clerk\r", None)
        _step(session, END + CTRL_U, None)
        _step(session, password + "\r", b"unfinished")  # the hostile draft is offered
        _step(session, ESC, b"Intake")
        _step(session, "2", number.encode())  # the browser: tampered name (masked), hostile labels and branch
        _step(session, "\r", b"Full name")  # the customer file of the first customer: the tampered one
        _step(session, F3, b"purpose")
        _step(session, "check hostile data\r", "shown".encode())  # the tampered name revealed
        assert session.process.poll() is None, "the app died on hostile data"
        _step(session, ESC, number.encode())
        session.send(ESC)
        session.settle(0.5)
        session.send(CTRL_Q)
        session.process.wait(timeout=20)
        session.settle(0.3)
        assert session.process.returncode == 0
    finally:
        session.close()
    output = bytes(session.output)
    if os.environ.get("RK_DUMP_PTY"):
        Path(os.environ["RK_DUMP_PTY"]).write_bytes(output)
    found = {what: len(re.findall(pattern, output)) for what, pattern in FORBIDDEN.items()
             if re.search(pattern, output)}
    assert found == {}, f"hostile bytes reached the terminal: {found}"
    assert b"app.quit" in output and b"evil.example" in output  # shown as text, not obeyed


def test_a_clean_session_emits_none_of_the_forbidden_sequences_either(tmp_path):
    """The forbidden list is about data: the app's own drawing never needs any of it."""
    home = tmp_path / "office"
    out = subprocess.run([str(RECORDKEEPER), "demo", "--customers", "5", "--no-launch"], env=_env(home), cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    password = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("password: "))
    session = PtySession([str(RECORDKEEPER)], _env(home), cwd=str(ROOT))
    try:
        session.wait_for(b"Username")
        _step(session, "clerk\r" + password + "\r", b"Intake")
        _step(session, "2", b"C2026")
        session.send(CTRL_Q)
        session.process.wait(timeout=20)
    finally:
        session.close()
    output = bytes(session.output)
    assert {what for what, pattern in FORBIDDEN.items() if re.search(pattern, output)} == set()
