"""Database handles: the main database (SQLite or PostgreSQL) and the separate key store.

Both are deferred proxies initialised once by `models.office.open_office`. SQLite runs in WAL
with synchronous=FULL, and every write transaction is BEGIN IMMEDIATE so writers queue on the
busy timeout instead of failing with SQLITE_BUSY half-way.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import peewee as pw

db = pw.DatabaseProxy()
keys_db = pw.DatabaseProxy()


class BaseModel(pw.Model):
    class Meta:
        database = db
        legacy_table_names = False


class KeyStoreModel(pw.Model):
    class Meta:
        database = keys_db
        legacy_table_names = False


def sqlite_pragmas(busy_timeout_ms: int) -> dict[str, object]:
    return {
        "journal_mode": "wal",
        "synchronous": "full",
        "foreign_keys": 1,
        "busy_timeout": busy_timeout_ms,
        "secure_delete": 1,
        "trusted_schema": 0,
        "cache_size": -16000,
    }


def make_sqlite(path: Path, busy_timeout_ms: int) -> pw.SqliteDatabase:
    return pw.SqliteDatabase(
        str(path),
        pragmas=sqlite_pragmas(busy_timeout_ms),
        timeout=busy_timeout_ms / 1000,
        lock_type="IMMEDIATE",
        check_same_thread=False,
    )


def make_postgres(url: str) -> pw.PostgresqlDatabase:
    parts = urlparse(url)
    params: dict[str, object] = {}
    if parts.hostname:
        params["host"] = parts.hostname
    if parts.port:
        params["port"] = parts.port
    if parts.username:
        params["user"] = unquote(parts.username)
    if parts.password:
        params["password"] = unquote(parts.password)
    for pair in filter(None, parts.query.split("&")):
        key, _, value = pair.partition("=")
        params[key] = unquote(value)
    return pw.PostgresqlDatabase(parts.path.lstrip("/") or "postgres", **params)


def is_sqlite() -> bool:
    return isinstance(db.obj, pw.SqliteDatabase)


def write():
    """A write transaction (BEGIN IMMEDIATE on SQLite); nests as a savepoint."""
    return db.atomic()


def checkpoint_truncate() -> None:
    """Checkpoint and truncate the WALs so deleted pages leave no copy behind."""
    for handle in (db, keys_db):
        if isinstance(handle.obj, pw.SqliteDatabase):
            handle.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
