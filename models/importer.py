"""Bulk import of customers from a legacy system's CSV export (`recordkeeper import FILE.csv`).

Every row goes through the same validation as the intake form (models.validation), is sealed
under its own data key and indexed like any other customer, and is written a batch at a time:
each batch is one transaction with one audit entry, so a row is either wholly imported or not
at all. Rows that fail go to a rejects file with the row number, field and reason (never the
value: the rejects file is not encrypted). Re-importing a file finds the customers it already
made by their ID document and skips them. Parsing, validation and sealing run in worker
processes, a chunk of rows at a time; this process writes each chunk into the open batch as it
arrives, so writing overlaps their work.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import hashlib
import io
import os
import re
import time
import unicodedata
import uuid
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterable, Iterator

import peewee as pw

from models import audit, clock, customers, validation
from models.db import BaseModel, db, write
from models.errors import RecordKeeperError
from models.fields import CUSTOMER_FIELDS, FIELDS_BY_NAME
from models.permissions import Actor, Perm, service

# The header `recordkeeper import --template` prints (the migration guide's canonical layout).
CANONICAL_HEADER = ("full_name", "gender", "birth_date", "id_type", "id_number", "mobile", "email", "province",
                    "city", "district", "street", "postcode", "occupation", "employer", "category", "branch")
# Columns every file needs. Sex and date of birth may be missing: a resident ID carries both.
REQUIRED_COLUMNS = ("full_name", "id_number", "mobile", "category")
# Fields the office may give for the whole file (--consent-date and friends) when it has no column.
FILE_DEFAULTS = ("consent_date", "consent_scope", "id_type", "branch", "category", "source_channel",
                 "consent_marketing")
ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8-sig", "gb18030": "gb18030",
             "gbk": "gb18030", "gb2312": "gb18030"}
MAX_CELL_CHARS = 1_000_000  # beyond any field's limit; a longer cell is refused as a row, not a crash
# One transaction and one audit entry each. Big batches write each index page fewer times: a batch
# dirties nearly every leaf of the random indexes (blind indexes, ID fingerprints) however few rows
# it holds, and the commit writes them all to the WAL. The write lock is held from a batch's first
# chunk to its commit (about 3 s for 25 000 rows on two cores): other sessions' saves wait that long.
BATCH_ROWS = 25_000
CHUNK_ROWS = 2_000  # rows a worker process parses, validates and seals at a time
PARALLEL_FROM_ROWS = 4000
_AT_FP = customers.SEALED_COLUMNS.index("id_fp")  # a sealed record's fingerprint and category, by position
_AT_CATEGORY = customers.SEALED_COLUMNS.index("category")
_SURROGATE = re.compile("[\udc80-\udcff]")  # undecodable bytes, kept by errors="surrogateescape"


class ImportBatch(BaseModel):
    """One run of `recordkeeper import`: imported customers carry its id (customer.import_batch)."""

    id = pw.CharField(max_length=36, primary_key=True)
    started_at = pw.DateTimeField()
    finished_at = pw.DateTimeField(null=True)
    actor_id = pw.IntegerField(null=True)
    actor = pw.CharField(max_length=64)
    file_sha256 = pw.CharField(max_length=64)
    encoding = pw.CharField(max_length=16)
    rows_read = pw.IntegerField(default=0)
    imported = pw.IntegerField(default=0)
    rejected = pw.IntegerField(default=0)
    skipped = pw.IntegerField(default=0)
    status = pw.CharField(max_length=16, default="running")  # running, done, interrupted, failed

    class Meta:
        table_name = "import_batch"


class ImportFileError(RecordKeeperError):
    """The file as a whole cannot be imported (header, encoding option, unreadable); nothing was imported."""

    def __init__(self, row: int, reason: str):
        self.row = row
        self.reason = reason
        super().__init__(f"row {row}: {reason}")


@dataclass(frozen=True)
class RowProblem:
    """Why one row was not imported: row 1 is the header, as in a spreadsheet; no value is repeated."""

    row: int
    line: int
    field: str
    code: str
    reason: str


@dataclass(frozen=True)
class ImportProgress:
    rows_done: int
    rows_expected: int
    imported: int
    rejected: int
    skipped: int
    seconds: float


@dataclass(frozen=True)
class ImportReport:
    batch_id: str
    encoding: str
    rows: int
    imported: int
    rejected: int
    skipped: int
    rejects_path: Path | None
    seconds: float
    check_only: bool
    status: str
    problems: tuple[RowProblem, ...] = field(default=(), repr=False)  # the first few, for screens and tests


# --- parallel map -------------------------------------------------------------------------


def worker_count(rows: int, requested: int | None = None) -> int:
    """How many worker processes to use: none for small jobs, else one per core."""
    if requested is not None:
        return max(0, requested)
    return 0 if rows < PARALLEL_FROM_ROWS else max(1, min(os.cpu_count() or 1, 4))


def _yield_to_parent() -> None:
    """Workers run at a lower priority: the parent's writing is the one step that cannot be shared
    out, so it should never wait for a core while workers are sealing rows ahead of it."""
    with contextlib.suppress(OSError):
        os.nice(5)


def ordered_map(fn: Callable, tasks: Iterable, workers: int, ahead: int = 0) -> Iterator:
    """fn over tasks in order, in `workers` fresh processes (0: here), with few tasks in flight.

    `ahead` lets more tasks wait in flight: enough to keep the workers busy while the caller spends
    a while on one result (the import writes a batch of many chunks at once).
    """
    if workers <= 0:
        for task in tasks:
            yield fn(task)
        return
    # fork: workers start at once and never re-run the caller's main module. They inherit this
    # process's database handles but never use them, and leave through os._exit (no finalisers).
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork"), initializer=_yield_to_parent) as pool:
        pending: deque = deque()
        try:
            for task in tasks:
                pending.append(pool.submit(fn, task))
                if len(pending) > max(workers * 2, ahead):
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BaseException:
            for future in pending:
                future.cancel()
            raise


# --- reading the file ----------------------------------------------------------------------


def template_header() -> str:
    return ",".join(CANONICAL_HEADER)


def _header_names() -> dict[str, str]:
    """Header spellings that name a field without --map: field names, English and Chinese labels."""
    names: dict[str, str] = {"birth_date": "date_of_birth", "出生日期": "date_of_birth"}
    for spec in CUSTOMER_FIELDS:
        for spelling in (spec.name, spec.label_en, spec.label_zh):
            names.setdefault(_fold(spelling), spec.name)
    return names


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().casefold()


def detect_encoding(path: Path) -> str:
    """utf-8-sig with a byte-order mark, utf-8 when the whole file decodes as UTF-8, else gb18030."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as handle:
        head = handle.read(3)
        if head == codecs.BOM_UTF8:
            return "utf-8-sig"
        try:
            decoder.decode(head)
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8"


