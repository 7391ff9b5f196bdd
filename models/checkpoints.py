"""Signed audit checkpoints kept outside the database, so a rewritten or shortened log is detected.

After every commit that appended audit entries the newest (seq, hash) is signed with an Ed25519
key derived from the master key and written to `checkpoints/audit-head.json` (two slots written in turn, so a crash mid-write keeps the other); every
`INTERVAL_ENTRIES` entries or `INTERVAL_MINUTES` minutes a signed line is also appended to
`checkpoints/audit-checkpoints.jsonl`. Anyone with the public key can check the signatures.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from models import clock, office
from models.db import db

INTERVAL_ENTRIES = 1000
INTERVAL_MINUTES = 10
DIR_NAME = "checkpoints"
LOG_NAME = "audit-checkpoints.jsonl"
HEAD_NAME = "audit-head.json"
LOCK_NAME = ".lock"
SLOT_BYTES = 512  # the head file holds two slots, written in turn
SIGNING_DOMAIN = b"recordkeeper-audit-checkpoint/v1\n"

log = logging.getLogger("recordkeeper.checkpoints")
_local = threading.local()
_process_lock = threading.Lock()
_signers: dict[bytes, Ed25519PrivateKey] = {}


@dataclass(frozen=True)
class Checkpoint:
    """A signed claim: the audit log's entry `seq` has hash `head` (so it has at least `seq` entries)."""

    seq: int
    head: str
    ts: str
    kind: str  # "interval" or "head"
    key_id: str
    sig: str

    def as_json(self) -> dict:
        return {"seq": self.seq, "head": self.head, "ts": self.ts, "kind": self.kind,
                "key_id": self.key_id, "sig": self.sig}


def signed_bytes(seq: int, head: str, ts: str, kind: str) -> bytes:
    """The exact bytes a checkpoint signature covers (documented in every export)."""
    body = json.dumps({"seq": seq, "head": head, "ts": ts, "kind": kind}, sort_keys=True, separators=(",", ":"))
    return SIGNING_DOMAIN + body.encode("ascii")


# --- keys --------------------------------------------------------------------------------


def _signer() -> Ed25519PrivateKey:
    seed = office.current().keyring.checkpoint
    key = _signers.get(seed)
    if key is None:
        key = _signers[seed] = Ed25519PrivateKey.from_private_bytes(seed)
    return key


def public_key_hex() -> str:
    """The office's checkpoint verification key (raw Ed25519, hex): give it to outside auditors."""
    return _signer().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def key_id_of(public_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:16]


def sign(seq: int, head: str, ts: str, kind: str) -> Checkpoint:
    signature = _signer().sign(signed_bytes(seq, head, ts, kind)).hex()
    return Checkpoint(seq, head, ts, kind, key_id_of(public_key_hex()), signature)


def signature_ok(public_hex: str, data: dict) -> bool:
    """Check one checkpoint's signature with a public key (no office needed)."""
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        key.verify(bytes.fromhex(str(data["sig"])),
                   signed_bytes(int(data["seq"]), str(data["head"]), str(data["ts"]), str(data["kind"])))
    except (InvalidSignature, KeyError, ValueError, TypeError):
        return False
    return True


# --- files -------------------------------------------------------------------------------


def checkpoint_dir() -> Path:
    return office.current().settings.home / DIR_NAME


def _ensure_dir(path: Path) -> None:
    # Never its parents: an office folder deleted under a running process must stay deleted.
    path.mkdir(mode=0o700, exist_ok=True)


class _FileLock:
    """Serialise checkpoint writers across threads (a lock) and processes (flock)."""

    def __init__(self, directory: Path):
        self.directory = directory

    def __enter__(self):
        _process_lock.acquire()
        try:
            _ensure_dir(self.directory)
            self.fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            _process_lock.release()
            raise
        return self

    def __exit__(self, *exc):
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
        finally:
            _process_lock.release()


def _read_slots(directory: Path) -> list[dict | None] | None:
    """The head file's two slots (None for an empty or damaged slot); None when there is no file."""
    try:
        raw = (directory / HEAD_NAME).read_bytes()
    except FileNotFoundError:
        return None
    slots: list[dict | None] = []
    for index in range(2):
        chunk = raw[index * SLOT_BYTES:(index + 1) * SLOT_BYTES].strip()
        try:
            slots.append(json.loads(chunk) if chunk else None)
        except ValueError:
            slots.append({"damaged": True})
    return slots


