"""Verified online backups, kept apart from short-lived key-store backups, and restores that replay the ledger.

A backup set is the database (SQLite backup API, or `pg_dump` on an exported snapshot), a manifest
(time, schema version, row counts, SHA-256) and a copy of the destruction ledger. The key store is
backed up to its own folder and pruned after at most 30 days: a destroyed customer can be read from
old database backups only with a key-store backup taken before the destruction, so once those
expire nothing can bring the customer back. A restore replays the live destruction ledger before
the office serves anyone, so a customer destroyed after the backup was taken is destroyed again.

Snapshots are written to NAME.tmp and renamed when complete. One backup at a time writes into a
folder (a lock file in it); the next backup removes the partial files an interrupted one left.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import urllib.parse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

from models import audit, clock, ledger, office
from models.errors import Conflict, FieldError, IntegrityFailure, RecordKeeperError, ValidationError
from models.settings import Settings

FORMAT = "recordkeeper-backup/1"
MANIFEST_SUFFIX = ".manifest.json"
DB_PREFIX = "recordkeeper-"
KEYSTORE_PREFIX = "keystore-"
MAX_KEYSTORE_BACKUP_DAYS = 30
DEFAULT_KEYSTORE_BACKUP_DAYS = 30
LOCK_NAME = ".backup.lock"
# What take_backup writes before a rename, and SQLite's journal beside a snapshot being written.
_PARTIAL = r"{prefix}\d{{8}}T\d{{9}}Z(?:_\d{{2,}})?\.(?:{exts})(?:\.manifest\.json)?\.tmp(?:-journal|-wal|-shm)?"
DB_PARTIAL = re.compile(_PARTIAL.format(prefix=re.escape(DB_PREFIX), exts="db|pgdump"))
KEYSTORE_PARTIAL = re.compile(_PARTIAL.format(prefix=re.escape(KEYSTORE_PREFIX), exts="db"))


class BackupError(RecordKeeperError):
    """A backup could not be taken, verified or restored; the message says why."""


def default_backup_dir(settings: Settings) -> Path:
    return settings.home / "backups"


def default_keystore_backup_dir(settings: Settings) -> Path:
    return settings.key_dir / "backups"


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")[:-4] + "Z"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    _fsync(tmp)
    os.replace(tmp, path)


def manifest_path(backup_file: Path) -> Path:
    return backup_file.with_name(backup_file.name + MANIFEST_SUFFIX)


def read_manifest(backup_file: Path) -> dict:
    path = manifest_path(backup_file)
    if not path.exists():
        raise BackupError(f"no manifest beside {backup_file.name} (expected {path.name})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BackupError(f"the manifest {path.name} is not readable") from None
    if data.get("format") != FORMAT:
        raise BackupError(f"{path.name} is not a RecordKeeper backup manifest")
    return data


# --- SQLite -----------------------------------------------------------------------------------


def _sqlite_snapshot(source: Path, target: Path) -> None:
    """Copy a live SQLite database in one backup step (a consistent snapshot; writers carry on)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # a standalone file: no -wal beside it
    finally:
        dst.close()
        src.close()
    os.chmod(target, 0o600)
    _fsync(target)


def _sqlite_facts(path: Path) -> tuple[str, dict[str, int], int | None]:
    """(integrity_check result, row counts per table, schema version) of a database file, read-only."""
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        counts = {table: conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] for table in tables}
        version = None
        if "schema_version" in tables:
            version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
        return result, counts, version
    except sqlite3.DatabaseError as exc:
        return f"not a readable database ({exc})", {}, None
    finally:
        conn.close()


# --- PostgreSQL -----------------------------------------------------------------------------------


def _pg_schema(url: str) -> str | None:
    """The schema named by `options=-csearch_path=…` in the URL, if any (dump only that schema)."""
    query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
    for option in query.get("options", []):
        for part in option.split():
            if part.startswith("-csearch_path="):
                return part.split("=", 1)[1].split(",")[0]
    return None


