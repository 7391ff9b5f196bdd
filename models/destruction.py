"""Destruction under approval: requests, four-eyes approval, resumable crypto-shredding, the register.

A records officer files a request for customers past retention and not held; a supervisor other
than the requester approves it; execution then takes each customer through steps that each commit
and can be resumed after a crash at any point:

    pending → intent (audited) → key_destroyed (ledger line fsynced, data keys deleted from the key
    store) → rows_deleted (every registered table) → registered (register entry) → done (audited)

Tables holding a customer's data register themselves in `CUSTOMER_DATA_TABLES` (by name, so no
import order matters); `unregistered_customer_tables()` finds any that forgot.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import peewee as pw

from models import audit, clock, keystore, ledger, normalise, office, validation
from models.db import BaseModel, db, keys_db, write
from models.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationError
from models.permissions import Actor, Perm, service
from models.retention import (DEFAULTS_BY_CODE, RETAINED_CATEGORIES, WHY_TEMPLATES, RetentionRule,
                              rule_code_for)

METHOD = "crypto-shredding: data key destroyed; records and documents deleted"
KEYSTORE_BACKUP_DAYS = 30  # key-store backups older than this are pruned (models.backup)

# --- which tables hold a customer's data ---------------------------------------------------


@dataclass(frozen=True)
class CustomerData:
    """A table holding one customer's data, found through `column`; destroyed with the customer.

    `key_column` names a column of data-key ids (e.g. an intake submission's own key) destroyed
    too. `delete_with` is "module:function", called with the customer id inside the deleting
    transaction instead of a plain DELETE (for owners of child rows); `before_delete` likewise,
    before the transaction (to remove files). Each returns how many it removed and must be safe
    to run twice.
    """

    model: str  # "module:Class"
    column: str = "customer_id"
    key_column: str | None = None
    delete_with: str | None = None
    before_delete: str | None = None

    def resolve(self) -> type[BaseModel]:
        module_name, _sep, class_name = self.model.partition(":")
        return getattr(importlib.import_module(module_name), class_name)


def _function(spec: str) -> Callable[[str], int]:
    module_name, _sep, function_name = spec.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


# In deletion order: owners whose helpers look up child rows come before those children.
CUSTOMER_DATA_TABLES: list[CustomerData] = [
    CustomerData("models.history:CustomerEvent"),
    CustomerData("models.labels:CustomerLabel"),
    CustomerData("models.retention:LegalHold", key_column="key_id"),
    CustomerData("models.intake:IntakeSubmission", key_column="key_id",
                 delete_with="models.intake:_delete_for_customer"),
    CustomerData("models.documents:Document", column="owner_id", key_column="key_id",
                 delete_with="models.destruction:_delete_customer_documents"),
    CustomerData("models.change_requests:ChangeRequest", key_column="key_id"),
    CustomerData("models.verification:VerificationCheck", key_column="key_id"),
    CustomerData("models.verification:VerificationState"),
]
# Tables that keep a customer id on purpose: the record of the destruction itself (no personal data).
KEEPS_CUSTOMER_ID = {"destruction_item", "destruction_register"}


def register_customer_data(table_model: type | str, customer_column: str = "customer_id", *,
                           key_column: str | None = None, delete_with: str | None = None,
                           before_delete: str | None = None) -> None:
    """Declare that `table_model` holds customer data (destroyed with the customer); safe to call twice."""
    name = table_model if isinstance(table_model, str) else f"{table_model.__module__}:{table_model.__name__}"
    if all(existing.model != name for existing in CUSTOMER_DATA_TABLES):
        CUSTOMER_DATA_TABLES.append(CustomerData(name, customer_column, key_column, delete_with, before_delete))


def active_customer_data() -> list[tuple[CustomerData, type[BaseModel]]]:
    """The registered tables whose module is installed (a table cannot exist without its module)."""
    active = []
    for spec in CUSTOMER_DATA_TABLES:
        try:
            active.append((spec, spec.resolve()))
        except ModuleNotFoundError:
            continue
    return active


def _delete_customer_documents(customer_id: str) -> int:
    """The customer's documents and those attached to their change requests."""
    from models import documents

    deleted = documents._delete_documents("customer", customer_id)
    try:
        from models.change_requests import TABLE as CHANGE_TABLE, ChangeRequest
    except ImportError:
        return deleted
    for (request_id,) in ChangeRequest.select(ChangeRequest.id).where(ChangeRequest.customer_id == customer_id).tuples():
        deleted += documents._delete_documents(CHANGE_TABLE, request_id)
    return deleted


def _all_models() -> list[type[BaseModel]]:
    import pkgutil

    import models

    for info in pkgutil.iter_modules(models.__path__):
        importlib.import_module(f"models.{info.name}")
    seen, stack = [], list(BaseModel.__subclasses__())
    while stack:
        model = stack.pop()
        seen.append(model)
        stack.extend(model.__subclasses__())
    return seen


def unregistered_customer_tables() -> list[str]:
    """Main-database tables with a customer reference that destruction would miss (should be empty)."""
    from models.customers import Customer

    registered = {model._meta.table_name for _spec, model in active_customer_data()}
    missing = []
    for model in _all_models():
        table = model._meta.table_name
        if model is Customer or table in registered or table in KEEPS_CUSTOMER_ID:
            continue
        for name, fld in model._meta.fields.items():
            points_at_customer = isinstance(fld, pw.ForeignKeyField) and fld.rel_model is Customer
            if points_at_customer or name in ("customer_id", "customer"):
                missing.append(f"{table}.{name}")
    return sorted(set(missing))


# --- tables ------------------------------------------------------------------------------

OPEN_STATUSES = ("pending", "approved", "executing")
FINAL_STEPS = ("done", "excluded")
STEPS = ("pending", "intent", "key_destroyed", "rows_deleted", "registered", "done")
EXCLUDE_REASONS = {
    "legal_hold": "on legal hold",
    "not_eligible": "no longer past retention",
    "missing": "record not found",
}


class DestructionRequest(BaseModel):
    id = pw.CharField(max_length=36, primary_key=True)
    request_no = pw.CharField(max_length=16, unique=True)
    reason = pw.CharField(max_length=200)
    status = pw.CharField(max_length=12, index=True)
    requested_by_id = pw.IntegerField(null=True)
    requested_by = pw.CharField(max_length=64)
    requested_at = pw.DateTimeField()
    decided_by_id = pw.IntegerField(null=True)
    decided_by = pw.CharField(max_length=64, default="")
    decided_at = pw.DateTimeField(null=True)
    decision_note = pw.CharField(max_length=200, default="")
    executed_by_id = pw.IntegerField(null=True)
    executed_by = pw.CharField(max_length=64, default="")
    started_at = pw.DateTimeField(null=True)
    completed_at = pw.DateTimeField(null=True)
    customer_count = pw.IntegerField(default=0)

    class Meta:
        table_name = "destruction_request"


class DestructionItem(BaseModel):
    request_id = pw.CharField(max_length=36, index=True)
    customer_id = pw.CharField(max_length=36, index=True)
    customer_no = pw.CharField(max_length=16)
    key_id = pw.CharField(max_length=36)
    category = pw.CharField(max_length=16)
    rule_code = pw.CharField(max_length=32)
    rule_years = pw.IntegerField()
    start_date = pw.DateField(null=True)  # termination or last contact: where the period starts
    retention_until = pw.DateField(null=True)
    step = pw.CharField(max_length=16, default="pending", index=True)
    excluded_reason = pw.CharField(max_length=24, default="")
    key_ids = pw.TextField(default="[]")
    counts = pw.TextField(default="{}")
    ledger_seq = pw.IntegerField(null=True)
    updated_at = pw.DateTimeField(null=True)

    class Meta:
        table_name = "destruction_item"
        indexes = ((("request_id", "customer_id"), True),)


class DestructionRegister(BaseModel):
    request_id = pw.CharField(max_length=36, index=True)
    request_no = pw.CharField(max_length=16)
    customer_id = pw.CharField(max_length=36, unique=True)
    customer_no = pw.CharField(max_length=16, index=True)
    key_ids = pw.TextField(default="[]")
    category = pw.CharField(max_length=16)
    rule_code = pw.CharField(max_length=32)
    rule_years = pw.IntegerField()
    start_date = pw.DateField(null=True)
    retention_until = pw.DateField(null=True)
    requested_by = pw.CharField(max_length=64)
    approved_by = pw.CharField(max_length=64)
    executed_by = pw.CharField(max_length=64)
    destroyed_at = pw.DateTimeField(index=True)
    method = pw.CharField(max_length=100)
    counts = pw.TextField(default="{}")
    ledger_seq = pw.IntegerField(null=True)
    replayed = pw.BooleanField(default=False)

    class Meta:
        table_name = "destruction_register"


def tables() -> list[type[BaseModel]]:
    return [DestructionRequest, DestructionItem, DestructionRegister, ledger.DestructionMark]


def _utc_now() -> dt.datetime:
    return clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None)


