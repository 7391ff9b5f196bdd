"""Change requests: every change to an approved customer record, approved by a second person.

A request stores the proposed values (and a snapshot of the record it was based on) encrypted
under the customer's data key, against the record version it was based on. Approval applies it
in one transaction that checks that version; a record that changed since is a conflict, never a
silent overwrite. Category transitions (prospect → active → terminated → active) go the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

import peewee as pw

from models import audit, clock, crypto, customers, history, keystore, normalise, validation
from models.customers import Customer
from models.db import BaseModel, is_sqlite, write
from models.errors import Conflict, FieldError, IntegrityFailure, NotFound, PermissionDenied, ValidationError
from models.fields import CUSTOMER_FIELDS, FIELDS_BY_NAME, PERSONAL_FIELDS, PLAIN_FIELDS
from models.permissions import Actor, Perm, service

TABLE = "change_request"
SOURCES = ("customer_report", "periodic_check", "clerk_correction")
REPORT_CHANNELS = ("phone", "visit", "letter", "email", "sms", "online")
STATUSES = ("pending", "approved", "rejected", "withdrawn")
EDITABLE_GROUPS = ("identity", "contact", "address", "work", "relationship")
EDITABLE_FIELDS: tuple[str, ...] = tuple(s.name for s in CUSTOMER_FIELDS if s.group in EDITABLE_GROUPS)
# (from, to): the category life cycle of DESIGN.md §2; destruction is the retention issue's path.
TRANSITIONS = frozenset({("prospect", "active"), ("active", "terminated"), ("terminated", "active")})
INDEXED_FIELDS = frozenset({"id_type", "id_number", "mobile", "full_name"})
REASON_MAX = 500
NOTE_MAX = 500
MIN_REASON = 4


class ChangeRequest(BaseModel):
    id = pw.CharField(max_length=36, primary_key=True)
    customer_id = pw.CharField(max_length=36)
    customer_no = pw.CharField(max_length=16)
    key_id = pw.CharField(max_length=36)
    base_version = pw.IntegerField()
    fields = pw.TextField()  # comma-separated names of the fields it changes (no values)
    proposed = pw.BlobField()  # {field: new value}, encrypted
    base = pw.BlobField()  # {field: value} of the editable fields at base_version, encrypted
    reason = pw.BlobField()  # encrypted: a reason can name personal facts
    source = pw.CharField(max_length=20)
    channel = pw.CharField(max_length=12, default="")
    reported_on = pw.DateField(null=True)
    terminated_on = pw.DateField(null=True)
    long_policy = pw.BooleanField(null=True)
    status = pw.CharField(max_length=12, default="pending")
    requested_by = pw.IntegerField()
    requester = pw.CharField(max_length=64)
    requested_at = pw.DateTimeField()
    decided_by = pw.IntegerField(null=True)
    decider = pw.CharField(max_length=64, default="")
    decided_at = pw.DateTimeField(null=True)
    note = pw.BlobField(null=True)  # the decision note, encrypted
    outcome_seen = pw.BooleanField(default=False)
    conflict_at = pw.DateTimeField(null=True)  # last approval refused because the record had moved on
    applied_version = pw.IntegerField(null=True)

    class Meta:
        table_name = TABLE
        indexes = (
            (("status", "requested_at"), False),
            (("customer_id", "status"), False),
            (("requested_by", "status", "outcome_seen"), False),
        )


class ChangeConflict(Conflict):
    """The record changed since the request was based on it; nothing was applied."""

    def __init__(self, request_id: str, base_version: int, current_version: int):
        self.request_id = request_id
        self.base_version = base_version
        self.current_version = current_version
        super().__init__(f"the record changed since this request was made (version {base_version} → "
                         f"{current_version}); nothing was changed")


class StaleForm(Conflict):
    """The record changed after the form was opened; reopen it (the typed values are kept)."""

    def __init__(self, current_version: int):
        self.current_version = current_version
        super().__init__("the record changed after you opened the form; it has been reloaded — check and send again")


# --- results handed to the UI --------------------------------------------------------


@dataclass(frozen=True)
class ChangeRequestSummary:
    request_id: str
    customer_no: str
    masked_name: str
    fields: tuple[str, ...]
    source: str
    status: str
    requester: str
    requested_at: dt.datetime
    age: dt.timedelta
    base_version: int
    stale: bool  # the record's version moved on since the request was made
    decider: str = ""
    decided_at: dt.datetime | None = None
    outcome_seen: bool = True


@dataclass(frozen=True)
class FieldChange:
    """One row of a diff: raw values (personal ones masked where they did not change)."""

    field: str
    old: object
    new: object
    base: object = None
    requested: bool = False


@dataclass(frozen=True)
class ChangeRequestDetail:
    summary: ChangeRequestSummary
    rows: tuple[FieldChange, ...]
    reason: str
    channel: str
    reported_on: dt.date | None
    terminated_on: dt.date | None
    long_policy: bool | None
    documents: tuple[tuple[str, str, str], ...]  # (document id, doc type, file name: data, show safely)
    current_version: int
    note: str = ""
    retention_until: dt.date | None = None  # what approval would set (termination)


@dataclass(frozen=True)
class ThreeWayView:
    """Base (when requested), current (now) and proposed values of every field that matters."""

    summary: ChangeRequestSummary
    rows: tuple[FieldChange, ...]  # base, old = current, new = what approval would write
    base_version: int
    current_version: int
    changed_since: tuple[str, ...]
    conflicting: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    request_id: str
    customer_no: str
    status: str
    fields: tuple[str, ...]
    new_version: int | None = None


# --- small rules ----------------------------------------------------------------------


def _naive_now() -> dt.datetime:
    return clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None)


def _retention():
    """The retention rules module once its tables exist (else None: the statutory defaults apply)."""
    try:
        from models import retention
    except ImportError:
        return None
    return retention if retention.RetentionRule.table_exists() else None


def retention_until(terminated_on: dt.date, long_policy: bool) -> dt.date:
    """The date until which a terminated customer's record is kept (DESIGN.md §2, the office's rules)."""
    retention = _retention()
    if retention is None:
        # PRC Insurance Law art. 87: 5 years after termination for policies of one year or less, else 10.
        return customers._add_months(terminated_on, 120 if long_policy else 60)
    return retention.compute_retention_until("terminated", terminated_on, long_policy, None,
                                             retention.current_years())


def check_transition(old: str, new: str, terminated_on: dt.date | None, long_policy: bool | None,
                     *, today: dt.date) -> list[FieldError]:
    """Errors of a category change from `old` to `new` (empty when it is allowed and complete)."""
    errors: list[FieldError] = []
    if old != new and (old, new) not in TRANSITIONS:
        errors.append(FieldError("category", f"Category cannot change from {old} to {new}", "bad_transition"))
    if new == "terminated" and old != new:
        if terminated_on is None:
            errors.append(FieldError("terminated_on", "Termination date is required to terminate", "required"))
        elif terminated_on > today:
            errors.append(FieldError("terminated_on", "Termination date is in the future", "future_date"))
        elif terminated_on < validation.EARLIEST_DATE:
            errors.append(FieldError("terminated_on", "Termination date is before 1900", "bad_date"))
        if long_policy is None:
            errors.append(FieldError("long_policy", "say whether any policy ran longer than one year", "required"))
    else:
        if terminated_on is not None:
            errors.append(FieldError("terminated_on", "Termination date is only for a termination", "not_allowed"))
        if long_policy is not None:
            errors.append(FieldError("long_policy", "Policy length is only for a termination", "not_allowed"))
    return errors


def _clean_text(name: str, label: str, value: str, *, minimum: int, maximum: int,
                multiline: bool = False) -> tuple[str, list[FieldError]]:
    text = (value or "").replace("\r\n", "\n").strip()
    if len(text) < minimum:
        return text, [FieldError(name, f"{label} is required (at least {minimum} characters)", "required")]
    if len(text) > maximum:
        return text, [FieldError(name, f"{label} is too long (at most {maximum} characters)", "too_long")]
    if validation.forbidden_characters(text, allow_newline=multiline):
        return text, [FieldError(name, f"{label} contains control or invisible characters", "control_chars")]
    return text, []


def _parse_day(name: str, label: str, value: object, today: dt.date) -> tuple[dt.date | None, list[FieldError]]:
    if value in (None, ""):
        return None, []
    if isinstance(value, dt.date):
        day = value
    else:
        try:
            day = validation.parse_date(str(value))
        except ValueError as exc:
            return None, [FieldError(name, f"{label} {exc}", "bad_date")]
    if day > today:
        return None, [FieldError(name, f"{label} is in the future", "future_date")]
    if day < validation.EARLIEST_DATE:
        return None, [FieldError(name, f"{label} is before 1900", "bad_date")]
    return day, []


def _parse_flag(name: str, value: object) -> tuple[bool | None, list[FieldError]]:
    if value in (None, ""):
        return None, []
    try:
        return validation.parse_bool(value), []
    except ValueError:
        return None, [FieldError(name, "Policy over one year must be yes or no", "bad_format")]


def _document_owner(actor: Actor, request_id: str, write: bool):
    """Evidence documents belong to the request: only its requester adds them, and only while pending."""
    from models import documents

    req = ChangeRequest.get_or_none(ChangeRequest.id == str(request_id))
    if req is None:
        raise NotFound("no such change request")
    if write and (req.status != "pending" or req.requested_by != actor.staff_id):
        raise PermissionDenied("evidence is added by the requester while the request is pending")
    return documents.Owner(req.key_id, TABLE, req.id)


def _register_document_owner() -> None:
    try:
        from models import documents
    except ImportError:
        return
    documents.register_owner(TABLE, "models.change_requests:_document_owner", Perm.CUSTOMER_VIEW,
                             Perm.CHANGE_REQUEST)


def _evidence(actor: Actor, request_id: str) -> tuple[tuple[str, str, str], ...]:
    """(document id, doc type, file name) of each evidence document (the documents module audits the listing)."""
    try:
        from models import documents
    except ImportError:
        return ()
    return tuple((d.document_id, d.doc_type, d.name) for d in documents.list_documents(actor, TABLE, request_id))


# --- encryption of the request's own values ------------------------------------------


def _seal(key: bytes, key_id: str, request_id: str, name: str, value: object) -> bytes:
    plaintext = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str).encode()
    return crypto.encrypt(key, plaintext, crypto.field_aad(TABLE, request_id, name, key_id))


def _open(key: bytes, key_id: str, request_id: str, name: str, blob: bytes | None) -> object:
    if blob is None:
        return None
    return json.loads(crypto.decrypt(key, bytes(blob), crypto.field_aad(TABLE, request_id, name, key_id)))


# --- reading the record ---------------------------------------------------------------


def _customer_row(customer_no: str, *, for_update: bool = False) -> dict:
    query = Customer.select().where(Customer.customer_no == normalise.normalise_customer_number(customer_no))
    if for_update and not is_sqlite():
        query = query.for_update()
    row = query.dicts().first()
    if row is None:
        raise NotFound("no customer with that customer number")
    return row


def _current_values(row: dict, key: bytes) -> dict[str, object]:
    values = customers.decrypt_fields(row["id"], row["key_id"], key, row)
    values.update({name: row[name] for name in PLAIN_FIELDS})
    return values


def _same(a: object, b: object) -> bool:
    return ("" if a is None else a) == ("" if b is None else b)


def _masked(name: str, value: object) -> object:
    if name in PERSONAL_FIELDS and value not in (None, ""):
        return customers.mask_value(name, value)
    return value


# --- summaries --------------------------------------------------------------------------


def _summaries(rows: list[dict], versions: dict[str, int] | None = None) -> list[ChangeRequestSummary]:
    """Summaries of request rows (dicts), with the customer's masked name and stale flag."""
    if not rows:
        return []
    customer_ids = list({r["customer_id"] for r in rows})
    cust = {c["id"]: c for c in Customer.select(Customer.id, Customer.key_id, Customer.full_name, Customer.version)
            .where(Customer.id.in_(customer_ids)).dicts()}
    keys = keystore.load_data_keys([c["key_id"] for c in cust.values()])
    names: dict[str, str] = {}
    for cid, c in cust.items():
        try:
            name = customers.decrypt_fields(cid, c["key_id"], keys[c["key_id"]], c, ("full_name",))["full_name"]
            names[cid] = customers.mask_name(str(name))
        except (KeyError, IntegrityFailure):
            names[cid] = "?"
    now = _naive_now()
    out = []
    for r in rows:
        c = cust.get(r["customer_id"])
        fields = tuple(filter(None, r["fields"].split(",")))
        out.append(ChangeRequestSummary(
            request_id=r["id"], customer_no=r["customer_no"], masked_name=names.get(r["customer_id"], "?"),
            fields=fields, source=r["source"], status=r["status"], requester=r["requester"],
            requested_at=r["requested_at"], age=max(now - r["requested_at"], dt.timedelta(0)),
            base_version=r["base_version"],
            stale=r["status"] == "pending" and (c is None or c["version"] != r["base_version"]),
            decider=r["decider"], decided_at=r["decided_at"], outcome_seen=r["outcome_seen"]))
    return out


