"""Intake and review: drafts saved continuously, submitted revisions, the review queue, return and approval.

Life cycle: draft → submitted → returned (with reasons) → resubmitted … → approved (the customer
exists). Each submission gets its own data key at the first draft save; the draft, every
revision, the review reasons and the documents are encrypted under it, and at approval that key
becomes the new customer's key (nothing is re-encrypted, and destroying the customer's key
shreds the intake history with it). Draft saves are not audited one by one; creating a draft,
opening, submitting, viewing, returning, approving and discarding are.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

import peewee as pw

from models import audit, clock, crypto, customers, documents, history, keystore, labels, office, validation
from models.db import BaseModel, is_sqlite, write
from models.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationError
from models.fields import CUSTOMER_FIELDS, FIELDS_BY_NAME, Kind
from models.permissions import Actor, Perm, service
from models.staff import Staff

SUBMISSION_TABLE = "intake_submission"
REVISION_TABLE = "intake_revision"
STATUSES = ("draft", "submitted", "returned", "approved")
EDITABLE = ("draft", "returned")
PENDING = ("draft", "submitted", "returned")
INTAKE_CATEGORIES = ("prospect", "active")
MAX_DRAFT_VALUE = 2000
MAX_REASON = 200
MAX_NOTE = 500
LABELS_FIELD = "labels"
DOCUMENTS_FIELD = "documents"
# Review reasons may name a form field, the labels, or the documents.
REASON_FIELDS = tuple(f.name for f in CUSTOMER_FIELDS) + (LABELS_FIELD, DOCUMENTS_FIELD)


class IntakeSubmission(BaseModel):
    id = pw.CharField(max_length=36, primary_key=True)
    key_id = pw.CharField(max_length=36)
    status = pw.CharField(max_length=12, index=True)
    created_by = pw.ForeignKeyField(Staff, backref="+", on_delete="RESTRICT")
    created_at = pw.DateTimeField()
    updated_at = pw.DateTimeField()
    draft = pw.BlobField(null=True)  # the form as typed, encrypted; None while with the reviewer
    revision = pw.IntegerField(default=0)  # number of submitted revisions
    submitted_at = pw.DateTimeField(null=True, index=True)
    id_bidx = pw.IntegerField(null=True, index=True)
    mobile_bidx = pw.IntegerField(null=True, index=True)
    customer_id = pw.CharField(max_length=36, null=True, index=True)
    customer_no = pw.CharField(max_length=16, null=True)
    decided_by = pw.ForeignKeyField(Staff, null=True, backref="+", on_delete="SET NULL")
    decided_at = pw.DateTimeField(null=True)

    class Meta:
        table_name = SUBMISSION_TABLE


class IntakeRevision(BaseModel):
    id = pw.CharField(max_length=36, primary_key=True)
    submission = pw.ForeignKeyField(IntakeSubmission, backref="revisions", on_delete="CASCADE")
    number = pw.IntegerField()
    submitted_by = pw.ForeignKeyField(Staff, backref="+", on_delete="RESTRICT")
    submitted_at = pw.DateTimeField()
    values = pw.BlobField()  # the validated record, encrypted
    label_ids = pw.TextField(default="[]")  # labels are not personal
    outcome = pw.CharField(max_length=12, default="pending")  # pending, returned, approved
    reviewed_by = pw.ForeignKeyField(Staff, null=True, backref="+", on_delete="SET NULL")
    reviewed_at = pw.DateTimeField(null=True)
    reasons = pw.BlobField(null=True)  # {"fields": {name: reason}, "note": text}, encrypted
    reason_fields = pw.TextField(default="")  # names only, for lists that must not decrypt

    class Meta:
        table_name = REVISION_TABLE
        indexes = ((("submission", "number"), True),)


def all_tables() -> list[type[BaseModel]]:
    return [IntakeSubmission, IntakeRevision]


# --- results handed to the UI ---------------------------------------------------------------


@dataclass(frozen=True)
class DraftSaved:
    submission_id: str
    ref: str
    saved_at: dt.datetime
    created: bool


@dataclass(frozen=True)
class SubmissionSummary:
    submission_id: str
    ref: str
    status: str
    revision: int
    masked_name: str
    created_by: str
    updated_at: dt.datetime
    submitted_at: dt.datetime | None
    documents: int = 0
    customer_no: str = ""


@dataclass(frozen=True)
class ReturnReasons:
    fields: dict[str, str]
    note: str
    reviewer: str
    at: dt.datetime | None
    revision: int


@dataclass(frozen=True)
class IntakeForm:
    """A submission opened for editing by the clerk who owns it."""

    submission_id: str
    ref: str
    status: str
    revision: int
    values: dict[str, str]
    labels: str
    returned: ReturnReasons | None
    documents: list[documents.DocumentView] = field(default_factory=list)


@dataclass(frozen=True)
class DuplicateHit:
    field: str  # id_number or mobile
    where: str  # customer or submission
    reference: str  # customer number or submission reference (neither is personal data)
    status: str  # the customer's category, or the submission's status


@dataclass(frozen=True)
class RevisionInfo:
    number: int
    submitted_by: str
    submitted_at: dt.datetime
    outcome: str
    reviewed_by: str
    reviewed_at: dt.datetime | None
    reason_fields: tuple[str, ...]


@dataclass(frozen=True)
class FieldDiff:
    field: str
    old: str
    new: str
    changed: bool


@dataclass(frozen=True)
class QueueItem:
    submission_id: str
    ref: str
    revision: int
    submitted_by: str
    submitted_at: dt.datetime
    masked_name: str
    documents: int

    @property
    def resubmission(self) -> bool:
        return self.revision > 1


@dataclass(frozen=True)
class ReviewView:
    submission_id: str
    ref: str
    status: str
    revision: int
    submitted_by: str
    submitted_at: dt.datetime
    values: dict[str, str]  # display form of every field, unmasked (the reviewer checks them)
    labels: tuple[str, ...]
    diff: list[FieldDiff] | None  # against the previous submitted revision, for a resubmission
    previous_reasons: ReturnReasons | None
    history: list[RevisionInfo]
    documents: list[documents.DocumentView]
    duplicates: list[DuplicateHit]


@dataclass(frozen=True)
class Decision:
    submission_id: str
    ref: str
    status: str
    customer_no: str = ""


# --- small helpers ----------------------------------------------------------------------------


def _utcnow() -> dt.datetime:
    return clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None)


def ref_of(submission_id: str) -> str:
    """The short reference clerks and reviewers read out (not personal data)."""
    return "I-" + submission_id.replace("-", "")[:8].upper()


def _aad(table: str, record_id: str, name: str, key_id: str) -> bytes:
    return crypto.field_aad(table, record_id, name, key_id)


def _seal(key: bytes, key_id: str, table: str, record_id: str, name: str, payload: object) -> bytes:
    return crypto.encrypt(key, json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                          _aad(table, record_id, name, key_id))


def _open(key: bytes, key_id: str, table: str, record_id: str, name: str, blob: bytes) -> object:
    return json.loads(crypto.decrypt(key, bytes(blob), _aad(table, record_id, name, key_id)))


def _locked(query):
    """SELECT … FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers."""
    return query if is_sqlite() else query.for_update()


def _submission(submission_id: object, *, lock: bool = False) -> IntakeSubmission:
    query = IntakeSubmission.select().where(IntakeSubmission.id == str(submission_id))
    row = (_locked(query) if lock else query).first()
    if row is None:
        raise NotFound("no such intake submission")
    return row


def _audit(actor: Actor, action: str, row_or_id, **kwargs) -> None:
    object_id = ref_of(row_or_id if isinstance(row_or_id, str) else row_or_id.id)
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action=action, object_type="submission", object_id=object_id, **kwargs)


def _deny(actor: Actor, row: IntakeSubmission, reason: str, message: str) -> PermissionDenied:
    _audit(actor, "DENIED", row, outcome="denied", details={"reason": reason})
    return PermissionDenied(message)


def _usernames(ids: set[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    return {r.id: r.username for r in Staff.select(Staff.id, Staff.username).where(Staff.id.in_(wanted))}


# --- shorthand typed into the form --------------------------------------------------------------

_CHOICE_ALIASES = {
    "gender": {"男": "male", "女": "female"},
    "id_type": {"身份证": "resident_id", "护照": "passport"},
    "category": {"潜在": "prospect", "准客户": "prospect", "有效": "active", "在保": "active"},
}
_BOOL_YES = frozenset({"y", "yes", "true", "1", "是"})
_BOOL_NO = frozenset({"n", "no", "false", "0", "否"})


def expand_shorthand(name: str, raw: str) -> str:
    """The full value meant by a quick entry: a choice's number, unique prefix or Chinese word; y/n."""
    spec = FIELDS_BY_NAME.get(name)
    text = unicodedata.normalize("NFKC", raw).strip() if isinstance(raw, str) else raw
    if spec is None or not isinstance(text, str) or not text:
        return raw
    if spec.kind is Kind.BOOL:
        word = text.casefold()
        return "yes" if word in _BOOL_YES else "no" if word in _BOOL_NO else raw
    if spec.kind is not Kind.CHOICE:
        return raw
    word = text.casefold()
    for choice in spec.choices:
        if choice.casefold() == word:
            return choice
    alias = _CHOICE_ALIASES.get(name, {}).get(text)
    if alias:
        return alias
    numeric_choices = all(c.isdigit() for c in spec.choices)
    if text.isdigit() and not numeric_choices and 1 <= int(text) <= len(spec.choices):
        return spec.choices[int(text) - 1]
    matches = [c for c in spec.choices if c.casefold().startswith(word)]
    return matches[0] if len(matches) == 1 else raw


