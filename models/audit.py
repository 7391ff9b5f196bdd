"""Append-only, hash-chained audit log holding no personal data.

Entry i stores h_i = SHA-256(0x00 || h_{i-1} || canonical JSON of entry i). Entries are written
in the same transaction as the change they record; writers are serialised (BEGIN IMMEDIATE on
SQLite, a transaction-scoped advisory lock on PostgreSQL) so `seq` stays gapless.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Callable, Iterable

import peewee as pw

from models import clock
from models.db import BaseModel, db, is_sqlite, write

GENESIS = "0" * 64
AUDIT_LOCK_ID = 7301


class AuditEntry(BaseModel):
    seq = pw.BigIntegerField(primary_key=True)
    ts = pw.CharField(max_length=32)  # ISO 8601 UTC, milliseconds
    actor_id = pw.IntegerField(null=True)
    actor = pw.CharField(max_length=64)  # staff username (not customer data)
    session_id = pw.CharField(max_length=32, default="")
    action = pw.CharField(max_length=48, index=True)
    object_type = pw.CharField(max_length=32, default="")
    object_id = pw.CharField(max_length=64, default="", index=True)
    fields = pw.TextField(default="")  # comma-separated field names, never values
    purpose = pw.CharField(max_length=200, default="")
    outcome = pw.CharField(max_length=16, default="ok", index=True)
    details = pw.TextField(default="{}")  # JSON of ids/counts/codes only
    prev_hash = pw.CharField(max_length=64)
    hash = pw.CharField(max_length=64)

    class Meta:
        table_name = "audit_entry"


HASHED_COLUMNS = (
    "seq", "ts", "actor_id", "actor", "session_id", "action", "object_type",
    "object_id", "fields", "purpose", "outcome", "details",
)


def canonical(entry: dict) -> bytes:
    return json.dumps(
        {k: entry[k] for k in HASHED_COLUMNS}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def chain_hash(prev_hash: str, entry: dict) -> str:
    return hashlib.sha256(b"\x00" + bytes.fromhex(prev_hash) + canonical(entry)).hexdigest()


@dataclass(frozen=True)
class AuditView:
    seq: int
    ts: str
    actor: str
    action: str
    object_type: str
    object_id: str
    fields: str
    purpose: str
    outcome: str
    details: str
    hash: str


def _lock_chain() -> None:
    if not is_sqlite():
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK_ID,))


def append(
    *,
    actor_id: int | None,
    actor: str,
    action: str,
    session_id: str = "",
    object_type: str = "",
    object_id: str = "",
    fields: Iterable[str] = (),
    purpose: str = "",
    outcome: str = "ok",
    details: dict | None = None,
) -> int:
    """Append one entry inside the caller's write transaction (or its own); returns its seq."""
    with write():
        _lock_chain()
        head = AuditEntry.select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).first()
        seq = head.seq + 1 if head else 1
        prev = head.hash if head else GENESIS
        entry = {
            "seq": seq,
            "ts": clock.now().astimezone(dt.timezone.utc).isoformat(timespec="milliseconds"),
            "actor_id": actor_id,
            "actor": actor[:64],
            "session_id": session_id,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "fields": ",".join(fields),
            "purpose": purpose[:200],
            "outcome": outcome,
            "details": json.dumps(details or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        }
        AuditEntry.insert(**entry, prev_hash=prev, hash=chain_hash(prev, entry)).execute()
        from models import checkpoints  # late import: checkpoints reads this module's table

        checkpoints.note_append()  # signs the new head once the transaction commits
        return seq


@dataclass(frozen=True)
class VerifyResult:
    entries: int
    ok: bool
    first_bad_seq: int | None = None
    reason: str = ""
    head_hash: str = GENESIS
    checkpoints: int = 0  # signed checkpoints the log agreed with
    warning: str = ""


def verify_chain(progress: Callable[[int, int], None] | None = None, batch: int = 5000, *,
                 checkpoints: bool = True) -> VerifyResult:
    """Replay the whole chain and hold it against every signed checkpoint outside the database;
    report the first entry that was edited, deleted, inserted, reordered, rewritten or dropped."""
    from models import checkpoints as signed

    expect = signed.expectation() if checkpoints else None
    total = AuditEntry.select().count()
    prev = GENESIS
    expected_seq = 1
    checked = 0
    last_seq = 0
    while True:
        rows = (
            AuditEntry.select()
            .where(AuditEntry.seq > last_seq)
            .order_by(AuditEntry.seq)
            .limit(batch)
            .dicts()
        )
        rows = list(rows)
        if not rows:
            break
        for row in rows:
            if row["seq"] != expected_seq:
                return VerifyResult(checked, False, expected_seq, "entry missing or reordered", prev)
            if row["prev_hash"] != prev:
                return VerifyResult(checked, False, row["seq"], "does not link to the entry before it", prev)
            if chain_hash(prev, row) != row["hash"]:
                return VerifyResult(checked, False, row["seq"], "content does not match its hash", prev)
            prev = row["hash"]
            if expect and (failed := expect.check(row["seq"], prev)):
                return failed
            expected_seq += 1
            checked += 1
        last_seq = rows[-1]["seq"]
        if progress:
            progress(checked, total)
    result = VerifyResult(checked, True, None, "", prev)
    return expect.finish(result) if expect else result


SQLITE_GUARDS = (
    "CREATE TRIGGER IF NOT EXISTS audit_entry_no_update BEFORE UPDATE ON audit_entry "
    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_entry_no_delete BEFORE DELETE ON audit_entry "
    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
)

POSTGRES_GUARDS = (
    "CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit log is append-only'; END; $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS audit_entry_no_change ON audit_entry",
    "CREATE TRIGGER audit_entry_no_change BEFORE UPDATE OR DELETE ON audit_entry "
    "FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()",
    "DROP TRIGGER IF EXISTS audit_entry_no_truncate ON audit_entry",
    "CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only()",
)


def install_guards() -> None:
    for statement in SQLITE_GUARDS if is_sqlite() else POSTGRES_GUARDS:
        db.execute_sql(statement)
