"""Backups with manifests, verification, pruning, and restores that never bring a destroyed customer back."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import models.db
from models import audit, backup, clock, customers, destruction, keystore, ledger, office as office_mod
from models.audit import AuditEntry
from models.customers import Customer
from models.destruction import DestructionRegister
from models.errors import Conflict, IntegrityFailure, NotFound, ValidationError
from models.keystore import DataKey
from tests.models.test_destruction import approved_request, make_customers, terminated_long_ago


@pytest.fixture
def officer(make_staff):
    return make_staff("officer", "records_officer")


def _sqlite_only():
    if not models.db.is_sqlite():
        pytest.skip("SQLite files and the SQLite backup API")


def test_a_backup_has_a_manifest_and_verifies(office, settings, clerk):
    make_customers(clerk, 3)
    result = backup.take_backup()
    manifest = result.manifest
    assert manifest["counts"]["customer"] == 3 and manifest["schema_version"] >= 6
    assert manifest["sha256"] == backup._sha256(result.database_file)
    assert manifest["engine"] == ("sqlite" if models.db.is_sqlite() else "postgresql")
    # Key-store backups live apart from the database backups.
    assert result.keystore_file.parent == settings.key_dir / "backups"
    assert result.database_file.parent == settings.home / "backups"
    for path in (result.database_file, result.keystore_file, result.ledger_copy):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert backup.verify_backup(result.database_file).ok
    checked = backup.verify_backup(result.keystore_file)
    assert checked.ok and checked.kind == "keystore" and checked.manifest["counts"]["data_key"] == 3
    assert AuditEntry.select().where(AuditEntry.action == "BACKUP").count() == 1


def test_verify_finds_a_damaged_or_unlisted_backup(office, tmp_path, clerk):
    make_customers(clerk, 2)
    result = backup.take_backup()
    damaged = tmp_path / result.database_file.name
    shutil.copy(result.database_file, damaged)
    shutil.copy(backup.manifest_path(result.database_file), backup.manifest_path(damaged))
    shutil.copy(result.ledger_copy, tmp_path / result.ledger_copy.name)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    checked = backup.verify_backup(damaged)
    assert not checked.ok and any("SHA-256" in p for p in checked.problems)
    backup.manifest_path(damaged).unlink()
    with pytest.raises(backup.BackupError):
        backup.verify_backup(damaged)


def test_keep_prunes_old_sets_and_key_store_backups_expire(office, settings, clerk):
    make_customers(clerk, 1)
    first = backup.take_backup()
    clock.advance(dt.timedelta(days=1))
    second = backup.take_backup()
    clock.advance(dt.timedelta(days=1))
    third = backup.take_backup(keep=2)
    assert not first.database_file.exists() and not first.ledger_copy.exists()
    assert second.database_file.exists() and third.database_file.exists()
    assert first.keystore_file.exists()  # key-store backups go by age, not by count
    clock.advance(dt.timedelta(days=29, hours=1))
    fourth = backup.take_backup(keep=2)
    assert not first.keystore_file.exists() and not second.keystore_file.exists()
    assert third.keystore_file.exists() and fourth.keystore_file.exists()
    with pytest.raises(ValidationError):
        backup.take_backup(keystore_days=31)  # would keep destroyed customers recoverable for longer
    with pytest.raises(ValidationError):
        backup.take_backup(keep=0)
    with pytest.raises(ValidationError):
        backup.take_backup(settings.home / "same", settings.home / "same")


def test_two_backups_in_the_same_instant_are_both_kept(office, clerk):
    make_customers(clerk, 1)
    first, second = backup.take_backup(), backup.take_backup()  # the clock is frozen
    assert first.database_file != second.database_file and first.keystore_file != second.keystore_file
    assert sorted([second.database_file.name, first.database_file.name])[0] == first.database_file.name
    assert backup.verify_backup(first.database_file).ok and backup.verify_backup(second.database_file).ok


def _destroy(clerk, officer, supervisor, seed=51):
    (number,) = terminated_long_ago(clerk, officer, 1, seed=seed)
    row = Customer.get(Customer.customer_no == number)
    return number, row.id, row.key_id


def test_backup_destroy_restore_the_older_backup_and_the_customer_stays_destroyed(
        office, settings, clerk, officer, supervisor):
    number, customer_id, key_id = _destroy(clerk, officer, supervisor)
    (bystander,) = make_customers(clerk, 1, seed=52)
    taken = backup.take_backup()
    destruction.execute_request(officer, approved_request(officer, supervisor, [number]))
    assert not DataKey.select().where(DataKey.key_id == key_id).exists()

    result = backup.restore_backup(taken.database_file, force=True, keystore_backup=taken.keystore_file)
    assert result.in_place and result.audit_ok
    assert result.replayed_keys == 1 and result.replayed_customers == 1
    # The audit entries written after the backup are gone from the database; the signed checkpoints that
    # showed them are kept aside, and the RESTORE entry says how many were lost.
    assert result.audit_entries_lost > 0 and (settings.home / result.checkpoints_archived).is_dir()
    assert not Customer.select().where(Customer.id == customer_id).exists()
    assert not DataKey.select().where(DataKey.key_id == key_id).exists()
    with pytest.raises(NotFound):
        customers.get_customer(officer, number)
    with pytest.raises(IntegrityFailure):
        keystore.load_data_key(key_id)  # the old backup's ciphertext has no key to open it
    (entry,) = DestructionRegister.select().where(DestructionRegister.customer_id == customer_id)
    assert entry.replayed and entry.executed_by == "officer" and entry.approved_by == "supervisor"
    assert customers.get_customer(officer, bystander).customer_no == bystander
    assert audit.verify_chain().ok
    assert AuditEntry.select().where(AuditEntry.action == "RESTORE").count() == 1


def test_a_request_approved_before_the_backup_and_executed_after_is_finished_by_the_restore(
        office, settings, clerk, officer, supervisor):
    number, customer_id, key_id = _destroy(clerk, officer, supervisor)
    request_no = approved_request(officer, supervisor, [number])
    taken = backup.take_backup()  # the backup holds the request, approved, not yet executed
    destruction.execute_request(officer, request_no)
    result = backup.restore_backup(taken.database_file, force=True, keystore_backup=taken.keystore_file)
    assert result.finished_items == 1 and result.replayed_keys == 1
    assert not Customer.select().where(Customer.id == customer_id).exists()
    assert not DataKey.select().where(DataKey.key_id == key_id).exists()
    request = destruction.request_detail(officer, request_no).request
    assert (request.status, request.destroyed_count) == ("done", 1)
    (entry,) = destruction.destruction_register(officer)
    assert (entry.customer_no, entry.executed_by, entry.approved_by) == (number, "officer", "supervisor")
    assert audit.verify_chain().ok


def test_restore_without_force_builds_a_new_office_and_leaves_the_live_one(office, settings, clerk, officer,
                                                                           supervisor, tmp_path):
    _sqlite_only()
    number, customer_id, key_id = _destroy(clerk, officer, supervisor)
    taken = backup.take_backup()
    destruction.execute_request(officer, approved_request(officer, supervisor, [number]))
    live_customers = Customer.select().count()
    target = tmp_path / "restored-office"
    result = backup.restore_backup(taken.database_file, to=target, keystore_backup=taken.keystore_file)
    assert not result.in_place and result.home == target and result.replayed_customers == 1
    assert Customer.select().count() == live_customers  # the live office is untouched
    for name in ("recordkeeper.db", "keys/keystore.db", "keys/master.key", ledger.LEDGER_FILE):
        assert (target / name).exists(), name
    conn = sqlite3.connect(target / "recordkeeper.db")
    assert conn.execute("SELECT COUNT(*) FROM customer WHERE id = ?", (customer_id,)).fetchone()[0] == 0
    conn.close()
    keys = sqlite3.connect(target / "keys" / "keystore.db")
    assert keys.execute("SELECT COUNT(*) FROM data_key WHERE key_id = ?", (key_id,)).fetchone()[0] == 0
    keys.close()
    with pytest.raises(backup.BackupError):  # never over a directory in use
        backup.restore_backup(taken.database_file, to=target)


def test_an_old_database_copied_back_by_hand_is_replayed_before_anyone_is_served(
        office, settings, clerk, officer, supervisor):
    _sqlite_only()
    number, customer_id, key_id = _destroy(clerk, officer, supervisor)
    taken = backup.take_backup()
    destruction.execute_request(officer, approved_request(officer, supervisor, [number]))
    office_mod.close_office()
    for suffix in ("-wal", "-shm"):
        Path(str(settings.database_path) + suffix).unlink(missing_ok=True)
        Path(str(settings.keystore_path) + suffix).unlink(missing_ok=True)
    shutil.copy(taken.database_file, settings.database_path)
    shutil.copy(taken.keystore_file, settings.keystore_path)
    conn = sqlite3.connect(settings.database_path)
    assert conn.execute("SELECT COUNT(*) FROM customer WHERE id = ?", (customer_id,)).fetchone()[0] == 1
    conn.close()
    office_mod.open_office(settings)  # the start-up check replays the ledger
    assert not Customer.select().where(Customer.id == customer_id).exists()
    assert not DataKey.select().where(DataKey.key_id == key_id).exists()
    assert AuditEntry.select().where(AuditEntry.action == "DESTRUCTION_REPLAY").count() == 1


def test_a_backup_taken_during_concurrent_writes_restores_consistently(office, settings, clerk, tmp_path):
    _sqlite_only()
    make_customers(clerk, 5, seed=60)
    stop = threading.Event()
    written = []

    def writer():
        seed = 61
        while not stop.is_set():
            written.extend(make_customers(clerk, 1, seed=seed))
            seed += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 3:
            threading.Event().wait(0.01)
        taken = backup.take_backup()
        at_backup = len(written)
        while len(written) < at_backup + 2:  # writes go on after the snapshot too
            threading.Event().wait(0.01)
    finally:
        stop.set()
        thread.join()
    assert backup.verify_backup(taken.database_file).ok
    result = backup.restore_backup(taken.database_file, to=tmp_path / "copy", keystore_backup=taken.keystore_file)
    assert result.audit_ok and result.customers_without_key == 0
    assert result.customers == taken.manifest["counts"]["customer"]
    assert 5 + 3 <= result.customers <= 5 + len(written)
    # Every restored customer decrypts with the restored key store.
    office_mod.open_office(replace_home(settings, tmp_path / "copy"))
    rows = list(Customer.select(Customer.customer_no))
    assert len(rows) == result.customers
    for row in rows:
        assert customers.get_customer(clerk, row.customer_no).customer_no == row.customer_no
    assert audit.verify_chain().ok


def replace_home(settings, home: Path):
    from dataclasses import replace

    return replace(settings, home=home)


# --- partial files left by an interrupted backup ---------------------------------------------------


def _interrupted_backup(monkeypatch) -> None:
    """A backup that stops after writing the key-store snapshot's NAME.tmp (as a kill would leave it)."""
    real_facts = backup._sqlite_facts

    def facts(path):
        if path.name.startswith(backup.KEYSTORE_PREFIX):
            raise KeyboardInterrupt("interrupted")
        return real_facts(path)

    monkeypatch.setattr(backup, "_sqlite_facts", facts)
    with pytest.raises(KeyboardInterrupt):
        backup.take_backup()
    monkeypatch.setattr(backup, "_sqlite_facts", real_facts)


