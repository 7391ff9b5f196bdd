"""Reading the audit log: filtered keyset pages, one entry with its chain position, and export.

Pages are keyset pages over `seq` (newest first), so page 20 000 costs what page 1 costs; a time
range is turned into a `seq` range with two index lookups. `export_range` writes JSON lines with
the chain hashes and the signed checkpoints of the range; `verify_export` checks such a file with
nothing but hashlib and the checkpoint public key, as an outside party would.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from models import audit, checkpoints, normalise, office
from models.audit import GENESIS, HASHED_COLUMNS, AuditEntry
from models.errors import FieldError, NotFound, ValidationError
from models.permissions import Actor, Perm, service
from models.staff import normalise_username

PAGE_SIZE = 50
OUTCOMES = ("ok", "denied", "failed")
EXPORT_FORMAT = "recordkeeper-audit-export/1"
HASH_RULE = ("h_i = SHA-256(0x00 || bytes.fromhex(h_(i-1)) || C_i), h_0 = 64 zeros, C_i = UTF-8 of "
             "json.dumps({column: value for the hashed columns}, sort_keys=True, separators=(',', ':'), "
             "ensure_ascii=False)")
SIGNATURE_RULE = ("Ed25519 over b'recordkeeper-audit-checkpoint/v1\\n' + json.dumps({'seq', 'head', 'ts', "
                  "'kind'}, sort_keys=True, separators=(',', ':')) in ASCII")


@dataclass(frozen=True)
class AuditFilter:
    """What the audit log screen filters by; empty values do not filter."""

    since: dt.date | None = None
    until: dt.date | None = None  # inclusive
    staff: str = ""
    action: str = ""
    customer_no: str = ""
    outcome: str = ""

    def is_empty(self) -> bool:
        return self == AuditFilter()

    def as_details(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in self.__dict__.items() if v}


@dataclass(frozen=True)
class AuditRow:
    seq: int
    ts: str
    actor: str
    action: str
    object_type: str
    object_id: str
    outcome: str


@dataclass(frozen=True)
class AuditPage:
    rows: tuple[AuditRow, ...]
    has_older: bool
    has_newer: bool
    log_size: int


@dataclass(frozen=True)
class AuditDetail:
    seq: int
    ts: str
    actor: str
    actor_id: int | None
    session_id: str
    action: str
    object_type: str
    object_id: str
    fields: str
    purpose: str
    outcome: str
    details: tuple[tuple[str, str], ...]
    prev_hash: str
    hash: str
    log_size: int
    links_to_previous: bool
    content_matches: bool
    checkpoint_seq: int | None  # the first signed checkpoint at or after this entry
    checkpoint_ts: str


def _parse_date(raw: object, field: str, errors: list[FieldError]) -> dt.date | None:
    if raw in (None, ""):
        return None
    if isinstance(raw, dt.date):
        return raw
    try:
        return dt.date.fromisoformat(str(raw).strip())
    except ValueError:
        errors.append(FieldError(field, "must be a date like 2026-03-31", "bad_date"))
        return None


def make_filter(since: object = None, until: object = None, staff: str = "", action: str = "",
                customer_no: str = "", outcome: str = "") -> AuditFilter:
    """Check what was typed into the filter; every problem names its field."""
    errors: list[FieldError] = []
    start = _parse_date(since, "since", errors)
    end = _parse_date(until, "until", errors)
    if start and end and end < start:
        errors.append(FieldError("until", "must not be before the start date", "before_start"))
    staff_name = normalise_username(staff) if staff.strip() else ""
    if staff_name and (len(staff_name) > 32 or not all(c.isalnum() or c in "._-()" for c in staff_name)):
        errors.append(FieldError("staff", "must be a username", "bad_format"))
    action_code = action.strip().upper()
    if action_code and (len(action_code) > 48 or not all(c.isalnum() or c == "_" for c in action_code)):
        errors.append(FieldError("action", "must be an action code such as REVEAL", "bad_format"))
    number = normalise.normalise_customer_number(customer_no) if customer_no.strip() else ""
    if number and (len(number) > 16 or not number.isalnum()):
        errors.append(FieldError("customer_no", "must be a customer number such as C2026000123", "bad_format"))
    outcome_code = outcome.strip().lower()
    if outcome_code and outcome_code not in OUTCOMES:
        errors.append(FieldError("outcome", "must be ok, denied or failed", "bad_choice"))
    if errors:
        raise ValidationError(errors)
    return AuditFilter(start, end, staff_name, action_code, number, outcome_code)


def local_midnight_utc(day: dt.date) -> dt.datetime:
    """The start of `day` in the office's local time, in UTC (tables store naive UTC: drop tzinfo)."""
    return dt.datetime.combine(day, dt.time.min).astimezone().astimezone(dt.timezone.utc)