def expand_all(values: Mapping[str, object]) -> dict[str, object]:
    return {name: expand_shorthand(name, value) if isinstance(value, str) else value
            for name, value in values.items()}


def split_labels(text: str) -> list[str]:
    """Label names typed comma-separated (full-width commas too), without blanks or repeats."""
    seen: list[str] = []
    for part in re.split(r"[,，;；、]", unicodedata.normalize("NFC", text or "")):
        name = part.strip()
        if name and name not in seen:
            seen.append(name)
    return seen


def _resolve_labels(text: str) -> tuple[list[int], list[FieldError]]:
    names = split_labels(text)
    if len(text or "") > 500 or validation.forbidden_characters(text or ""):
        return [], [FieldError(LABELS_FIELD, "Labels must be label names separated by commas", "bad_format")]
    if not names:
        return [], []
    rows = {r.name: r.id for r in labels.Label.select().where(
        labels.Label.name.in_(names) & (labels.Label.active == True))}  # noqa: E712 (peewee expression)
    missing = [n for n in names if n not in rows]
    if missing:
        return [], [FieldError(LABELS_FIELD, "Labels names a label that does not exist or is retired", "bad_choice")]
    return [rows[n] for n in names], []


def _label_names(label_ids: list[int]) -> tuple[str, ...]:
    if not label_ids:
        return ()
    names = {r.id: r.name for r in labels.Label.select().where(labels.Label.id.in_(label_ids))}
    return tuple(names[i] for i in label_ids if i in names)