def _pg_counts(conn) -> tuple[dict[str, int], int | None]:
    tables = [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_type = 'BASE TABLE' ORDER BY table_name")]
    counts = {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
    version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] if "schema_version" in tables \
        else None
    return counts, version


def _pg_dump(url: str, target: Path) -> tuple[dict[str, int], int | None]:
    """pg_dump (custom format) of an exported snapshot, and row counts from that same snapshot."""
    import psycopg

    if shutil.which("pg_dump") is None:
        raise BackupError("pg_dump is not installed; install the PostgreSQL client tools")
    with psycopg.connect(url) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        counts, version = _pg_counts(conn)
        command = ["pg_dump", "--format=custom", "--no-owner", f"--snapshot={snapshot}", f"--file={target}",
                   f"--dbname={url}"]
        schema = _pg_schema(url)
        if schema:
            command.append(f"--schema={schema}")
        done = subprocess.run(command, capture_output=True, text=True)
        conn.execute("COMMIT")
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()[-500:]}")
    os.chmod(target, 0o600)
    _fsync(target)
    return counts, version


# --- taking a backup ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupResult:
    database_file: Path
    keystore_file: Path
    ledger_copy: Path
    manifest: dict
    pruned: list[Path] = field(default_factory=list)
    partial_removed: list[Path] = field(default_factory=list)  # left by a backup that was interrupted


def _check_retention(keep: int | None, keystore_days: int) -> None:
    errors = []
    if keep is not None and keep < 1:
        errors.append(FieldError("keep", "must keep at least 1 backup", "too_small"))
    if not 1 <= keystore_days <= MAX_KEYSTORE_BACKUP_DAYS:
        errors.append(FieldError("keystore_days", f"must be between 1 and {MAX_KEYSTORE_BACKUP_DAYS} days: a "
                                                  "longer time keeps destroyed customers recoverable", "bad_range"))
    if errors:
        raise ValidationError(errors)


def take_backup(destination: Path | None = None, keystore_destination: Path | None = None, *,
                keep: int | None = None, keystore_days: int = DEFAULT_KEYSTORE_BACKUP_DAYS,
                progress: Callable[[int, int], None] | None = None) -> BackupResult:
    """Back up the open office while staff keep working: database, then key store, then the ledger copy.

    That order means every customer in the database backup has its key in the key-store backup,
    and the ledger copy covers every destruction either backup has applied. One backup at a time
    writes into a folder (Conflict otherwise); it first removes what an interrupted one left there.
    """
    _check_retention(keep, keystore_days)
    settings = office.current().settings
    dest = _private_dir(destination or default_backup_dir(settings))
    keys_dest = _private_dir(keystore_destination or default_keystore_backup_dir(settings))
    if dest.resolve() == keys_dest.resolve():
        raise ValidationError([FieldError("keystore_destination", "keep key-store backups in a different folder "
                                                                   "from database backups", "same_place")])
    with _backup_lock(dest, keys_dest):
        partial = remove_partial_files(dest, keys_dest)
        return _take_backup_locked(settings, dest, keys_dest, keep, keystore_days, progress, partial)


@contextlib.contextmanager
def _backup_lock(*folders: Path) -> Iterator[None]:
    """Hold each folder's backup lock for a whole backup (released by the kernel if the process dies)."""
    fds: list[int] = []
    try:
        for folder in sorted({f.resolve() for f in folders}):
            fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            fds.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Conflict(f"another backup is writing into {folder}; try again when it ends") from None
        yield
    finally:
        for fd in fds:
            os.close(fd)


