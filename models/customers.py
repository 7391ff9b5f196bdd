"""The customer store: personal fields encrypted per field under the customer's data key.

Lookups by resident ID, phone and name go through truncated blind indexes; candidates are
decrypted and compared exactly. Every view, reveal and search is audited before decryption.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field

import peewee as pw

from models import audit, clock, crypto, history, keystore, normalise, office, validation
from models.db import BaseModel, write
from models.errors import FieldError, NotFound, ValidationError
from models.fields import CUSTOMER_FIELDS, FIELDS_BY_NAME, ID_TYPES, PERSONAL_FIELDS, PLAIN_FIELDS, Kind
from models.permissions import Actor, Perm, service
from models.staff import Staff

TABLE = "customer"
VERIFY_MONTHS = {"active": 12, "prospect": 6}


def _customer_columns() -> dict[str, pw.Field]:
    columns: dict[str, pw.Field] = {
        "id": pw.CharField(max_length=36, primary_key=True),
        "customer_no": pw.CharField(max_length=16, unique=True),
        "key_id": pw.CharField(max_length=36),
        "id_bidx": pw.IntegerField(null=True, index=True),
        "mobile_bidx": pw.IntegerField(null=True, index=True),
        "name_bidx": pw.IntegerField(null=True, index=True),
        "index_version": pw.SmallIntegerField(default=1),
        "responsible_clerk": pw.ForeignKeyField(Staff, null=True, backref="customers", on_delete="SET NULL"),
        "created_by": pw.ForeignKeyField(Staff, null=True, backref="+", on_delete="SET NULL"),
        "created_at": pw.DateTimeField(),
        "approved_at": pw.DateTimeField(null=True),
        "last_verified": pw.DateField(null=True),
        "next_verification_due": pw.DateField(null=True, index=True),
        "last_contact": pw.DateField(null=True),
        "terminated_on": pw.DateField(null=True),
        "long_policy": pw.BooleanField(null=True),
        "retention_until": pw.DateField(null=True, index=True),
        "legal_hold": pw.BooleanField(default=False),
        "version": pw.IntegerField(default=1),
    }
    for spec in CUSTOMER_FIELDS:
        if spec.personal:
            columns[spec.name] = pw.BlobField()
        elif spec.kind is Kind.BOOL:
            columns[spec.name] = pw.BooleanField(default=False)
        else:
            columns[spec.name] = pw.CharField(max_length=max(spec.max_length, 16), default="",
                                              index=spec.name in ("category", "branch"))
    return columns


class _Meta:
    table_name = TABLE


Customer = type("Customer", (BaseModel,), {"__module__": __name__, "Meta": _Meta, **_customer_columns()})


class CustomerNumberSequence(BaseModel):
    year = pw.IntegerField(primary_key=True)
    last = pw.IntegerField(default=0)

    class Meta:
        table_name = "customer_number_sequence"


# --- masking -------------------------------------------------------------------------


def mask_name(value: str) -> str:
    return value[:1] + "*" * max(len(value) - 1, 1) if value else ""


def mask_tail(value: str, keep: int = 4) -> str:
    return "*" * max(len(value) - keep, 0) + value[-keep:] if value else ""


def mask_value(field_name: str, value: object) -> str:
    """How a field shows before it is revealed."""
    if value in ("", None):
        return ""
    if field_name in PLAIN_FIELDS:
        return str(value)
    if field_name in ("full_name", "guardian_name"):
        return mask_name(str(value))
    if field_name in ("id_number", "mobile", "other_phone"):
        return mask_tail(str(value))
    if field_name == "gender":
        return str(value)
    return "***"


# --- encryption ----------------------------------------------------------------------


def encrypt_fields(record_id: str, key_id: str, key: bytes, values: dict[str, object],
                   table: str = TABLE) -> dict[str, bytes]:
    return {
        name: crypto.encrypt(key, json.dumps(values.get(name, ""), ensure_ascii=False).encode(),
                             crypto.field_aad(table, record_id, name, key_id))
        for name in PERSONAL_FIELDS
    }


def decrypt_fields(record_id: str, key_id: str, key: bytes, row: dict, names=PERSONAL_FIELDS,
                   table: str = TABLE) -> dict[str, object]:
    return {
        name: json.loads(crypto.decrypt(key, bytes(row[name]), crypto.field_aad(table, record_id, name, key_id)))
        for name in names
    }


def blind_indexes(values: dict[str, object]) -> dict[str, int | None]:
    """The three blind indexes of a record (None where the value is empty)."""
    keyring = office.current().keyring
    bits = office.current().settings.blind_index_bits
    out: dict[str, int | None] = {"id_bidx": None, "mobile_bidx": None, "name_bidx": None}
    if values.get("id_number"):
        out["id_bidx"] = keyring.blind_index(_id_index_name(values), _norm_id(values), bits)
    if values.get("mobile"):
        out["mobile_bidx"] = keyring.blind_index("mobile", normalise.normalise_phone(str(values["mobile"])), bits)
    if values.get("full_name"):
        out["name_bidx"] = keyring.blind_index("full_name", normalise.normalise_name(str(values["full_name"])), bits)
    return out


def _id_index_name(values: dict[str, object]) -> str:
    return "id_number" if values.get("id_type", "resident_id") == "resident_id" else f"id_number|{values['id_type']}"


def _norm_id(values: dict[str, object]) -> str:
    raw = str(values["id_number"])
    if values.get("id_type", "resident_id") == "resident_id":
        return normalise.normalise_resident_id(raw)
    return normalise.normalise_customer_number(raw)


# --- results handed to the UI --------------------------------------------------------


@dataclass(frozen=True)
class CustomerSummary:
    customer_id: str
    customer_no: str
    masked_name: str
    category: str
    branch: str
    responsible_clerk: str
    next_verification_due: dt.date | None
    retention_until: dt.date | None
    legal_hold: bool


@dataclass(frozen=True)
class CustomerRecord:
    customer_id: str
    customer_no: str
    version: int
    values: dict[str, object]  # masked, unless revealed
    revealed: frozenset[str] = field(default_factory=frozenset)
    created_at: dt.datetime | None = None
    approved_at: dt.datetime | None = None
    last_verified: dt.date | None = None
    next_verification_due: dt.date | None = None
    terminated_on: dt.date | None = None
    retention_until: dt.date | None = None
    legal_hold: bool = False
    responsible_clerk: str = ""


def _add_months(day: dt.date, months: int) -> dt.date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate in range(day.day, 27, -1):
        try:
            return dt.date(year, month, candidate)
        except ValueError:
            continue
    return dt.date(year, month, min(day.day, 28))


def verify_months() -> dict[str, int]:
    """Months between periodic verifications per category (the office's settings, else the defaults)."""
    try:
        settings = office.current().settings
    except Exception:  # no office open (pure date arithmetic in tests and tools)
        return VERIFY_MONTHS
    return {"active": settings.verify_months_active, "prospect": settings.verify_months_prospect}


def next_verification(category: str, from_day: dt.date) -> dt.date | None:
    months = verify_months().get(category)
    return _add_months(from_day, months) if months else None


def _next_customer_no(year: int) -> str:
    updated = (CustomerNumberSequence.update(last=CustomerNumberSequence.last + 1)
               .where(CustomerNumberSequence.year == year).execute())
    if not updated:
        CustomerNumberSequence.insert(year=year, last=1).execute()
    last = CustomerNumberSequence.get_by_id(year).last
    return f"C{year}{last:06d}"


def _insert_customer(actor: Actor, cleaned: dict[str, object], *, responsible_clerk_id: int | None,
                    approved: bool = True, data_key: tuple[str, bytes] | None = None) -> tuple[str, str]:
    """Write a validated record inside the caller's transaction; returns (customer id, number).

    `data_key` (key id, key) reuses an existing data key: intake hands over the submission's key.
    """
    customer_id = str(uuid.uuid4())
    key_id, key = data_key if data_key is not None else keystore.create_data_key()
    today = clock.today()
    plain = {name: cleaned.get(name, False if FIELDS_BY_NAME[name].kind is Kind.BOOL else "")
             for name in PLAIN_FIELDS}
    with write():
        customer_no = _next_customer_no(today.year)
        now = clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None)
        Customer.insert(
            id=customer_id, customer_no=customer_no, key_id=key_id,
            **encrypt_fields(customer_id, key_id, key, cleaned), **plain, **blind_indexes(cleaned),
            responsible_clerk=responsible_clerk_id, created_by=actor.staff_id, created_at=now,
            approved_at=now if approved else None, last_contact=today,
            next_verification_due=next_verification(str(cleaned.get("category", "")), today),
        ).execute()
        history._record_event(actor, customer_id, "created",
                              [s.name for s in CUSTOMER_FIELDS if cleaned.get(s.name) not in ("", None)])
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="CUSTOMER_CREATE", object_type=TABLE, object_id=customer_no,
                     fields=[s.name for s in CUSTOMER_FIELDS if cleaned.get(s.name) not in ("", None)])
    return customer_id, customer_no