# --- drafts -------------------------------------------------------------------------------------


def _clean_draft(values: Mapping[str, object], labels_text: str) -> tuple[dict[str, str], str]:
    errors: list[FieldError] = []
    cleaned: dict[str, str] = {}
    for name, value in values.items():
        if name not in FIELDS_BY_NAME:
            errors.append(FieldError(str(name)[:40], "is not a field of the customer form", "unknown_field"))
            continue
        text = value if isinstance(value, str) else ("yes" if value is True else "no" if value is False
                                                    else "" if value is None else str(value))
        if len(text) > MAX_DRAFT_VALUE:
            errors.append(FieldError(name, f"{FIELDS_BY_NAME[name].label_en} is far too long", "too_long"))
            continue
        if any("\ud800" <= char <= "\udfff" for char in text):  # a lone surrogate cannot be encoded to store
            errors.append(FieldError(name, f"{FIELDS_BY_NAME[name].label_en} contains a broken character",
                                     "control_chars"))
            continue
        cleaned[name] = text
    if not isinstance(labels_text, str) or len(labels_text) > MAX_DRAFT_VALUE:
        errors.append(FieldError(LABELS_FIELD, "Labels is far too long", "too_long"))
    elif any("\ud800" <= char <= "\udfff" for char in labels_text):
        errors.append(FieldError(LABELS_FIELD, "Labels contains a broken character", "control_chars"))
    if errors:
        raise ValidationError(errors)
    return cleaned, labels_text


def _draft_payload(row: IntakeSubmission, key: bytes) -> tuple[dict[str, str], str]:
    data = _open(key, row.key_id, SUBMISSION_TABLE, row.id, "draft", row.draft)
    return dict(data.get("values", {})), str(data.get("labels", ""))


def _as_text(value: object) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return "" if value is None else str(value)


def _latest_revision(row: IntakeSubmission) -> IntakeRevision | None:
    return (IntakeRevision.select().where(IntakeRevision.submission == row.id)
            .order_by(IntakeRevision.number.desc()).first())


def _revision_values(rev: IntakeRevision, key_id: str, key: bytes) -> dict[str, object]:
    return dict(_open(key, key_id, REVISION_TABLE, rev.id, "values", rev.values))


def _current_values(row: IntakeSubmission, key: bytes) -> tuple[dict[str, str], str]:
    """What the form shows now: the draft if one is saved, else the latest submitted revision."""
    if row.draft is not None:
        return _draft_payload(row, key)
    rev = _latest_revision(row)
    if rev is None:
        return {}, ""
    values = _revision_values(rev, row.key_id, key)
    return ({name: _as_text(values.get(name)) for name in FIELDS_BY_NAME},
            ", ".join(_label_names(json.loads(rev.label_ids))))


def _indexes(values: Mapping[str, object]) -> dict[str, int | None]:
    try:
        found = customers.blind_indexes(values)
    except (ValueError, KeyError):
        return {"id_bidx": None, "mobile_bidx": None}
    return {"id_bidx": found["id_bidx"], "mobile_bidx": found["mobile_bidx"]}


def _check_owner(actor: Actor, row: IntakeSubmission, verb: str = "change") -> None:
    """Refuse (and audit) anyone but the clerk who started the form; call it outside a write transaction
    so that the denial's audit entry is not rolled back with it."""
    if row.created_by_id != actor.staff_id:
        raise _deny(actor, row, "not_owner", f"only the clerk who started this form can {verb} it")


def _own_editable(actor: Actor, row: IntakeSubmission) -> None:
    _check_owner(actor, row)
    if row.status not in EDITABLE:
        raise Conflict("this form is with the reviewer or already approved; it cannot be changed now")


