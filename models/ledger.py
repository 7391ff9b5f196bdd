"""The destruction ledger: an append-only, MAC-chained file of every destruction, outside both databases.

A restored database or key store cannot erase it, so before anyone is served the office replays it
(see `models.destruction.reconcile`). Each line is one customer's destruction intent (ids, codes and
staff usernames only, never personal data), written and fsynced before their data key is deleted.
Each databases records the last ledger entry it has applied (`ledger_mark`), so a copy restored
from an older backup is caught by comparing marks.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Iterator

import peewee as pw

from models import crypto, office
from models.db import BaseModel, KeyStoreModel
from models.errors import Conflict, IntegrityFailure

LEDGER_FILE = "destruction-ledger.jsonl"
LOCK_FILE = "destruction.lock"
GENESIS = "0" * 64
TAIL_READ_BYTES = 65536


class LedgerMark(KeyStoreModel):
    """In the key store: the last ledger entry whose data keys this key store has deleted."""

    name = pw.CharField(max_length=16, primary_key=True)
    seq = pw.IntegerField(default=0)
    mac = pw.CharField(max_length=64, default=GENESIS)

    class Meta:
        table_name = "ledger_mark"


class DestructionMark(BaseModel):
    """In the main database: the last ledger entry whose rows this database has deleted."""

    name = pw.CharField(max_length=16, primary_key=True)
    seq = pw.IntegerField(default=0)
    mac = pw.CharField(max_length=64, default=GENESIS)

    class Meta:
        table_name = "destruction_mark"


def ledger_path(home: Path | None = None) -> Path:
    return (home or office.current().settings.home) / LEDGER_FILE


def _ledger_key() -> bytes:
    return crypto.derive(office.current().keyring.audit, "destruction-ledger")


def _canonical(entry: dict) -> bytes:
    body = {k: v for k, v in entry.items() if k != "mac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _mac(key: bytes, entry: dict) -> str:
    return hmac.new(key, bytes.fromhex(entry["prev"]) + _canonical(entry), hashlib.sha256).hexdigest()


def _parse(raw: bytes, key: bytes, line_no: int) -> dict:
    try:
        entry = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise IntegrityFailure(f"the destruction ledger is damaged at line {line_no} (not readable)") from None
    if not isinstance(entry, dict) or not hmac.compare_digest(str(entry.get("mac", "")), _mac(key, entry)):
        raise IntegrityFailure(f"the destruction ledger is damaged at line {line_no} (fails its check)")
    return entry


def _split(data: bytes) -> tuple[list[bytes], bool]:
    """Complete lines, and whether a torn (unterminated) last line follows them."""
    lines = data.split(b"\n")
    torn = lines[-1] != b""
    return [line for line in lines[:-1] if line], torn


def read_entries(path: Path | None = None, *, key: bytes | None = None) -> list[dict]:
    """Every entry, checked: each MAC, and that each links to the one before with gapless numbers.

    An unterminated last line is a write that a crash cut short before its fsync; it is ignored.
    """
    path = path or ledger_path()
    if not path.exists():
        return []
    key = key or _ledger_key()
    lines, _torn = _split(path.read_bytes())
    entries = []
    prev, expected = GENESIS, 1
    for line_no, raw in enumerate(lines, start=1):
        entry = _parse(raw, key, line_no)
        if entry.get("seq") != expected or entry.get("prev") != prev:
            raise IntegrityFailure(f"the destruction ledger is damaged at line {line_no} (out of sequence)")
        entries.append(entry)
        prev, expected = entry["mac"], expected + 1
    return entries


def tail(path: Path | None = None) -> tuple[int, str]:
    """(seq, mac) of the last complete entry, reading only the end of the file; (0, GENESIS) if empty."""
    path = path or ledger_path()
    if not path.exists():
        return 0, GENESIS
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - TAIL_READ_BYTES))
        lines, _torn = _split(handle.read())
    if not lines:
        return 0, GENESIS
    entry = _parse(lines[-1], _ledger_key(), -1)
    return int(entry["seq"]), str(entry["mac"])


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append(fields: dict, path: Path | None = None) -> dict:
    """Append one entry (numbered and chained here), fsynced before returning it."""
    path = path or ledger_path()
    key = _ledger_key()
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.lseek(fd, 0, os.SEEK_END)
        start = max(0, size - TAIL_READ_BYTES)
        os.lseek(fd, start, os.SEEK_SET)
        chunk = os.read(fd, size - start)
        lines, torn = _split(chunk)
        if torn:  # a crash cut the last write short; it was never acknowledged, so drop it
            os.ftruncate(fd, start + chunk.rfind(b"\n") + 1 if b"\n" in chunk else start)
        if lines:
            last = _parse(lines[-1], key, -1)
            seq, prev = int(last["seq"]) + 1, str(last["mac"])
        else:
            seq, prev = 1, GENESIS
        entry = {**fields, "seq": seq, "prev": prev}
        entry["mac"] = _mac(key, entry)
        os.write(fd, json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _fsync_dir(path.parent)
    return entry


def merge_from(other: Path, path: Path | None = None) -> int:
    """Append every destruction in another copy of the ledger that this one lacks; returns how many."""
    theirs = read_entries(other)
    known = {e["customer_id"] for e in read_entries(path)}
    added = 0
    for entry in theirs:
        if entry["customer_id"] in known:
            continue
        fields = {k: v for k, v in entry.items() if k not in ("seq", "prev", "mac")}
        fields["merged_from_seq"] = entry["seq"]
        append(fields, path)
        known.add(entry["customer_id"])
        added += 1
    return added


@contextlib.contextmanager
def run_lock(home: Path | None = None, *, wait: bool = False) -> Iterator[None]:
    """Hold the office's destruction lock (one destruction run, replay or restore at a time)."""
    lock_path = (home or office.current().settings.home) / LOCK_FILE
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict("another destruction run, replay or restore is in progress; try again when it ends") \
                from None
        yield
    finally:
        os.close(fd)


def lock_is_free(home: Path | None = None) -> bool:
    try:
        with run_lock(home):
            return True
    except Conflict:
        return False


def keystore_mark() -> tuple[int, str]:
    row = LedgerMark.get_or_none(LedgerMark.name == "ledger")
    return (row.seq, row.mac) if row else (0, GENESIS)


def database_mark() -> tuple[int, str]:
    row = DestructionMark.get_or_none(DestructionMark.name == "ledger")
    return (row.seq, row.mac) if row else (0, GENESIS)


def set_keystore_mark(seq: int, mac: str) -> None:
    from models.db import keys_db

    with keys_db.atomic():
        if not LedgerMark.update(seq=seq, mac=mac).where(LedgerMark.name == "ledger").execute():
            LedgerMark.insert(name="ledger", seq=seq, mac=mac).execute()


def set_database_mark(seq: int, mac: str) -> None:
    from models.db import write

    with write():
        if not DestructionMark.update(seq=seq, mac=mac).where(DestructionMark.name == "ledger").execute():
            DestructionMark.insert(name="ledger", seq=seq, mac=mac).execute()
