"""The SSH deployment for real: sshd with the README's configuration, the app driven through it in tmux.

A clerk logs in with a key, works, and quits; a command, port forwarding and sftp get nothing;
a connection killed mid-session ends the app cleanly with the session closed in the audit log.
"""

from __future__ import annotations

import os
import shlex
import socket
import stat
import subprocess
import time

import pytest

from models.home import MENU
from tests.terminal.sshd import alive, child_pids, needs_openssh, processes_with_env, start_sshd
from tests.terminal.tmux import RECORDKEEPER, ROOT, Pane, needs_tmux

pytestmark = [pytest.mark.terminal, needs_tmux, needs_openssh]

FAST = {"RECORDKEEPER_ARGON2_MEMORY_KIB": "8192", "RECORDKEEPER_ARGON2_TIME_COST": "1"}


@pytest.fixture(scope="module")
def server(demo_home, tmp_path_factory):
    home, _password = demo_home
    running = start_sshd(tmp_path_factory.mktemp("sshd"), {"RECORDKEEPER_HOME": str(home), **FAST})
    yield running
    running.stop()


@pytest.fixture
def ssh_pane(server):
    panes: list[Pane] = []

    def make(lang: str = "en_US.UTF-8", remote_command: tuple[str, ...] = ()) -> Pane:
        command = " ".join(shlex.quote(arg) for arg in [*server.ssh_args("-tt"), *remote_command])
        pane = Pane(command, {"LANG": lang, "TERM": "xterm-256color"})
        panes.append(pane)
        return pane

    yield make
    for pane in panes:
        pane.close()


def log_in(pane: Pane, username: str, password: str) -> str:
    screen = pane.wait_for("RecordKeeper")
    pane.wait_for("Password" if "Username" in screen else "密码")
    pane.type(username)
    pane.send("Enter")
    pane.type(password)
    pane.send("Enter")
    deadline = time.monotonic() + 20
    while True:  # the home screen in either language
        screen = pane.screen()
        if ("Logged in as" in screen or "当前登录" in screen) and "│  1  " in screen:  # menu loaded
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"never reached the home screen:\n{screen}")
        time.sleep(0.1)  # polling the pane


def menu_number(screen: str, label: str) -> str:
    """The digit in front of `label` on the home menu as shown."""
    for line in screen.splitlines():
        if f"  {label}" in line:
            return line.split(label)[0].strip(" │").split()[-1]
    raise AssertionError(f"{label!r} is not on the home menu:\n{screen}")


def in_chinese(msgid: str) -> str:
    from tui import i18n

    before = i18n.current_language()
    i18n.set_language("zh")
    try:
        return i18n._(msgid)
    finally:
        i18n.set_language(before)


def app_pids(home) -> list[int]:
    return [pid for pid in processes_with_env("RECORDKEEPER_HOME", str(home)) if alive(pid)]


