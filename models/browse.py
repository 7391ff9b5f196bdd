"""The category browser and the customer file: keyset pages, live counts, search, one customer's file.

Pages are keyset pages (the sort key of the last row, never an OFFSET), so the last page of a
million customers costs what the first does: every order and filter is one index range scan
(migration 4). Only the rows of the page are decrypted, and only their names, to be masked;
each page is audited before that. Dates sort first by date, then the rows without a date.
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
import time
import unicodedata
from dataclasses import dataclass, field

import peewee as pw

from models import audit, customers, keystore, normalise
from models.customers import Customer, CustomerRecord
from models.errors import FieldError, ValidationError
from models.fields import CATEGORIES
from models.history import HistoryEntry, _history_of
from models.labels import CustomerLabel, Label, LabelView, _labels_of
from models.permissions import Actor, Perm, service
from models.staff import Staff

SORTS = ("customer_no", "next_verification_due", "retention_until")
PAGE_ROWS = 50
MAX_PAGE_ROWS = 200


@dataclass(frozen=True)
class BrowseFilter:
    """Which customers a page shows: one category, one label, one branch (empty: all)."""

    category: str = ""
    label_id: int | None = None
    branch: str = ""


@dataclass(frozen=True)
class Cursor:
    """A place in an order: the sort date of a row (None: among the rows without one) and its number."""

    customer_no: str
    value: dt.date | None = None


@dataclass(frozen=True)
class BrowseRow:
    customer_no: str
    masked_name: str
    category: str
    labels: tuple[LabelView, ...]
    responsible_clerk: str
    next_verification_due: dt.date | None
    retention_until: dt.date | None
    legal_hold: bool
    branch: str
    imported: bool
    cursor: Cursor


@dataclass(frozen=True)
class BrowsePage:
    rows: tuple[BrowseRow, ...]
    has_before: bool
    has_after: bool
    sort: str
    filter: BrowseFilter


@dataclass(frozen=True)
class LabelCount:
    label_id: int
    name: str
    colour: str
    count: int


@dataclass(frozen=True)
class BrowseCounts:
    total: int
    by_category: dict[str, int]
    labels: tuple[LabelCount, ...]
    branches: tuple[tuple[str, int], ...]


def _check_filter(flt: BrowseFilter, sort: str) -> None:
    errors = []
    if sort not in SORTS:
        errors.append(FieldError("sort", "must be one of " + ", ".join(SORTS), "bad_choice"))
    if flt.category and flt.category not in CATEGORIES:
        errors.append(FieldError("category", "must be one of " + ", ".join(CATEGORIES), "bad_choice"))
    if len(flt.branch) > 40:
        errors.append(FieldError("branch", "is too long", "too_long"))
    if errors:
        raise ValidationError(errors)


RARE_LABEL = 3000  # a label on fewer customers is read from its own index, then sorted
_label_sizes: dict[int, tuple[float, int]] = {}


def _label_size(label_id: int) -> int:
    """How many customers carry a label (remembered for a minute: it only picks a query plan)."""
    now = time.monotonic()
    known = _label_sizes.get(label_id)
    if known is None or now - known[0] > 60:
        count = CustomerLabel.select().where(CustomerLabel.label == label_id).limit(RARE_LABEL + 1).count()
        known = _label_sizes[label_id] = (now, count)
    return known[1]


def _filtered(query, flt: BrowseFilter):
    if flt.category:
        query = query.where(Customer.category == flt.category)
    if flt.branch:
        query = query.where(Customer.branch == flt.branch)
    if flt.label_id is not None:
        if _label_size(flt.label_id) <= RARE_LABEL:
            # Few customers: fetch them by the label's index and sort the few.
            query = query.where(Customer.id.in_(
                CustomerLabel.select(CustomerLabel.customer_id).where(CustomerLabel.label == flt.label_id)))
        else:
            # Many: walk the order's index and keep the labelled rows (one probe each).
            query = query.where(pw.fn.EXISTS(CustomerLabel.select(pw.SQL("1")).where(
                (CustomerLabel.customer_id == Customer.id) & (CustomerLabel.label == flt.label_id))))
    return query


_KEY_COLUMNS = (Customer.id, Customer.customer_no, Customer.key_id, Customer.full_name, Customer.category,
                Customer.branch, Customer.next_verification_due, Customer.retention_until, Customer.legal_hold,
                Customer.import_batch, Customer.responsible_clerk)


def _segment(flt: BrowseFilter, sort: str, dated: bool, *, after: Cursor | None, before: Cursor | None,
             descending: bool, limit: int, inclusive: bool = False) -> list[dict]:
    """Rows of one segment of an order: the dated rows, or those without a date (or all, by number).

    `after` is exclusive unless `inclusive` (reloading a page from its own first row).
    """
    query = _filtered(Customer.select(*_KEY_COLUMNS), flt)
    number = Customer.customer_no
    if sort == "customer_no":
        if after is not None:
            query = query.where(number >= after.customer_no if inclusive else number > after.customer_no)
        if before is not None:
            query = query.where(number < before.customer_no)
        order = [number.desc() if descending else number]
    elif dated:
        column = getattr(Customer, sort)
        query = query.where(column.is_null(False))
        if after is not None and after.value is not None:
            key, start = pw.Tuple(column, number), pw.Tuple(after.value, after.customer_no)
            query = query.where(key >= start if inclusive else key > start)
        if before is not None and before.value is not None:
            query = query.where(pw.Tuple(column, number) < pw.Tuple(before.value, before.customer_no))
        order = [column.desc(), number.desc()] if descending else [column, number]
    else:
        column = getattr(Customer, sort)
        query = query.where(column.is_null())
        if after is not None and after.value is None:
            query = query.where(number >= after.customer_no if inclusive else number > after.customer_no)
        if before is not None and before.value is None:
            query = query.where(number < before.customer_no)
        order = [number.desc() if descending else number]
    return list(query.order_by(*order).limit(limit).dicts())


def _fetch(flt: BrowseFilter, sort: str, *, after: Cursor | None, before: Cursor | None, from_end: bool,
           limit: int, inclusive: bool = False) -> tuple[list[dict], bool]:
    """Up to `limit` rows in display order, and whether more lie beyond them in the direction read."""
    want = limit + 1
    if sort == "customer_no":
        rows = _segment(flt, sort, True, after=after, before=before, descending=before is not None or from_end,
                        limit=want, inclusive=inclusive)
    elif before is not None or from_end:
        # Backwards: the undated rows come last in the order, so read them first.
        rows = []
        if from_end or (before is not None and before.value is None):
            rows = _segment(flt, sort, False, after=None, before=before, descending=True, limit=want)
        if len(rows) < want:
            dated_before = before if before is not None and before.value is not None else None
            rows += _segment(flt, sort, True, after=None, before=dated_before, descending=True,
                             limit=want - len(rows))
    else:
        rows = []
        if after is None or after.value is not None:
            rows = _segment(flt, sort, True, after=after, before=None, descending=False, limit=want,
                            inclusive=inclusive)
        if len(rows) < want:
            undated_after = after if after is not None and after.value is None else None
            rows += _segment(flt, sort, False, after=undated_after, before=None, descending=False,
                             limit=want - len(rows), inclusive=inclusive)
    more = len(rows) > limit
    rows = rows[:limit]
    if before is not None or from_end:
        rows.reverse()
    return rows, more


def _cursor(row: dict, sort: str) -> Cursor:
    return Cursor(row["customer_no"], None if sort == "customer_no" else row[sort])


def _rows(rows: list[dict], sort: str) -> tuple[BrowseRow, ...]:
    """Decrypt the names of these rows only, and mask them."""
    keys = keystore.load_data_keys([r["key_id"] for r in rows])
    labels = _labels_of([r["id"] for r in rows])
    clerk_ids = {r["responsible_clerk"] for r in rows if r["responsible_clerk"]}
    clerks = dict(Staff.select(Staff.id, Staff.username).where(Staff.id.in_(list(clerk_ids))).tuples()) \
        if clerk_ids else {}
    out = []
    for r in rows:
        key = keys.get(r["key_id"])
        name = customers.mask_name(str(customers.decrypt_fields(r["id"], r["key_id"], key, r, ("full_name",))[
            "full_name"])) if key is not None else "(key destroyed)"
        out.append(BrowseRow(r["customer_no"], name, r["category"], tuple(labels.get(r["id"], ())),
                             clerks.get(r["responsible_clerk"], ""), r["next_verification_due"],
                             r["retention_until"], bool(r["legal_hold"]), r["branch"], bool(r["import_batch"]),
                             _cursor(r, sort)))
    return tuple(out)


@service(Perm.CUSTOMER_SEARCH)
def browse_customers(actor: Actor, flt: BrowseFilter = BrowseFilter(), sort: str = "customer_no", *,
                     after: Cursor | None = None, before: Cursor | None = None, at: Cursor | None = None,
                     from_end: bool = False, limit: int = PAGE_ROWS) -> BrowsePage:
    """One page of customers (masked) after, before or starting at a cursor, from the start, or from the end.

    Audited before the page's names are decrypted (ids, order and filter only).
    """
    _check_filter(flt, sort)
    if sum(c is not None for c in (after, before, at)) + from_end > 1:
        raise ValidationError([FieldError("cursor", "give at most one of after, before, at, from_end", "bad_choice")])
    limit = max(1, min(int(limit), MAX_PAGE_ROWS))
    rows, more = _fetch(flt, sort, after=after or at, before=before, from_end=from_end, limit=limit,
                        inclusive=at is not None)
    after = after or at
    backwards = before is not None or from_end
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id, action="BROWSE",
                 object_type="customer", fields=("full_name",),
                 details={"sort": sort, "category": flt.category, "label": flt.label_id, "branch": flt.branch,
                          "rows": len(rows), "first": rows[0]["customer_no"] if rows else "",
                          "last": rows[-1]["customer_no"] if rows else ""})
    return BrowsePage(
        _rows(rows, sort),
        has_before=more if backwards else after is not None,
        has_after=(before is not None) if backwards else more,
        sort=sort, filter=flt,
    )


@service(Perm.CUSTOMER_SEARCH)
def browse_counts(actor: Actor) -> BrowseCounts:
    """Customers per category, label and branch (counts only, so not audited)."""
    by_category = {category: 0 for category in CATEGORIES}
    # COUNT(*), not COUNT(id): the id is not in the category index, and reading it visits every row.
    every = pw.fn.COUNT(pw.SQL("*"))
    by_category.update(dict(Customer.select(Customer.category, every).group_by(Customer.category).tuples()))
    branches = tuple(Customer.select(Customer.branch, every).group_by(Customer.branch)
                     .order_by(Customer.branch).tuples())
    per_label = dict(CustomerLabel.select(CustomerLabel.label, every).group_by(CustomerLabel.label).tuples())
    labels = tuple(LabelCount(row.id, row.name, row.colour, per_label.get(row.id, 0))
                   for row in Label.select().where(Label.active == True).order_by(Label.name))  # noqa: E712
    return BrowseCounts(sum(by_category.values()), by_category, labels, branches)


@service(Perm.HOME)
def label_usage(actor: Actor) -> dict[int, int]:
    """How many customers carry each label (counts only)."""
    return dict(CustomerLabel.select(CustomerLabel.label, pw.fn.COUNT(pw.SQL("*"))).group_by(CustomerLabel.label)
                .tuples())


@service(Perm.CUSTOMER_SEARCH)
def count_matching(actor: Actor, flt: BrowseFilter) -> int:
    """How many customers a filter shows (for the browser's status line)."""
    _check_filter(flt, "customer_no")
    return _filtered(Customer.select(), flt).count()


# --- search -----------------------------------------------------------------------------

_CUSTOMER_NO = re.compile(r"C[0-9]{1,12}|C[0-9]{4}[A-Z][0-9]{0,6}")  # C2026000123, or C2026A000123 (past a million)
_RESIDENT_ID = re.compile(r"[0-9]{15}|[0-9]{17}[0-9X]")
_PHONE = re.compile(r"\+?[0-9]{5,15}")
_DOCUMENT_NO = re.compile(r"(?=.*[0-9])[A-Z0-9-]{5,30}")


def guess_search_kind(term: str) -> str:
    """What a search term most likely is: customer number, ID number, mobile, or a name."""
    text = unicodedata.normalize("NFKC", term).strip()
    compact = normalise.normalise_customer_number(text)
    if _CUSTOMER_NO.fullmatch(compact):
        return "customer_no"
    identity = normalise.clean_resident_id(text).upper()
    if _RESIDENT_ID.fullmatch(identity):
        return "id_number"
    if _PHONE.fullmatch(normalise.strip_phone_separators(text)):
        return "mobile"
    if _DOCUMENT_NO.fullmatch(identity):
        return "id_number"
    return "full_name"


@service(Perm.CUSTOMER_SEARCH)
def search(actor: Actor, kind: str, term: str, limit: int = PAGE_ROWS) -> BrowsePage:
    """Exact search (customer number also by prefix) as browser rows; audited with a keyed hash of the term."""
    if kind == "auto":
        kind = guess_search_kind(term)
    found = customers.find_customers(actor, kind, term, limit=limit)
    if not found:
        return BrowsePage((), False, False, "customer_no", BrowseFilter())
    rows = list(Customer.select(*_KEY_COLUMNS).where(Customer.id.in_([s.customer_id for s in found]))
                .order_by(Customer.customer_no).dicts())
    names = {s.customer_id: s.masked_name for s in found}
    labels = _labels_of([r["id"] for r in rows])
    clerks = {s.customer_id: s.responsible_clerk for s in found}
    return BrowsePage(tuple(
        BrowseRow(r["customer_no"], names.get(r["id"], ""), r["category"], tuple(labels.get(r["id"], ())),
                  clerks.get(r["id"], ""), r["next_verification_due"], r["retention_until"], bool(r["legal_hold"]),
                  r["branch"], bool(r["import_batch"]), Cursor(r["customer_no"]))
        for r in rows), False, False, "customer_no", BrowseFilter())


# --- the customer file ----------------------------------------------------------------------


@dataclass(frozen=True)
class ImportInfo:
    batch_id: str
    imported_at: dt.datetime | None
    imported_by: str


@dataclass(frozen=True)
class DocumentLine:
    document_id: str
    doc_type: str
    content_type: str
    size: int
    name: str  # data: shown through safe_text
    added_by: str
    added_at: dt.datetime


@dataclass(frozen=True)
class RevisionLine:
    number: int
    submitted_by: str
    submitted_at: dt.datetime | None
    outcome: str
    reviewed_by: str = ""
    reviewed_at: dt.datetime | None = None


@dataclass(frozen=True)
class CustomerFile:
    """Everything the file screen shows; the record is masked (CustomerRecord.values)."""

    record: CustomerRecord
    category: str
    branch: str
    labels: tuple[LabelView, ...]
    history: tuple[HistoryEntry, ...]
    imported: ImportInfo | None
    documents: tuple[DocumentLine, ...] | None = None  # None: documents are not available in this build
    revisions: tuple[RevisionLine, ...] | None = None  # None: intake revisions are not available
    notes: tuple[str, ...] = field(default=())  # sections that could not be read, and why (no values)


def _optional(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ImportError:
        return None


def _documents_of(actor: Actor, customer_id: str) -> tuple[DocumentLine, ...] | None:
    documents = _optional("models.documents")
    if documents is None or not hasattr(documents, "list_documents"):
        return None
    return tuple(DocumentLine(d.document_id, d.doc_type, d.content_type, d.size, d.name, d.added_by, d.added_at)
                 for d in documents.list_documents(actor, "customer", customer_id))


def _revisions_of(actor: Actor, customer_id: str) -> tuple[RevisionLine, ...] | None:
    """The intake revisions that made this customer: who submitted and reviewed each, and the outcome."""
    intake = _optional("models.intake")
    if intake is None or not hasattr(intake, "_submissions_of_customer") or not hasattr(intake, "_history"):
        return None
    return tuple(RevisionLine(r.number, r.submitted_by, r.submitted_at, r.outcome, r.reviewed_by, r.reviewed_at)
                 for submission in intake._submissions_of_customer(customer_id)
                 for r in intake._history(submission))


@service(Perm.CUSTOMER_VIEW)
def open_customer_file(actor: Actor, customer_no: str) -> CustomerFile:
    """A customer's file, masked: the view is audited (by get_customer) before anything is decrypted."""
    from models.importer import ImportBatch

    record = customers.get_customer(actor, customer_no)
    row = Customer.select(Customer.id, Customer.category, Customer.branch, Customer.import_batch).where(
        Customer.id == record.customer_id).dicts().get()
    imported = None
    if row["import_batch"]:
        batch = ImportBatch.get_or_none(ImportBatch.id == row["import_batch"])
        imported = ImportInfo(row["import_batch"], batch.started_at if batch else None, batch.actor if batch else "")
    notes: list[str] = []
    documents = revisions = None
    try:
        documents = _documents_of(actor, record.customer_id)
    except Exception as exc:  # one section failing must not hide the rest of the file
        notes.append(f"documents: {type(exc).__name__}")
    try:
        revisions = _revisions_of(actor, record.customer_id)
    except Exception as exc:
        notes.append(f"revisions: {type(exc).__name__}")
    return CustomerFile(record, row["category"], row["branch"], tuple(_labels_of([record.customer_id])[record.customer_id]),
                        tuple(_history_of(record.customer_id)), imported, documents, revisions, tuple(notes))
