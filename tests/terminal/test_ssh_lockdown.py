"""Security test T24, the cases tests/terminal/test_ssh.py leaves: dynamic (SOCKS) forwarding, agent
forwarding and environment a client tries to send (LD_PRELOAD, RECORDKEEPER_*) — against a real sshd
with the README's configuration. The app behind the session never sees any of it.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.terminal.sshd import alive, needs_openssh, processes_with_env, start_sshd
from tests.terminal.tmux import Pane, needs_tmux

pytestmark = [pytest.mark.terminal, needs_tmux, needs_openssh]

FAST = {"RECORDKEEPER_ARGON2_MEMORY_KIB": "8192", "RECORDKEEPER_ARGON2_TIME_COST": "1"}


@pytest.fixture(scope="module")
def server(demo_home, tmp_path_factory):
    home, _password = demo_home
    running = start_sshd(tmp_path_factory.mktemp("sshd-lockdown"), {"RECORDKEEPER_HOME": str(home), **FAST})
    yield running
    running.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_dynamic_socks_forwarding_is_refused(server):
    port = _free_port()
    client = subprocess.Popen(server.ssh_args("-N", "-D", f"127.0.0.1:{port}", log_level="INFO"),
                              stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:  # wait for the client's SOCKS listener
            try:
                connection = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if client.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # polling for the listener
        with connection:
            connection.settimeout(15)
            connection.sendall(b"\x05\x01\x00")  # SOCKS5, one method: no authentication
            assert connection.recv(2) == b"\x05\x00"
            target = server.port.to_bytes(2, "big")
            connection.sendall(b"\x05\x01\x00\x01\x7f\x00\x00\x01" + target)  # CONNECT 127.0.0.1:sshd
            reply = connection.recv(10)
        assert reply[:2] != b"\x05\x00", "the server opened a forwarded connection"
    finally:
        client.kill()
        _out, errors = client.communicate(timeout=10)
    assert "administratively prohibited" in errors or "open failed" in errors, errors


def test_agent_forwarding_and_sent_environment_never_reach_the_app(server, demo_home, tmp_path):
    home, _password = demo_home
    agent_socket = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(agent_socket)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not agent_socket.exists():
            assert time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.05)  # polling for the agent's socket
        before = set(processes_with_env("RECORDKEEPER_HOME", str(home)))
        args = server.ssh_args("-tt", "-A", "-o", "SendEnv=LD_PRELOAD", "-o", "SendEnv=RECORDKEEPER_*")
        pane = Pane(" ".join(shlex.quote(a) for a in args),
                    {"LANG": "en_US.UTF-8", "TERM": "xterm-256color", "SSH_AUTH_SOCK": str(agent_socket),
                     "RECORDKEEPER_DATABASE_URL": "postgresql://attacker.example/db",
                     "RECORDKEEPER_HOME": "/tmp/attacker-home", "LD_PRELOAD": ""})
        try:
            pane.wait_for("Username", "Password", timeout=30)  # the app, on the server's own office
            apps = [p for p in processes_with_env("RECORDKEEPER_HOME", str(home)) if p not in before and alive(p)]
            assert apps, "the app behind the SSH session was not found"
            for pid in apps:
                environ = dict(entry.split(b"=", 1) for entry in Path(f"/proc/{pid}/environ").read_bytes()
                               .split(b"\0") if b"=" in entry)
                assert b"SSH_AUTH_SOCK" not in environ, "agent forwarding reached the app"
                assert b"LD_PRELOAD" not in environ
                assert b"RECORDKEEPER_DATABASE_URL" not in environ
                assert environ[b"RECORDKEEPER_HOME"] == str(home).encode()
            pane.send("C-q")
            pane.wait_for("[exited 0]", timeout=30)
        finally:
            pane.close()
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=10)
    assert not os.path.exists("/tmp/attacker-home")