def _audit(actor: Actor | None, action: str, **kwargs) -> int:
    if actor is None:
        return audit.append(actor_id=None, actor="system", action=action, **kwargs)
    return audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                        action=action, **kwargs)


# --- eligibility (the sweep) ----------------------------------------------------------------


@dataclass(frozen=True)
class EligibleCustomer:
    """A customer past retention and not held, with why (no personal data)."""

    customer_no: str
    category: str
    rule_code: str
    rule_years: int
    start_date: dt.date | None
    retention_until: dt.date
    basis: str  # English msgid

    @property
    def why_template(self) -> str:
        return WHY_TEMPLATES.get(self.rule_code, "{until}")

    def why(self) -> str:
        """The English reason (the UI translates `why_template` itself)."""
        return self.why_template.format(start=self.start_date, years=self.rule_years, until=self.retention_until)


@dataclass(frozen=True)
class SweepResult:
    as_of: dt.date
    eligible: list[EligibleCustomer]
    eligible_total: int
    held_past_retention: int
    already_requested: int


def _open_request_customer_ids():
    return (DestructionItem.select(DestructionItem.customer_id)
            .join(DestructionRequest, on=(DestructionItem.request_id == DestructionRequest.id))
            .where(DestructionRequest.status.in_(OPEN_STATUSES) & (DestructionItem.step != "excluded")))


def _past_retention_query(today: dt.date):
    from models.customers import Customer

    return Customer.select().where(Customer.category.in_(RETAINED_CATEGORIES)
                                   & Customer.retention_until.is_null(False)
                                   & (Customer.retention_until < today))


def _eligible_query(today: dt.date):
    from models.customers import Customer

    return _past_retention_query(today).where((Customer.legal_hold == False)  # noqa: E712
                                              & Customer.id.not_in(_open_request_customer_ids()))


def _rules() -> dict[str, RetentionRule]:
    return {r.code: r for r in RetentionRule.select()}


def _eligible_from(row, rules: dict[str, RetentionRule]) -> EligibleCustomer:
    code = rule_code_for(row.category, row.long_policy) or ""
    rule = rules.get(code)
    start = row.terminated_on if row.category == "terminated" else row.last_contact
    years = rule.years if rule else DEFAULTS_BY_CODE[code].years
    return EligibleCustomer(row.customer_no, row.category, code, years, start, row.retention_until,
                            rule.basis if rule else "")


