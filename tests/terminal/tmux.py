"""Drive the real app in a tmux pane at 80×24: send keys, read the screen, wait for text."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECORDKEEPER = ROOT / ".venv" / "bin" / "recordkeeper"

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Pane:
    """One detached tmux session, on its own server socket, running a command in an 80×24 window."""

    def __init__(self, command: str, env: dict[str, str], width: int = 80, height: int = 24):
        self.name = "rk-" + uuid.uuid4().hex[:8]
        env_args = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        subprocess.run(["tmux", "-L", self.name, "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                        *env_args, f"{command}; echo '[exited '$?']'; sleep 60"], check=True)

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "-L", self.name, "send-keys", "-t", self.name, *keys], check=True)

    def type(self, text: str) -> None:
        subprocess.run(["tmux", "-L", self.name, "send-keys", "-t", self.name, "-l", text], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "-L", self.name, "capture-pane", "-p", "-t", self.name], check=True,
                              capture_output=True, text=True).stdout

    def wait_for(self, *texts: str, timeout: float = 20.0) -> str:
        """Poll the pane until every one of `texts` is on screen."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if all(t in shown for t in texts):
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"never saw {texts!r}; the screen was:\n{shown}")
            time.sleep(0.1)  # polling interval for a condition, not a fixed wait

    def wait_gone(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if text not in shown:
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} stayed on screen:\n{shown}")
            time.sleep(0.1)

    def pid(self) -> int:
        out = subprocess.run(["tmux", "-L", self.name, "list-panes", "-t", self.name, "-F", "#{pane_pid}"], check=True,
                             capture_output=True, text=True).stdout
        return int(out.split()[0])

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.name, "kill-server"], capture_output=True)
