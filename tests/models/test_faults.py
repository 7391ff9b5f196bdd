"""Faults under the office: a busy, full or read-only database, a missing, unreadable or damaged key
store, a wrong master key, an audit log that refuses entries. Each is a clear refusal, nothing is
half-written, and nothing is shown that was not audited (security tests T16, T20)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from faker import Faker

from models import (audit, change_requests, clock, customers, demo, intake, keystore, office as office_mod,
                    storage)
from models import db as dbmod
from models.audit import AuditEntry
from models.change_requests import ChangeRequest
from models.db import db, is_sqlite, keys_db, write
from models.errors import KeyFileError
from models.intake import IntakeSubmission
from models.storage import StorageFailure

ROOT = Path(__file__).resolve().parents[2]


def sqlite_only(reason: str) -> None:
    if not is_sqlite():
        pytest.skip(reason)


def form(seed: int) -> dict[str, str]:
    fake, rng = Faker("zh_CN"), random.Random(seed)
    fake.seed_instance(seed)
    values = {**demo.fake_customer(fake, rng, clock.today()), "category": "active"}
    return {k: ("yes" if v is True else "no" if v is False else str(v)) for k, v in values.items()}


def counts() -> dict[str, int]:
    return {"audit": AuditEntry.select().count(), "customers": customers.Customer.select().count(),
            "submissions": IntakeSubmission.select().count(), "requests": ChangeRequest.select().count(),
            "approved": ChangeRequest.select().where(ChangeRequest.status == "approved").count(),
            "versions": sum(v for (v,) in customers.Customer.select(customers.Customer.version).tuples())}


@pytest.fixture
def busy_office(office, clerk, make_staff):
    """An office with customers, a pending intake and a pending change request."""
    reviewer = make_staff("reviewer", "reviewer")
    supervisor = make_staff("supervisor", "supervisor")
    number = customers.create_customer(clerk, {**form(1), "category": "active",
                                               "consent_marketing": False}).customer_no
    pending = intake.submit(clerk, None, form(2))
    version = customers.get_customer(clerk, number).version
    request = change_requests.submit_change_request(clerk, number, version, {"mobile": "13912345678"},
                                                    source="clerk_correction", reason="客户来电更正手机号码")
    return {"clerk": clerk, "reviewer": reviewer, "supervisor": supervisor, "number": number,
            "submission": pending, "request": request}


def attempts(o: dict) -> dict:
    """Every kind of work a clerk, reviewer and supervisor do, as callables."""
    clerk, number = o["clerk"], o["number"]
    return {
        "reveal": lambda: customers.reveal_fields(clerk, number, ["id_number", "mobile"], "call the customer"),
        "view": lambda: customers.get_customer(clerk, number),
        "search": lambda: customers.find_customers(clerk, "customer_no", number),
        "save draft": lambda: intake.save_draft(clerk, None, form(3)),
        "submit": lambda: intake.submit(clerk, None, form(4)),
        "approve intake": lambda: intake.approve_submission(o["reviewer"], o["submission"].submission_id, 1),
        "file change": lambda: change_requests.submit_change_request(
            clerk, number, customers.Customer.get(customers.Customer.customer_no == number).version,
            {"email": "new.address@example.com"}, source="clerk_correction", reason="客户来电更正邮箱地址"),
        "approve change": lambda: change_requests.approve_change_request(o["supervisor"], o["request"].request_id),
    }


def assert_every_attempt_refused(o: dict, message: str) -> None:
    before = counts()
    for name, attempt in attempts(o).items():
        with pytest.raises(StorageFailure) as refused:
            attempt()
        assert str(refused.value) == message, name
    assert counts() == before  # all-or-nothing: not one row, not one audit entry


# --- a busy database --------------------------------------------------------------------------


def _hold_write_lock(path: Path, seconds: float, holding: threading.Event) -> threading.Thread:
    import sqlite3

    def hold():
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        holding.set()
        time.sleep(seconds)  # another session's long write transaction
        other.execute("ROLLBACK")
        other.close()

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(5)
    return thread


def test_a_writer_queues_past_the_busy_timeout_instead_of_failing(office):
    sqlite_only("SQLite's write lock")
    db.execute_sql("PRAGMA busy_timeout = 100")
    holding = threading.Event()
    thread = _hold_write_lock(office.settings.database_path, 0.8, holding)
    started = time.monotonic()
    seq = audit.append(actor_id=None, actor="system", action="TEST_QUEUED")  # would be "database is locked"
    waited = time.monotonic() - started
    thread.join()
    assert waited >= 0.5 and AuditEntry.get_by_id(seq).action == "TEST_QUEUED"


def test_a_writer_gives_up_with_a_clear_message_and_writes_nothing(office, monkeypatch):
    sqlite_only("SQLite's write lock")
    monkeypatch.setattr(dbmod, "WRITE_PATIENCE_SECONDS", 0.3)
    db.execute_sql("PRAGMA busy_timeout = 50")
    before = AuditEntry.select().count()
    holding = threading.Event()
    thread = _hold_write_lock(office.settings.database_path, 1.0, holding)
    with pytest.raises(dbmod.DatabaseBusy, match="busy with other work and nothing was saved"):
        audit.append(actor_id=None, actor="system", action="TEST_GIVEN_UP")
    thread.join()
    assert AuditEntry.select().count() == before


# --- a full disk ------------------------------------------------------------------------------


def test_a_full_database_refuses_every_write_and_shows_nothing_unaudited(busy_office):
    sqlite_only("max_page_count is SQLite's; a full PostgreSQL disk is the server's to report")
    pages = db.execute_sql("PRAGMA page_count").fetchone()[0]
    db.execute_sql(f"PRAGMA max_page_count = {pages}")
    for _ in range(5000):  # use up the free space left in the last pages
        try:
            audit.append(actor_id=None, actor="system", action="FILLER")
        except Exception as exc:
            assert "full" in str(exc)
            break
    else:
        pytest.fail("the database never filled up")
    assert_every_attempt_refused(busy_office, storage.FULL)
    db.execute_sql("PRAGMA max_page_count = 1073741823")  # space again: everything works, nothing was lost
    shown = customers.reveal_fields(busy_office["clerk"], busy_office["number"], ["mobile"], "call back")
    assert shown.revealed == frozenset({"mobile"})
    change_requests.approve_change_request(busy_office["supervisor"], busy_office["request"].request_id)
    assert db.execute_sql("PRAGMA integrity_check").fetchone()[0] == "ok" and audit.verify_chain().ok


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                          capture_output=True)
    return done.returncode == 0


def test_a_real_full_disk_refuses_and_recovers(tmp_path, frozen_clock):
    """The office on a small filesystem filled to the last byte (needs permission to mount a tmpfs)."""
    if os.environ.get("RK_TEST_DATABASE"):
        pytest.skip("the office's files on a small disk: SQLite")
    mount = tmp_path / "small-disk"
    if os.geteuid() != 0 or shutil.which("mount") is None or not _tmpfs(mount, "6m"):
        pytest.skip("mounting a small tmpfs needs root (CAP_SYS_ADMIN)")
    try:
        from tests.conftest import TEST_PASSWORD, make_settings
        from models import migrations, staff

        settings = make_settings(mount / "office")
        office_mod.create_office_files(settings)
        office_mod.open_office(settings, check_schema=False)
        migrations.migrate()
        staff.create_first_admin("admin", TEST_PASSWORD)
        admin = staff.authenticate("admin", TEST_PASSWORD)
        for name, role in (("clerk", "clerk"), ("reviewer", "reviewer"), ("supervisor", "supervisor")):
            staff.add_staff(admin, name, name, TEST_PASSWORD, (role,))
        clerk, reviewer, supervisor = (staff.authenticate(n, TEST_PASSWORD)
                                       for n in ("clerk", "reviewer", "supervisor"))
        number = customers.create_customer(clerk, {**form(1), "consent_marketing": False}).customer_no
        submission = intake.submit(clerk, None, form(2))
        request = change_requests.submit_change_request(
            clerk, number, 1, {"mobile": "13912345678"}, source="clerk_correction", reason="客户来电更正手机号码")
        o = {"clerk": clerk, "reviewer": reviewer, "supervisor": supervisor, "number": number,
             "submission": submission, "request": request}
        dbmod.checkpoint_truncate()
        filler = mount / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for size in (65536, 4096, 1):  # every free block, down to the last byte
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError:
                    pass
        finally:
            os.close(fd)
        for _ in range(2000):  # the WAL's last pages
            try:
                audit.append(actor_id=None, actor="system", action="FILLER")
            except Exception:
                break
        assert_every_attempt_refused(o, storage.FULL)
        filler.unlink()
        shown = customers.reveal_fields(clerk, number, ["mobile"], "call back")
        assert shown.revealed == frozenset({"mobile"})
        assert db.execute_sql("PRAGMA integrity_check").fetchone()[0] == "ok" and audit.verify_chain().ok
    finally:
        office_mod.close_office()
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


# --- read-only ---------------------------------------------------------------------------------


def test_a_database_turned_read_only_mid_session_refuses_every_write(busy_office):
    sqlite_only("query_only is SQLite's; PostgreSQL: see test_a_read_only_server_is_refused_at_open")
    db.execute_sql("PRAGMA query_only = 1")  # SQLITE_READONLY, exactly as for a read-only file
    try:
        assert_every_attempt_refused(busy_office, storage.READ_ONLY)
    finally:
        db.execute_sql("PRAGMA query_only = 0")
    assert audit.verify_chain().ok


def test_a_read_only_server_is_refused_at_open(office):
    if is_sqlite():
        pytest.skip("PostgreSQL default_transaction_read_only (a standby behaves the same)")
    settings = office.settings
    office_mod.close_office()
    url = settings.database_url + "%20-cdefault_transaction_read_only%3Don"
    with pytest.raises(StorageFailure, match="read-only"):
        office_mod.open_office(replace(settings, database_url=url))


PROBE = """
import json, sys
from pathlib import Path
from tests.conftest import make_settings
from models import office, staff
result = {}
try:
    office.open_office(make_settings(Path(sys.argv[1]), database_url=sys.argv[2]))
    staff.authenticate("admin", "correct horse battery")
    result = {"opened": True}