@service(Perm.CUSTOMER_CREATE)
def create_customer(actor: Actor, data: dict[str, object]) -> CustomerSummary:
    """Validate and store a customer directly (import and demo); intake goes through review."""
    cleaned = validation.check_valid(data, today=clock.today())
    _, customer_no = _insert_customer(actor, cleaned, responsible_clerk_id=actor.staff_id)
    return _summaries(Customer.select().where(Customer.customer_no == customer_no))[0]


def _summaries(query) -> list[CustomerSummary]:
    rows = list(query.select(Customer.id, Customer.customer_no, Customer.key_id, Customer.full_name,
                             Customer.category, Customer.branch, Customer.next_verification_due,
                             Customer.retention_until, Customer.legal_hold, Staff.username.alias("clerk"))
                .join(Staff, pw.JOIN.LEFT_OUTER, on=(Customer.responsible_clerk == Staff.id)).dicts())
    keys = keystore.load_data_keys([r["key_id"] for r in rows])
    out = []
    for r in rows:
        key = keys.get(r["key_id"])
        # A customer whose key is gone (destruction interrupted before its rows went) lists without a name.
        name = mask_name(str(decrypt_fields(r["id"], r["key_id"], key, r, ("full_name",))["full_name"])) \
            if key is not None else "(key destroyed)"
        out.append(CustomerSummary(r["id"], r["customer_no"], name, r["category"], r["branch"],
                                   r["clerk"] or "", r["next_verification_due"], r["retention_until"],
                                   r["legal_hold"]))
    return out