def day_start_utc(day: dt.date) -> str:
    """The start of `day` in the office's local time, as the audit log's UTC timestamp text."""
    return local_midnight_utc(day).isoformat(timespec="milliseconds")


def seq_bounds(since: dt.date | None, until: dt.date | None) -> tuple[int, int] | None:
    """The seq range of entries written in [since, until] (None when there are none)."""
    query = AuditEntry.select(AuditEntry.seq)
    low_row = (query.where(AuditEntry.ts >= day_start_utc(since)).order_by(AuditEntry.ts, AuditEntry.seq)
               if since else query.order_by(AuditEntry.seq)).first()
    high_row = (query.where(AuditEntry.ts < day_start_utc(until + dt.timedelta(days=1)))
                .order_by(AuditEntry.ts.desc(), AuditEntry.seq.desc())
                if until else query.order_by(AuditEntry.seq.desc())).first()
    if low_row is None or high_row is None or low_row.seq > high_row.seq:
        return None
    return low_row.seq, high_row.seq


def conditions_for(flt: AuditFilter) -> list | None:
    """Conditions for the filter (None when the time range holds no entries)."""
    conditions = []
    if flt.since or flt.until:
        bounds = seq_bounds(flt.since, flt.until)
        if bounds is None:
            return None
        conditions.append(AuditEntry.seq.between(*bounds))
        if flt.since:
            conditions.append(AuditEntry.ts >= day_start_utc(flt.since))
        if flt.until:
            conditions.append(AuditEntry.ts < day_start_utc(flt.until + dt.timedelta(days=1)))
    if flt.staff:
        conditions.append(AuditEntry.actor == flt.staff)
    if flt.action:
        conditions.append(AuditEntry.action == flt.action)
    if flt.customer_no:
        conditions.append(AuditEntry.object_id == flt.customer_no)
    if flt.outcome:
        conditions.append(AuditEntry.outcome == flt.outcome)
    return conditions


def _row(r: dict) -> AuditRow:
    return AuditRow(r["seq"], r["ts"], r["actor"], r["action"], r["object_type"], r["object_id"], r["outcome"])


def log_size() -> int:
    head = AuditEntry.select(AuditEntry.seq).order_by(AuditEntry.seq.desc()).first()
    return head.seq if head else 0


def _page(flt: AuditFilter, before_seq: int | None, after_seq: int | None, limit: int) -> AuditPage:
    size = log_size()
    conditions = conditions_for(flt)
    if conditions is None:
        return AuditPage((), False, False, size)
    columns = (AuditEntry.seq, AuditEntry.ts, AuditEntry.actor, AuditEntry.action, AuditEntry.object_type,
               AuditEntry.object_id, AuditEntry.outcome)

    def matching(*extra):
        return AuditEntry.select(*columns).where(*(conditions + list(extra))) if conditions or extra \
            else AuditEntry.select(*columns)

    if after_seq is not None:  # the page just newer than after_seq
        rows = list(matching(AuditEntry.seq > after_seq).order_by(AuditEntry.seq).limit(limit + 1).dicts())
        has_newer = len(rows) > limit
        rows = list(reversed(rows[:limit]))
        has_older = matching(AuditEntry.seq <= after_seq).exists() if rows else after_seq > 0
        if not rows:  # nothing newer: show the newest page instead
            return _page(flt, None, None, limit)
    else:
        extra = [AuditEntry.seq < before_seq] if before_seq is not None else []
        rows = list(matching(*extra).order_by(AuditEntry.seq.desc()).limit(limit + 1).dicts())
        has_older = len(rows) > limit
        rows = rows[:limit]
        has_newer = bool(rows) and matching(AuditEntry.seq > rows[0]["seq"]).exists()
    return AuditPage(tuple(_row(r) for r in rows), has_older, has_newer, size)


@service(Perm.AUDIT_VIEW)
def browse(actor: Actor, flt: AuditFilter, *, before_seq: int | None = None, after_seq: int | None = None,
           limit: int = PAGE_SIZE) -> AuditPage:
    """A page of entries matching `flt`, newest first: the newest page, or the page just older than
    `before_seq`, or just newer than `after_seq`. Opening a filter (the newest page) is audited."""
    limit = max(1, min(limit, 500))
    if before_seq is None and after_seq is None:
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="AUDIT_BROWSE", details=flt.as_details())
    return _page(flt, before_seq, after_seq, limit)


