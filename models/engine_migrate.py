"""Moving an office from SQLite to PostgreSQL: every table copied as stored, then checked.

`copy_to_postgres(url)` builds the schema on an empty PostgreSQL database with the same numbered
migrations a new office runs, then copies every row of every table exactly as stored — ciphertext,
blind indexes, the audit chain, the schema version — inside one write transaction on the SQLite
file, so nobody can write to it while it is read. Afterwards the row counts of every table, a
digest of every encrypted column and the audit chain (with the signed checkpoints) are checked on
the copy. The key store stays where it is: a local file beside the master key.

`app_role_statements()` is the GRANT/REVOKE set the README documents for the application's
PostgreSQL role (no UPDATE, DELETE or TRUNCATE on the audit log); the tests run it against a
real server.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Callable
from urllib.parse import urlparse, urlunparse

import peewee as pw

from models import audit, migrations
from models.db import db, is_sqlite, make_postgres
from models.errors import RecordKeeperError

COPY_BATCH = 5000
_DIGEST_MOD = 1 << 256


class EngineMigrationError(RecordKeeperError):
    """The copy could not be made or did not check out; the SQLite office is unchanged."""


@dataclass(frozen=True)
class TableCopy:
    table: str
    rows: int
    encrypted_columns: int


@dataclass(frozen=True)
class MigrationResult:
    target: str  # the URL without its password
    schema_version: int
    tables: tuple[TableCopy, ...]
    rows: int
    audit_entries: int
    audit_head: str
    checkpoints: int
    seconds: float = 0.0
    problems: tuple[str, ...] = field(default_factory=tuple)


def redacted(url: str) -> str:
    """The URL with any password replaced, fit for messages and logs."""
    parts = urlparse(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunparse(parts._replace(netloc=f"{user}@{netloc[1]}"))


# --- reading the source -------------------------------------------------------------------


def _sqlite_tables(source: pw.SqliteDatabase) -> list[str]:
    return [name for (name,) in source.execute_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]


def _sqlite_columns(source: pw.SqliteDatabase, table: str) -> list[str]:
    return [row[1] for row in source.execute_sql(f'PRAGMA table_info("{table}")')]


def _copy_order(target: pw.PostgresqlDatabase, tables: list[str]) -> list[str]:
    """Tables ordered so that every table comes after the tables its foreign keys point to."""
    needs = {t: {fk.dest_table for fk in target.get_foreign_keys(t) if fk.dest_table != t} for t in tables}
    ordered: list[str] = []
    while needs:
        ready = sorted(t for t, deps in needs.items() if not (deps - set(ordered)) or not (deps & needs.keys()))
        if not ready:
            raise EngineMigrationError("the tables' foreign keys form a cycle; cannot order the copy")
        ordered += ready
        for t in ready:
            del needs[t]
    return ordered


# --- the target -----------------------------------------------------------------------------


def _target_columns(conn, table: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s", (table,)).fetchall()
    return {name: kind for name, kind in rows}


def _target_is_empty(conn) -> bool:
    found = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_name IN ('schema_version', 'audit_entry', 'customer', 'staff')").fetchone()[0]
    return found == 0


def _build_schema(target: pw.PostgresqlDatabase) -> None:
    """Run every migration against the target (the same DDL, indexes and audit guards a new office gets)."""
    source = db.obj
    db.initialize(target)
    try:
        migrations.migrate()
    finally:
        db.initialize(source)


def _drop_schema(target: pw.PostgresqlDatabase, tables: list[str]) -> None:
    """Drop what `_build_schema` created (the target held none of it before)."""
    conn = target.connection()
    if conn.info.transaction_status != 0:  # not idle: a failed statement left a transaction open
        conn.rollback()
    for table in tables:
        conn.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')
    conn.execute("DROP FUNCTION IF EXISTS audit_entry_append_only() CASCADE")


def _reset_sequences(conn) -> None:
    rows = conn.execute(
        "SELECT table_name, column_name, pg_get_serial_sequence(quote_ident(table_name), column_name) "
        "FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND column_default LIKE 'nextval(%%'").fetchall()
    for table, column, sequence in rows:
        if sequence:
            conn.execute(f'SELECT setval(%s, COALESCE((SELECT MAX("{column}") FROM "{table}"), 0) + 1, false)',
                         (sequence,))


def _row_digest(values: tuple) -> int:
    digest = hashlib.sha256()
    for value in values:
        data = b"" if value is None else bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
        digest.update(len(data).to_bytes(8, "big") + data)
    return int.from_bytes(digest.digest(), "big")


def _blob_columns(source: pw.SqliteDatabase, table: str) -> list[str]:
    return [row[1] for row in source.execute_sql(f'PRAGMA table_info("{table}")') if row[2].upper() == "BLOB"]


def _key_column(source: pw.SqliteDatabase, table: str) -> list[str]:
    keys = [row[1] for row in sorted(source.execute_sql(f'PRAGMA table_info("{table}")'), key=lambda r: r[5])
            if row[5]]
    return keys or _sqlite_columns(source, table)


def _digest_source(source: pw.SqliteDatabase, table: str, columns: list[str]) -> int:
    total = 0
    cursor = source.execute_sql("SELECT {} FROM \"{}\"".format(", ".join(f'"{c}"' for c in columns), table))
    while rows := cursor.fetchmany(COPY_BATCH):
        for row in rows:
            total = (total + _row_digest(row)) % _DIGEST_MOD
    return total


def _digest_target(conn, table: str, columns: list[str]) -> int:
    total = 0
    with conn.transaction(), conn.cursor(name=f"digest_{table}") as cursor:  # server-side: a million rows never sit in memory
        cursor.execute("SELECT {} FROM \"{}\"".format(", ".join(f'"{c}"' for c in columns), table))
        while rows := cursor.fetchmany(COPY_BATCH):
            for row in rows:
                total = (total + _row_digest(row)) % _DIGEST_MOD
    return total


def _convert(kind: str):
    if kind == "boolean":
        return lambda v: None if v is None else bool(v)
    if kind == "bytea":
        return lambda v: None if v is None else bytes(v)
    return None


# --- the copy ----------------------------------------------------------------------------------


def copy_to_postgres(url: str, progress: Callable[[int, int], None] | None = None) -> MigrationResult:
    """Copy the open SQLite office into the empty PostgreSQL database at `url` and check the copy.

    Refuses an office already on PostgreSQL, an out-of-date schema and a target that holds tables.
    """
    import time

    import psycopg

    started = time.perf_counter()
    if not is_sqlite():
        raise EngineMigrationError("this office already runs on PostgreSQL")
    if not url.startswith(("postgresql://", "postgres://")):
        raise EngineMigrationError("the target must be a postgresql:// URL")
    migrations.check_version()
    source: pw.SqliteDatabase = db.obj
    target = make_postgres(url)
    try:
        target.connect()
    except pw.OperationalError as exc:
        raise EngineMigrationError(f"cannot connect to {redacted(url)}: {str(exc).strip().splitlines()[0]}") from None
    try:
        conn = target.connection()
        if not _target_is_empty(conn):
            raise EngineMigrationError(
                f"{redacted(url)} already holds RecordKeeper tables; give an empty database (or schema)")
        try:
            _build_schema(target)
            with db.atomic():  # BEGIN IMMEDIATE: nobody writes to the SQLite office while it is copied
                result = _copy_all(source, target, progress)
                problems, checkpoints = _check_copy(source, target, result)
            if problems:
                raise EngineMigrationError("the copy does not match the original: " + "; ".join(problems))
            _audit_copy(target, result)
        except BaseException:
            _drop_schema(target, _sqlite_tables(source))  # leave the target as empty as it was given
            raise
    finally:
        if not target.is_closed():
            target.close()
    return replace(result, target=redacted(url), checkpoints=checkpoints, seconds=time.perf_counter() - started)


def _copy_all(source: pw.SqliteDatabase, target: pw.PostgresqlDatabase,
              progress: Callable[[int, int], None] | None) -> MigrationResult:
    tables = _sqlite_tables(source)
    conn = target.connection()
    missing = [t for t in tables if not _target_columns(conn, t)]
    if missing:
        raise EngineMigrationError("the new schema lacks tables the office has: " + ", ".join(missing))
    order = _copy_order(target, tables)
    counts = {t: source.execute_sql(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in order}
    total = sum(counts.values())
    done = 0
    if progress:
        progress(0, total)
    with conn.transaction():
        # Rows the migrations seeded (schema_version, default retention rules) give way to the originals.
        for table in reversed(order):
            if table != audit.AuditEntry._meta.table_name:
                conn.execute(f'DELETE FROM "{table}"')
        if conn.execute('SELECT count(*) FROM audit_entry').fetchone()[0]:
            raise EngineMigrationError("the new database's audit log is not empty")
        copies = []
        for table in order:
            columns = _sqlite_columns(source, table)
            kinds = _target_columns(conn, table)
            unknown = [c for c in columns if c not in kinds]
            if unknown:
                raise EngineMigrationError(f"table {table}: the new schema lacks columns {', '.join(unknown)}")
            converters = [(i, fn) for i, c in enumerate(columns) if (fn := _convert(kinds[c]))]
            quoted = ", ".join(f'"{c}"' for c in columns)
            cursor = source.execute_sql(f'SELECT {quoted} FROM "{table}"')
            try:
                with conn.cursor().copy(f'COPY "{table}" ({quoted}) FROM STDIN') as copy:
                    while rows := cursor.fetchmany(COPY_BATCH):
                        for row in rows:
                            if converters:
                                row = list(row)
                                for i, fn in converters:
                                    row[i] = fn(row[i])
                            copy.write_row(row)
                        done += len(rows)
                        if progress:
                            progress(done, total)
            except Exception as exc:  # psycopg's message names the column and constraint, never a value
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise EngineMigrationError(f"copying table {table} failed: {detail[:200]}") from None
            copies.append(TableCopy(table, counts[table], len(_blob_columns(source, table))))
        _reset_sequences(conn)
    head = audit.AuditEntry.select(audit.AuditEntry.seq, audit.AuditEntry.hash) \
        .order_by(audit.AuditEntry.seq.desc()).first()
    return MigrationResult(target="", schema_version=migrations.database_version(), tables=tuple(copies),
                           rows=total, audit_entries=head.seq if head else 0,
                           audit_head=head.hash if head else audit.GENESIS, checkpoints=0)


def _audit_copy(target: pw.PostgresqlDatabase, result: MigrationResult) -> None:
    """The copy's first entry of its own: where it came from and how much (counts only)."""
    original = db.obj
    db.initialize(target)
    try:
        audit.append(actor_id=None, actor="system", action="DATABASE_COPY", object_type="database",
                     object_id="postgresql", details={"from": "sqlite", "rows": result.rows,
                                                      "tables": len(result.tables),
                                                      "schema_version": result.schema_version})
    finally:
        db.initialize(original)