def _request(request_id: str, *, for_update: bool = False) -> ChangeRequest:
    query = ChangeRequest.select().where(ChangeRequest.id == str(request_id))
    if for_update and not is_sqlite():
        query = query.for_update()
    row = query.first()
    if row is None:
        raise NotFound("no such change request")
    return row


def _row_dict(req: ChangeRequest) -> dict:
    return {name: getattr(req, name) for name in req.__data__}


def _audit(actor: Actor, action: str, **kwargs) -> None:
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id, action=action,
                 **kwargs)


# --- filing a request -----------------------------------------------------------------


@service(Perm.CHANGE_REQUEST)
def submit_change_request(
    actor: Actor,
    customer_no: str,
    base_version: int,
    changes: dict[str, object],
    *,
    source: str,
    reason: str,
    channel: str = "",
    reported_on: object = None,
    terminated_on: object = None,
    long_policy: object = None,
) -> ChangeRequestSummary:
    """File a change to a customer's record for approval; `changes` holds only the fields to change.

    Evidence from the scanner inbox is attached afterwards with
    `documents.attach_document(actor, "change_request", request_id, ...)`.
    """
    from models import verification

    today = clock.today()
    errors: list[FieldError] = []
    if source not in SOURCES:
        errors.append(FieldError("source", "Source must be one of " + ", ".join(SOURCES), "bad_choice"))
    if source == "customer_report":
        if channel not in REPORT_CHANNELS:
            errors.append(FieldError("channel", "Channel must be one of " + ", ".join(REPORT_CHANNELS),
                                     "bad_choice" if channel else "required"))
        reported, problems = _parse_day("reported_on", "Reported on", reported_on, today)
        errors += problems
        if reported is None and not problems:
            errors.append(FieldError("reported_on", "Reported on is required for a customer report", "required"))
    else:
        reported = None
        if channel:
            errors.append(FieldError("channel", "Channel is only for a customer report", "not_allowed"))
    reason_text, problems = _clean_text("reason", "Reason", reason, minimum=MIN_REASON, maximum=REASON_MAX,
                                        multiline=True)
    errors += problems
    term_day, problems = _parse_day("terminated_on", "Termination date", terminated_on, today)
    errors += problems
    long_flag, problems = _parse_flag("long_policy", long_policy)
    errors += problems
    not_editable = [name for name in changes if name not in EDITABLE_FIELDS]
    errors += [FieldError(str(name), "cannot be changed by a change request", "not_editable")
               for name in not_editable]
    wanted = {name: value for name, value in changes.items() if name in EDITABLE_FIELDS}

    request_id = str(uuid.uuid4())
    with write():
        row = _customer_row(customer_no)
        if row["version"] != int(base_version):
            raise StaleForm(row["version"])
        key = keystore.load_data_key(row["key_id"])
        current = _current_values(row, key)
        cleaned, field_errors, _warnings = validation.validate_customer(wanted, today=today, partial=True,
                                                                        existing=current)
        errors += field_errors
        changed = {name: value for name, value in cleaned.items()
                   if name not in {e.field for e in field_errors} and not _same(value, current.get(name))}
        new_category = str(changed.get("category", current["category"]))
        already = {e.field for e in errors}
        errors += [e for e in check_transition(str(current["category"]), new_category, term_day, long_flag,
                                               today=today) if e.field not in already]
        if not changed and not errors:
            errors.append(FieldError("fields", "Nothing to change: every value is the same as the record",
                                     "no_change"))
        if errors:
            raise ValidationError(errors)
        now = _naive_now()
        base = {name: current.get(name) for name in EDITABLE_FIELDS}
        ChangeRequest.insert(
            id=request_id, customer_id=row["id"], customer_no=row["customer_no"], key_id=row["key_id"],
            base_version=row["version"], fields=",".join(changed),
            proposed=_seal(key, row["key_id"], request_id, "proposed", changed),
            base=_seal(key, row["key_id"], request_id, "base", base),
            reason=_seal(key, row["key_id"], request_id, "reason", reason_text),
            source=source, channel=channel if source == "customer_report" else "", reported_on=reported,
            terminated_on=term_day, long_policy=long_flag,
            status="pending", requested_by=actor.staff_id, requester=actor.username, requested_at=now,
        ).execute()
        _audit(actor, "CHANGE_REQUEST", object_type="customer", object_id=row["customer_no"],
               fields=list(changed), details={"request": request_id, "source": source,
                                              "base_version": row["version"]})
        if source == "periodic_check":
            verification._record_check(actor, row, "changed", change_request_id=request_id)
    return _summaries([_row_dict(_request(request_id))])[0]