@service(Perm.INTAKE)
def save_draft(actor: Actor, submission_id: str | None, values: Mapping[str, object],
               labels_text: str = "") -> DraftSaved:
    """Save the form as typed, encrypted; the first save creates the submission and its data key."""
    cleaned, labels_text = _clean_draft(values, labels_text)
    payload = {"values": cleaned, "labels": labels_text}
    now = _utcnow()
    indexes = _indexes(expand_all(cleaned))
    if submission_id is None:
        new_id = str(uuid.uuid4())
        key_id, key = keystore.create_data_key()
        with write():
            IntakeSubmission.create(
                id=new_id, key_id=key_id, status="draft", created_by=actor.staff_id, created_at=now,
                updated_at=now, draft=_seal(key, key_id, SUBMISSION_TABLE, new_id, "draft", payload), **indexes)
            _audit(actor, "INTAKE_DRAFT_CREATE", new_id)
        return DraftSaved(new_id, ref_of(new_id), now, True)
    _check_owner(actor, _submission(submission_id))
    with write():
        row = _submission(submission_id, lock=True)
        _own_editable(actor, row)
        key = keystore.load_data_key(row.key_id)
        IntakeSubmission.update(
            draft=_seal(key, row.key_id, SUBMISSION_TABLE, row.id, "draft", payload), updated_at=now, **indexes,
        ).where(IntakeSubmission.id == row.id).execute()
    return DraftSaved(row.id, ref_of(row.id), now, False)


def _summaries(rows: list[IntakeSubmission]) -> list[SubmissionSummary]:
    keys = keystore.load_data_keys(sorted({r.key_id for r in rows}))
    names = _usernames({r.created_by_id for r in rows})
    counts = documents._counts_by_owner("submission", [r.id for r in rows])
    out = []
    for row in rows:
        key = keys.get(row.key_id)
        name = ""
        if key is not None:
            values, _labels = _current_values(row, key)
            name = customers.mask_name(str(values.get("full_name", "")).strip())
        out.append(SubmissionSummary(row.id, ref_of(row.id), row.status, row.revision, name,
                                     names.get(row.created_by_id, ""), row.updated_at, row.submitted_at,
                                     counts.get(row.id, 0), row.customer_no or ""))
    return out


@service(Perm.INTAKE)
def list_unfinished(actor: Actor) -> list[SubmissionSummary]:
    """The actor's returned submissions (first) and drafts (newest first), names masked."""
    rows = list(IntakeSubmission.select().where(
        (IntakeSubmission.created_by == actor.staff_id) & IntakeSubmission.status.in_(EDITABLE))
        .order_by(IntakeSubmission.updated_at.desc()))
    rows.sort(key=lambda r: r.status != "returned")
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="INTAKE_LIST", details={"drafts": sum(r.status == "draft" for r in rows),
                                                "returned": sum(r.status == "returned" for r in rows)})
    return _summaries(rows)


@service(Perm.INTAKE)
def list_submitted(actor: Actor, limit: int = 20) -> list[SubmissionSummary]:
    """The actor's recent submissions waiting for review or approved, newest first, names masked."""
    rows = list(IntakeSubmission.select().where(
        (IntakeSubmission.created_by == actor.staff_id) & IntakeSubmission.status.in_(("submitted", "approved")))
        .order_by(IntakeSubmission.updated_at.desc()).limit(limit))
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="INTAKE_LIST", details={"submitted": len(rows)})
    return _summaries(rows)


def _unfinished_counts(staff_id: int) -> dict[str, int]:
    """Drafts and returned submissions of one clerk (counts only: nothing decrypted)."""
    query = (IntakeSubmission.select(IntakeSubmission.status, pw.fn.COUNT(IntakeSubmission.id).alias("n"))
             .where((IntakeSubmission.created_by == staff_id) & IntakeSubmission.status.in_(EDITABLE))
             .group_by(IntakeSubmission.status).dicts())
    found = {r["status"]: r["n"] for r in query}
    return {"draft": found.get("draft", 0), "returned": found.get("returned", 0)}


def _queue_count(staff_id: int) -> int:
    return IntakeSubmission.select().where(
        (IntakeSubmission.status == "submitted") & (IntakeSubmission.created_by != staff_id)).count()


def _return_reasons(rev: IntakeRevision | None, key_id: str, key: bytes) -> ReturnReasons | None:
    if rev is None or rev.outcome != "returned" or rev.reasons is None:
        return None
    data = _open(key, key_id, REVISION_TABLE, rev.id, "reasons", rev.reasons)
    reviewer = _usernames({rev.reviewed_by_id}).get(rev.reviewed_by_id, "")
    return ReturnReasons(dict(data.get("fields", {})), str(data.get("note", "")), reviewer, rev.reviewed_at,
                         rev.number)


