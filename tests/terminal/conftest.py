"""A demo office built by the real CLI, for the real-terminal tests."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.terminal.tmux import RECORDKEEPER, ROOT, Pane


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("terminal") / "office"
    env = {**os.environ, "RECORDKEEPER_HOME": str(home), "RECORDKEEPER_ARGON2_MEMORY_KIB": "8192",
           "RECORDKEEPER_ARGON2_TIME_COST": "1"}
    env.pop("RECORDKEEPER_DATABASE_URL", None)
    out = subprocess.run([str(RECORDKEEPER), "demo", "--customers", "20", "--no-launch"], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    password = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("password: "))
    return home, password


@pytest.fixture
def pane_factory(demo_home):
    panes: list[Pane] = []
    home, _password = demo_home

    def make(**extra_env: str) -> Pane:
        env = {"RECORDKEEPER_HOME": str(home), "LANG": "en_US.UTF-8", "TERM": "xterm-256color",
               "RECORDKEEPER_ARGON2_MEMORY_KIB": "8192", "RECORDKEEPER_ARGON2_TIME_COST": "1", **extra_env}
        pane = Pane(f"cd {ROOT} && {RECORDKEEPER}", env)
        panes.append(pane)
        return pane

    yield make
    for pane in panes:
        pane.close()