def _count_lines(path: Path) -> int:
    count = 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            count += chunk.count(b"\n")
    return count


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def map_header(header: list[str], mapping: dict[str, str] | None = None) -> list[str | None]:
    """The field each column fills (None: ignored), or ImportFileError naming unknown or missing columns.

    `mapping` maps the file's own header names to field names; an empty target ignores the column.
    """
    known = _header_names()
    user = {_fold(source): target.strip() for source, target in (mapping or {}).items()}
    bad_targets = sorted({t for t in user.values() if t and t not in FIELDS_BY_NAME and t != "birth_date"})
    if bad_targets:
        raise ImportFileError(1, "--map names fields that do not exist: " + ", ".join(bad_targets))
    fields: list[str | None] = []
    unknown: list[str] = []
    for number, raw in enumerate(header, start=1):
        name = _fold(raw.lstrip("\ufeff"))
        if name in user:
            target = user[name]
            fields.append(None if not target else ("date_of_birth" if target == "birth_date" else target))
        elif name in known:
            fields.append(known[name])
        else:
            fields.append(None)
            unknown.append(f"column {number}" if validation.forbidden_characters(raw) or len(raw) > 40
                           else repr(raw))
    if unknown:
        raise ImportFileError(1, "unknown columns " + ", ".join(unknown)
                              + "; name their fields with --map 'HEADER=field' (empty field: ignore)")
    taken = [f for f in fields if f]
    doubled = sorted({f for f in taken if taken.count(f) > 1})
    if doubled:
        raise ImportFileError(1, "more than one column fills " + ", ".join(doubled))
    missing = [f for f in REQUIRED_COLUMNS if f not in taken]
    if missing:
        raise ImportFileError(1, "missing required columns: " + ", ".join(missing))
    return fields