except Exception as exc:
    result = {"opened": False, "type": type(exc).__name__, "message": str(exc)}
print(json.dumps(result))
"""


def _open_unprivileged(home: Path, database_url: str) -> dict:
    """Open the office in a process for which file modes count (root without CAP_DAC_OVERRIDE)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root ignores file modes and setpriv is not installed to drop that privilege")
        caps = "-dac_override,-dac_read_search"
        prefix = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RK_TEST_DATABASE", None)
    done = subprocess.run([*prefix, sys.executable, "-c", PROBE, str(home), database_url], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("what, path, mode, expected", [
    ("database file", "recordkeeper.db", 0o400, "the database cannot be written"),
    ("data directory", ".", 0o500, "the database cannot be written"),
    ("key store file", "keys/keystore.db", 0o400, "the key store cannot be written"),
    ("unreadable key store", "keys/keystore.db", 0o000, "the key store"),
])
def test_read_only_or_unreadable_files_are_refused_at_open(office, what, path, mode, expected):
    if not is_sqlite() and what in ("database file", "data directory"):
        pytest.skip("the main database is on the server")
    home = office.settings.home
    before = counts()
    office_mod.close_office()
    target = home / path
    original = target.stat().st_mode & 0o777
    os.chmod(target, mode)
    try:
        outcome = _open_unprivileged(home, office.settings.database_url)
    finally:
        os.chmod(target, original)
    assert outcome["opened"] is False and outcome["type"] in ("StorageFailure", "KeyFileError"), outcome
    assert outcome["message"].startswith(expected) and str(home) in outcome["message"], outcome
    office_mod.open_office(office.settings)
    assert counts() == before  # the refused start wrote nothing (not even a failed login)


# --- the key store and the master key -----------------------------------------------------------


def test_a_missing_key_store_is_refused_and_not_recreated(busy_office, office):
    settings = office.settings
    office_mod.close_office()
    aside = settings.keystore_path.with_name("aside.db")
    settings.keystore_path.rename(aside)
    for suffix in ("-wal", "-shm"):
        Path(str(settings.keystore_path) + suffix).unlink(missing_ok=True)
    with pytest.raises(KeyFileError, match="key store .* is missing.*will not create an empty one"):
        office_mod.open_office(settings)
    assert not settings.keystore_path.exists()
    aside.rename(settings.keystore_path)
    office_mod.open_office(settings)
    assert customers.get_customer(busy_office["clerk"], busy_office["number"]).values["full_name"] != "?"


def test_a_damaged_key_store_is_refused(busy_office, office):
    settings = office.settings
    office_mod.close_office()
    saved = settings.keystore_path.read_bytes()
    for suffix in ("-wal", "-shm"):
        Path(str(settings.keystore_path) + suffix).unlink(missing_ok=True)
    settings.keystore_path.write_bytes(b"this is not a database " * 200)
    try:
        with pytest.raises(KeyFileError, match="key store .* is damaged"):
            office_mod.open_office(settings)
    finally:
        settings.keystore_path.write_bytes(saved)
    office_mod.open_office(settings)


def test_a_wrong_master_key_is_refused_before_anything_is_written(busy_office, office):
    settings = office.settings
    before = counts()
    keys_before = keystore.DataKey.select().count()
    office_mod.close_office()
    right = settings.master_key_path.read_bytes()
    settings.master_key_path.write_bytes(os.urandom(len(right)))
    try:
        with pytest.raises(KeyFileError, match="master key .* does not open this office's key store"):
            office_mod.open_office(settings)
    finally:
        settings.master_key_path.write_bytes(right)
    office_mod.open_office(settings)
    assert counts() == before and keystore.DataKey.select().count() == keys_before


def test_a_missing_master_key_is_refused(office):
    settings = office.settings
    office_mod.close_office()
    aside = settings.master_key_path.with_name("aside.key")
    settings.master_key_path.rename(aside)
    try:
        with pytest.raises(KeyFileError, match="master.key"):
            office_mod.open_office(settings)
    finally:
        aside.rename(settings.master_key_path)


# --- an audit log that refuses entries (fail closed) -----------------------------------------------


def _refuse_audit_inserts() -> None:
    if is_sqlite():
        db.execute_sql("CREATE TRIGGER test_audit_refuses BEFORE INSERT ON audit_entry "
                       "BEGIN SELECT RAISE(ABORT, 'audit store unavailable'); END")
    else:
        db.execute_sql("CREATE FUNCTION test_audit_refuses() RETURNS trigger AS $$ BEGIN "
                       "RAISE EXCEPTION 'audit store unavailable'; END; $$ LANGUAGE plpgsql")
        db.execute_sql("CREATE TRIGGER test_audit_refuses BEFORE INSERT ON audit_entry "
                       "FOR EACH ROW EXECUTE FUNCTION test_audit_refuses()")


def test_when_the_database_refuses_audit_entries_nothing_is_shown_or_changed(busy_office, monkeypatch):
    decrypted = []
    real = customers.decrypt_fields
    monkeypatch.setattr(customers, "decrypt_fields", lambda *a, **k: decrypted.append(a[0]) or real(*a, **k))
    before = counts()
    _refuse_audit_inserts()
    for name, attempt in attempts(busy_office).items():
        decrypted.clear()
        with pytest.raises(Exception, match="audit store unavailable"):
            attempt()
        if name in ("reveal", "view", "search"):
            assert decrypted == [], f"{name}: decrypted although its audit entry was refused"
    assert counts() == before


# --- PostgreSQL: the server drops the connection ------------------------------------------------------


def test_a_lost_server_connection_is_a_clear_refusal_and_the_session_recovers(busy_office, office):
    if is_sqlite():
        pytest.skip("a server connection is PostgreSQL's")
    import psycopg

    clerk, number = busy_office["clerk"], busy_office["number"]
    backend = db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    with psycopg.connect(office.settings.database_url, autocommit=True) as admin_connection:
        admin_connection.execute("SELECT pg_terminate_backend(%s)", (backend,))  # a server restart, as seen here
    with pytest.raises(StorageFailure) as refused:
        customers.reveal_fields(clerk, number, ["mobile"], "call the customer back")
    assert str(refused.value) == storage.UNREACHABLE
    shown = customers.reveal_fields(clerk, number, ["mobile"], "call the customer back")  # reconnected
    assert shown.revealed == frozenset({"mobile"}) and audit.verify_chain().ok


def test_a_key_store_held_too_long_by_another_session_is_a_clear_refusal(busy_office, office):
    sqlite_only("the key store's lock (the main database's writers queue instead)")
    import sqlite3

    keys_db.execute_sql("PRAGMA busy_timeout = 100")
    before = counts()
    holder = sqlite3.connect(office.settings.keystore_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another session in the middle of a long key-store write
    try:
        with pytest.raises(StorageFailure) as refused:
            intake.save_draft(busy_office["clerk"], None, form(9))  # its first save makes a data key
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert str(refused.value) == storage.BUSY and counts() == before
    assert intake.save_draft(busy_office["clerk"], None, form(9)).created  # and works once the lock is free