@service(Perm.CHANGE_REQUEST)
def withdraw_change_request(actor: Actor, request_id: str) -> Decision:
    """The requester takes back a request that is still pending."""
    with write():
        req = _request(request_id, for_update=True)
        if req.requested_by != actor.staff_id:
            raise NotFound("no such change request")
        updated = (ChangeRequest.update(status="withdrawn", decided_at=_naive_now(), decided_by=actor.staff_id,
                                        decider=actor.username, outcome_seen=True)
                   .where((ChangeRequest.id == req.id) & (ChangeRequest.status == "pending")).execute())
        if not updated:
            raise Conflict("this request has already been decided")
        _audit(actor, "CHANGE_WITHDRAW", object_type="customer", object_id=req.customer_no,
               details={"request": req.id})
    return Decision(req.id, req.customer_no, "withdrawn", tuple(filter(None, req.fields.split(","))))


# --- the approval queue ------------------------------------------------------------------


@service(Perm.CHANGE_APPROVE)
def approval_queue(actor: Actor, limit: int = 200) -> list[ChangeRequestSummary]:
    """Pending requests, oldest first (masked names; the listing is audited)."""
    rows = list(ChangeRequest.select().where(ChangeRequest.status == "pending")
                .order_by(ChangeRequest.requested_at, ChangeRequest.id).limit(limit).dicts())
    _audit(actor, "CHANGE_QUEUE_VIEW", object_type=TABLE, details={"count": len(rows)})
    return _summaries(rows)


