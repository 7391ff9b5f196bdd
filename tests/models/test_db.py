"""The SQLite connection settings every office runs with."""

from __future__ import annotations

import pytest

from models import db as dbmod


def test_sqlite_pragmas_are_set(office):
    if not dbmod.is_sqlite():
        pytest.skip("SQLite connection settings")
    for handle in (dbmod.db, dbmod.keys_db):
        pragma = lambda name: handle.execute_sql(f"PRAGMA {name}").fetchone()[0]  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == 2  # FULL
        assert pragma("foreign_keys") == 1
        assert pragma("secure_delete") == 1
        assert pragma("trusted_schema") == 0
        assert pragma("busy_timeout") == office.settings.busy_timeout_ms


def test_write_transactions_begin_immediate(office):
    if not dbmod.is_sqlite():
        pytest.skip("SQLite locking")
    statements = []
    connection = dbmod.db.connection()
    connection.set_trace_callback(statements.append)
    try:
        with dbmod.write():
            dbmod.db.execute_sql("SELECT 1")
    finally:
        connection.set_trace_callback(None)
    assert statements[0].upper().startswith("BEGIN IMMEDIATE")