def _slot_seq(slot: dict | None) -> int:
    try:
        return int(slot["checkpoint"]["seq"]) if slot and "checkpoint" in slot else -1
    except (KeyError, TypeError, ValueError):
        return -1


def _write_slot(directory: Path, index: int, data: dict) -> None:
    """Overwrite one slot in place: a torn write can spoil only this slot, never the other."""
    body = json.dumps(data, sort_keys=True, separators=(",", ":")).encode("ascii")
    if len(body) >= SLOT_BYTES:
        raise ValueError("checkpoint slot overflow")
    fd = os.open(directory / HEAD_NAME, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, body + b" " * (SLOT_BYTES - 1 - len(body)) + b"\n", index * SLOT_BYTES)
    finally:
        os.close(fd)


def _append_line(directory: Path, checkpoint: Checkpoint) -> None:
    line = (json.dumps(checkpoint.as_json(), sort_keys=True, separators=(",", ":")) + "\n").encode("ascii")
    fd = os.open(directory / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


# --- writing -------------------------------------------------------------------------------


def note_append() -> None:
    """Called by `audit.append` inside its transaction: write a checkpoint once that transaction commits."""
    _local.pending = True
    db.after_commit(_after_commit)


def _after_commit() -> None:
    # One commit may run several of these callbacks (one per entry); the first does the work.
    if not getattr(_local, "pending", False):
        return
    _local.pending = False
    try:
        write_checkpoint()
    except Exception as exc:  # the change is committed; a missed checkpoint is retried at the next one
        _local.pending = True
        log.warning("audit checkpoint not written: %s", type(exc).__name__)


def _committed_head() -> tuple[int, str] | None:
    # Plain SQL: this runs after every commit that wrote an audit entry, so it is kept cheap.
    row = db.execute_sql("SELECT seq, hash FROM audit_entry ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else None


def write_checkpoint(force_interval: bool = False) -> Checkpoint | None:
    """Sign the committed head of the log into the head file (and the interval log when one is due)."""
    if db.transaction_depth():
        raise RuntimeError("checkpoints are written only from committed state")
    head = _committed_head()
    if head is None:
        return None
    seq, head_hash = head
    now = clock.now().astimezone(dt.timezone.utc)
    ts = now.isoformat(timespec="milliseconds")
    directory = checkpoint_dir()
    with _FileLock(directory):
        slots = _read_slots(directory) or [None, None]
        newest = max((0, 1), key=lambda i: _slot_seq(slots[i]))
        current_seq = _slot_seq(slots[newest])
        owner = ((slots[newest] or {}).get("checkpoint") or {}).get("key_id")
        if owner and owner != key_id_of(public_key_hex()):
            # E.g. a process still running on an office that was replaced at the same path.
            raise RuntimeError("the checkpoint folder belongs to another office")
        interval = (slots[newest] or {}).get("last_interval") or {"seq": 0, "ts": ""}
        checkpoint = sign(seq, head_hash, ts, "head")
        due = force_interval or seq - int(interval["seq"]) >= INTERVAL_ENTRIES or (
            seq > int(interval["seq"]) and (not interval["ts"] or now - dt.datetime.fromisoformat(interval["ts"])
                                             >= dt.timedelta(minutes=INTERVAL_MINUTES)))
        if due and seq > int(interval["seq"]):
            _append_line(directory, sign(seq, head_hash, ts, "interval"))
            interval = {"seq": seq, "ts": ts}
        if seq > current_seq:  # another process may have signed a newer head meanwhile
            _write_slot(directory, 1 - newest, {"checkpoint": checkpoint.as_json(), "last_interval": interval})
    return checkpoint


# --- reading and verifying ---------------------------------------------------------------


@dataclass
class CheckpointSet:
    """Every checkpoint found, whether each signature held, and file problems."""

    checkpoints: list[Checkpoint] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    found_files: bool = False


def _parse(data: dict, public_hex: str, where: str, problems: list[str]) -> Checkpoint | None:
    if data.get("key_id") not in (None, key_id_of(public_hex)):
        problems.append(f"{where} was signed with another key (another office's, or a replaced master key)")
        return None
    if not signature_ok(public_hex, data):
        problems.append(f"{where} has a bad signature (altered, or signed with another key)")
        return None
    return Checkpoint(int(data["seq"]), str(data["head"]), str(data["ts"]), str(data["kind"]),
                      str(data.get("key_id", "")), str(data["sig"]))


def load(directory: Path | None = None) -> CheckpointSet:
    """Read the head file and the interval log, checking every signature with this office's key."""
    directory = directory or checkpoint_dir()
    public_hex = public_key_hex()
    found = CheckpointSet()
    slots = _read_slots(directory)
    if slots is not None:
        found.found_files = True
        filled = [slot for slot in slots if slot is not None]
        damaged = [slot for slot in filled if "checkpoint" not in slot]
        if not filled or len(damaged) == len(filled):
            found.problems.append(f"{HEAD_NAME} is damaged")
        elif damaged:  # one slot torn by a crash mid-write (or spoiled): the other still counts
            found.warnings.append(f"one slot of {HEAD_NAME} is damaged")
        for index, slot in enumerate(slots):
            if slot is not None and "checkpoint" in slot:
                parsed = _parse(slot["checkpoint"], public_hex, f"{HEAD_NAME} slot {index + 1}", found.problems)
                if parsed:
                    found.checkpoints.append(parsed)
    try:
        lines = (directory / LOG_NAME).read_text(encoding="ascii").splitlines()
    except FileNotFoundError:
        lines = []
    except (OSError, UnicodeDecodeError):
        lines = []
        found.problems.append(f"{LOG_NAME} cannot be read")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        found.found_files = True
        try:
            data = json.loads(line)
        except ValueError:
            found.problems.append(f"{LOG_NAME} line {number} is damaged")
            continue
        parsed = _parse(data, public_hex, f"{LOG_NAME} line {number}", found.problems)
        if parsed:
            found.checkpoints.append(parsed)
    return found


class Expectation:
    """What the checkpoints say the log must contain; `audit.verify_chain` asks it row by row."""

    def __init__(self, found: CheckpointSet):
        self.found = found
        self.by_seq: dict[int, list[Checkpoint]] = {}
        for checkpoint in found.checkpoints:
            self.by_seq.setdefault(checkpoint.seq, []).append(checkpoint)
        self.highest = max((c.seq for c in found.checkpoints), default=0)
        self.last_good = 0
        self.matched = 0

    def check(self, seq: int, entry_hash: str):
        """None while the entry agrees with every checkpoint at its seq; else the failing VerifyResult."""
        from models.audit import VerifyResult

        for checkpoint in self.by_seq.get(seq, ()):
            if checkpoint.head != entry_hash:
                return VerifyResult(
                    self.last_good, False, self.last_good + 1,
                    f"entries {self.last_good + 1}–{seq} do not match the checkpoint signed at {checkpoint.ts}: "
                    "the log was rewritten", entry_hash, self.matched)
            self.matched += 1
            self.last_good = seq
        return None

    def finish(self, result):
        """The replay's result, failed if the log is shorter than a checkpoint or a checkpoint is bad."""
        from dataclasses import replace

        if not result.ok:
            return replace(result, checkpoints=self.matched)
        if self.highest > result.entries:
            newest = max(self.by_seq[self.highest], key=lambda c: c.ts)
            return replace(result, ok=False, first_bad_seq=result.entries + 1, checkpoints=self.matched,
                           reason=f"entries {result.entries + 1}–{self.highest} are missing: the checkpoint "
                                  f"signed at {newest.ts} shows {self.highest} entries")
        if self.found.problems:
            return replace(result, ok=False, checkpoints=self.matched,
                           reason="checkpoint file: " + "; ".join(self.found.problems[:3]))
        warning = "; ".join(self.found.warnings)
        if not self.found.found_files and result.entries:
            warning = "no signed checkpoints were found, so a rewrite of the whole log could not be detected"
        return replace(result, checkpoints=self.matched, warning=warning)


def expectation() -> Expectation | None:
    """The checkpoints of the open office (None when no office is open)."""
    try:
        office.current()
    except Exception:
        return None
    return Expectation(load())


def covering(seq: int) -> Checkpoint | None:
    """The earliest checkpoint at or after `seq`: it vouches for entry `seq` and everything before it."""
    found = load()
    return min((c for c in found.checkpoints if c.seq >= seq), key=lambda c: c.seq, default=None)


def in_range(first_seq: int, last_seq: int) -> list[Checkpoint]:
    found = load()
    seen: set[tuple[int, str, str]] = set()
    out = []
    for checkpoint in sorted(found.checkpoints, key=lambda c: (c.seq, c.ts)):
        if first_seq <= checkpoint.seq <= last_seq and (checkpoint.seq, checkpoint.kind, checkpoint.ts) not in seen:
            seen.add((checkpoint.seq, checkpoint.kind, checkpoint.ts))
            out.append(checkpoint)
    return out