@service(Perm.CUSTOMER_VIEW)
def pending_for_customer(actor: Actor, customer_no: str) -> list[ChangeRequestSummary]:
    """A customer's pending change requests, oldest first (for the customer file)."""
    number = normalise.normalise_customer_number(customer_no)
    rows = list(ChangeRequest.select().where((ChangeRequest.customer_no == number)
                                             & (ChangeRequest.status == "pending"))
                .order_by(ChangeRequest.requested_at).dicts())
    return _summaries(rows)


@service(Perm.CHANGE_REQUEST)
def my_requests(actor: Actor, limit: int = 100, mark_seen: bool = False) -> list[ChangeRequestSummary]:
    """The actor's own requests, newest first; `mark_seen` records that their outcomes were shown."""
    rows = list(ChangeRequest.select().where(ChangeRequest.requested_by == actor.staff_id)
                .order_by(ChangeRequest.requested_at.desc(), ChangeRequest.id).limit(limit).dicts())
    summaries = _summaries(rows)
    unseen = [r["id"] for r in rows if not r["outcome_seen"] and r["status"] in ("approved", "rejected")]
    if mark_seen and unseen:
        with write():
            ChangeRequest.update(outcome_seen=True).where(ChangeRequest.id.in_(unseen)).execute()
    return summaries