@service(Perm.RETENTION)
def retention_sweep(actor: Actor, limit: int = 1000) -> SweepResult:
    """Customers past retention and not on hold (oldest first), with why each is eligible."""
    from models.customers import Customer

    today = clock.today()
    rules = _rules()
    query = _eligible_query(today)
    total = query.count()
    rows = query.order_by(Customer.retention_until, Customer.customer_no).limit(limit)
    eligible = [_eligible_from(row, rules) for row in rows]
    held = _past_retention_query(today).where(Customer.legal_hold == True).count()  # noqa: E712
    requested = _past_retention_query(today).where(Customer.id.in_(_open_request_customer_ids())).count()
    _audit(actor, "RETENTION_SWEEP", details={"eligible": total, "held": held, "requested": requested})
    return SweepResult(today, eligible, total, held, requested)


def count_eligible() -> int:
    return _eligible_query(clock.today()).count()


# --- requests --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestView:
    request_id: str
    request_no: str
    reason: str
    status: str
    requested_by: str
    requested_at: dt.datetime
    decided_by: str
    decided_at: dt.datetime | None
    decision_note: str
    executed_by: str
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    customer_count: int
    destroyed_count: int = 0
    excluded_count: int = 0


@dataclass(frozen=True)
class ItemView:
    customer_no: str
    category: str
    rule_code: str
    rule_years: int
    basis: str  # English msgid
    start_date: dt.date | None
    retention_until: dt.date | None
    legal_hold: bool  # now, not when filed
    step: str
    excluded_reason: str
    counts: dict


@dataclass(frozen=True)
class RequestDetail:
    request: RequestView
    items: list[ItemView]


def _request_view(row: DestructionRequest) -> RequestView:
    steps = dict(DestructionItem.select(DestructionItem.step, pw.fn.COUNT(DestructionItem.id))
                 .where(DestructionItem.request_id == row.id).group_by(DestructionItem.step).tuples())
    return RequestView(row.id, row.request_no, row.reason, row.status, row.requested_by, row.requested_at,
                       row.decided_by, row.decided_at, row.decision_note, row.executed_by, row.started_at,
                       row.completed_at, row.customer_count, steps.get("done", 0), steps.get("excluded", 0))


def _get_request(request_ref: str) -> DestructionRequest:
    text = (request_ref or "").strip()
    row = DestructionRequest.get_or_none((DestructionRequest.id == text)
                                         | (DestructionRequest.request_no == text.upper()))
    if row is None:
        raise NotFound("no such destruction request")
    return row


def _clean_text(value: str, field_name: str, *, minimum: int = 4) -> str:
    text = (value or "").strip()
    if len(text) < minimum:
        raise ValidationError([FieldError(field_name, f"write at least {minimum} characters", "required")])
    if len(text) > 200 or validation.forbidden_characters(text):
        raise ValidationError([FieldError(field_name, "must be at most 200 visible characters", "bad_format")])
    return text


def _next_request_no(year: int) -> str:
    audit._lock_chain()  # PostgreSQL: serialise with other writers, or two could read the same MAX
    prefix = f"DR{year}-"
    last = (DestructionRequest.select(pw.fn.MAX(DestructionRequest.request_no))
            .where(DestructionRequest.request_no.startswith(prefix)).scalar())
    number = int(last[len(prefix):]) + 1 if last else 1
    return f"{prefix}{number:04d}"


MAX_REQUEST_CUSTOMERS = 10000


@service(Perm.DESTRUCTION_REQUEST)
def file_request(actor: Actor, customer_nos: Iterable[str], reason: str) -> RequestView:
    """File a destruction request for customers past retention, not held and not already requested."""
    from models.customers import Customer

    reason_text = _clean_text(reason, "reason")
    wanted = sorted({normalise.normalise_customer_number(no) for no in customer_nos if str(no).strip()})
    if not wanted:
        raise ValidationError([FieldError("customers", "choose at least one customer", "required")])
    if len(wanted) > MAX_REQUEST_CUSTOMERS:
        raise ValidationError([FieldError("customers", f"at most {MAX_REQUEST_CUSTOMERS} customers per request",
                                          "too_many")])
    today = clock.today()
    rules = _rules()
    with write():
        rows = []
        for start in range(0, len(wanted), 500):
            rows.extend(_eligible_query(today).where(Customer.customer_no.in_(wanted[start:start + 500])))
        found = {row.customer_no for row in rows}
        refused = [no for no in wanted if no not in found]
        if refused:
            shown = ", ".join(refused[:5]) + (" …" if len(refused) > 5 else "")
            raise ValidationError([FieldError(
                "customers", f"{len(refused)} not eligible (unknown, on hold, not past retention or already "
                             f"requested): {shown}", "not_eligible")])
        request_id = str(uuid.uuid4())
        now = _utc_now()
        request_no = _next_request_no(today.year)
        DestructionRequest.create(id=request_id, request_no=request_no, reason=reason_text, status="pending",
                                  requested_by_id=actor.staff_id, requested_by=actor.username,
                                  requested_at=now, customer_count=len(rows))
        for row in rows:
            facts = _eligible_from(row, rules)
            DestructionItem.create(request_id=request_id, customer_id=row.id, customer_no=row.customer_no,
                                   key_id=row.key_id, category=row.category, rule_code=facts.rule_code,
                                   rule_years=facts.rule_years, start_date=facts.start_date,
                                   retention_until=row.retention_until, updated_at=now)
        _audit(actor, "DESTRUCTION_REQUEST", object_type="destruction_request", object_id=request_no,
               details={"customers": len(rows)})
    return _request_view(DestructionRequest.get_by_id(request_id))