def test_the_next_backup_removes_the_partial_files_an_interrupted_one_left(office, settings, clerk, tmp_path,
                                                                          monkeypatch):
    make_customers(clerk, 2)
    dest, keys_dest = settings.home / "backups", settings.key_dir / "backups"
    kept = backup.take_backup()
    _interrupted_backup(monkeypatch)
    (keys_partial,) = keys_dest.glob("*.tmp")
    assert keys_partial.name.startswith(backup.KEYSTORE_PREFIX) and keys_partial.stat().st_size > 0
    evidence = tmp_path / "same-inode"
    evidence.hardlink_to(keys_partial)  # shows whether the wrapped keys were overwritten before the unlink
    # What a kill during the database snapshot or a manifest write leaves (one name per kind).
    stamp = "20261124T235959123Z"
    db_partials = [dest / f"recordkeeper-{stamp}.db.tmp", dest / f"recordkeeper-{stamp}.db.tmp-journal",
                   dest / f"recordkeeper-{stamp}_02.pgdump.tmp",
                   dest / f"recordkeeper-{stamp}.db.manifest.json.tmp"]
    for path in db_partials:
        path.write_bytes(b"partial")
    # Not ours, or not a file: left alone.
    outside = tmp_path / "outside.db"
    outside.write_bytes(b"someone else's file")
    strangers = [dest / "notes.tmp", dest / "recordkeeper-copy.db.tmp", keys_dest / f"recordkeeper-{stamp}.db.tmp",
                 dest / f"keystore-{stamp}.db.tmp", dest / f"recordkeeper-{stamp}.db.tmp.bak"]
    for path in strangers:
        path.write_bytes(b"keep me")
    link = keys_dest / f"keystore-{stamp}_03.db.tmp"
    link.symlink_to(outside)

    result = backup.take_backup()

    assert sorted(result.partial_removed) == sorted([*db_partials, keys_partial])
    assert not any(p.exists() for p in result.partial_removed)
    assert set(evidence.read_bytes()) == {0}, "a key-store partial is overwritten before it is unlinked"
    assert all(p.read_bytes() == b"keep me" for p in strangers)
    assert link.is_symlink() and outside.read_bytes() == b"someone else's file"
    assert kept.database_file.exists() and backup.verify_backup(kept.keystore_file).ok
    assert backup.verify_backup(result.database_file).ok and backup.verify_backup(result.keystore_file).ok
    entry = AuditEntry.select().where(AuditEntry.action == "BACKUP").order_by(AuditEntry.seq.desc()).get()
    assert json.loads(entry.details)["partial_removed"] == 5
    assert backup.take_backup().partial_removed == [], "nothing left to remove the next time"


