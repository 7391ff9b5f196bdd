"""Opening an office: check the key files, derive the keys, connect both databases, check the schema.

One office per process; services reach it through `current()`.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher

from models import crypto, db as dbmod
from models.errors import KeyFileError, RecordKeeperError
from models.settings import Settings


@dataclass
class Office:
    settings: Settings
    keyring: crypto.KeyRing
    hasher: PasswordHasher
    dummy_hash: str


_current: Office | None = None


def current() -> Office:
    if _current is None:
        raise RecordKeeperError("no office is open")
    return _current


def _make_hasher(settings: Settings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )


def ensure_private_dir(path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def create_office_files(settings: Settings) -> None:
    """Create the data directory, inbox, export folder and a new master key (for `init`)."""
    os.umask(0o077)
    ensure_private_dir(settings.home)
    for sub in (settings.inbox_dir, settings.export_dir):
        ensure_private_dir(sub)
    if settings.master_key_path.exists() or settings.master_key_path.is_symlink():
        raise KeyFileError(f"a master key already exists at {settings.master_key_path}; refusing to replace it")
    crypto.create_master_key(settings.master_key_path)


def open_office(settings: Settings, *, check_schema: bool = True) -> Office:
    """Open the office in `settings.home`; refuses unsafe keys and a schema it does not match."""
    global _current
    from models import migrations

    os.umask(0o077)
    master = crypto.load_master_key(settings.master_key_path)
    keyring = crypto.KeyRing.from_master(master)
    del master
    close_office()
    if settings.uses_postgres:
        dbmod.db.initialize(dbmod.make_postgres(settings.database_url))
    else:
        dbmod.db.initialize(dbmod.make_sqlite(settings.database_path, settings.busy_timeout_ms))
    dbmod.keys_db.initialize(dbmod.make_sqlite(settings.keystore_path, settings.busy_timeout_ms))
    hasher = _make_hasher(settings)
    _current = Office(settings, keyring, hasher, hasher.hash(secrets.token_urlsafe(32)))
    try:
        from models import storage

        storage.check_on_open(settings)  # refuse a read-only, missing or foreign store before writing anything
        migrations.ensure_keystore()
        if check_schema:
            migrations.check_version()
            from models import destruction

            destruction.reconcile_on_open()  # replay the destruction ledger before anyone is served
    except Exception:
        close_office()  # a refused office must not stay usable
        raise
    return _current


def close_office() -> None:
    global _current
    for handle in (dbmod.db, dbmod.keys_db):
        if handle.obj is not None and not handle.obj.is_closed():
            handle.obj.close()
    _current = None