def _diff_rows(current: dict[str, object], proposed: dict[str, object]) -> tuple[FieldChange, ...]:
    rows = []
    for name in EDITABLE_FIELDS:
        old = current.get(name)
        if name in proposed and not _same(proposed[name], old):
            rows.append(FieldChange(name, old, proposed[name], requested=True))
        else:
            shown = _masked(name, old)
            rows.append(FieldChange(name, shown, shown))
    return tuple(rows)


def _require_training(actor: Actor, action: str) -> None:
    from models.training import require_training

    require_training(actor, action)  # lapsed data-protection training blocks seeing values and approving


def _detail(actor: Actor, req: ChangeRequest, action: str) -> ChangeRequestDetail:
    _require_training(actor, "change_view")
    row = _customer_row(req.customer_no)
    _audit(actor, action, object_type=TABLE, object_id=req.id, fields=tuple(filter(None, req.fields.split(","))),
           details={"customer": req.customer_no})
    key = keystore.load_data_key(req.key_id)
    proposed = _open(key, req.key_id, req.id, "proposed", req.proposed)
    current = _current_values(row, key)
    summary = _summaries([_row_dict(req)])[0]
    term = req.terminated_on
    return ChangeRequestDetail(
        summary=summary, rows=_diff_rows(current, proposed),
        reason=str(_open(key, req.key_id, req.id, "reason", req.reason)), channel=req.channel,
        reported_on=req.reported_on, terminated_on=term, long_policy=req.long_policy,
        documents=_evidence(actor, req.id), current_version=row["version"],
        note=str(_open(key, req.key_id, req.id, "note", req.note) or ""),
        retention_until=retention_until(term, bool(req.long_policy)) if term else None,
    )


