"""A real OpenSSH server on a loopback port, configured with the README's "Deployment over SSH" block.

It runs as the current user with a host key, an authorized key and a config made in a temp
folder; the README's sshd block is read and used as it stands, with only its paths, the account
name and the SetEnv line replaced, so the documented configuration is the tested one.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.terminal.tmux import RECORDKEEPER, ROOT

SSHD = shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.path.exists(p)),
                                    None)
SSH = shutil.which("ssh")
SFTP = shutil.which("sftp")
SSH_KEYGEN = shutil.which("ssh-keygen")
LAUNCHER = ROOT / "deploy" / "recordkeeper-ssh"
PRIVSEP_DIR = Path("/run/sshd")  # compiled into Debian's sshd; root-run sshd refuses to start without it

needs_openssh = pytest.mark.skipif(
    not (SSHD and SSH and SFTP and SSH_KEYGEN),
    reason="OpenSSH server and client (sshd, ssh, sftp, ssh-keygen) are needed to test the SSH deployment",
)

README = ROOT / "README.md"
README_PATHS = {  # what the README's configuration names -> what this test uses
    "/opt/recordkeeper/bin/recordkeeper-ssh": "{launcher}",
    "/opt/recordkeeper/venv/bin/recordkeeper": "{app}",
    "/etc/ssh/authorized_keys/%u": "{authorized_keys}",
    "Match User records": "Match User {user}",
}


def readme_sshd_config() -> str:
    """The sshd configuration block of the README's "Deployment over SSH" section, verbatim."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Deployment over SSH"):]
    section = section[section.index("**2. sshd**"):]
    start = section.index("```\n") + 4
    return section[start:section.index("```", start)]


def deployment_config(**values: str) -> str:
    """The README's block with this test's paths, user and environment (its SetEnv line replaced)."""
    lines = []
    for line in readme_sshd_config().splitlines():
        if line.strip().startswith("SetEnv "):
            line = line[: len(line) - len(line.lstrip())] + "SetEnv {set_env}"
        for documented, placeholder in README_PATHS.items():
            line = line.replace(documented, placeholder)
        lines.append(line)
    missing = [documented for documented in README_PATHS if documented not in readme_sshd_config()]
    assert not missing, f"the README's sshd block no longer names {missing}"
    return "\n".join(lines).format(**values) + "\n"


GLOBAL_CONFIG = """\
ListenAddress 127.0.0.1
Port {port}
HostKey {host_key}
PidFile {pid_file}
UsePAM no
StrictModes no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
MaxAuthTries 3
LoginGraceTime 30
LogLevel VERBOSE
# Present on purpose: ForceCommand must win over it for the records account.
Subsystem sftp internal-sftp
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True)


@dataclass
class SshServer:
    """A running sshd and everything a client needs to reach it."""

    port: int
    user: str
    folder: Path
    client_key: Path
    known_hosts: Path
    log: Path
    process: subprocess.Popen

    def ssh_args(self, *extra: str, log_level: str = "ERROR") -> list[str]:
        """The ssh command line (no user config, pinned host key, key only) with `extra` options."""
        return [SSH, "-F", "/dev/null", "-i", str(self.client_key), "-o", "IdentitiesOnly=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", f"LogLevel={log_level}", "-o", "SendEnv=LANG",
                "-p", str(self.port), *extra, f"{self.user}@127.0.0.1"]

    def sftp_args(self) -> list[str]:
        return [SFTP, "-F", "/dev/null", "-i", str(self.client_key), "-o", "IdentitiesOnly=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-P", str(self.port), "-b", "-", f"{self.user}@127.0.0.1"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_sshd(folder: Path, app_env: dict[str, str]) -> SshServer:
    """Start sshd on a free loopback port; the forced command gets `app_env` through SetEnv."""
    folder.mkdir(parents=True, exist_ok=True)
    host_key, client_key = folder / "host_ed25519", folder / "client_ed25519"
    _keygen(host_key)
    _keygen(client_key)
    authorized_keys = folder / "authorized_keys"
    authorized_keys.write_text(client_key.with_suffix(".pub").read_text())
    os.chmod(authorized_keys, 0o600)
    port = _free_port()
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key.with_suffix('.pub').read_text().strip()}\n")
    user = getpass.getuser()
    set_env = " ".join(f'"{key}={value}"' for key, value in app_env.items())
    config = folder / "sshd_config"
    config.write_text(
        GLOBAL_CONFIG.format(port=port, host_key=host_key, pid_file=folder / "sshd.pid")
        + deployment_config(user=user, launcher=str(LAUNCHER), app=str(RECORDKEEPER),
                            authorized_keys=str(authorized_keys), set_env=set_env)
    )
    if os.geteuid() == 0 and not PRIVSEP_DIR.exists():
        PRIVSEP_DIR.mkdir(mode=0o755)  # what the distribution's service unit creates at boot
    check = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True)
    if check.returncode != 0:
        raise AssertionError(f"sshd rejects the deployment config:\n{check.stderr}")
    log = folder / "sshd.log"
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                               stderr=log.open("w"))
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"sshd did not start:\n{log.read_text()}") from None
            time.sleep(0.05)  # polling for the port, not a fixed wait
    return SshServer(port, user, folder, client_key, known_hosts, log, process)


def processes_with_env(name: str, value: str) -> list[int]:
    """Pids of our own processes whose environment holds `name=value` (the app behind an SSH session)."""
    wanted = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if wanted in environ and b"recordkeeper" in cmdline:
            found.append(int(entry.name))
    return found


def child_pids(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