@service(Perm.INTAKE)
def open_submission(actor: Actor, submission_id: str) -> IntakeForm:
    """Open the actor's own draft or returned submission to go on typing (audited before decryption)."""
    row = _submission(submission_id)
    _check_owner(actor, row, "open")
    if row.status not in EDITABLE:
        raise Conflict("this form is with the reviewer or already approved")
    _audit(actor, "INTAKE_OPEN", row, details={"status": row.status, "revision": row.revision})
    key = keystore.load_data_key(row.key_id)
    values, labels_text = _current_values(row, key)
    returned = _return_reasons(_latest_revision(row), row.key_id, key) if row.status == "returned" else None
    docs = documents._views(documents._rows((documents.Document.owner_type == "submission")
                                            & (documents.Document.owner_id == row.id)))
    return IntakeForm(row.id, ref_of(row.id), row.status, row.revision, values, labels_text, returned, docs)


@service(Perm.INTAKE)
def discard_draft(actor: Actor, submission_id: str) -> None:
    """Throw away a draft that was never submitted: its rows, documents and data key (crypto-shredded)."""
    _check_owner(actor, _submission(submission_id), "discard")
    with write():
        row = _submission(submission_id, lock=True)
        if row.status != "draft" or row.revision:
            raise Conflict("only a draft that was never submitted can be discarded")
        removed = documents._delete_documents("submission", row.id)
        IntakeSubmission.delete().where(IntakeSubmission.id == row.id).execute()
        _audit(actor, "INTAKE_DRAFT_DISCARD", row, details={"documents": removed})
    keystore.destroy_data_key(row.key_id)


# --- duplicates -----------------------------------------------------------------------------------


def _find_duplicates(values: Mapping[str, object], exclude_submission: str | None) -> list[DuplicateHit]:
    """Customers and pending submissions with the same resident ID or mobile (blind index, then exact)."""
    today = clock.today()
    wanted: dict[str, str] = {}  # field -> normalised value
    index_of = _indexes(values)
    for name in ("id_number", "mobile"):
        cleaned, error, _warning = validation.validate_field(name, values.get(name), values, today=today)
        if error is None and cleaned:
            wanted[name] = str(cleaned)
    if not wanted:
        return []
    id_index = customers._id_index_name(values) if "id_number" in wanted else ""
    hits: list[DuplicateHit] = []
    columns = {"id_number": "id_bidx", "mobile": "mobile_bidx"}
    for name, norm in wanted.items():
        bucket = index_of[columns[name]]
        if bucket is None:
            continue
        column = getattr(customers.Customer, columns[name])
        rows = list(customers.Customer.select(customers.Customer.id, customers.Customer.key_id,
                                              customers.Customer.customer_no, customers.Customer.category,
                                              customers.Customer.id_type, getattr(customers.Customer, name))
                    .where(column == bucket).dicts())
        keys = keystore.load_data_keys(sorted({r["key_id"] for r in rows}))
        for r in rows:
            if r["key_id"] not in keys:
                continue
            plain = customers.decrypt_fields(r["id"], r["key_id"], keys[r["key_id"]], r, (name, "id_type"))
            if _same(name, norm, plain[name], id_index, plain):
                hits.append(DuplicateHit(name, "customer", r["customer_no"], r["category"]))
        query = IntakeSubmission.select().where(
            (getattr(IntakeSubmission, columns[name]) == bucket) & IntakeSubmission.status.in_(PENDING))
        if exclude_submission:
            query = query.where(IntakeSubmission.id != exclude_submission)
        subs = list(query)
        sub_keys = keystore.load_data_keys(sorted({s.key_id for s in subs}))
        for sub in subs:
            if sub.key_id not in sub_keys:
                continue
            other, _labels = _current_values(sub, sub_keys[sub.key_id])
            other = expand_all(other)
            if _same(name, norm, other.get(name, ""), id_index, other):
                hits.append(DuplicateHit(name, "submission", ref_of(sub.id), sub.status))
    return hits


def _same(name: str, norm: str, stored: object, id_index: str, record: Mapping[str, object]) -> bool:
    from models import normalise

    if not stored:
        return False
    if name == "mobile":
        return normalise.normalise_phone(str(stored)) == normalise.normalise_phone(norm)
    if customers._id_index_name(record) != id_index:
        return False
    return customers._norm_id({**record, "id_number": str(stored)}) == customers._norm_id(
        {**record, "id_number": norm})


@service(Perm.INTAKE)
def check_duplicates(actor: Actor, submission_id: str | None, values: Mapping[str, object]) -> list[DuplicateHit]:
    """Who else already has this resident ID or mobile: customers and pending submissions (audited search)."""
    expanded = expand_all(values)
    keyring = office.current().keyring
    details: dict[str, object] = {}
    from models import normalise

    if expanded.get("id_number"):
        details["id_hmac"] = keyring.term_hmac("id_number", normalise.normalise_resident_id(str(expanded["id_number"])))
    if expanded.get("mobile"):
        details["mobile_hmac"] = keyring.term_hmac("mobile", normalise.normalise_phone(str(expanded["mobile"])))
    hits = _find_duplicates(expanded, submission_id)
    details["hits"] = len(hits)
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="INTAKE_DUPLICATE_CHECK", details=details)
    return hits


# --- submit ---------------------------------------------------------------------------------------