@service(Perm.CHANGE_APPROVE)
def request_detail(actor: Actor, request_id: str) -> ChangeRequestDetail:
    """One request beside the record: a field-by-field diff (the view is audited before decryption)."""
    return _detail(actor, _request(request_id), "CHANGE_VIEW")


@service(Perm.CHANGE_REQUEST)
def my_request_detail(actor: Actor, request_id: str) -> ChangeRequestDetail:
    """One of the actor's own requests with its outcome (marks the outcome seen)."""
    req = _request(request_id)
    if req.requested_by != actor.staff_id:
        raise NotFound("no such change request")
    detail = _detail(actor, req, "CHANGE_VIEW")
    if not req.outcome_seen and req.status in ("approved", "rejected"):
        with write():
            ChangeRequest.update(outcome_seen=True).where(ChangeRequest.id == req.id).execute()
    return detail


@service(Perm.CHANGE_REQUEST)
def proposed_values(actor: Actor, request_id: str) -> dict[str, object]:
    """The values one of the actor's own requests proposed, to file them again (a reveal; audited)."""
    req = _request(request_id)
    if req.requested_by != actor.staff_id:
        raise NotFound("no such change request")
    _require_training(actor, "change_refile")
    _audit(actor, "REVEAL", object_type=TABLE, object_id=req.id, fields=tuple(filter(None, req.fields.split(","))),
           purpose="file a change request again")
    key = keystore.load_data_key(req.key_id)
    values = dict(_open(key, req.key_id, req.id, "proposed", req.proposed))
    if req.terminated_on:
        values["terminated_on"] = req.terminated_on.isoformat()
    if req.long_policy is not None:
        values["long_policy"] = req.long_policy
    return values


@service(Perm.CHANGE_APPROVE)
def conflict_view(actor: Actor, request_id: str) -> ThreeWayView:
    """The three-way picture of a stale request: base, current and proposed (audited before decryption)."""
    req = _request(request_id)
    _require_training(actor, "change_view")
    row = _customer_row(req.customer_no)
    _audit(actor, "CHANGE_VIEW", object_type=TABLE, object_id=req.id, fields=tuple(filter(None, req.fields.split(","))),
           details={"customer": req.customer_no, "three_way": True})
    key = keystore.load_data_key(req.key_id)
    proposed = _open(key, req.key_id, req.id, "proposed", req.proposed)
    base = _open(key, req.key_id, req.id, "base", req.base)
    current = _current_values(row, key)
    rows, since, conflicting = [], [], []
    for name in EDITABLE_FIELDS:
        moved = not _same(base.get(name), current.get(name))
        requested = name in proposed
        if moved:
            since.append(name)
        if requested and moved and not _same(proposed[name], current.get(name)):
            conflicting.append(name)
        if moved or requested:
            rows.append(FieldChange(name, current.get(name), proposed[name] if requested else current.get(name),
                                    base=base.get(name), requested=requested))
    return ThreeWayView(_summaries([_row_dict(req)])[0], tuple(rows), req.base_version, row["version"],
                        tuple(since), tuple(conflicting))


# --- deciding -----------------------------------------------------------------------------


def _four_eyes(actor: Actor, req: ChangeRequest, service_name: str) -> None:
    if req.requested_by == actor.staff_id:
        _audit(actor, "DENIED", outcome="denied", object_type=TABLE, object_id=req.id,
               details={"service": service_name, "rule": "four_eyes"})
        raise PermissionDenied("nobody decides their own change request; another supervisor must")


