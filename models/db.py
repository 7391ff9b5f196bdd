"""Database handles: the main database (SQLite or PostgreSQL) and the separate key store.

Both are deferred proxies initialised once by `models.office.open_office`. SQLite runs in WAL
with synchronous=FULL, and every write transaction is BEGIN IMMEDIATE so writers queue on the
busy timeout instead of failing with SQLITE_BUSY half-way.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import peewee as pw

from models.errors import RecordKeeperError

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


# How long a writer keeps queueing for SQLite's write lock after a busy timeout ran out (another
# session held the lock that long: a long import batch, a checkpoint waiting for readers).
WRITE_PATIENCE_SECONDS = 60.0


class DatabaseBusy(RecordKeeperError):
    """Other work held the database for longer than a person should wait; nothing was written."""


def _is_busy(exc: Exception) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text


class _Write:
    """`db.atomic()` whose BEGIN IMMEDIATE queues (with backoff) instead of failing when the lock is busy.

    Only the BEGIN is retried — before it succeeds the transaction's body has not run — so no
    caller ever sees SQLITE_BUSY; after WRITE_PATIENCE_SECONDS the caller gets DatabaseBusy.
    """

    def __enter__(self):
        started = time.monotonic()
        delay = 0.05
        while True:
            self._atomic = db.atomic()
            try:
                return self._atomic.__enter__()
            except pw.OperationalError as exc:
                if not _is_busy(exc) or db.transaction_depth():
                    raise
                if time.monotonic() - started >= WRITE_PATIENCE_SECONDS:
                    raise DatabaseBusy("the database is busy with other work and nothing was saved; "
                                       "try again in a moment") from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def __exit__(self, exc_type, exc_value, traceback):
        try:
            return self._atomic.__exit__(exc_type, exc_value, traceback)
        except pw.OperationalError as exit_error:
            # SQLite rolls a whole transaction back by itself on some errors (a full disk, an I/O
            # error); peewee's own ROLLBACK then fails with "no transaction is active" and would
            # hide the real cause. Report the cause (the transaction is gone either way).
            def masking(error: BaseException) -> bool:
                return "no transaction is active" in str(error) or "no such savepoint" in str(error)

            cause = exc_value if exc_value is not None else exit_error.__context__
            while cause is not None and masking(cause):  # the failed COMMIT is further down the chain
                cause = cause.__context__
            if cause is not None and masking(exit_error) and is_sqlite() and not db.connection().in_transaction:
                raise cause from None
            raise


def write() -> _Write:
    """A write transaction (BEGIN IMMEDIATE on SQLite); nests as a savepoint; queues while the lock is busy."""
    return _Write()


def checkpoint_truncate() -> None:
    """Checkpoint and truncate the WALs so deleted pages leave no copy behind."""
    for handle in (db, keys_db):
        if isinstance(handle.obj, pw.SqliteDatabase):
            handle.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