@service(Perm.AUDIT_VIEW)
def page_at(actor: Actor, flt: AuditFilter, seq: int, limit: int = PAGE_SIZE) -> AuditPage:
    """The page whose first (newest) row is the newest matching entry at or before `seq`."""
    return _page(flt, seq + 1, None, max(1, min(limit, 500)))


@service(Perm.AUDIT_VIEW)
def known_actions(actor: Actor) -> list[str]:
    """The action codes the log holds (for the filter's choices)."""
    return [r.action for r in AuditEntry.select(AuditEntry.action).distinct().order_by(AuditEntry.action)]


@service(Perm.AUDIT_VIEW)
def entry_detail(actor: Actor, seq: int) -> AuditDetail:
    """One entry in full (it holds no personal data) with its place in the chain."""
    row = AuditEntry.select().where(AuditEntry.seq == seq).dicts().first()
    if row is None:
        raise NotFound(f"no audit entry {seq}")
    previous = AuditEntry.select(AuditEntry.hash).where(AuditEntry.seq == seq - 1).first()
    expected_prev = GENESIS if seq == 1 else (previous.hash if previous else None)
    try:
        details = json.loads(row["details"] or "{}")
    except ValueError:
        details = {"(unreadable)": row["details"][:80]}
    pairs = tuple((str(k), json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v)
                  for k, v in sorted(details.items())) if isinstance(details, dict) else (("value", str(details)),)
    covering = checkpoints.covering(seq)
    return AuditDetail(
        row["seq"], row["ts"], row["actor"], row["actor_id"], row["session_id"], row["action"], row["object_type"],
        row["object_id"], row["fields"], row["purpose"], row["outcome"], pairs, row["prev_hash"], row["hash"],
        log_size(), expected_prev is not None and row["prev_hash"] == expected_prev,
        audit.chain_hash(row["prev_hash"], row) == row["hash"],
        covering.seq if covering else None, covering.ts if covering else "")


@service(Perm.AUDIT_VERIFY)
def verify_log(actor: Actor, progress: Callable[[int, int], None] | None = None) -> audit.VerifyResult:
    """Replay the chain against the signed checkpoints and record the outcome in the log itself."""
    result = audit.verify_chain(progress=progress)
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="AUDIT_VERIFY", outcome="ok" if result.ok else "failed",
                 details={"ok": result.ok, "entries": result.entries, "first_bad_seq": result.first_bad_seq,
                          "reason": result.reason[:200], "checkpoints": result.checkpoints,
                          "warning": bool(result.warning)})
    return result


# --- export ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    path: Path
    entries: int
    first_seq: int
    last_seq: int
    checkpoints: int


def _export_range(since, until, first_seq, last_seq) -> tuple[int, int]:
    low, high = 1, log_size()
    if since or until:
        bounds = seq_bounds(since, until)
        if bounds is None:
            raise ValidationError([FieldError("since", "no entries were written in that period", "empty")])
        low, high = bounds
    if first_seq is not None:
        low = max(low, int(first_seq))
    if last_seq is not None:
        high = min(high, int(last_seq))
    if high < 1 or low > high:
        raise ValidationError([FieldError("first_seq", "that range holds no entries", "empty")])
    return low, high