def _transition_columns(old: str, new: str, req: ChangeRequest, today: dt.date) -> dict[str, object]:
    """Columns a category change sets besides the category (retention is recomputed after, when it can)."""
    if old == new:
        return {}
    if new == "terminated":
        return {"terminated_on": req.terminated_on, "long_policy": req.long_policy,
                "retention_until": retention_until(req.terminated_on, bool(req.long_policy)),
                "next_verification_due": None}
    columns: dict[str, object] = {"next_verification_due": customers.next_verification(new, today),
                                  "retention_until": None}
    if old == "terminated":  # a returning customer: the statutory retention clock stops
        columns.update(terminated_on=None, long_policy=None)
    return columns


@service(Perm.CHANGE_APPROVE)
def approve_change_request(actor: Actor, request_id: str, note: str = "") -> Decision:
    """Apply a pending request in one transaction, refusing it as a conflict if the record moved on."""
    from models import verification

    note_text, problems = _clean_text("note", "Note", note, minimum=0, maximum=NOTE_MAX, multiline=True)
    if problems:
        raise ValidationError(problems)
    req = _request(request_id)
    _four_eyes(actor, req, "approve_change_request")
    _require_training(actor, "change_approve")
    today = clock.today()
    try:
        with write():
            req = _request(request_id, for_update=True)
            if req.status != "pending":
                raise Conflict(f"this request has already been decided ({req.status})")
            row = _customer_row(req.customer_no)
            if row["version"] != req.base_version:
                raise ChangeConflict(req.id, req.base_version, row["version"])
            key = keystore.load_data_key(row["key_id"])
            proposed = _open(key, req.key_id, req.id, "proposed", req.proposed)
            current = _current_values(row, key)
            validation.check_valid(proposed, today=today, partial=True, existing=current)
            merged = {**current, **proposed}
            now = _naive_now()
            claimed = (ChangeRequest.update(status="approved", decided_by=actor.staff_id, decider=actor.username,
                                            decided_at=now, applied_version=req.base_version + 1,
                                            note=_seal(key, req.key_id, req.id, "note", note_text))
                       .where((ChangeRequest.id == req.id) & (ChangeRequest.status == "pending")).execute())
            if not claimed:
                raise Conflict("this request has already been decided")
            columns: dict[str, object] = {}
            personal = [name for name in proposed if name in PERSONAL_FIELDS]
            if personal:
                sealed = customers.encrypt_fields(row["id"], row["key_id"], key, merged)
                columns.update({name: sealed[name] for name in personal})
            columns.update({name: value for name, value in proposed.items() if name in PLAIN_FIELDS})
            if INDEXED_FIELDS & proposed.keys():
                columns.update(customers.blind_indexes(merged))
            old_category, new_category = str(current["category"]), str(merged["category"])
            columns.update(_transition_columns(old_category, new_category, req, today))
            applied = (Customer.update(**columns, version=Customer.version + 1)
                       .where((Customer.id == row["id"]) & (Customer.version == req.base_version)).execute())
            if applied != 1:  # another approval won the race between our read and this write
                current_version = Customer.select(Customer.version).where(Customer.id == row["id"]).scalar()
                raise ChangeConflict(req.id, req.base_version, current_version)
            fields = list(proposed)
            details = {"request": req.id, "requested_by": req.requester, "source": req.source,
                       "version": req.base_version + 1}
            history._record_event(actor, row["id"], "changed", fields, details)
            if old_category != new_category:
                retention = _retention()
                if retention is not None:
                    retention._apply_retention(row["id"])  # the office's rules, prospects' last contact included
                history._record_event(actor, row["id"], "category", ("category",),
                                      {"request": req.id, "from": old_category, "to": new_category})
                if new_category == "terminated":
                    verification._reset_state(row["id"])
            _audit(actor, "CHANGE_APPROVE", object_type="customer", object_id=row["customer_no"], fields=fields,
                   details={"request": req.id, "base_version": req.base_version,
                            "version": req.base_version + 1, "requested_by": req.requested_by,
                            **({"category": [old_category, new_category]} if old_category != new_category else {})})
    except ChangeConflict as conflict:
        with write():
            ChangeRequest.update(conflict_at=_naive_now()).where(ChangeRequest.id == req.id).execute()
            _audit(actor, "CHANGE_APPROVE", outcome="conflict", object_type="customer", object_id=req.customer_no,
                   details={"request": req.id, "base_version": conflict.base_version,
                            "current_version": conflict.current_version})
        raise
    return Decision(req.id, req.customer_no, "approved", tuple(fields), req.base_version + 1)