def remove_partial_files(destination: Path, keystore_destination: Path) -> list[Path]:
    """Delete what an interrupted backup left (its NAME.tmp files); call only while holding both folders' lock.

    Only regular files named as take_backup names its partial files are touched, never a symlink;
    key-store partials hold wrapped data keys and are overwritten first, like expired key-store backups.
    """
    removed: list[Path] = []
    for folder, pattern, shred in ((destination, DB_PARTIAL, False), (keystore_destination, KEYSTORE_PARTIAL, True)):
        if not folder.exists():
            continue
        with os.scandir(folder) as entries:
            stale = [Path(e.path) for e in entries if pattern.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
        for path in sorted(stale):
            try:
                if shred:
                    _shred_regular_file(path)
                else:
                    path.unlink()
            except FileNotFoundError:
                continue
            removed.append(path)
    return removed


def _take_backup_locked(settings: Settings, dest: Path, keys_dest: Path, keep: int | None, keystore_days: int,
                        progress: Callable[[int, int], None] | None, partial: list[Path]) -> BackupResult:
    now = clock.now()
    stamp = _stamp(now)
    suffix = 1
    while any((folder / f"{prefix}{stamp}{ext}").exists() for folder, prefix, ext in (
            (dest, DB_PREFIX, ".db"), (dest, DB_PREFIX, ".pgdump"), (keys_dest, KEYSTORE_PREFIX, ".db"))):
        suffix += 1  # never overwrite a backup taken in the same instant
        stamp = f"{_stamp(now)}_{suffix:02d}"  # sorts after the first
    step = lambda n: progress(n, 4) if progress else None  # noqa: E731
    step(0)
    if settings.uses_postgres:
        db_file = dest / f"{DB_PREFIX}{stamp}.pgdump"
        tmp = db_file.with_name(db_file.name + ".tmp")
        counts, version = _pg_dump(settings.database_url, tmp)
        engine = "postgresql"
    else:
        db_file = dest / f"{DB_PREFIX}{stamp}.db"
        tmp = db_file.with_name(db_file.name + ".tmp")
        _sqlite_snapshot(settings.database_path, tmp)
        check, counts, version = _sqlite_facts(tmp)
        if check != "ok":
            tmp.unlink(missing_ok=True)
            raise BackupError(f"the snapshot failed its integrity check: {check}")
        engine = "sqlite"
    os.replace(tmp, db_file)
    step(1)

    keys_file = keys_dest / f"{KEYSTORE_PREFIX}{stamp}.db"
    keys_tmp = keys_file.with_name(keys_file.name + ".tmp")
    _sqlite_snapshot(settings.keystore_path, keys_tmp)
    keys_check, keys_counts, _v = _sqlite_facts(keys_tmp)
    if keys_check != "ok":
        keys_tmp.unlink(missing_ok=True)
        raise BackupError(f"the key-store snapshot failed its integrity check: {keys_check}")
    os.replace(keys_tmp, keys_file)
    step(2)

    ledger_copy = dest / f"{DB_PREFIX}{stamp}.ledger.jsonl"
    live_ledger = ledger.ledger_path()
    if live_ledger.exists():
        shutil.copyfile(live_ledger, ledger_copy)
    else:
        ledger_copy.write_bytes(b"")
    os.chmod(ledger_copy, 0o600)
    ledger_seq = len(ledger.read_entries(ledger_copy))
    step(3)

    created = now.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
    manifest = {
        "format": FORMAT, "kind": "database", "engine": engine, "created_at": created,
        "office": settings.office_name, "schema_version": version, "file": db_file.name,
        "size": db_file.stat().st_size, "sha256": _sha256(db_file), "counts": counts,
        "ledger_copy": ledger_copy.name, "ledger_sha256": _sha256(ledger_copy), "ledger_entries": ledger_seq,
        "keystore_backup": str(keys_file),
    }
    _write_json(manifest_path(db_file), manifest)
    _write_json(manifest_path(keys_file), {
        "format": FORMAT, "kind": "keystore", "engine": "sqlite", "created_at": created,
        "office": settings.office_name, "file": keys_file.name, "size": keys_file.stat().st_size,
        "sha256": _sha256(keys_file), "counts": keys_counts, "expires_after_days": keystore_days,
        "database_backup": str(db_file),
    })
    pruned = prune(dest, keys_dest, keep=keep, keystore_days=keystore_days)
    audit.append(actor_id=None, actor="system", action="BACKUP", object_type="backup", object_id=stamp,
                 details={"engine": engine, "customers": counts.get("customer", 0), "pruned": len(pruned),
                          "partial_removed": len(partial), "keystore_days": keystore_days})
    step(4)
    return BackupResult(db_file, keys_file, ledger_copy, manifest, pruned, partial)


def _backups_in(folder: Path, prefix: str) -> list[Path]:
    """Backup files (with a manifest) in a folder, oldest first."""
    if not folder.exists():
        return []
    found = [p for p in folder.iterdir()
             if p.name.startswith(prefix) and p.suffix in (".db", ".pgdump") and manifest_path(p).exists()]
    return sorted(found, key=lambda p: p.name)


def _created_at(backup_file: Path) -> dt.datetime:
    return dt.datetime.fromisoformat(read_manifest(backup_file)["created_at"])


def prune(destination: Path, keystore_destination: Path, *, keep: int | None,
          keystore_days: int = DEFAULT_KEYSTORE_BACKUP_DAYS) -> list[Path]:
    """Delete database backup sets beyond the newest `keep`, and key-store backups older than `keystore_days`."""
    _check_retention(keep, keystore_days)
    removed: list[Path] = []
    if keep is not None:
        sets = _backups_in(destination, DB_PREFIX)
        for old in sets[:-keep]:
            manifest = read_manifest(old)
            for path in (old, manifest_path(old), old.with_name(manifest.get("ledger_copy", ""))):
                if path.name and path.exists():
                    path.unlink()
                    removed.append(path)
    cutoff = clock.now() - dt.timedelta(days=keystore_days)
    for old in _backups_in(keystore_destination, KEYSTORE_PREFIX):
        if _created_at(old) < cutoff:
            for path in (old, manifest_path(old)):
                _shred(path)
                removed.append(path)
    return removed


def _shred(path: Path) -> None:
    """Overwrite a key-store backup before unlinking it (a best effort: flash may keep copies)."""
    if not path.exists():
        return
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.write(b"\0" * size)
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()


def _shred_regular_file(path: Path) -> None:
    """Overwrite and unlink a file, refusing to follow a symlink or write to anything but a regular file."""
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return
        os.write(fd, b"\0" * info.st_size)
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink()


# --- verifying ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    kind: str
    problems: list[str]
    manifest: dict


def verify_backup(backup_file: Path) -> VerifyResult:
    """Check one backup against its manifest: size, SHA-256, integrity, schema version and row counts."""
    backup_file = Path(backup_file)
    if not backup_file.exists():
        raise BackupError(f"{backup_file} does not exist")
    manifest = read_manifest(backup_file)
    problems = []
    if backup_file.stat().st_size != manifest.get("size"):
        problems.append("the file's size differs from its manifest")
    if _sha256(backup_file) != manifest.get("sha256"):
        problems.append("the file's SHA-256 differs from its manifest (altered or damaged)")
    if manifest.get("engine") == "postgresql":
        if shutil.which("pg_restore") is None:
            problems.append("pg_restore is not installed: cannot read the dump")
        else:
            listing = subprocess.run(["pg_restore", "--list", str(backup_file)], capture_output=True, text=True,
                                     errors="replace")
            if listing.returncode != 0:
                problems.append("pg_restore cannot read the dump")
            else:
                listed = {m.group(1) for m in re.finditer(r"TABLE DATA \S+ (\S+) ", listing.stdout)}
                missing = [t for t in manifest.get("counts", {}) if t not in listed]
                if missing:
                    problems.append("the dump lacks tables: " + ", ".join(missing[:5]))
    else:
        check, counts, version = _sqlite_facts(backup_file)
        if check != "ok":
            problems.append(f"integrity check: {check}")
        if counts != manifest.get("counts"):
            problems.append("row counts differ from the manifest")
        if manifest.get("kind") == "database" and version != manifest.get("schema_version"):
            problems.append("schema version differs from the manifest")
    if manifest.get("kind") == "database":
        copy = backup_file.with_name(manifest.get("ledger_copy", ""))
        if not copy.exists() or _sha256(copy) != manifest.get("ledger_sha256"):
            problems.append("the ledger copy is missing or differs from the manifest")
    return VerifyResult(not problems, str(manifest.get("kind", "")), problems, manifest)


# --- restoring ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreResult:
    home: Path
    in_place: bool
    backup_created_at: str
    replayed_keys: int
    replayed_customers: int
    finished_items: int
    customers: int
    customers_without_key: int
    audit_ok: bool
    audit_entries_lost: int = 0  # entries written after the backup (the signed checkpoints showed them)
    checkpoints_archived: str = ""  # where the checkpoints of the log before the restore were moved


def _check_ok(path: Path, kind: str) -> dict:
    result = verify_backup(path)
    if not result.ok:
        raise BackupError(f"{path.name} failed verification: " + "; ".join(result.problems))
    if result.kind != kind:
        raise BackupError(f"{path.name} is a {result.kind} backup, not a {kind} backup")
    return result.manifest


def _sqlite_copy_into(backup_file: Path, live: Path) -> None:
    """Write a backup over a database through the backup API (other connections see a consistent switch)."""
    live.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{backup_file}?mode=ro&immutable=1", uri=True)
    dst = sqlite3.connect(live, timeout=30)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")
        dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        dst.close()
        src.close()
    os.chmod(live, 0o600)


def _pg_restore(backup_file: Path, url: str) -> None:
    if shutil.which("pg_restore") is None:
        raise BackupError("pg_restore is not installed; install the PostgreSQL client tools")
    done = subprocess.run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
                           f"--dbname={url}", str(backup_file)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()[-500:]}")


