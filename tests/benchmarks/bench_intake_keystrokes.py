"""Bytes written to the terminal per character typed into an intake form field, through a real pty at
80×24, beside a minimal Textual app with one compact Input (no cursor blink) measured in the same run.

Run with `make bench`; prints the figures. Goal (issue 3): at most 200 bytes per typed character.
Two figures per app: each key on its own (send one character, read until the screen is quiet), and a
steady typing run (one character every 150 ms, all bytes written meanwhile — autosave included —
divided by the characters typed).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import pytest

from tests.benchmarks.pty_session import PtySession
from tests.terminal.tmux import RECORDKEEPER, ROOT

LATIN = "wangxiaolizhangsanlisi"
HAN = "王小丽张三李四赵钱孙"
TYPING_INTERVAL = 0.15

MINIMAL_APP = """
from textual.app import App
from textual.widgets import Input

class Minimal(App):
    def compose(self):
        yield Input(compact=True)

    def on_mount(self):
        field = self.query_one(Input)
        field.cursor_blink = False
        field.focus()

Minimal().run()
"""


def _env(home) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RECORDKEEPER_")}
    return {**env, "RECORDKEEPER_HOME": str(home), "TERM": "xterm-256color", "LANG": "en_US.UTF-8",
            "RECORDKEEPER_ARGON2_MEMORY_KIB": "8192", "RECORDKEEPER_ARGON2_TIME_COST": "1"}


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    home = tmp_path_factory.mktemp("bench-intake") / "office"
    out = subprocess.run([str(RECORDKEEPER), "demo", "--customers", "20", "--no-launch"], env=_env(home),
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    password = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("password: "))
    return home, password


def _each_key(session: PtySession, text: str) -> list[int]:
    counts = []
    for character in text:
        before = session.mark()
        session.send(character)
        session.settle(quiet=0.25)
        counts.append(len(session.since(before)))
    return counts


def _steady(session: PtySession, text: str) -> float:
    before = session.mark()
    for character in text:
        session.send(character)
        session._read_some(0)
        deadline = time.perf_counter() + TYPING_INTERVAL
        while time.perf_counter() < deadline:  # keep reading while the typist waits
            session._read_some(deadline - time.perf_counter())
    session.settle(quiet=0.5)
    return len(session.since(before)) / len(text)


def _clear(session: PtySession, count: int) -> None:
    session.send("\x7f" * count)  # backspace: the next run starts from an empty field again
    session.settle(quiet=0.4)


def _measure(session: PtySession) -> dict[str, float]:
    latin = _each_key(session, LATIN)
    _clear(session, len(LATIN))
    han = _each_key(session, HAN)
    _clear(session, len(HAN))
    steady = _steady(session, LATIN)
    return {"latin_mean": statistics.mean(latin), "latin_median": statistics.median(latin),
            "latin_max": max(latin), "han_mean": statistics.mean(han), "steady": steady}


def _intake_field(office) -> PtySession:
    home, password = office
    session = PtySession([str(RECORDKEEPER)], _env(home), cwd=str(ROOT))
    session.wait_for(b"Username")
    session.settle()
    session.send("clerk\r")
    session.send(password + "\r")
    session.wait_for(b"Logged in as")
    session.settle(quiet=1.0)
    session.send("1")  # Intake
    session.wait_for(b"New customer form")
    session.settle()
    session.send("\r")  # a new form; the cursor is in Full name
    session.wait_for(b"Full name")
    session.settle(quiet=1.0)
    return session


def test_bytes_per_character_in_an_intake_field(office, tmp_path):
    minimal_script = tmp_path / "minimal_app.py"
    minimal_script.write_text(MINIMAL_APP)
    minimal = PtySession([sys.executable, str(minimal_script)], _env(office[0]), cwd=str(ROOT))
    try:
        minimal.settle(quiet=1.0)
        theirs = _measure(minimal)
    finally:
        minimal.close()
    session = _intake_field(office)
    try:
        ours = _measure(session)
    finally:
        session.close()
    print("\nbytes written per typed character at 80×24 (each key on its own: mean / median / max; "
          "Chinese characters: mean; steady typing every 150 ms, autosave included):")
    for name, figures in (("intake form, Full name", ours), ("minimal Textual app, one compact Input", theirs)):
        print(f"  {name:<40} {figures['latin_mean']:.0f} / {figures['latin_median']:.0f} / "
              f"{figures['latin_max']}; 汉字 {figures['han_mean']:.0f}; steady {figures['steady']:.0f}")
    print(f"  goal: at most 200 bytes per character; intake / minimal = "
          f"{ours['latin_median'] / theirs['latin_median']:.2f}")
    from tests.benchmarks.figures import record

    record("intake form: bytes written per typed character (median)", ours["latin_median"], "bytes",
           goal=("<=", 200), baseline=theirs["latin_median"], baseline_label="minimal Textual Input",
           note=f"mean {ours['latin_mean']:.0f}, max {ours['latin_max']}, 汉字 {ours['han_mean']:.0f}")
    assert ours["latin_median"] > 0 and theirs["latin_median"] > 0