@service(Perm.DESTRUCTION_REQUEST)
def withdraw_request(actor: Actor, request_ref: str) -> RequestView:
    """Withdraw one's own request before a supervisor decides it."""
    with write():
        row = _get_request(request_ref)
        if row.status != "pending":
            raise Conflict("only a request still waiting for approval can be withdrawn")
        if row.requested_by_id != actor.staff_id:
            raise PermissionDenied("only the person who filed a request can withdraw it")
        DestructionRequest.update(status="withdrawn", completed_at=_utc_now()).where(
            DestructionRequest.id == row.id).execute()
        _audit(actor, "DESTRUCTION_WITHDRAW", object_type="destruction_request", object_id=row.request_no)
    return _request_view(DestructionRequest.get_by_id(row.id))


@service(Perm.DESTRUCTION_VIEW)
def list_requests(actor: Actor, statuses: Iterable[str] | None = None, limit: int = 200) -> list[RequestView]:
    """Destruction requests, newest first (optionally only some statuses)."""
    query = DestructionRequest.select().order_by(DestructionRequest.requested_at.desc(),
                                                 DestructionRequest.request_no.desc())
    if statuses:
        query = query.where(DestructionRequest.status.in_(list(statuses)))
    return [_request_view(row) for row in query.limit(limit)]


def _item_views(request_id: str, rules: dict[str, RetentionRule]) -> list[ItemView]:
    from models.customers import Customer

    rows = (DestructionItem.select(DestructionItem, Customer.legal_hold.alias("held"))
            .join(Customer, pw.JOIN.LEFT_OUTER, on=(DestructionItem.customer_id == Customer.id))
            .where(DestructionItem.request_id == request_id).order_by(DestructionItem.customer_no).dicts())
    return [ItemView(r["customer_no"], r["category"], r["rule_code"], r["rule_years"],
                     rules[r["rule_code"]].basis if r["rule_code"] in rules else "", r["start_date"],
                     r["retention_until"], bool(r["held"]), r["step"], r["excluded_reason"],
                     json.loads(r["counts"] or "{}")) for r in rows]


@service(Perm.DESTRUCTION_VIEW)
def request_detail(actor: Actor, request_ref: str) -> RequestDetail:
    """A request and its customers: category, dates, retention basis and current hold status."""
    row = _get_request(request_ref)
    return RequestDetail(_request_view(row), _item_views(row.id, _rules()))


@service(Perm.DESTRUCTION_APPROVE)
def decide_request(actor: Actor, request_ref: str, approve: bool, note: str) -> RequestView:
    """Approve or reject a pending request, with a note; never one's own (four-eyes)."""
    note_text = _clean_text(note, "note")
    row = _get_request(request_ref)
    from models.training import require_training

    require_training(actor, "destruction_decide")  # lapsed data-protection training blocks approving
    if row.requested_by_id == actor.staff_id:
        _audit(actor, "DENIED", outcome="denied", object_type="destruction_request", object_id=row.request_no,
               details={"service": "decide_request", "rule": "four_eyes"})
        raise PermissionDenied("nobody may approve or reject their own destruction request")
    with write():
        row = _get_request(request_ref)
        if row.status != "pending":
            raise Conflict("this request has already been decided")
        status = "approved" if approve else "rejected"
        DestructionRequest.update(status=status, decided_by_id=actor.staff_id, decided_by=actor.username,
                                  decided_at=_utc_now(), decision_note=note_text,
                                  completed_at=None if approve else _utc_now()).where(
            DestructionRequest.id == row.id).execute()
        _audit(actor, "DESTRUCTION_APPROVE" if approve else "DESTRUCTION_REJECT",
               object_type="destruction_request", object_id=row.request_no,
               details={"customers": row.customer_count})
    return _request_view(DestructionRequest.get_by_id(row.id))


def count_pending_requests() -> int:
    return DestructionRequest.select().where(DestructionRequest.status == "pending").count()


def count_approved_requests() -> int:
    return DestructionRequest.select().where(DestructionRequest.status.in_(("approved", "executing"))).count()


# --- execution -----------------------------------------------------------------------------


@dataclass
class RunContext:
    """Who is executing and on which request (staff usernames only)."""

    actor: Actor | None  # None: the office replaying its ledger
    executor: str
    request_id: str
    request_no: str
    requested_by: str
    approved_by: str
    ledger_index: dict[str, dict] = field(default_factory=dict)  # customer id → ledger entry


def _reload(item_id: int) -> DestructionItem:
    return DestructionItem.get_by_id(item_id)


def _set_step(item_id: int, step: str, **changes) -> None:
    DestructionItem.update(step=step, updated_at=_utc_now(), **changes).where(DestructionItem.id == item_id).execute()


def _exclude(ctx: RunContext, item: DestructionItem, reason: str) -> str:
    _set_step(item.id, "excluded", excluded_reason=reason)
    _audit(ctx.actor, "DESTROY_SKIPPED", object_type="customer", object_id=item.customer_no,
           details={"request": ctx.request_no, "reason": reason})
    return "excluded"


def _customer_key_ids(customer_id: str, main_key: str | None) -> list[str]:
    key_ids = [main_key] if main_key else []
    for spec, model in active_customer_data():
        if not spec.key_column:
            continue
        column = getattr(model, spec.column)
        for (key_id,) in model.select(getattr(model, spec.key_column)).where(column == customer_id).tuples():
            if key_id and key_id not in key_ids:
                key_ids.append(key_id)
    return key_ids