def _merge_ledger(target: Path, copy: Path) -> None:
    """Make `target` hold every destruction in `copy` too: extended verbatim when it is a prefix of it."""
    theirs = ledger.read_entries(copy) if copy.exists() else []
    if not theirs:
        return
    ours = ledger.read_entries(target) if target.exists() else []
    if len(ours) <= len(theirs) and all(a["mac"] == b["mac"] for a, b in zip(ours, theirs)):
        if len(theirs) > len(ours):
            lines = [line for line in copy.read_bytes().split(b"\n") if line][:len(theirs)]
            with open(target, "ab") as handle:
                for line in lines[len(ours):]:
                    handle.write(line + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(target, 0o600)
        return
    ledger.merge_from(copy, target)


def restore_backup(backup_file: Path, *, force: bool = False, to: Path | None = None,
                   keystore_backup: Path | None = None, extra_ledgers: tuple[Path, ...] = (),
                   progress: Callable[[int, int], None] | None = None) -> RestoreResult:
    """Restore a database backup (and optionally a key-store backup), then replay the destruction ledger.

    In place only with `force` (stop RecordKeeper first); otherwise into a new data directory `to`
    that holds a complete office (database, key store, master key, ledger). Before returning — so
    before anyone is served — every destruction in the live ledger and in the backup's ledger copy
    is applied again, and the restored database's audit chain and integrity are checked.
    """
    from models import destruction, migrations
    from models.customers import Customer
    from models.keystore import DataKey

    backup_file = Path(backup_file)
    manifest = _check_ok(backup_file, "database")
    if keystore_backup is not None:
        _check_ok(Path(keystore_backup), "keystore")
    live = office.current().settings
    step = lambda n: progress(n, 5) if progress else None  # noqa: E731
    step(0)
    if manifest["engine"] == "postgresql" and not live.uses_postgres:
        raise BackupError("this is a PostgreSQL backup; set RECORDKEEPER_DATABASE_URL to restore it")
    if manifest["engine"] == "sqlite" and live.uses_postgres:
        raise BackupError("this is a SQLite backup; this office uses PostgreSQL")
    if not force and live.uses_postgres:
        raise BackupError("a PostgreSQL restore goes into place only: add --force (stop RecordKeeper first)")
    if not force and to is None:
        to = live.home / "restored" / _stamp(clock.now())
    target = live if force else replace(live, home=Path(to))
    if not force:
        if target.home.exists() and any(target.home.iterdir()):
            raise BackupError(f"{target.home} is not empty; choose a new directory")
        _private_dir(target.home)
        _private_dir(target.key_dir)
        shutil.copyfile(live.master_key_path, target.master_key_path)
        os.chmod(target.master_key_path, 0o600)
        if ledger.ledger_path(live.home).exists():
            shutil.copyfile(ledger.ledger_path(live.home), ledger.ledger_path(target.home))
            os.chmod(ledger.ledger_path(target.home), 0o600)
    lock = ledger.run_lock(live.home, wait=False)
    with lock:
        signed_head = _signed_audit_head(target.home)
        office.close_office()
        try:
            if manifest["engine"] == "postgresql":
                _pg_restore(backup_file, live.database_url)
            else:
                _sqlite_copy_into(backup_file, target.database_path)
            if keystore_backup is not None:
                _sqlite_copy_into(Path(keystore_backup), target.keystore_path)
            elif not force:
                _sqlite_snapshot(live.keystore_path, target.keystore_path)
                conn = sqlite3.connect(target.keystore_path)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.close()
            archive = _archive_checkpoints(target.home) if force else ""
            step(1)
            ledger_target = ledger.ledger_path(target.home)
            office.open_office(target, check_schema=False)
            _merge_ledger(ledger_target, backup_file.with_name(manifest.get("ledger_copy", "")))
            for extra in extra_ledgers:
                _merge_ledger(ledger_target, Path(extra))
            migrations.migrate()
            step(2)
            # The restored copies may predate destructions: check every ledger entry against them.
            ledger.set_database_mark(0, ledger.GENESIS)
            ledger.set_keystore_mark(0, ledger.GENESIS)
            replay = destruction._reconcile_locked()
            destruction.checkpoint_both()
            step(3)
            restored_head = audit.AuditEntry.select(audit.AuditEntry.seq).order_by(audit.AuditEntry.seq.desc()).scalar()
            chain = audit.verify_chain()
            problems = []
            if not chain.ok:
                problems.append(f"audit chain broken at entry {chain.first_bad_seq}: {chain.reason}")
            if not target.uses_postgres:
                check = _live_integrity()
                if check != "ok":
                    problems.append(f"integrity check: {check}")
            if problems:
                raise IntegrityFailure("the restored database failed its checks: " + "; ".join(problems))
            key_ids = {k for (k,) in DataKey.select(DataKey.key_id).tuples()}
            customer_keys = [k for (k,) in Customer.select(Customer.key_id).tuples()]
            without_key = sum(1 for k in customer_keys if k not in key_ids)
            audit.append(actor_id=None, actor="system", action="RESTORE", object_type="backup",
                         object_id=manifest["file"][:64],
                         details={"backup_created_at": manifest["created_at"], "in_place": force,
                                  "replayed_keys": replay.keys_destroyed, "replayed": replay.customers_purged,
                                  "finished": replay.items_finished, "without_key": without_key,
                                  "audit_entries_lost": max(0, signed_head - (restored_head or 0)),
                                  "checkpoints_archived": archive})
            step(4)
            result = RestoreResult(target.home, force, manifest["created_at"], replay.keys_destroyed,
                                   replay.customers_purged, replay.items_finished, len(customer_keys),
                                   without_key, chain.ok, max(0, signed_head - (restored_head or 0)), archive)
        finally:
            office.close_office()
            office.open_office(live, check_schema=False)
    step(5)
    return result


def _signed_audit_head(home: Path) -> int:
    """The highest audit entry the signed checkpoints of `home` vouch for (0 if none)."""
    from models import checkpoints

    directory = home / checkpoints.DIR_NAME
    if not directory.exists():
        return 0
    return max((c.seq for c in checkpoints.load(directory).checkpoints), default=0)


def _archive_checkpoints(home: Path) -> str:
    """Move the signed checkpoints of the log before an in-place restore aside (kept as evidence).

    The restored log is shorter than they say, and every entry appended after the restore would
    contradict them; the RESTORE audit entry names the archive and how many entries were lost.
    """
    from models import checkpoints

    directory = home / checkpoints.DIR_NAME
    present = [directory / name for name in (checkpoints.HEAD_NAME, checkpoints.LOG_NAME)
               if (directory / name).exists()]
    if not present:
        return ""
    archive = directory / f"before-restore-{_stamp(clock.now())}"
    archive.mkdir(mode=0o700, parents=True)
    for path in present:
        os.replace(path, archive / path.name)
    return str(archive.relative_to(home))


def _live_integrity() -> str:
    from models.db import db

    return db.execute_sql("PRAGMA integrity_check").fetchone()[0]