def _check_copy(source: pw.SqliteDatabase, target: pw.PostgresqlDatabase,
                result: MigrationResult) -> tuple[list[str], int]:
    """Every table's count and encrypted columns, the schema version and the audit chain, on the copy;
    returns the problems found and how many signed checkpoints the copied chain agreed with."""
    problems: list[str] = []
    conn = target.connection()
    for copied in result.tables:
        found = conn.execute(f'SELECT COUNT(*) FROM "{copied.table}"').fetchone()[0]
        if found != copied.rows:
            problems.append(f"table {copied.table} has {found} rows, the original {copied.rows}")
            continue
        blobs = _blob_columns(source, copied.table)
        if blobs:
            columns = _key_column(source, copied.table) + blobs
            if _digest_source(source, copied.table, columns) != _digest_target(conn, copied.table, columns):
                problems.append(f"the encrypted columns of table {copied.table} differ from the original")
    original = db.obj
    db.initialize(target)
    try:
        version = migrations.database_version()
        if version != result.schema_version:
            problems.append(f"schema version {version}, the original {result.schema_version}")
        chain = audit.verify_chain()
    finally:
        db.initialize(original)
    if not chain.ok:
        problems.append(f"the audit chain does not verify at entry {chain.first_bad_seq}: {chain.reason}")
    elif chain.entries != result.audit_entries or chain.head_hash != result.audit_head:
        problems.append(f"the audit chain has {chain.entries} entries, the original {result.audit_entries}")
    return problems, chain.checkpoints


# --- the application's role ---------------------------------------------------------------------


def app_role_statements(role: str, schema: str = "public", owner: str | None = None) -> list[str]:
    """What the application's login role is granted: everything it needs, and no way to change the
    audit log (no UPDATE, DELETE or TRUNCATE on audit_entry; only its owner can drop the triggers)."""
    statements = [
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {schema}.audit_entry FROM {role}",
    ]
    if owner:
        statements += [
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {role}",
        ]
    return statements