def _step_intent(ctx: RunContext, item: DestructionItem) -> str:
    """pending → intent: re-check eligibility, then audit the intent (ids and codes only)."""
    from models.customers import Customer

    with write():
        item = _reload(item.id)
        if item.step != "pending":
            return item.step
        replaying = item.customer_id in ctx.ledger_index
        customer = Customer.get_or_none(Customer.id == item.customer_id)
        if not replaying:
            if customer is None:
                return _exclude(ctx, item, "missing")
            if customer.legal_hold:
                return _exclude(ctx, item, "legal_hold")
            if not (customer.category in RETAINED_CATEGORIES and customer.retention_until is not None
                    and customer.retention_until < clock.today()):
                return _exclude(ctx, item, "not_eligible")
        if replaying:
            key_ids = ctx.ledger_index[item.customer_id]["key_ids"]
        else:
            key_ids = _customer_key_ids(item.customer_id, customer.key_id)
        _audit(ctx.actor, "DESTROY_INTENT", object_type="customer", object_id=item.customer_no,
               details={"request": ctx.request_no, "customer_id": item.customer_id, "key_ids": key_ids,
                        "rule": item.rule_code, "replay": replaying})
        _set_step(item.id, "intent", key_ids=json.dumps(key_ids),
                  key_id=key_ids[0] if key_ids else item.key_id)
    return "intent"


def _ledger_fields(ctx: RunContext, item: DestructionItem) -> dict:
    return {"at": clock.now().astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
            "request_id": ctx.request_id, "request_no": ctx.request_no, "customer_id": item.customer_id,
            "customer_no": item.customer_no, "key_ids": json.loads(item.key_ids), "category": item.category,
            "rule": item.rule_code, "rule_years": item.rule_years,
            "start_date": str(item.start_date or ""), "retention_until": str(item.retention_until or ""),
            "requested_by": ctx.requested_by, "approved_by": ctx.approved_by, "executed_by": ctx.executor}


def _step_destroy_key(ctx: RunContext, item: DestructionItem) -> str:
    """intent → key_destroyed: the ledger line is fsynced first, then the data keys leave the key store."""
    entry = ctx.ledger_index.get(item.customer_id)
    if entry is None:
        entry = ledger.append(_ledger_fields(ctx, item))
        ctx.ledger_index[item.customer_id] = entry
    destroyed = sum(keystore.destroy_data_key(key_id) for key_id in entry["key_ids"])
    with write():
        counts = {**json.loads(_reload(item.id).counts or "{}")}
        counts["data_key"] = max(counts.get("data_key", 0), destroyed, len(entry["key_ids"]))
        _set_step(item.id, "key_destroyed", ledger_seq=entry["seq"], counts=json.dumps(counts, sort_keys=True))
    return "key_destroyed"


def _purge_rows(customer_id: str) -> dict[str, int]:
    """Delete the customer's rows from every registered table, then the customer (caller's transaction).

    Tables that reference each other are retried in later passes until all are empty.
    """
    from models.customers import Customer

    counts: dict[str, int] = {}
    pending = active_customer_data()
    while pending:
        failed = []
        for spec, model in pending:
            try:
                with write():
                    if spec.delete_with:
                        deleted = int(_function(spec.delete_with)(customer_id) or 0)
                    else:
                        deleted = model.delete().where(getattr(model, spec.column) == customer_id).execute()
            except pw.IntegrityError:
                failed.append((spec, model))
                continue
            counts[model._meta.table_name] = counts.get(model._meta.table_name, 0) + deleted
        if len(failed) == len(pending):
            names = ", ".join(spec.model for spec, _model in failed)
            raise Conflict(f"could not delete the customer's rows in {names} (a reference blocks them)")
        pending = failed
    counts["customer"] = Customer.delete().where(Customer.id == customer_id).execute()
    return counts


def _step_delete_rows(ctx: RunContext, item: DestructionItem) -> str:
    """key_destroyed → rows_deleted: files first (their rows name them), then every row and blind index."""
    files_removed = 0
    for spec, _model in active_customer_data():
        if spec.before_delete:
            files_removed += int(_function(spec.before_delete)(item.customer_id) or 0)
    with write():
        counts = {**json.loads(_reload(item.id).counts or "{}")}
        for table, deleted in _purge_rows(item.customer_id).items():
            counts[table] = counts.get(table, 0) + deleted
        if files_removed:
            counts["files"] = counts.get("files", 0) + files_removed
        _set_step(item.id, "rows_deleted", counts=json.dumps(counts, sort_keys=True))
    return "rows_deleted"


def _register_row(ctx: RunContext, item: DestructionItem, *, replayed: bool) -> None:
    if DestructionRegister.select().where(DestructionRegister.customer_id == item.customer_id).exists():
        return
    DestructionRegister.create(
        request_id=ctx.request_id, request_no=ctx.request_no, customer_id=item.customer_id,
        customer_no=item.customer_no, key_ids=item.key_ids, category=item.category, rule_code=item.rule_code,
        rule_years=item.rule_years, start_date=item.start_date, retention_until=item.retention_until,
        requested_by=ctx.requested_by, approved_by=ctx.approved_by, executed_by=ctx.executor,
        destroyed_at=_utc_now(), method=METHOD, counts=item.counts, ledger_seq=item.ledger_seq,
        replayed=replayed)


def _step_register(ctx: RunContext, item: DestructionItem) -> str:
    """rows_deleted → registered: the destruction register entry (no personal data)."""
    with write():
        item = _reload(item.id)
        _register_row(ctx, item, replayed=ctx.actor is None)
        _set_step(item.id, "registered")
    return "registered"


def _step_done(ctx: RunContext, item: DestructionItem) -> str:
    """registered → done: audit that the customer is destroyed."""
    with write():
        item = _reload(item.id)
        _audit(ctx.actor, "DESTROY_DONE", object_type="customer", object_id=item.customer_no,
               details={"request": ctx.request_no, "customer_id": item.customer_id,
                        "ledger_seq": item.ledger_seq, "counts": json.loads(item.counts or "{}")})
        _set_step(item.id, "done")
    return "done"


# Step name → the function (looked up by name at run time, so a test can interrupt any step).
STEP_FUNCTIONS = {"pending": "_step_intent", "intent": "_step_destroy_key", "key_destroyed": "_step_delete_rows",
                  "rows_deleted": "_step_register", "registered": "_step_done"}


