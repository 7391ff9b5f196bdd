"""What a slow SSH link pays: start-up time beside a bare Textual app, bytes of the home screen's
first frame, and bytes per character typed into a form field — all through a real pty at 80×24.

Run with `make bench`; prints the figures. Goals (issue 8): start-up at most 1.3× a bare
Textual app; at most 200 bytes per typed character.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

import pytest

from tests.benchmarks.figures import record
from tests.benchmarks.pty_session import PtySession
from tests.terminal.tmux import RECORDKEEPER, ROOT

RUNS = 9
TYPED = "abcdefghijklmnopqrst"

# The smallest Textual app that shows what our login screen shows: a title, two labelled inputs, a footer.
BARE_APP = """
from textual.app import App
from textual.widgets import Footer, Input, Label, Static

class Bare(App):
    def compose(self):
        yield Static("RecordKeeper")
        yield Label("Username")
        yield Input()
        yield Label("Password")
        yield Input(password=True)
        yield Footer()

Bare().run()
"""


def _env(home) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RECORDKEEPER_")}
    return {**env, "RECORDKEEPER_HOME": str(home), "TERM": "xterm-256color", "LANG": "en_US.UTF-8",
            "RECORDKEEPER_ARGON2_MEMORY_KIB": "8192", "RECORDKEEPER_ARGON2_TIME_COST": "1"}


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    home = tmp_path_factory.mktemp("bench-terminal") / "office"
    out = subprocess.run([str(RECORDKEEPER), "demo", "--customers", "50", "--no-launch"], env=_env(home),
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    password = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("password: "))
    return home, password


def _time_to(argv: list[str], env: dict[str, str], needle: bytes) -> tuple[float, float]:
    """(wall seconds, CPU seconds) from launch until `needle` is on the terminal."""
    session = PtySession(argv, env, cwd=str(ROOT))
    try:
        wall = session.wait_for(needle)
        return wall, session.cpu_seconds()
    finally:
        session.close()


def test_start_up_beside_a_bare_textual_app(office, tmp_path):
    home, _password = office
    bare = tmp_path / "bare_app.py"
    bare.write_text(BARE_APP)
    ours, theirs, ours_cpu, theirs_cpu = [], [], [], []
    _time_to([sys.executable, str(bare)], _env(home), b"Username")  # warm the file cache for both
    _time_to([str(RECORDKEEPER)], _env(home), b"Username")
    for _run in range(RUNS):  # alternate, so both see the same machine load
        wall, cpu = _time_to([sys.executable, str(bare)], _env(home), b"Username")
        theirs.append(wall)
        theirs_cpu.append(cpu)
        wall, cpu = _time_to([str(RECORDKEEPER)], _env(home), b"Username")
        ours.append(wall)
        ours_cpu.append(cpu)
    # The fastest run is the best estimate of the cost itself on a shared machine; the median is shown too.
    ratio = min(ours) / min(theirs)
    print(f"\nstart-up to the login screen, fastest of {RUNS} (median): RecordKeeper {min(ours) * 1000:.0f} ms "
          f"({statistics.median(ours) * 1000:.0f}), bare Textual app {min(theirs) * 1000:.0f} ms "
          f"({statistics.median(theirs) * 1000:.0f}); ratio {ratio:.2f}, "
          f"median ratio {statistics.median(ours) / statistics.median(theirs):.2f} (goal <= 1.30)")
    record(f"start-up to the login screen, fastest of {RUNS}", min(ours) * 1000, "ms", goal=("<=", 1.3),
           goal_on="ratio", baseline=min(theirs) * 1000, baseline_label="bare Textual app", source=__name__)
    cpu_ratio = statistics.median(ours_cpu) / statistics.median(theirs_cpu)
    print(f"CPU time to the login screen (median of {RUNS}): RecordKeeper {statistics.median(ours_cpu) * 1000:.0f} ms, "
          f"bare Textual app {statistics.median(theirs_cpu) * 1000:.0f} ms, ratio {cpu_ratio:.2f}")
    record(f"CPU time to the login screen, median of {RUNS}", statistics.median(ours_cpu) * 1000, "ms",
           goal=("<=", 1.3), goal_on="ratio", baseline=statistics.median(theirs_cpu) * 1000,
           baseline_label="bare Textual app", source=__name__, note="what the start-up costs, whatever the load")
    record(f"start-up to the login screen, median of {RUNS}", statistics.median(ours) * 1000, "ms",
           goal=("<=", 1.3), goal_on="ratio", baseline=statistics.median(theirs) * 1000,
           baseline_label="bare Textual app", source=__name__, note="shared machine: the median carries its load")
    assert ratio > 0


def _logged_in(office) -> tuple[PtySession, int]:
    """A session at the home screen; returns it and the bytes of the home screen's first frame."""
    home, password = office
    session = PtySession([str(RECORDKEEPER)], _env(home), cwd=str(ROOT))
    session.wait_for(b"Username")
    session.settle()
    session.send("clerk\r")
    session.send(password)
    session.settle()
    before = session.mark()
    session.send("\r")
    session.wait_for(b"Logged in as")
    session.settle(quiet=1.0)
    return session, len(session.since(before))


def test_first_frame_of_the_home_screen(office):
    session, frame_bytes = _logged_in(office)
    session.close()
    print(f"\nhome screen, first frame after Enter on the login form: {frame_bytes} bytes "
          f"({frame_bytes / (80 * 24):.1f} bytes per cell of 80×24)")
    record("home screen, first frame after login", frame_bytes, "bytes", source=__name__,
           note="whole 80×24 screen, colours included")
    assert frame_bytes > 80


def test_bytes_per_character_typed_in_a_form_field(office):
    home, _password = office
    session = PtySession([str(RECORDKEEPER)], _env(home), cwd=str(ROOT))
    try:
        session.wait_for(b"Username")
        session.settle()
        per_key = []
        for character in TYPED:
            before = session.mark()
            session.send(character)
            session.settle(quiet=0.25)
            per_key.append(len(session.since(before)))
    finally:
        session.close()
    print(f"\nlogin form, username field: {statistics.mean(per_key):.0f} bytes per typed character "
          f"(max {max(per_key)}, {len(TYPED)} characters; goal <= 200)")
    record("login form: bytes per typed character", statistics.mean(per_key), "bytes", goal=("<=", 200),
           source=__name__)
    assert all(count > 0 for count in per_key)