def _records(handle, first_line: int, size: int) -> Iterator[tuple[int, int, str]]:
    """The file's remaining text in chunks of `size` records: (first row number, first line number, text).

    A record ends at a line break outside quotes; CSV doubles quotes inside a quoted cell, so a
    record is complete when its quote count is even. Parsing the chunks is left to the workers.
    """
    lines: list[str] = []
    records = 0
    open_quotes = False
    start = first_line
    row = 2  # the header is row 1
    line_number = first_line - 1
    for line in handle:
        line_number += 1
        lines.append(line)
        if line.count('"') % 2:
            open_quotes = not open_quotes
        if not open_quotes:
            records += 1
            if records >= size:
                yield row, start, "".join(lines)
                lines, start, row, records = [], line_number + 1, row + records, 0
    if lines:
        yield row, start, "".join(lines)


def _parse_chunk(text: str, first_row: int, first_line: int, fields: list[str | None],
                 encoding: str) -> Iterator[tuple]:
    """Rows of one chunk: (row, line, values or None, problems); row 1 is the header, as in a spreadsheet."""
    reader = csv.reader(io.StringIO(text, newline=""))
    line, row = first_line, first_row - 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row += 1
            reason = "has a cell longer than the limit" if "field larger" in str(exc) else "is not valid CSV"
            yield row, line, None, (("", "bad_format", f"the row {reason}"),)
            line = first_line + reader.line_num
            continue
        row += 1
        start, line = line, first_line + reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != len(fields):
            yield row, start, None, (("", "bad_format",
                                      f"the row has {len(cells)} cells; the header has {len(fields)}"),)
            continue
        problems = []
        if _SURROGATE.search("".join(cells)):
            for cell, name in zip(cells, fields):
                if name is not None and _SURROGATE.search(cell):
                    problems.append((name, "bad_encoding", f"{FIELDS_BY_NAME[name].label_en} is not valid "
                                                           f"{encoding} text; check the file's encoding (--encoding)"))
        if problems:
            yield row, start, None, tuple(problems)
            continue
        yield row, start, {name: cell for cell, name in zip(cells, fields) if name is not None}, ()


# --- validating and sealing (in worker processes) ------------------------------------------


def _prepare_chunk(task: tuple) -> list[tuple]:
    """Parse, validate and seal one chunk: (row, line, sealed or None, problems) per row; no database."""
    first_row, first_line, text, fields, encoding, defaults, today, keys = task
    csv.field_size_limit(MAX_CELL_CHARS)
    out: list[tuple] = []
    good: list[int] = []  # positions in `out` of the rows that passed, sealed together below
    for row, line, values, problems in _parse_chunk(text, first_row, first_line, fields, encoding):
        if values is None:
            out.append((row, line, None, problems))
            continue
        record: dict[str, object] = values
        for name, value in defaults.items():
            if not str(record.get(name, "")).strip():
                record[name] = value
        if not str(record.get("gender", "")).strip() or not str(record.get("date_of_birth", "")).strip():
            record.update(validation.fill_from_resident_id(record, today=today))
        cleaned, errors, _warnings = validation.validate_customer(record, today=today)
        if errors:
            out.append((row, line, None, tuple((e.field, e.code, e.message) for e in errors)))
            continue
        good.append(len(out))
        out.append((row, line, cleaned, ()))
    for at, sealed in zip(good, customers.seal_customers([out[at][2] for at in good], keys)):
        out[at] = (out[at][0], out[at][1], tuple(sealed), ())  # a plain tuple pickles faster
    return out


# --- the import --------------------------------------------------------------------------


def _check_defaults(fields: list[str | None], defaults: dict[str, str], today: dt.date) -> dict[str, str]:
    """File-wide values are validated like a cell (so a bad option fails once, not on every row)."""
    problems = []
    cleaned: dict[str, str] = {}
    for name, value in defaults.items():
        if name not in FILE_DEFAULTS:
            problems.append(f"{name} cannot be given for the whole file")
            continue
        if not str(value).strip():
            continue
        checked, error, _warning = validation.validate_field(name, value, defaults, today=today)
        if error:
            problems.append(error.message)
        cleaned[name] = value
    if "id_type" not in fields and "id_type" not in cleaned:
        cleaned["id_type"] = "resident_id"  # a legacy file without the column holds resident IDs
    for name in ("consent_date", "consent_scope"):
        if name not in fields and name not in cleaned:
            problems.append(f"the file has no {name} column: give --{name.replace('_', '-')} "
                            "(what the legacy system recorded)")
    if problems:
        raise ImportFileError(1, "; ".join(problems))
    return cleaned


def _existing_by_fingerprint(fingerprints: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(fingerprints), 500):
        part = fingerprints[start:start + 500]
        cursor = db.execute_sql("SELECT id_fp, customer_no FROM customer WHERE id_fp IN ({})".format(
            ", ".join([db.param] * len(part))), part)
        found.update(cursor.fetchall())
    return found