def wait_until(condition, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {timeout:.0f} s")
        time.sleep(0.1)  # polling a process table, not a fixed wait


def error_log(home) -> str:
    path = home / "recordkeeper.log"
    return path.read_text() if path.exists() else ""


def audit_actions(home) -> list[str]:
    import sqlite3

    with sqlite3.connect(home / "recordkeeper.db") as connection:
        return [row[0] for row in connection.execute("SELECT action FROM audit_entry ORDER BY seq")]


def test_clerk_logs_in_over_ssh_opens_customers_and_quits(server, ssh_pane, demo_home):
    home, password = demo_home
    pane = ssh_pane()
    screen = log_in(pane, "clerk", password)
    customers_screen = dict((entry_id, screen_name) for entry_id, _l, _p, screen_name in MENU)["customers"]
    if customers_screen:
        pane.type(menu_number(screen, "Customers"))
        pane.wait_gone("Logged in as")
        pane.send("Enter")  # open the first customer on the list
        shown = pane.wait_for("C20")  # a customer number (`C` + year + sequence)
        pane.send("Escape")
        pane.send("Escape")
    else:  # the customer browser is not built yet: open the help of the home screen instead
        pane.send("F1")
        shown = pane.wait_for("Keys")
        pane.send("Escape")
    assert len(shown.splitlines()) <= 24
    pane.wait_for("Logged in as")
    pane.send("C-q")
    pane.wait_for("[exited 0]")  # the ssh client reports the app's exit status
    wait_until(lambda: not app_pids(home), what="the app ending")
    assert "Traceback" not in error_log(home)


def test_chinese_locale_travels_over_ssh(ssh_pane, demo_home):
    _home, password = demo_home
    pane = ssh_pane("zh_CN.UTF-8")
    pane.wait_for("用户名", "密码")
    pane.send("C-q")
    pane.wait_for("[exited 0]")


def test_a_command_gets_no_shell(server):
    marker = "no-shell-" + str(os.getpid())
    for command in (["/bin/sh", "-c", f"echo {marker}; id"], [f"echo {marker}"]):
        result = subprocess.run(server.ssh_args() + command, capture_output=True, text=True,
                                timeout=60, stdin=subprocess.DEVNULL)
        assert result.returncode == 5, result
        assert marker not in result.stdout and "uid=" not in result.stdout
        assert "only runs the records application" in result.stderr
    # A shell read from standard input (no terminal) gets nothing either.
    result = subprocess.run(server.ssh_args("-T"), input=f"echo {marker}\nid\n", capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 5 and marker not in result.stdout and "uid=" not in result.stdout


def test_a_command_with_a_terminal_still_gets_only_the_app(ssh_pane, server):
    marker = "no-shell-" + str(os.getpid())
    pane = ssh_pane("en_US.UTF-8", ("/bin/sh", "-c", f"'echo {marker}; id'"))
    screen = pane.wait_for("Username", "Password")
    assert marker not in screen
    pane.send("C-q")
    screen = pane.wait_for("[exited 0]")
    assert marker not in screen
    assert "forced-command" in server.log.read_text()


def test_port_forwarding_is_refused(server):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        local_port = probe.getsockname()[1]
    forward = subprocess.Popen(server.ssh_args("-N", "-o", "ExitOnForwardFailure=yes",
                                               "-L", f"{local_port}:127.0.0.1:{server.port}", log_level="INFO"),
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:  # wait for the client's local listener
            try:
                connection = socket.create_connection(("127.0.0.1", local_port), timeout=5)
                break
            except OSError:
                if forward.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with connection:
            connection.settimeout(10)
            received = connection.recv(100)  # the forwarded target would greet with "SSH-2.0"
        assert b"SSH-" not in received
    finally:
        forward.terminate()
        _out, errors = forward.communicate(timeout=10)
    assert "administratively prohibited" in errors

    remote = subprocess.run(server.ssh_args("-N", "-o", "ExitOnForwardFailure=yes",
                                            "-R", f"127.0.0.1:0:127.0.0.1:{server.port}"),
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert remote.returncode != 0
    assert "forwarding failed" in remote.stderr


def test_sftp_gets_no_session(server, demo_home):
    home, _password = demo_home
    result = subprocess.run(server.sftp_args(), input=f"ls {home}\nget {home}/keys/master.key\n",
                            capture_output=True, text=True, timeout=60, cwd=server.folder)
    assert result.returncode != 0
    assert "master.key" not in result.stdout
    assert not (server.folder / "master.key").exists()


def test_dropped_connection_mid_form_loses_nothing_and_the_draft_resumes(server, ssh_pane, demo_home):
    home, password = demo_home
    pane = ssh_pane("zh_CN.UTF-8")
    screen = log_in(pane, "clerk", password)
    pane.type(menu_number(screen, in_chinese("Intake")))
    pane.wait_for("＋")
    pane.send("Enter")  # "＋ New customer form"
    pane.wait_for("f10 ")
    typed = "欧阳断线"
    pane.type(typed)  # into the full name, then the link drops before the field is left
    pane.wait_for(typed)
    wait_until(lambda: len(app_pids(home)) == 1, what="the app starting")
    (app_pid,) = app_pids(home)
    logouts_before = audit_actions(home).count("LOGOUT")
    ssh_clients = [pid for pid in child_pids(pane.pid()) if os.path.basename(os.readlink(f"/proc/{pid}/exe")) == "ssh"]
    assert ssh_clients, "the pane runs no ssh client"
    os.kill(ssh_clients[0], 9)  # the link is gone, no goodbye
    wait_until(lambda: not alive(app_pid), what="the app exiting after the link dropped")
    assert "Traceback" not in error_log(home)
    actions = audit_actions(home)
    assert actions.count("LOGOUT") == logouts_before + 1  # the session was closed
    verify = subprocess.run([str(RECORDKEEPER), "audit", "verify"], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "RECORDKEEPER_HOME": str(home), **FAST}, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # The next login offers the unfinished form, and it holds what was typed.
    again = ssh_pane("zh_CN.UTF-8")
    again.wait_for("密码")
    again.type("clerk")
    again.send("Enter")
    again.type(password)
    again.send("Enter")
    again.wait_for(typed[0] + "*")  # the unfinished form, its name masked
    again.send("Enter")  # resume the highlighted (only) draft
    again.wait_for(typed, "f10 ")
    again.send("C-q")
    again.wait_for("[exited 0]")


def test_data_directory_stays_private(demo_home):
    home, _password = demo_home
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode & 0o077 == 0, f"{path} is mode {mode:o}"