def _validate_for_submit(values: Mapping[str, object], labels_text: str) -> tuple[dict[str, object], list[int]]:
    """The cleaned record and label ids, or ValidationError listing every problem."""
    expanded = expand_all(values)
    cleaned, errors, _warnings = validation.validate_customer(expanded, today=clock.today())
    if cleaned.get("category") and cleaned["category"] not in INTAKE_CATEGORIES:
        errors.append(FieldError("category", "Category must be prospect or active for a new customer",
                                 "bad_choice"))
    label_ids, label_errors = _resolve_labels(labels_text)
    errors += label_errors
    if errors:
        raise ValidationError(errors)
    return cleaned, label_ids


def _customer_duplicate_errors(cleaned: Mapping[str, object]) -> list[FieldError]:
    taken = [h for h in _find_duplicates(cleaned, None) if h.where == "customer" and h.field == "id_number"]
    if not taken:
        return []
    return [FieldError("id_number", f"ID number already belongs to customer {taken[0].reference}; "
                                    "change that record instead", "duplicate")]


@service(Perm.INTAKE)
def submit(actor: Actor, submission_id: str | None, values: Mapping[str, object],
           labels_text: str = "") -> SubmissionSummary:
    """Validate the whole form and send it for review as a new revision (a resubmission after a return)."""
    draft_values, labels_text = _clean_draft(values, labels_text)
    cleaned, label_ids = _validate_for_submit(draft_values, labels_text)
    duplicate_errors = _customer_duplicate_errors(cleaned)
    if duplicate_errors:
        raise ValidationError(duplicate_errors)
    if submission_id is None:
        submission_id = save_draft(actor, None, draft_values, labels_text).submission_id
    now = _utcnow()
    _check_owner(actor, _submission(submission_id))
    with write():
        row = _submission(submission_id, lock=True)
        _own_editable(actor, row)
        key = keystore.load_data_key(row.key_id)
        number = row.revision + 1
        rev_id = str(uuid.uuid4())
        IntakeRevision.create(
            id=rev_id, submission=row.id, number=number, submitted_by=actor.staff_id, submitted_at=now,
            values=_seal(key, row.key_id, REVISION_TABLE, rev_id, "values", cleaned),
            label_ids=json.dumps(label_ids), outcome="pending")
        IntakeSubmission.update(status="submitted", revision=number, submitted_at=now, updated_at=now, draft=None,
                                **_indexes(cleaned)).where(IntakeSubmission.id == row.id).execute()
        docs = documents._count_documents("submission", row.id)
        _audit(actor, "INTAKE_SUBMIT", row,
               fields=[s.name for s in CUSTOMER_FIELDS if cleaned.get(s.name) not in ("", None, False)],
               details={"revision": number, "resubmission": number > 1, "documents": docs,
                        "labels": len(label_ids)})
    return _summaries([_submission(row.id)])[0]


# --- review ---------------------------------------------------------------------------------------


def _require_training(actor: Actor, action: str) -> None:
    from models.training import require_training

    require_training(actor, action)  # lapsed data-protection training blocks seeing values and approving


def _four_eyes(actor: Actor, row: IntakeSubmission) -> None:
    submitters = {r.submitted_by_id for r in IntakeRevision.select(IntakeRevision.submitted_by)
                  .where(IntakeRevision.submission == row.id)}
    if actor.staff_id == row.created_by_id or actor.staff_id in submitters:
        raise _deny(actor, row, "four_eyes", "you entered this submission; another reviewer must review it")


@service(Perm.REVIEW)
def review_queue(actor: Actor) -> list[QueueItem]:
    """Submissions waiting for review, oldest first, without the reviewer's own (names masked)."""
    rows = list(IntakeSubmission.select().where(
        (IntakeSubmission.status == "submitted") & (IntakeSubmission.created_by != actor.staff_id))
        .order_by(IntakeSubmission.submitted_at, IntakeSubmission.id))
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="INTAKE_QUEUE", details={"items": len(rows)})
    keys = keystore.load_data_keys(sorted({r.key_id for r in rows}))
    latest = {r.submission_id: r for r in IntakeRevision.select().where(
        IntakeRevision.submission.in_([r.id for r in rows]) & (IntakeRevision.outcome == "pending"))} if rows else {}
    names = _usernames({rev.submitted_by_id for rev in latest.values()})
    counts = documents._counts_by_owner("submission", [r.id for r in rows])
    items = []
    for row in rows:
        rev = latest.get(row.id)
        if rev is None or row.key_id not in keys:
            continue
        values = _revision_values(rev, row.key_id, keys[row.key_id])
        items.append(QueueItem(row.id, ref_of(row.id), row.revision, names.get(rev.submitted_by_id, ""),
                               rev.submitted_at, customers.mask_name(str(values.get("full_name", ""))),
                               counts.get(row.id, 0)))
    return items


def display_value(name: str, value: object) -> str:
    """A stored value as the form and the diff show it (yes/no for checkboxes)."""
    return _as_text(value)