def _finish_item(ctx: RunContext, item: DestructionItem) -> str:
    step = item.step
    while step not in FINAL_STEPS:
        step = globals()[STEP_FUNCTIONS[step]](ctx, _reload(item.id))
    return step


@dataclass(frozen=True)
class ExecutionResult:
    request_no: str
    destroyed: int
    excluded: int
    wal_truncated: bool
    excluded_reasons: dict[str, int] = field(default_factory=dict)


def checkpoint_both(attempts: int = 40) -> bool:
    """WAL checkpoint (TRUNCATE) of the main database and the key store; False if a reader kept one busy."""
    complete = True
    for handle in (db, keys_db):
        if not isinstance(handle.obj, pw.SqliteDatabase):
            continue
        for attempt in range(attempts):
            busy = handle.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                break
            time.sleep(0.05)
        else:
            complete = False
    return complete


def _context_for(actor: Actor | None, row: DestructionRequest, executor: str) -> RunContext:
    return RunContext(actor, executor, row.id, row.request_no, row.requested_by, row.decided_by,
                      {e["customer_id"]: e for e in ledger.read_entries()})


def _refresh_request_status(request_id: str) -> None:
    row = DestructionRequest.get_or_none(DestructionRequest.id == request_id)
    if row is None or row.status not in ("approved", "executing"):
        return
    open_items = DestructionItem.select().where((DestructionItem.request_id == request_id)
                                                & DestructionItem.step.not_in(FINAL_STEPS)).exists()
    if not open_items:
        DestructionRequest.update(status="done", completed_at=_utc_now()).where(
            DestructionRequest.id == request_id).execute()


def _run_request(actor: Actor, row: DestructionRequest,
                 progress: Callable[[int, int], None] | None) -> ExecutionResult:
    with write():
        row = DestructionRequest.get_by_id(row.id)
        if row.status not in ("approved", "executing"):
            raise Conflict("only an approved request can be executed")
        resumed = row.status == "executing"
        DestructionRequest.update(status="executing", executed_by_id=row.executed_by_id or actor.staff_id,
                                  executed_by=row.executed_by or actor.username,
                                  started_at=row.started_at or _utc_now()).where(
            DestructionRequest.id == row.id).execute()
        _audit(actor, "DESTRUCTION_RUN", object_type="destruction_request", object_id=row.request_no,
               details={"resumed": resumed})
    row = DestructionRequest.get_by_id(row.id)
    ctx = _context_for(actor, row, row.executed_by)
    items = list(DestructionItem.select().where((DestructionItem.request_id == row.id)
                                                & DestructionItem.step.not_in(FINAL_STEPS))
                 .order_by(DestructionItem.customer_no))
    total = len(items)
    for done, item in enumerate(items, start=1):
        _finish_item(ctx, item)
        if progress:
            progress(done, total)
    if progress and not total:
        progress(0, 0)
    with write():
        _refresh_request_status(row.id)
        reasons = dict(DestructionItem.select(DestructionItem.excluded_reason, pw.fn.COUNT(DestructionItem.id))
                       .where((DestructionItem.request_id == row.id) & (DestructionItem.step == "excluded"))
                       .group_by(DestructionItem.excluded_reason).tuples())
        destroyed = DestructionItem.select().where((DestructionItem.request_id == row.id)
                                                   & (DestructionItem.step == "done")).count()
        _audit(actor, "DESTRUCTION_RUN_DONE", object_type="destruction_request", object_id=row.request_no,
               details={"destroyed": destroyed, "excluded": sum(reasons.values())})
    _reconcile_locked()
    truncated = checkpoint_both()
    return ExecutionResult(row.request_no, destroyed, sum(reasons.values()), truncated, reasons)


@service(Perm.DESTRUCTION_REQUEST)
def execute_request(actor: Actor, request_ref: str,
                    progress: Callable[[int, int], None] | None = None) -> ExecutionResult:
    """Execute an approved request (or resume an interrupted run); irreversible by design."""
    row = _get_request(request_ref)
    if row.status not in ("approved", "executing"):
        raise Conflict("only an approved request can be executed")
    with ledger.run_lock():
        return _run_request(actor, row, progress)


@service(Perm.DESTRUCTION_REQUEST)
def execute_approved(actor: Actor, progress: Callable[[int, int], None] | None = None) -> list[ExecutionResult]:
    """Execute every approved request and resume every interrupted one (the sweep's last step)."""
    rows = list(DestructionRequest.select().where(DestructionRequest.status.in_(("executing", "approved")))
                .order_by(DestructionRequest.status.desc(), DestructionRequest.request_no))
    results = []
    with ledger.run_lock():
        for row in rows:
            results.append(_run_request(actor, row, progress))
    return results


# --- replaying the ledger -------------------------------------------------------------------


@dataclass(frozen=True)
class ReconcileResult:
    ledger_entries: int
    keys_destroyed: int
    customers_purged: int
    items_finished: int


def _ledger_context(entry: dict) -> RunContext:
    return RunContext(None, entry.get("executed_by", ""), entry.get("request_id", ""),
                      entry.get("request_no", ""), entry.get("requested_by", ""), entry.get("approved_by", ""))


def _ledger_time(entry: dict) -> dt.datetime:
    """When the ledger says the destruction began (UTC, naive), else now."""
    try:
        return dt.datetime.fromisoformat(entry["at"]).astimezone(dt.timezone.utc).replace(tzinfo=None)
    except (KeyError, TypeError, ValueError):
        return _utc_now()


