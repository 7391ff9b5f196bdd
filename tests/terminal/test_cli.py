"""The `recordkeeper` command as a real process: init, key checks, audit verify, settings, demo."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import subprocess

import pytest

from models.normalise import resident_id_check_char
from tests.terminal.tmux import RECORDKEEPER, ROOT

ADMIN_PASSWORD = "tall-river-cedar-88"
FAST = {"RECORDKEEPER_ARGON2_MEMORY_KIB": "8192", "RECORDKEEPER_ARGON2_TIME_COST": "1"}


def run(home, *args, stdin: str = "", **env):
    full_env = {**os.environ, "RECORDKEEPER_HOME": str(home), **FAST, **env}
    full_env.pop("RECORDKEEPER_DATABASE_URL", None)
    return subprocess.run([str(RECORDKEEPER), *args], input=stdin, env=full_env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "office"
    result = run(home, "init", "--admin", "alice", "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    return home


def test_init_creates_private_key_files(home):
    assert stat.S_IMODE((home / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "keys" / "master.key").stat().st_mode) == 0o600
    assert run(home, "init", "--admin", "bob", "--password-stdin", stdin=ADMIN_PASSWORD + "\n").returncode == 1


def test_world_readable_master_key_stops_the_program_and_says_how_to_fix_it(home):
    key = home / "keys" / "master.key"
    os.chmod(key, 0o644)
    result = run(home, "audit", "verify")
    assert result.returncode == 2
    assert str(key) in result.stderr and "chmod 600" in result.stderr
    os.chmod(key, 0o600)
    os.chmod(home / "keys", 0o755)
    result = run(home, "audit", "verify")
    assert result.returncode == 2 and "chmod 700" in result.stderr


def test_symlinked_or_missing_master_key_is_refused(home):
    key = home / "keys" / "master.key"
    moved = home / "keys" / "elsewhere.key"
    key.rename(moved)
    result = run(home, "audit", "verify")
    assert result.returncode == 2 and "missing" in result.stderr
    key.symlink_to(moved)
    result = run(home, "audit", "verify")
    assert result.returncode == 2 and "symbolic link" in result.stderr


def test_hand_edited_audit_row_makes_verify_fail_naming_it(home):
    for username in ("wang", "li"):
        result = run(home, "staff", "--as", "alice", "--password-stdin", "add", username, "--roles", "clerk",
                     stdin=f"{ADMIN_PASSWORD}\nharbor-maple-summit-{len(username)}\n")
        assert result.returncode == 0, result.stderr
    result = run(home, "audit", "verify")
    assert result.returncode == 0 and "intact" in result.stdout
    entries = int(re.search(r"(\d+) entries", result.stdout).group(1))
    assert entries >= 5
    with sqlite3.connect(home / "recordkeeper.db") as conn:
        conn.execute("DROP TRIGGER audit_entry_no_update")  # what an attacker with file access does
        conn.execute("UPDATE audit_entry SET actor = 'mallory' WHERE seq = 3")
    result = run(home, "audit", "verify")
    assert result.returncode == 1
    assert "entry 3" in result.stdout


def test_audit_rows_cannot_be_changed_while_the_triggers_stand(home):
    with sqlite3.connect(home / "recordkeeper.db") as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM audit_entry WHERE seq = 1")


def test_bad_setting_names_it_and_exits_2(home):
    result = run(home, "audit", "verify", RECORDKEEPER_IDLE_LOCK_MINUTES="soon")
    assert result.returncode == 2 and "idle_lock_minutes" in result.stderr
    (home / "recordkeeper.toml").write_text("blind_index_bits = 99\n")
    result = run(home, "audit", "verify")
    assert result.returncode == 2 and "blind_index_bits" in result.stderr


def test_newer_or_older_schema_is_refused(home):
    with sqlite3.connect(home / "recordkeeper.db") as conn:
        conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (999, 'future')")
    result = run(home, "staff", "--as", "alice", "--password-stdin", "list", stdin=ADMIN_PASSWORD + "\n")
    assert result.returncode == 3 and "newer" in result.stderr
    with sqlite3.connect(home / "recordkeeper.db") as conn:
        conn.execute("DELETE FROM schema_version WHERE version >= 2")
    result = run(home, "staff", "--as", "alice", "--password-stdin", "list", stdin=ADMIN_PASSWORD + "\n")
    assert result.returncode == 3 and "recordkeeper migrate" in result.stderr


def _valid_resident_ids(data: bytes) -> set[str]:
    found = set()
    # Not glued to letters or '-': a customer number (C2026…) run into a key id's digits is not an ID.
    for match in re.finditer(rb"(?<![\dA-Za-z])(\d{17}[\dX])(?![\dA-Za-z-])", data):
        number = match.group(1).decode()
        if resident_id_check_char(number[:17]) == number[17]:
            found.add(number)
    return found


def test_no_valid_resident_id_in_any_file_of_a_demo_office(tmp_path):
    home = tmp_path / "demo"
    result = run(home, "demo", "--customers", "60", "--no-launch")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^password: \S+$", result.stdout, re.M)
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name.endswith("-wal") for p in files) or any(p.suffix == ".db" for p in files)
    for path in files:
        leaked = _valid_resident_ids(path.read_bytes())
        assert not leaked, f"{path.name} holds resident ID numbers in the clear"