@service(Perm.AUDIT_VIEW)
def export_range(actor: Actor, path: Path | None = None, *, since: dt.date | None = None,
                 until: dt.date | None = None, first_seq: int | None = None, last_seq: int | None = None,
                 progress: Callable[[int, int], None] | None = None, batch: int = 5000) -> ExportResult:
    """Write entries first_seq..last_seq (or those of a period) as JSON lines an outsider can verify."""
    from models.training import require_training

    require_training(actor, "audit_export")
    low, high = _export_range(since, until, first_seq, last_seq)
    open_ended = until is None and last_seq is None
    own_seq = audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                           action="AUDIT_EXPORT", details={"first_seq": low, "last_seq": high,
                                                           "to_newest": open_ended})
    if open_ended:  # up to the newest entry, so the newest signed checkpoint falls inside the range
        high = own_seq
    target = Path(path) if path else office.current().settings.export_dir / f"audit-{low}-{high}.jsonl"
    anchor = GENESIS if low == 1 else AuditEntry.get_by_id(low).prev_hash
    public_hex = checkpoints.public_key_hex()
    signed = checkpoints.in_range(low, high)
    temporary = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    written = 0
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        header = {"type": "header", "format": EXPORT_FORMAT, "first_seq": low, "last_seq": high,
                  "anchor_prev_hash": anchor, "hashed_columns": list(HASHED_COLUMNS), "hash_rule": HASH_RULE,
                  "signature_rule": SIGNATURE_RULE, "checkpoint_public_key": public_hex,
                  "checkpoint_key_id": checkpoints.key_id_of(public_hex), "exported_by": actor.username}
        out.write(json.dumps(header, ensure_ascii=False, sort_keys=True) + "\n")
        cursor = low - 1
        last_hash = anchor
        while cursor < high:
            rows = list(AuditEntry.select().where(AuditEntry.seq > cursor, AuditEntry.seq <= high)
                        .order_by(AuditEntry.seq).limit(batch).dicts())
            if not rows:
                break
            for row in rows:
                out.write(json.dumps({"type": "entry", **row}, ensure_ascii=False, sort_keys=True) + "\n")
                last_hash = row["hash"]
            written += len(rows)
            cursor = rows[-1]["seq"]
            if progress:
                progress(written, high - low + 1)
        for checkpoint in signed:
            out.write(json.dumps({"type": "checkpoint", **checkpoint.as_json()}, sort_keys=True) + "\n")
        out.write(json.dumps({"type": "end", "entries": written, "last_hash": last_hash}, sort_keys=True) + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, target)
    return ExportResult(target, written, low, high, len(signed))


@dataclass(frozen=True)
class ExportCheck:
    ok: bool
    entries: int
    checkpoints: int
    first_seq: int
    last_seq: int
    reason: str = ""
    key_confirmed: bool = False  # the public key was given independently, not read from the file


def verify_export(path: Path, public_key_hex: str = "") -> ExportCheck:
    """Check an export on its own: the chain links from its anchor, every hash, every checkpoint
    signature, and that every checkpoint in range matches its entry. Needs no database or key store."""
    entries = checks = 0
    first = last = 0

    def bad(reason: str) -> ExportCheck:
        return ExportCheck(False, entries, checks, first, last, reason, bool(public_key_hex))

    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        return bad(f"cannot read the file ({type(exc).__name__})")
    with handle:
        try:
            header = json.loads(handle.readline())
        except ValueError:
            return bad("the first line is not a header")
        if header.get("format") != EXPORT_FORMAT or header.get("type") != "header":
            return bad("not a RecordKeeper audit export")
        key = public_key_hex or str(header.get("checkpoint_public_key", ""))
        first, last = int(header["first_seq"]), int(header["last_seq"])
        prev, expected_seq = str(header["anchor_prev_hash"]), first
        if first == 1 and prev != GENESIS:
            return bad("an export from entry 1 must start from the genesis hash")
        hashes: dict[int, str] = {}
        ended = False
        for number, line in enumerate(handle, start=2):
            try:
                item = json.loads(line)
            except ValueError:
                return bad(f"line {number} is damaged")
            kind = item.get("type")
            if ended:
                return bad(f"line {number} follows the end marker")
            if kind == "entry":
                if item.get("seq") != expected_seq:
                    return bad(f"entry {expected_seq} is missing or out of order (line {number})")
                if item.get("prev_hash") != prev:
                    return bad(f"entry {expected_seq} does not link to the entry before it")
                content = json.dumps({k: item[k] for k in HASHED_COLUMNS}, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode("utf-8")
                if hashlib.sha256(b"\x00" + bytes.fromhex(prev) + content).hexdigest() != item.get("hash"):
                    return bad(f"entry {expected_seq} does not match its hash")
                prev = item["hash"]
                hashes[expected_seq] = prev
                expected_seq += 1
                entries += 1
            elif kind == "checkpoint":
                if not checkpoints.signature_ok(key, item):
                    return bad(f"the checkpoint at entry {item.get('seq')} has a bad signature")
                if hashes.get(int(item["seq"])) != item.get("head"):
                    return bad(f"entry {item.get('seq')} does not match the checkpoint signed at {item.get('ts')}")
                checks += 1
            elif kind == "end":
                ended = True
                if item.get("entries") != entries or item.get("last_hash") != prev:
                    return bad("the end marker does not match the entries (the file was cut or extended)")
            else:
                return bad(f"line {number} has an unknown type")
        if not ended:
            return bad("the end marker is missing (the file was cut short)")
        if expected_seq != last + 1:
            return bad(f"the header promises entries up to {last} but the file stops at {expected_seq - 1}")
    return ExportCheck(True, entries, checks, first, last, "", bool(public_key_hex))