def _replay_without_item(entry: dict) -> bool:
    """Destroy a customer the ledger names but this database has no open request for; True if rows went."""
    from models.customers import Customer

    ctx = _ledger_context(entry)
    with write():
        existed = Customer.select().where(Customer.id == entry["customer_id"]).exists()
        counts = _purge_rows(entry["customer_id"]) if existed else {}
        counts["data_key"] = len(entry.get("key_ids", []))
        if not DestructionRegister.select().where(DestructionRegister.customer_id == entry["customer_id"]).exists():
            start = entry.get("start_date") or None
            until = entry.get("retention_until") or None
            DestructionRegister.create(
                request_id=ctx.request_id, request_no=ctx.request_no, customer_id=entry["customer_id"],
                customer_no=entry.get("customer_no", ""), key_ids=json.dumps(entry.get("key_ids", [])),
                category=entry.get("category", ""), rule_code=entry.get("rule", ""),
                rule_years=int(entry.get("rule_years") or 0),
                start_date=dt.date.fromisoformat(start) if start else None,
                retention_until=dt.date.fromisoformat(until) if until else None,
                requested_by=ctx.requested_by, approved_by=ctx.approved_by, executed_by=ctx.executor,
                destroyed_at=_ledger_time(entry), method=METHOD, counts=json.dumps(counts, sort_keys=True),
                ledger_seq=entry["seq"], replayed=True)
        if existed:
            _audit(None, "DESTROY_REPLAY", object_type="customer", object_id=entry.get("customer_no", ""),
                   details={"customer_id": entry["customer_id"], "ledger_seq": entry["seq"]})
    return existed


def _reconcile_locked() -> ReconcileResult:
    """Replay every ledger entry the key store or the database has not applied (caller holds the run lock)."""
    from models.errors import IntegrityFailure

    tail_seq, tail_mac = ledger.tail()
    ks_seq, ks_mac = ledger.keystore_mark()
    db_seq, db_mac = ledger.database_mark()
    if tail_seq == ks_seq == db_seq and tail_mac == ks_mac == db_mac:
        return ReconcileResult(tail_seq, 0, 0, 0)
    entries = ledger.read_entries()
    by_seq = {entry["seq"]: entry for entry in entries}
    for where, seq, mac in (("key store", ks_seq, ks_mac), ("database", db_seq, db_mac)):
        if seq and (seq not in by_seq or by_seq[seq]["mac"] != mac):
            raise IntegrityFailure(
                f"the {where} has applied destructions that the destruction ledger ({ledger.LEDGER_FILE}) "
                "does not hold: the ledger was replaced by an older copy or lost. Put the newest copy back "
                "(backups keep one beside each database backup) and start again")
    keys_destroyed = 0
    for entry in entries:
        if entry["seq"] > ks_seq:
            keys_destroyed += sum(keystore.destroy_data_key(key_id) for key_id in entry.get("key_ids", []))
    ledger.set_keystore_mark(tail_seq, tail_mac)
    purged = finished = 0
    touched_requests = set()
    for entry in entries:
        if entry["seq"] <= db_seq:
            continue
        open_item = (DestructionItem.select().where((DestructionItem.customer_id == entry["customer_id"])
                                                    & DestructionItem.step.not_in(FINAL_STEPS)).first())
        if open_item is not None:
            ctx = _ledger_context(entry)
            request = DestructionRequest.get_or_none(DestructionRequest.id == open_item.request_id)
            if request is not None:
                ctx = RunContext(None, entry.get("executed_by", ""), request.id, request.request_no,
                                 request.requested_by, request.decided_by or entry.get("approved_by", ""))
            ctx.ledger_index[entry["customer_id"]] = entry
            _finish_item(ctx, open_item)
            touched_requests.add(open_item.request_id)
            finished += 1
        elif _replay_without_item(entry):
            purged += 1
    with write():
        for request_id in touched_requests:
            DestructionRequest.update(status="executing").where(
                (DestructionRequest.id == request_id) & (DestructionRequest.status == "approved")).execute()
            _refresh_request_status(request_id)
    ledger.set_database_mark(tail_seq, tail_mac)
    if keys_destroyed or purged or finished:
        with write():
            _audit(None, "DESTRUCTION_REPLAY", details={"ledger_entries": len(entries), "keys": keys_destroyed,
                                                        "purged": purged, "finished": finished})
        checkpoint_both()
    return ReconcileResult(len(entries), keys_destroyed, purged, finished)


def reconcile(*, wait: bool = True) -> ReconcileResult:
    """Replay the destruction ledger into the key store and the database (after a restore, or a crash)."""
    with ledger.run_lock(wait=wait):
        return _reconcile_locked()


def reconcile_on_open() -> ReconcileResult | None:
    """Start-up check, before anyone is served: replay what a restored copy lacks (fail closed).

    Skipped while a destruction run holds the lock: that run reconciles when it ends.
    """
    try:
        with ledger.run_lock():
            return _reconcile_locked()
    except Conflict:
        return None


# --- the register and certificates ------------------------------------------------------------


@dataclass(frozen=True)
class RegisterEntry:
    customer_no: str
    category: str
    rule_code: str
    rule_years: int
    basis: str  # English msgid
    start_date: dt.date | None
    retention_until: dt.date | None
    request_no: str
    requested_by: str
    approved_by: str
    executed_by: str
    destroyed_at: dt.datetime
    method: str
    counts: dict
    ledger_seq: int | None
    replayed: bool


def _register_entry(row: DestructionRegister, rules: dict[str, RetentionRule]) -> RegisterEntry:
    basis = rules[row.rule_code].basis if row.rule_code in rules else ""
    return RegisterEntry(row.customer_no, row.category, row.rule_code, row.rule_years, basis, row.start_date,
                         row.retention_until, row.request_no, row.requested_by, row.approved_by, row.executed_by,
                         row.destroyed_at, row.method, json.loads(row.counts or "{}"), row.ledger_seq,
                         row.replayed)


