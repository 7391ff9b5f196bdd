"""Run a program in a real pseudo-terminal at 80×24 and count what it writes: bytes and time.

The benchmarks measure what would cross an SSH link: every byte the program writes to its
terminal, with no multiplexer (tmux redraws on its own terms) in between.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path


class PtySession:
    """A program on the slave side of a fresh pty; we read and write the master side."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str | None = None,
                 width: int = 80, height: int = 24) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        self.master = master
        self.output = bytearray()
        self.started = time.perf_counter()
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                        start_new_session=True, preexec_fn=self._controlling_tty(slave))
        os.close(slave)

    @staticmethod
    def _controlling_tty(slave: int):
        def make_controlling() -> None:
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

        return make_controlling

    def _read_some(self, timeout: float) -> int:
        ready, _w, _x = select.select([self.master], [], [], max(timeout, 0))
        if not ready:
            return 0
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # the program has gone and the pty is closed
            return -1
        if not chunk:
            return -1
        self.output += chunk
        return len(chunk)

    def wait_for(self, needle: bytes, timeout: float = 30.0) -> float:
        """Read until `needle` has been written; return the seconds since launch."""
        deadline = time.perf_counter() + timeout
        while needle not in self.output:
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or self._read_some(remaining) < 0:
                raise AssertionError(f"never saw {needle!r} (read {len(self.output)} bytes)")
        return time.perf_counter() - self.started

    def settle(self, quiet: float = 0.4, timeout: float = 30.0) -> int:
        """Read until nothing has been written for `quiet` seconds; return the bytes read meanwhile."""
        before = len(self.output)
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self._read_some(quiet) <= 0:
                break
        return len(self.output) - before

    def cpu_seconds(self) -> float:
        """CPU time the program has used so far, all its threads (less disturbed by a busy machine than wall time)."""
        total_ns = 0
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            try:
                total_ns += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):  # a thread that just ended
                continue
        return total_ns / 1e9

    def mark(self) -> int:
        return len(self.output)

    def since(self, mark: int) -> bytes:
        return bytes(self.output[mark:])

    def send(self, data: str | bytes) -> None:
        os.write(self.master, data.encode() if isinstance(data, str) else data)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        while self._read_some(0.05) > 0:
            pass
        os.close(self.master)