@service(Perm.CHANGE_APPROVE)
def reject_change_request(actor: Actor, request_id: str, note: str) -> Decision:
    """Turn a pending request down with a note saying why; the record is not touched."""
    note_text, problems = _clean_text("note", "Note", note, minimum=MIN_REASON, maximum=NOTE_MAX, multiline=True)
    if problems:
        raise ValidationError([FieldError("note", "say why the request is rejected (at least 4 characters)",
                                          problems[0].code)])
    req = _request(request_id)
    _four_eyes(actor, req, "reject_change_request")
    with write():
        key = keystore.load_data_key(req.key_id)
        updated = (ChangeRequest.update(status="rejected", decided_by=actor.staff_id, decider=actor.username,
                                        decided_at=_naive_now(),
                                        note=_seal(key, req.key_id, req.id, "note", note_text))
                   .where((ChangeRequest.id == req.id) & (ChangeRequest.status == "pending")).execute())
        if not updated:
            raise Conflict("this request has already been decided")
        _audit(actor, "CHANGE_REJECT", object_type="customer", object_id=req.customer_no,
               fields=tuple(filter(None, req.fields.split(","))), details={"request": req.id})
    return Decision(req.id, req.customer_no, "rejected", tuple(filter(None, req.fields.split(","))))


# --- counts for the home screen -------------------------------------------------------


@service(Perm.CHANGE_REQUEST)
def add_demo_requests(actor: Actor) -> int:
    """Demo offices: pending requests for the supervisor's queue — a reported phone and, on the same
    record, a new email (approving one makes the other a conflict), and a corrected city elsewhere."""
    rows = list(Customer.select(Customer.customer_no, Customer.version).where(Customer.category == "active")
                .order_by(Customer.customer_no).limit(2))
    if len(rows) < 2:
        return 0
    today = clock.today().isoformat()
    first, second = rows
    demo = (
        (first, {"mobile": "13912345678"}, {"source": "customer_report", "channel": "phone", "reported_on": today,
                                            "reason": "客户来电告知更换手机号"}),
        (second, {"city": "杭州市", "district": "西湖区"}, {"source": "clerk_correction",
                                                         "reason": "录入时城市填错，按保单地址更正"}),
        (first, {"email": "new.address@example.com"}, {"source": "customer_report", "channel": "email",
                                                       "reported_on": today, "reason": "客户邮件告知新邮箱"}),
    )
    for row, changes, meta in demo:
        submit_change_request(actor, row.customer_no, row.version, changes, **meta)
    return len(demo)


def _pending_count(exclude_staff_id: int | None = None) -> int:
    query = ChangeRequest.select().where(ChangeRequest.status == "pending")
    if exclude_staff_id is not None:
        query = query.where(ChangeRequest.requested_by != exclude_staff_id)
    return query.count()


def _unseen_outcomes(staff_id: int) -> int:
    return (ChangeRequest.select().where((ChangeRequest.requested_by == staff_id)
                                         & (ChangeRequest.status.in_(("approved", "rejected")))
                                         & (ChangeRequest.outcome_seen == False))  # noqa: E712
            .count())


NOTICE_MSGIDS = {"approved": "Change approved: {customer}", "rejected": "Change rejected: {customer}"}


def _home_notices(actor: Actor, limit: int = 4) -> list:
    """Decisions on the actor's requests that they have not looked at yet, newest first (no personal data)."""
    from models.home import HomeNotice

    if not actor.has(Perm.CHANGE_REQUEST):
        return []
    rows = (ChangeRequest.select(ChangeRequest.customer_no, ChangeRequest.status)
            .where((ChangeRequest.requested_by == actor.staff_id) & (ChangeRequest.status.in_(tuple(NOTICE_MSGIDS)))
                   & (ChangeRequest.outcome_seen == False))  # noqa: E712
            .order_by(ChangeRequest.decided_at.desc()).limit(limit))
    return [HomeNotice(NOTICE_MSGIDS[r.status], {"customer": r.customer_no}) for r in rows]


def _home_counts(actor: Actor) -> dict[str, int]:
    counts: dict[str, int] = {}
    if actor.has(Perm.CHANGE_APPROVE):
        counts["changes"] = _pending_count(exclude_staff_id=actor.staff_id)
    if actor.has(Perm.CHANGE_REQUEST):
        counts["my_requests"] = _unseen_outcomes(actor.staff_id)
    return counts


def all_tables() -> list[type[BaseModel]]:
    return [ChangeRequest]



_register_document_owner()