def test_partial_files_are_never_removed_while_another_backup_holds_the_lock(office, settings, clerk,
                                                                              monkeypatch):
    make_customers(clerk, 1)
    _interrupted_backup(monkeypatch)
    dest, keys_dest = settings.home / "backups", settings.key_dir / "backups"
    (keys_partial,) = keys_dest.glob("*.tmp")
    backups_before = AuditEntry.select().where(AuditEntry.action == "BACKUP").count()
    with backup._backup_lock(dest, keys_dest):  # a backup is running
        with pytest.raises(Conflict, match="another backup"):
            backup.take_backup()
        assert keys_partial.exists(), "it may be the running backup's file"
    assert AuditEntry.select().where(AuditEntry.action == "BACKUP").count() == backups_before
    assert backup.take_backup().partial_removed == [keys_partial]


def test_a_killed_backup_process_releases_the_lock(office, settings, clerk):
    make_customers(clerk, 1)
    dest, keys_dest = settings.home / "backups", settings.key_dir / "backups"
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys_dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom pathlib import Path\nfrom models import backup\n"
                               "with backup._backup_lock(Path(sys.argv[1]), Path(sys.argv[2])):\n"
                               "    print('locked', flush=True)\n    sys.stdin.read()\n", str(dest), str(keys_dest)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(Conflict):
            backup.take_backup()
    finally:
        holder.kill()
        holder.wait()
    assert backup.verify_backup(backup.take_backup().database_file).ok


def test_the_backup_command_says_how_many_partial_files_it_removed(office, settings, clerk, monkeypatch, capsys):
    from tui import cli

    make_customers(clerk, 1)
    _interrupted_backup(monkeypatch)
    monkeypatch.setenv("RECORDKEEPER_HOME", str(settings.home))
    monkeypatch.setenv("RECORDKEEPER_ARGON2_MEMORY_KIB", str(settings.argon2_memory_kib))
    if settings.database_url:
        monkeypatch.setenv("RECORDKEEPER_DATABASE_URL", settings.database_url)
    assert cli.main(["backup"]) == 0
    out = capsys.readouterr().out
    assert "removed 1 partial file(s) left by an interrupted backup" in out
    assert cli.main(["backup"]) == 0
    assert "partial" not in capsys.readouterr().out