def _row(customer_no: str) -> dict:
    row = (Customer.select(Customer, Staff.username.alias("clerk"))
           .join(Staff, pw.JOIN.LEFT_OUTER, on=(Customer.responsible_clerk == Staff.id))
           .where(Customer.customer_no == normalise.normalise_customer_number(customer_no)).dicts().first())
    if row is None:
        raise NotFound("no customer with that customer number")
    return row


def _record(row: dict, values: dict[str, object], revealed: frozenset[str]) -> CustomerRecord:
    shown = {name: (values[name] if name in revealed else mask_value(name, values[name]))
             for name in PERSONAL_FIELDS}
    shown.update({name: row[name] for name in PLAIN_FIELDS})
    return CustomerRecord(
        row["id"], row["customer_no"], row["version"], shown, revealed, row["created_at"], row["approved_at"],
        row["last_verified"], row["next_verification_due"], row["terminated_on"], row["retention_until"],
        row["legal_hold"], row["clerk"] or "",
    )


@service(Perm.CUSTOMER_VIEW)
def get_customer(actor: Actor, customer_no: str) -> CustomerRecord:
    """A customer's record, masked; the view is audited before anything is decrypted."""
    row = _row(customer_no)
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="VIEW", object_type=TABLE, object_id=row["customer_no"], fields=PERSONAL_FIELDS)
    values = decrypt_fields(row["id"], row["key_id"], keystore.load_data_key(row["key_id"]), row)
    return _record(row, values, frozenset())


@service(Perm.CUSTOMER_REVEAL)
def reveal_fields(actor: Actor, customer_no: str, field_names: list[str], purpose: str) -> CustomerRecord:
    """Unmask some fields for a stated purpose; audited (with the purpose) before decryption."""
    purpose_text = purpose.strip()
    if len(purpose_text) < 4 or validation.forbidden_characters(purpose_text):
        raise ValidationError([FieldError("purpose", "state why you need to see this (at least 4 characters)",
                                          "required")])
    unknown = [n for n in field_names if n not in PERSONAL_FIELDS]
    if unknown or not field_names:
        raise ValidationError([FieldError("fields", "name one or more personal fields", "bad_choice")])
    from models.training import require_training

    require_training(actor, "reveal")  # lapsed data-protection training blocks unmasking
    row = _row(customer_no)
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="REVEAL", object_type=TABLE, object_id=row["customer_no"], fields=field_names,
                 purpose=purpose_text[:200])
    values = decrypt_fields(row["id"], row["key_id"], keystore.load_data_key(row["key_id"]), row)
    return _record(row, values, frozenset(field_names))


