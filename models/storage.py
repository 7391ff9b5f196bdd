"""Faults under the office — a full or read-only disk, a disk error, a missing or unreadable key
store, a master key that is not this office's, an unreachable server — become clear refusals.

`check_on_open(settings)` runs when an office opens, before anything is written: it refuses
(naming the file and what to do) instead of letting the first login fail with a driver error or
silently creating an empty key store. `storage_failure(exc)` turns a driver's storage error met
while working into a `StorageFailure` with a message fit for a clerk; the `@service` decorator
applies it, so the screens show the message and keep what was typed. The transaction that met
the fault has been rolled back, so nothing was half-written.
"""

from __future__ import annotations

import errno
import os
import sqlite3

import peewee as pw

from models.errors import KeyFileError, RecordKeeperError

FULL = ("The disk holding the records is full; nothing was saved. "
        "Ask the administrator to free space, then try again.")
READ_ONLY = ("The records database cannot be written (a read-only file, folder or disk); nothing was saved. "
             "Ask the administrator.")
DISK_ERROR = "The disk holding the records reported an error; nothing was saved. Ask the administrator."
UNREACHABLE = "The database server cannot be reached; nothing was saved. Try again in a moment."
BUSY = "The records database is busy with other work; nothing was saved. Try again in a moment."

_PATTERNS = (
    (FULL, ("database or disk is full", "no space left on device", "disk quota exceeded", "could not extend file")),
    (READ_ONLY, ("readonly database", "read-only transaction", "read-only file system", "read only file system")),
    (DISK_ERROR, ("disk i/o error", "database disk image is malformed")),
    # write() queues for the main database's lock; the key store's short writes could still time out
    (BUSY, ("database is locked", "database is busy", "deadlock detected", "could not serialize access")),
    (UNREACHABLE, ("server closed the connection", "connection refused", "the connection is closed",
                   "connection already closed", "terminating connection", "could not connect to server")),
)
_OS_ERRORS = {errno.ENOSPC: FULL, errno.EDQUOT: FULL, errno.EROFS: READ_ONLY, errno.EIO: DISK_ERROR}


class StorageFailure(RecordKeeperError):
    """The storage under the office failed (full, read-only, disk error, server gone); nothing was saved."""


def _database_error(exc: BaseException) -> bool:
    if isinstance(exc, (pw.DatabaseError, pw.InterfaceError, sqlite3.Error)):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, psycopg.Error)


def storage_failure(exc: BaseException) -> StorageFailure | None:
    """The clerk-facing refusal for a storage fault, or None when `exc` is something else.

    Looks down the exception's context too: after SQLite rolled a transaction back by itself (a
    full disk), the driver's own ROLLBACK fails with "no transaction is active" over the real cause.
    """
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and not isinstance(exc, sqlite3.Error) and exc.errno in _OS_ERRORS:
            return StorageFailure(_OS_ERRORS[exc.errno])
        if not _database_error(exc):
            return None
        text = str(exc).lower()
        for message, markers in _PATTERNS:
            if any(marker in text for marker in markers):
                return StorageFailure(message)
        if "no transaction is active" not in text and "no such savepoint" not in text:
            return None
        exc, seen = exc.__context__, seen + 1
    return None


def after_failure(failure: StorageFailure) -> None:
    """After a lost server connection, drop it (once no transaction is open) so the next call reconnects."""
    from models.db import db

    if failure.args[0] != UNREACHABLE or db.obj is None or db.transaction_depth():
        return
    try:
        db.close()
    except Exception:  # already gone: peewee opens a new one on the next query either way
        pass


def _audit_integrity_failure(actor, service_name: str, exc: BaseException) -> None:
    """An integrity failure (a ciphertext or wrapped key that does not authenticate, a missing key) is
    audited as INTEGRITY_FAIL by the outermost service, with the service's name only; never fails itself."""
    from models.db import db
    from models.errors import IntegrityFailure

    if not isinstance(exc, IntegrityFailure) or db.obj is None or db.transaction_depth():
        return
    try:
        from models import audit

        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="INTEGRITY_FAIL", outcome="failed", details={"service": service_name[:60]})
    except Exception:  # the refusal stands either way; the audit write may be what is failing
        pass


# --- when an office opens ------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def _unwritable(path) -> str | None:
    """Why SQLite could not write `path` (the file, its -wal/-shm, its folder), or None.

    os.access asks the kernel what this process may do (modes, capabilities, read-only mounts),
    without taking any database lock.
    """
    for target in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"), path.parent):
        if target.exists() and not os.access(target, os.W_OK):
            return f"{target} is read-only for this account"
    return None


def check_on_open(settings) -> None:
    """Refuse an office whose storage cannot serve it; every message names the file and the remedy."""
    from models import migrations
    from models.db import is_sqlite, keys_db

    where = str(settings.database_path) if not settings.uses_postgres else "the PostgreSQL database"
    try:
        version = migrations.database_version()
    except Exception as exc:
        if not _database_error(exc):
            raise
        failure = storage_failure(exc)
        if failure is not None and failure.args[0] == READ_ONLY:
            raise StorageFailure(f"the database cannot be written: {where} or its folder is read-only for this "
                                 "account; the service account must be able to write the database and its "
                                 "folder (chmod 600 and 700)") from None
        raise StorageFailure(f"cannot open {where}: {_reason(exc)}; check the file (or server) and its "
                             "permissions") from None
    keystore = settings.keystore_path
    if version > 0 and not keystore.exists():
        raise KeyFileError(
            f"the key store {keystore} is missing. Without it no customer can be read, and RecordKeeper will not "
            f"create an empty one: put keys/keystore.db back from its backup (see 'Keys and backups') and start "
            "again")
    try:
        keys_db.execute_sql("PRAGMA user_version").fetchone()
        if keys_db.table_exists("data_key"):
            keys_db.execute_sql("SELECT 1 FROM data_key LIMIT 1").fetchall()
    except Exception as exc:
        if not _database_error(exc):
            raise
        text = str(exc).lower()
        if "not a database" in text or "malformed" in text:
            problem = "is damaged (not a readable database); put it back from its backup"
        else:
            problem = f"cannot be read ({_reason(exc)}); the service account must own it (chmod 600, folder 700)"
        raise KeyFileError(f"the key store {keystore} {problem}") from None
    problem = _unwritable(keystore)
    if problem:
        raise KeyFileError(f"the key store cannot be written: {problem} (chmod 600, folder 700)")
    if is_sqlite():
        problem = _unwritable(settings.database_path)
        if problem:
            raise StorageFailure(f"the database cannot be written: {problem}; the service account must be able "
                                 "to write the database and its folder (chmod 600 and 700)")
    else:
        from models.db import db

        if db.execute_sql("SHOW transaction_read_only").fetchone()[0] == "on":
            raise StorageFailure(f"{where} is read-only (a standby server?); point database_url at the primary")
    _check_master_key(settings)


def _check_master_key(settings) -> None:
    """One wrapped data key must open under this master key, or the key belongs to another office."""
    from models import keystore
    from models.db import keys_db
    from models.errors import IntegrityFailure

    if not keys_db.table_exists("data_key"):
        return
    row = keystore.DataKey.select(keystore.DataKey.key_id).limit(1).first()
    if row is None:
        return
    try:
        keystore.load_data_key(row.key_id)
    except IntegrityFailure:
        raise KeyFileError(
            f"the master key {settings.master_key_path} does not open this office's key store: it is another "
            "office's key or a damaged copy. Put the office's own keys/master.key back (from its separate "
            "backup); nothing was changed") from None
