"""The audit chain under concurrent writers: serialised, so `seq` stays gapless and every link holds.

SQLite serialises writers with BEGIN IMMEDIATE; PostgreSQL with a transaction-scoped advisory lock
taken before the head is read (models/audit.py). The PostgreSQL test also shows what the lock
prevents: without it a second writer reads the same head and collides on the same `seq`.
"""

from __future__ import annotations

import threading
import time

import peewee as pw
import pytest

from models import audit
from models.audit import AuditEntry
from models.db import db, is_sqlite, write


def _in_thread(target, errors: list, *args) -> threading.Thread:
    def run():
        try:
            target(*args)
        except Exception as exc:  # reported to the test, which asserts on them
            errors.append(exc)
        finally:
            db.close()  # this thread's own connection

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_many_concurrent_writers_keep_the_chain_gapless(office):
    base = AuditEntry.select().count()
    errors: list[Exception] = []

    def writer(n: int) -> None:
        for i in range(25):
            with write():
                audit.append(actor_id=None, actor=f"writer{n}", action="TEST_CONCURRENT", object_id=str(i))

    threads = [_in_thread(writer, errors, n) for n in range(8)]
    for thread in threads:
        thread.join(120)
    assert errors == []
    seqs = [s for (s,) in AuditEntry.select(AuditEntry.seq).order_by(AuditEntry.seq).tuples()]
    assert seqs == list(range(1, base + 8 * 25 + 1))
    result = audit.verify_chain()
    assert result.ok and result.entries == base + 200


def _waiting_locks() -> int:
    return db.execute_sql("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[0]


def _two_overlapping_writers(errors: list) -> None:
    """A appends and holds its transaction open until B is blocked behind it, then commits."""
    a_appended, b_started = threading.Event(), threading.Event()

    def first() -> None:
        with write():
            audit.append(actor_id=None, actor="first", action="TEST_OVERLAP")
            a_appended.set()
            b_started.wait(10)
            deadline = time.monotonic() + 10
            if is_sqlite():
                time.sleep(0.3)  # B is queued on BEGIN IMMEDIATE (no lock table to look at)
            else:
                while _waiting_locks() == 0 and time.monotonic() < deadline:
                    time.sleep(0.01)  # polling until B waits on a lock held by this transaction

    def second() -> None:
        a_appended.wait(10)
        b_started.set()
        audit.append(actor_id=None, actor="second", action="TEST_OVERLAP")

    threads = [_in_thread(first, errors), _in_thread(second, errors)]
    for thread in threads:
        thread.join(60)


def test_an_overlapping_writer_waits_for_the_head_and_links_to_it(office):
    errors: list[Exception] = []
    _two_overlapping_writers(errors)
    assert errors == []
    last_two = list(AuditEntry.select().order_by(AuditEntry.seq.desc()).limit(2))
    assert [e.actor for e in reversed(last_two)] == ["first", "second"]
    assert last_two[0].prev_hash == last_two[1].hash and audit.verify_chain().ok


def test_without_the_advisory_lock_postgresql_writers_collide(office, monkeypatch):
    if is_sqlite():
        pytest.skip("PostgreSQL's advisory lock (SQLite serialises at BEGIN IMMEDIATE)")
    monkeypatch.setattr(audit, "_lock_chain", lambda: None)
    errors: list[Exception] = []
    _two_overlapping_writers(errors)
    assert len(errors) == 1 and isinstance(errors[0], pw.IntegrityError), errors  # the same seq twice
    assert audit.verify_chain().ok  # the loser was rolled back: nothing forked


# --- numbers drawn from a counter (PostgreSQL: two first-of-the-year customers at once) ----------------


def test_two_sessions_drawing_the_first_number_of_a_year_get_one_each(office):
    from models import customers

    errors: list[Exception] = []
    drawn: list[str] = []
    first_drawn, second_started = threading.Event(), threading.Event()

    def first() -> None:
        with write():
            drawn.append(customers._next_customer_no(2031))  # the year's counter row does not exist yet
            first_drawn.set()
            second_started.wait(10)
            deadline = time.monotonic() + 10
            if is_sqlite():
                time.sleep(0.3)  # the second session queues on BEGIN IMMEDIATE
            else:
                while _waiting_locks() == 0 and time.monotonic() < deadline:
                    time.sleep(0.01)  # polling until the second waits on this transaction

    def second() -> None:
        first_drawn.wait(10)
        second_started.set()
        with write():
            drawn.append(customers._next_customer_no(2031))

    threads = [_in_thread(first, errors), _in_thread(second, errors)]
    for thread in threads:
        thread.join(60)
    assert errors == [], errors  # before the fix: IntegrityError (both inserted the year's row)
    assert sorted(drawn) == ["C2031000001", "C2031000002"]