def diff_values(old: Mapping[str, object], new: Mapping[str, object],
                old_labels: tuple[str, ...] = (), new_labels: tuple[str, ...] = ()) -> list[FieldDiff]:
    """Every field of two revisions side by side, each marked changed or not (labels last)."""
    rows = []
    for spec in CUSTOMER_FIELDS:
        before, after = display_value(spec.name, old.get(spec.name)), display_value(spec.name, new.get(spec.name))
        rows.append(FieldDiff(spec.name, before, after, before != after))
    before, after = ", ".join(old_labels), ", ".join(new_labels)
    rows.append(FieldDiff(LABELS_FIELD, before, after, before != after))
    return rows


def _history(row: IntakeSubmission) -> list[RevisionInfo]:
    revs = list(IntakeRevision.select().where(IntakeRevision.submission == row.id).order_by(IntakeRevision.number))
    names = _usernames({r.submitted_by_id for r in revs} | {r.reviewed_by_id for r in revs})
    return [RevisionInfo(r.number, names.get(r.submitted_by_id, ""), r.submitted_at, r.outcome,
                         names.get(r.reviewed_by_id, ""), r.reviewed_at,
                         tuple(filter(None, r.reason_fields.split(",")))) for r in revs]


@service(Perm.REVIEW)
def open_review(actor: Actor, submission_id: str) -> ReviewView:
    """The whole submitted record for review (audited before decryption), with the diff for a resubmission."""
    row = _submission(submission_id)
    if row.revision == 0:
        raise NotFound("no such intake submission")
    _four_eyes(actor, row)
    _require_training(actor, "intake_view")
    _audit(actor, "INTAKE_VIEW", row, fields=[s.name for s in CUSTOMER_FIELDS if s.personal],
           details={"revision": row.revision})
    key = keystore.load_data_key(row.key_id)
    revs = list(IntakeRevision.select().where(IntakeRevision.submission == row.id)
                .order_by(IntakeRevision.number.desc()).limit(2))
    current = revs[0]
    values = _revision_values(current, row.key_id, key)
    label_names = _label_names(json.loads(current.label_ids))
    diff = previous_reasons = None
    if len(revs) > 1:
        previous = revs[1]
        diff = diff_values(_revision_values(previous, row.key_id, key), values,
                           _label_names(json.loads(previous.label_ids)), label_names)
        previous_reasons = _return_reasons(previous, row.key_id, key)
    submitted_by = _usernames({current.submitted_by_id}).get(current.submitted_by_id, "")
    docs = documents._views(documents._rows((documents.Document.owner_type == "submission")
                                            & (documents.Document.owner_id == row.id)))
    duplicates = [h for h in _find_duplicates(values, row.id)]
    return ReviewView(row.id, ref_of(row.id), row.status, row.revision, submitted_by, current.submitted_at,
                      {name: display_value(name, values.get(name)) for name in FIELDS_BY_NAME}, label_names,
                      diff, previous_reasons, _history(row), docs, duplicates)


@service(Perm.REVIEW)
def revision_history(actor: Actor, submission_id: str) -> list[RevisionInfo]:
    """Every submitted revision of a submission: who submitted and reviewed it, when, and the outcome."""
    row = _submission(submission_id)
    _audit(actor, "INTAKE_HISTORY", row)
    return _history(row)


def _pending_for_decision(actor: Actor, submission_id: str, revision: int) -> tuple[IntakeSubmission, IntakeRevision]:
    row = _submission(submission_id, lock=True)
    if row.status != "submitted":
        raise Conflict("this submission is not waiting for review any more")
    if row.revision != revision:
        raise Conflict("a newer revision of this submission was sent; open it again")
    rev = _latest_revision(row)
    if rev is None or rev.number != revision or rev.outcome != "pending":
        raise Conflict("this revision was already decided")
    return row, rev


def _clean_text(value: object, limit: int, field_name: str, label: str) -> tuple[str, list[FieldError]]:
    text = value.strip() if isinstance(value, str) else ""
    if len(text) > limit:
        return text, [FieldError(field_name, f"{label} is too long (at most {limit} characters)", "too_long")]
    if validation.forbidden_characters(text, allow_newline=True):
        return text, [FieldError(field_name, f"{label} contains control or invisible characters", "control_chars")]
    return text, []