@service(Perm.DESTRUCTION_VIEW)
def destruction_register(actor: Actor, request_ref: str = "", customer_no: str = "",
                         limit: int = 1000) -> list[RegisterEntry]:
    """The destruction register, newest first (no personal data); audited as a view."""
    query = DestructionRegister.select().order_by(DestructionRegister.destroyed_at.desc(),
                                                  DestructionRegister.customer_no)
    if request_ref.strip():
        query = query.where(DestructionRegister.request_id == _get_request(request_ref).id)
    if customer_no.strip():
        query = query.where(DestructionRegister.customer_no == normalise.normalise_customer_number(customer_no))
    _audit(actor, "VIEW", object_type="destruction_register", object_id=request_ref.strip()[:64])
    rules = _rules()
    return [_register_entry(row, rules) for row in query.limit(limit)]


def count_register() -> int:
    return DestructionRegister.select().count()


def _fmt_time(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def _counts_text(counts: dict) -> str:
    return ", ".join(f"{name} {value}" for name, value in sorted(counts.items()) if value)


def certificate_text(request_ref: str) -> str:
    """The certificate of destruction for one executed request, as readable text (no personal data)."""
    row = _get_request(request_ref)
    if row.status != "done":
        raise Conflict("a certificate is issued once the request has been executed")
    rules = _rules()
    entries = list(DestructionRegister.select().where(DestructionRegister.request_id == row.id)
                   .order_by(DestructionRegister.customer_no))
    excluded = list(DestructionItem.select().where((DestructionItem.request_id == row.id)
                                                   & (DestructionItem.step == "excluded"))
                    .order_by(DestructionItem.customer_no))
    completed = row.completed_at or _utc_now()
    expiry = completed + dt.timedelta(days=KEYSTORE_BACKUP_DAYS)
    office_name = office.current().settings.office_name
    lines = [
        "销毁证明 / CERTIFICATE OF DESTRUCTION",
        office_name,
        "",
        f"Request 申请编号:        {row.request_no}",
        f"Reason 理由:             {row.reason}",
        f"Requested by 申请人:     {row.requested_by}  {_fmt_time(row.requested_at)}",
        f"Approved by 批准人:      {row.decided_by}  {_fmt_time(row.decided_at)}",
        f"Approval note 审批意见:  {row.decision_note}",
        f"Executed by 执行人:      {row.executed_by}  {_fmt_time(row.started_at)} – {_fmt_time(row.completed_at)}",
        f"Method 销毁方式:         {METHOD}",
        f"Customers 客户数:        {len(entries)} destroyed, {len(excluded)} not destroyed",
        "",
        f"{'Customer no.':<14}{'Category':<12}{'Basis':<22}{'Kept until':<12}{'Destroyed':<22}Destroyed records",
    ]
    for entry in entries:
        basis = f"{entry.rule_code} {entry.rule_years}y"
        lines.append(f"{entry.customer_no:<14}{entry.category:<12}{basis:<22}{str(entry.retention_until or ''):<12}"
                     f"{_fmt_time(entry.destroyed_at):<22}{_counts_text(json.loads(entry.counts or '{}'))}")
    if excluded:
        lines += ["", "Not destroyed 未销毁:"]
        lines += [f"  {item.customer_no}: {EXCLUDE_REASONS.get(item.excluded_reason, item.excluded_reason)}"
                  for item in excluded]
    used_rules = sorted({entry.rule_code for entry in entries})
    if used_rules:
        lines += ["", "Retention basis 保存依据:"]
        lines += [f"  {code}: {rules[code].basis if code in rules else ''}" for code in used_rules]
    seqs = [entry.ledger_seq for entry in entries if entry.ledger_seq]
    lines += [
        "",
        "Each customer's data key was deleted from the key store, then their records, blind indexes,",
        "drafts, change requests and documents were deleted; the SQLite write-ahead logs were",
        "checkpointed (TRUNCATE) with secure_delete on. Copies of the database, backups included,",
        "hold only their ciphertext, which no key can open once the key-store backups below expire.",
        f"Key-store backups are kept {KEYSTORE_BACKUP_DAYS} days: the last one able to open these records "
        f"expires by {expiry:%Y-%m-%d}.",
        f"Destruction ledger entries: {min(seqs)}–{max(seqs)}" if seqs else "Destruction ledger entries: none",
        f"Issued {_fmt_time(_utc_now())}",
    ]
    body = "\n".join(lines) + "\n"
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return body + f"SHA-256 of the text above: {digest}\n"


@service(Perm.DESTRUCTION_VIEW)
def certificate(actor: Actor, request_ref: str) -> str:
    """The certificate of destruction of one executed request (text)."""
    text = certificate_text(request_ref)
    _audit(actor, "VIEW", object_type="destruction_certificate", object_id=_get_request(request_ref).request_no)
    return text


@service(Perm.DESTRUCTION_VIEW)
def export_certificate(actor: Actor, request_ref: str, destination: Path | None = None) -> Path:
    """Write the certificate to a text file (default: the export folder); returns its path."""
    row = _get_request(request_ref)
    text = certificate_text(request_ref)
    path = destination or office.current().settings.export_dir / f"destruction-certificate-{row.request_no}.txt"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    _audit(actor, "EXPORT", object_type="destruction_certificate", object_id=row.request_no,
           details={"file": path.name})
    return path


def _home_counts(actor: Actor) -> dict[str, int]:
    """Home-menu counts for the retention work (counts only, nothing decrypted)."""
    from models.retention import count_active_holds

    counts: dict[str, int] = {}
    if actor.has(Perm.RETENTION):
        counts["retention"] = count_eligible()
    if actor.has(Perm.DESTRUCTION_APPROVE):
        counts["destruction"] = count_pending_requests()
    if actor.has(Perm.DESTRUCTION_VIEW):
        counts["register"] = count_register()
    if actor.has(Perm.HOLD_PLACE):
        counts["holds"] = count_active_holds()
    return counts