class _Rejects:
    """The rejects file: row, line, field, code, reason; UTF-8 with a BOM so spreadsheets read it."""

    def __init__(self, path: Path | None):
        self.path = path
        self.handle = None
        self.writer = None
        self.first: list[RowProblem] = []

    def add(self, problem: RowProblem) -> None:
        if len(self.first) < 200:
            self.first.append(problem)
        if self.path is None:
            return
        if self.writer is None:
            self.handle = open(self.path, "w", encoding="utf-8-sig", newline="")
            self.writer = csv.writer(self.handle)
            self.writer.writerow(("row", "line", "field", "code", "reason"))
        self.writer.writerow((problem.row, problem.line, problem.field, problem.code, problem.reason))

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _utcnow() -> dt.datetime:
    return clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None)


@service(Perm.CUSTOMER_CREATE)
def import_customers(actor: Actor, path: Path | str, *, mapping: dict[str, str] | None = None,
                     encoding: str = "auto", defaults: dict[str, str] | None = None,
                     rejects_path: Path | str | None = None, check_only: bool = False,
                     batch_rows: int = BATCH_ROWS, chunk_rows: int = CHUNK_ROWS, workers: int | None = None,
                     progress: Callable[[ImportProgress], None] | None = None) -> ImportReport:
    """Validate, encrypt, index and store every good row of a CSV file; rejects go to `rejects_path`."""
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(0, "the file does not exist or is not a regular file")
    if encoding == "auto":
        encoding = detect_encoding(path)
    elif encoding.lower() in ENCODINGS:
        encoding = ENCODINGS[encoding.lower()]
    else:
        raise ImportFileError(0, "the encoding must be auto, utf-8 or gb18030")
    today = clock.today()
    started = time.perf_counter()
    rows_expected = max(_count_lines(path) - 1, 0)
    csv.field_size_limit(MAX_CELL_CHARS)
    batch_id = str(uuid.uuid4())
    rejects = _Rejects(Path(rejects_path) if rejects_path else None)
    imported = rejected = skipped = rows_done = 0
    status = "failed"
    with open(path, encoding=encoding, errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise ImportFileError(1, "the file is empty") from None
        except csv.Error:
            raise ImportFileError(1, "the header is not valid CSV") from None
        if _SURROGATE.search("".join(header)):
            raise ImportFileError(1, f"the header is not valid {encoding} text; check the file's encoding")
        fields = map_header(header, mapping)
        file_defaults = _check_defaults(fields, dict(defaults or {}), today)
        sha = _sha256(path)
        with write():
            if not check_only:
                ImportBatch.create(id=batch_id, started_at=_utcnow(), actor_id=actor.staff_id, actor=actor.username,
                                   file_sha256=sha, encoding=encoding)
            audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                         action="IMPORT_CHECK" if check_only else "IMPORT_START", object_type="import_batch",
                         object_id=batch_id, details={"sha256": sha, "encoding": encoding, "rows": rows_expected})
        if not check_only:
            customers._backfill_fingerprints()  # rows written by an older release: found by fingerprint too
        keys = customers.seal_keys()
        seen: dict[str, int] = {}
        processes = worker_count(rows_expected, workers)
        batch_rows = max(1, batch_rows)
        chunk_rows = max(1, min(chunk_rows, batch_rows))
        if processes:  # enough chunks to keep every worker busy
            chunk_rows = min(chunk_rows, max(200, rows_expected // (processes * 4)))
        tasks = ((first_row, first_line, text, fields, encoding, file_defaults, today, keys)
                 for first_row, first_line, text in _records(handle, reader.line_num + 1, chunk_rows))
        cache = contextlib.ExitStack()
        if not check_only:
            cache.enter_context(customers.bulk_cache())
        chunks = ordered_map(_prepare_chunk, tasks, processes, ahead=4 * processes)
        cache.callback(chunks.close)  # stops the workers if the import stops early
        batches = 0
        try:
            finished = False
            while not finished:
                # One batch is one transaction: each chunk is written as the workers hand it over (the
                # writing overlaps their work) until the batch holds batch_rows rows.
                batch = contextlib.nullcontext() if check_only else customers.SealedBatch(
                    actor, audit_action="CUSTOMER_IMPORT", audit_object_type="import_batch",
                    audit_object_id=batch_id, audit_details={"chunk": batches})
                in_batch = 0
                with batch:
                    while in_batch < batch_rows:
                        results = next(chunks, None)
                        if results is None:
                            finished = True
                            break
                        fresh, chunk_rejected, chunk_skipped = _sort_chunk(results, seen, rejects)
                        rows_done += len(results)
                        rejected += chunk_rejected
                        skipped += chunk_skipped
                        if check_only:
                            imported += len(fresh)
                        elif fresh:
                            batch.add(fresh, _import_records(actor, fresh, batch_id, today))
                            in_batch += len(fresh)
                        if progress:
                            progress(ImportProgress(rows_done, max(rows_expected, rows_done), imported, rejected,
                                                    skipped, time.perf_counter() - started))
                imported += in_batch  # committed
                batches += 1
            status = "checked" if check_only else "done"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            cache.close()
            rejects.close()
            try:
                _finish(actor, batch_id, check_only, status, rows_done, imported, rejected, skipped)
            except Exception:
                if status in ("done", "checked"):
                    raise  # otherwise the error that stopped the import is the one to report
    return ImportReport(batch_id, encoding, rows_done, imported, rejected, skipped,
                        rejects.path if rejects.writer is not None else None, time.perf_counter() - started,
                        check_only, status, tuple(rejects.first))


def _sort_chunk(results: list[tuple], seen: dict[str, int], rejects: _Rejects) -> tuple[list[tuple], int, int]:
    """A chunk's rows to write, and how many were rejected and skipped (each reported in the rejects file).

    `seen` maps the ID fingerprints met so far in the file to their row: a person twice in a file is
    rejected the second time; a person already on file is skipped with their customer number.
    """
    rejected = 0
    accepted: list[tuple[int, int, tuple]] = []
    for row, line, sealed, problems in results:
        if sealed is None:
            rejected += 1
            for field_name, code, reason in problems:
                rejects.add(RowProblem(row, line, field_name, code, reason))
            continue
        fp = sealed[3][_AT_FP]
        if fp in seen:
            rejected += 1
            rejects.add(RowProblem(row, line, "id_number", "duplicate_in_file",
                                   f"ID number is the same person as row {seen[fp]}"))
            continue
        seen[fp] = row
        accepted.append((row, line, sealed))
    existing = _existing_by_fingerprint([s[3][_AT_FP] for _r, _l, s in accepted])
    fresh = []
    for row, line, sealed in accepted:
        number = existing.get(sealed[3][_AT_FP])
        if number:
            rejects.add(RowProblem(row, line, "id_number", "already_present",
                                   f"already a customer: {number} (not imported again)"))
        else:
            fresh.append(sealed)
    return fresh, rejected, len(accepted) - len(fresh)


def _import_records(actor: Actor, batch: list[tuple], batch_id: str, today: dt.date) -> list[dict[str, object]]:
    """The columns an imported customer gets besides its sealed values (one shared dict per category)."""
    now = _utcnow()
    per_category = {category: {"created_at": now, "approved_at": now, "last_contact": today,
                               "next_verification_due": customers.next_verification(category, today),
                               "responsible_clerk": actor.staff_id, "import_batch": batch_id}
                    for category in {s[3][_AT_CATEGORY] for s in batch}}
    return [per_category[s[3][_AT_CATEGORY]] for s in batch]


def _finish(actor: Actor, batch_id: str, check_only: bool, status: str, rows: int, imported: int, rejected: int,
            skipped: int) -> None:
    counts = {"rows": rows, "imported": imported, "rejected": rejected, "skipped": skipped}
    with write():
        if not check_only:
            ImportBatch.update(finished_at=_utcnow(), status=status, rows_read=rows, imported=imported,
                               rejected=rejected, skipped=skipped).where(ImportBatch.id == batch_id).execute()
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="IMPORT_FINISH", object_type="import_batch", object_id=batch_id,
                     outcome="ok" if status in ("done", "checked") else status[:16],
                     details={**counts, "status": status, "check_only": check_only})


@dataclass(frozen=True)
class ImportBatchView:
    batch_id: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    actor: str
    rows: int
    imported: int
    rejected: int
    skipped: int
    status: str


@service(Perm.CUSTOMER_SEARCH)
def list_import_batches(actor: Actor) -> list[ImportBatchView]:
    """Import runs, newest first (counts only)."""
    return [ImportBatchView(b.id, b.started_at, b.finished_at, b.actor, b.rows_read, b.imported, b.rejected,
                            b.skipped, b.status)
            for b in ImportBatch.select().order_by(ImportBatch.started_at.desc())]