SEARCH_KINDS = ("customer_no", "id_number", "mobile", "full_name")


@service(Perm.CUSTOMER_SEARCH)
def find_customers(actor: Actor, kind: str, term: str, limit: int = 50) -> list[CustomerSummary]:
    """Exact search by customer number (or prefix), resident ID, mobile or full name; results masked."""
    if kind not in SEARCH_KINDS:
        raise ValidationError([FieldError("kind", "must be one of " + ", ".join(SEARCH_KINDS), "bad_choice")])
    if not term.strip() or len(term) > 120 or validation.forbidden_characters(term):
        raise ValidationError([FieldError("term", "type what to search for (at most 120 characters)", "bad_format")])
    keyring, bits = office.current().keyring, office.current().settings.blind_index_bits
    if kind == "customer_no":
        norm = normalise.normalise_customer_number(term)
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="SEARCH", details={"kind": kind, "term_hmac": keyring.term_hmac(kind, norm)})
        query = Customer.select().where(Customer.customer_no.startswith(norm)).order_by(Customer.customer_no)
        return _summaries(query.limit(limit))
    if kind == "id_number":
        return _find_by_id_number(actor, term, limit)
    if kind == "mobile":
        norm, column, index_name = normalise.normalise_phone(term), Customer.mobile_bidx, "mobile"
    else:
        norm, column, index_name = normalise.normalise_name(term), Customer.name_bidx, "full_name"
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="SEARCH", details={"kind": kind, "term_hmac": keyring.term_hmac(kind, norm)})
    candidates = list(Customer.select(Customer.id, Customer.key_id, getattr(Customer, kind), Customer.id_type)
                      .where(column == keyring.blind_index(index_name, norm, bits)).dicts())
    keys = keystore.load_data_keys([c["key_id"] for c in candidates])
    normaliser = {"id_number": normalise.normalise_resident_id, "mobile": normalise.normalise_phone,
                  "full_name": normalise.normalise_name}[kind]
    matches = [c["id"] for c in candidates
               if c["key_id"] in keys and normaliser(str(
                   decrypt_fields(c["id"], c["key_id"], keys[c["key_id"]], c, (kind,))[kind])) == norm]
    if not matches:
        return []
    return _summaries(Customer.select().where(Customer.id.in_(matches[:limit])).order_by(Customer.customer_no))


def _find_by_id_number(actor: Actor, term: str, limit: int) -> list[CustomerSummary]:
    """ID search across every document type's index; candidates are checked against their own type."""
    keyring, bits = office.current().keyring, office.current().settings.blind_index_bits
    probes = {id_type: _norm_id({"id_type": id_type, "id_number": term}) for id_type in ID_TYPES}
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id, action="SEARCH",
                 details={"kind": "id_number", "term_hmac": keyring.term_hmac("id_number", probes["resident_id"])})
    buckets = sorted({keyring.blind_index(_id_index_name({"id_type": t}), n, bits) for t, n in probes.items()})
    candidates = list(Customer.select(Customer.id, Customer.key_id, Customer.id_type, Customer.id_number)
                      .where(Customer.id_bidx.in_(buckets)).dicts())
    keys = keystore.load_data_keys([c["key_id"] for c in candidates])
    matches = []
    for c in candidates:
        if c["key_id"] not in keys:
            continue
        values = decrypt_fields(c["id"], c["key_id"], keys[c["key_id"]], c, ("id_type", "id_number"))
        if values["id_type"] in probes and _norm_id(values) == probes[str(values["id_type"])]:
            matches.append(c["id"])
    if not matches:
        return []
    return _summaries(Customer.select().where(Customer.id.in_(matches[:limit])).order_by(Customer.customer_no))


def count_customers() -> int:
    return Customer.select().count()


def all_tables() -> list[type[BaseModel]]:
    return [Customer, CustomerNumberSequence]