@service(Perm.REVIEW)
def return_submission(actor: Actor, submission_id: str, revision: int, reasons: Mapping[str, str],
                      note: str = "") -> Decision:
    """Send a submission back to its clerk with a reason per field and an overall note."""
    errors: list[FieldError] = []
    cleaned_reasons: dict[str, str] = {}
    for name, reason in (reasons or {}).items():
        if name not in REASON_FIELDS:
            errors.append(FieldError(str(name)[:40], "is not a field of the customer form", "unknown_field"))
            continue
        text, problems = _clean_text(reason, MAX_REASON, name, "The reason")
        errors += problems
        if text:
            cleaned_reasons[name] = text
    note_text, problems = _clean_text(note, MAX_NOTE, "note", "The note")
    errors += problems
    if not errors and not cleaned_reasons and not note_text:
        errors.append(FieldError("note", "Say what must be corrected: a reason beside a field or a note",
                                 "required"))
    if errors:
        raise ValidationError(errors)
    _four_eyes(actor, _submission(submission_id))  # outside the transaction: the denial stays audited
    now = _utcnow()
    with write():
        row, rev = _pending_for_decision(actor, submission_id, revision)
        key = keystore.load_data_key(row.key_id)
        IntakeRevision.update(
            outcome="returned", reviewed_by=actor.staff_id, reviewed_at=now,
            reasons=_seal(key, row.key_id, REVISION_TABLE, rev.id, "reasons",
                          {"fields": cleaned_reasons, "note": note_text}),
            reason_fields=",".join(cleaned_reasons)).where(IntakeRevision.id == rev.id).execute()
        IntakeSubmission.update(status="returned", updated_at=now).where(IntakeSubmission.id == row.id).execute()
        _audit(actor, "INTAKE_RETURN", row, fields=list(cleaned_reasons),
               details={"revision": rev.number, "note": bool(note_text)})
    return Decision(row.id, ref_of(row.id), "returned")


@service(Perm.REVIEW)
def approve_submission(actor: Actor, submission_id: str, revision: int, note: str = "") -> Decision:
    """Approve the submitted revision: the customer is created under the submission's data key, with its
    number, category, next verification date, labels and documents."""
    note_text, problems = _clean_text(note, MAX_NOTE, "note", "The note")
    if problems:
        raise ValidationError(problems)
    _four_eyes(actor, _submission(submission_id))  # outside the transaction: the denial stays audited
    _require_training(actor, "intake_approve")
    now = _utcnow()
    with write():
        row, rev = _pending_for_decision(actor, submission_id, revision)
        key = keystore.load_data_key(row.key_id)
        stored = _revision_values(rev, row.key_id, key)
        # The rules run again: they may have tightened, or the same person may have been approved since.
        cleaned = validation.check_valid(stored, today=clock.today())
        duplicate_errors = _customer_duplicate_errors(cleaned)
        if duplicate_errors:
            raise ValidationError(duplicate_errors)
        customer_id, customer_no = customers._insert_customer(
            actor, cleaned, responsible_clerk_id=rev.submitted_by_id, data_key=(row.key_id, key))
        label_ids = json.loads(rev.label_ids)
        if label_ids:
            labels._set_labels(actor, customer_id, label_ids)
        moved = documents._move_documents("submission", row.id, "customer", customer_id)
        history._record_event(actor, customer_id, "intake_approved", (),
                              {"submission": ref_of(row.id), "revision": rev.number, "documents": moved})
        IntakeRevision.update(
            outcome="approved", reviewed_by=actor.staff_id, reviewed_at=now,
            reasons=_seal(key, row.key_id, REVISION_TABLE, rev.id, "reasons", {"fields": {}, "note": note_text}),
        ).where(IntakeRevision.id == rev.id).execute()
        IntakeSubmission.update(status="approved", updated_at=now, customer_id=customer_id, customer_no=customer_no,
                                decided_by=actor.staff_id, decided_at=now).where(
            IntakeSubmission.id == row.id).execute()
        _audit(actor, "INTAKE_APPROVE", row,
               details={"revision": rev.number, "customer_no": customer_no, "documents": moved,
                        "labels": len(label_ids)})
    return Decision(row.id, ref_of(row.id), "approved", customer_no)


# --- for other modules (the caller has checked permission) ------------------------------------------


def _document_owner(actor: Actor, submission_id: str, write: bool) -> documents.Owner:
    """documents.py's resolver for submissions: the owner edits drafts; reviewers read submitted ones."""
    row = _submission(submission_id)
    if write:
        _own_editable(actor, row)
    elif row.created_by_id != actor.staff_id:
        if Perm.REVIEW not in documents._granted(actor) or row.revision == 0:
            raise _deny(actor, row, "not_owner", "only the clerk and reviewers can see these documents")
        _four_eyes(actor, row)
    return documents.Owner(row.key_id, "submission", ref_of(row.id))


def _submissions_of_customer(customer_id: str) -> list[IntakeSubmission]:
    """The submission a customer was approved from (for the customer file and for destruction)."""
    return list(IntakeSubmission.select().where(IntakeSubmission.customer_id == customer_id))


def _delete_for_customer(customer_id: str) -> int:
    """Delete a destroyed customer's intake rows (their key is destroyed with the customer's)."""
    ids = [r.id for r in _submissions_of_customer(customer_id)]
    if not ids:
        return 0
    IntakeRevision.delete().where(IntakeRevision.submission.in_(ids)).execute()
    return IntakeSubmission.delete().where(IntakeSubmission.id.in_(ids)).execute()


def _home_counts(actor: Actor) -> dict[str, int]:
    """The clerk's drafts plus returned forms, and the reviewer's queue (counts only, nothing decrypted)."""
    counts: dict[str, int] = {}
    if actor.has(Perm.INTAKE):
        counts["intake"] = sum(_unfinished_counts(actor.staff_id).values())
    if actor.has(Perm.REVIEW):
        counts["review"] = _queue_count(actor.staff_id)
    return counts
