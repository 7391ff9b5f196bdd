"""Periodic verification: the queue of customers due a check, and the outcome of each check.

Each active customer has a next-verification date (default 12 months after approval or the last
check; prospects 6; office settings). The queue and the overdue counts read only that indexed
plain date, so they stay fast at a million customers. Outcomes: confirmed (the date moves on),
changed (filed as a change request with source "periodic_check"), unreachable (tried again
sooner; three in a row flag the record for a supervisor).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

import peewee as pw

from models import audit, clock, crypto, customers, history, keystore, normalise, office, validation
from models.customers import Customer
from models.db import BaseModel, write
from models.errors import FieldError, IntegrityFailure, NotFound, ValidationError
from models.permissions import Actor, Perm, service

CHECK_TABLE = "verification_check"
OUTCOMES = ("confirmed", "changed", "unreachable")
UNREACHABLE_FLAG_AFTER = 3
NOTE_MAX = 300
CONTACT_FIELDS = ("mobile", "other_phone", "email")
REVEAL_PURPOSE = "periodic verification"


class VerificationCheck(BaseModel):
    id = pw.CharField(max_length=36, primary_key=True)
    customer_id = pw.CharField(max_length=36)
    checked_at = pw.DateTimeField()
    checked_on = pw.DateField()
    actor_id = pw.IntegerField(null=True)
    actor = pw.CharField(max_length=64)
    outcome = pw.CharField(max_length=12)
    key_id = pw.CharField(max_length=36)
    note = pw.BlobField(null=True)  # encrypted under the customer's key: notes can name personal facts
    change_request_id = pw.CharField(max_length=36, null=True)

    class Meta:
        table_name = CHECK_TABLE
        indexes = ((("customer_id", "checked_at"), False),)


class VerificationState(BaseModel):
    """Per customer: unreachable checks in a row, and whether that has flagged the record."""

    customer_id = pw.CharField(max_length=36, primary_key=True)
    unreachable_streak = pw.IntegerField(default=0)
    flagged_at = pw.DateTimeField(null=True, index=True)

    class Meta:
        table_name = "verification_state"


# --- results handed to the UI --------------------------------------------------------


@dataclass(frozen=True)
class DueItem:
    customer_no: str
    masked_name: str
    category: str
    due: dt.date
    days_overdue: int  # 0: due today
    last_verified: dt.date | None
    unreachable_streak: int
    flagged: bool
    preferred_channel: str
    branch: str


@dataclass(frozen=True)
class DuePage:
    items: tuple[DueItem, ...]
    total_due: int  # due today or earlier
    overdue: int  # due before today
    offset: int


@dataclass(frozen=True)
class CheckEntry:
    checked_at: dt.datetime
    actor: str
    outcome: str
    note: str
    change_request_id: str | None


@dataclass(frozen=True)
class CheckResult:
    customer_no: str
    outcome: str
    next_due: dt.date | None
    unreachable_streak: int
    flagged: bool


@dataclass(frozen=True)
class VerificationCard:
    """What a clerk needs to make one check: the record (contact masked), the date and past checks."""

    customer_no: str
    version: int
    category: str
    values: dict[str, object]  # masked personal values and plain values
    due: dt.date | None
    last_verified: dt.date | None
    unreachable_streak: int
    flagged: bool
    checks: tuple[CheckEntry, ...]


# --- date arithmetic ---------------------------------------------------------------------


def next_due(category: str, from_day: dt.date) -> dt.date | None:
    """The next verification date after a check on `from_day` (None for categories not verified)."""
    return customers.next_verification(category, from_day)


def retry_due(from_day: dt.date) -> dt.date:
    """When an unreachable customer is tried again."""
    return from_day + dt.timedelta(days=_retry_days())


def _retry_days() -> int:
    try:
        return office.current().settings.verify_retry_days
    except Exception:  # no office open: the default
        return 14


def _naive_now() -> dt.datetime:
    return clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None)


# --- the queue -------------------------------------------------------------------------


def _due_counts(today: dt.date) -> tuple[int, int]:
    """(due today or earlier, overdue) in one pass over the date index."""
    overdue = pw.fn.SUM(pw.Case(None, [(Customer.next_verification_due < today, 1)], 0))
    due, late = (Customer.select(pw.fn.COUNT(pw.SQL("*")), overdue)
                 .where(Customer.next_verification_due <= today).tuples().get())
    return int(due or 0), int(late or 0)


def _due_count(today: dt.date) -> int:
    return _due_counts(today)[0]


def _overdue_count(today: dt.date) -> int:
    return Customer.select().where(Customer.next_verification_due < today).count()


def _flagged_count() -> int:
    return VerificationState.select().where(VerificationState.flagged_at.is_null(False)).count()


def _states(customer_ids: list[str]) -> dict[str, VerificationState]:
    if not customer_ids:
        return {}
    return {s.customer_id: s for s in VerificationState.select().where(VerificationState.customer_id.in_(customer_ids))}


def _masked_names(rows: list[dict]) -> dict[str, str]:
    keys = keystore.load_data_keys(list({r["key_id"] for r in rows}))
    names = {}
    for r in rows:
        try:
            value = customers.decrypt_fields(r["id"], r["key_id"], keys[r["key_id"]], r, ("full_name",))["full_name"]
            names[r["id"]] = customers.mask_name(str(value))
        except (KeyError, IntegrityFailure):
            names[r["id"]] = "?"
    return names


def _items(rows: list[dict], today: dt.date) -> tuple[DueItem, ...]:
    states = _states([r["id"] for r in rows])
    names = _masked_names(rows)
    out = []
    for r in rows:
        state = states.get(r["id"])
        due = r["next_verification_due"]
        out.append(DueItem(
            customer_no=r["customer_no"], masked_name=names[r["id"]], category=r["category"], due=due,
            days_overdue=(today - due).days if due else 0, last_verified=r["last_verified"],
            unreachable_streak=state.unreachable_streak if state else 0,
            flagged=bool(state and state.flagged_at), preferred_channel=r["preferred_channel"], branch=r["branch"],
        ))
    return tuple(out)


_ITEM_COLUMNS = (Customer.id, Customer.customer_no, Customer.key_id, Customer.full_name, Customer.category,
                 Customer.next_verification_due, Customer.last_verified, Customer.preferred_channel, Customer.branch)


@service(Perm.CUSTOMER_VIEW)
def due_queue(actor: Actor, limit: int = 50, offset: int = 0) -> DuePage:
    """Customers due a check, most overdue first (masked names; the listing is audited)."""
    today = clock.today()
    limit = max(1, min(int(limit), 500))
    offset = max(0, int(offset))
    rows = list(Customer.select(*_ITEM_COLUMNS)
                .where(Customer.next_verification_due <= today)
                .order_by(Customer.next_verification_due, Customer.customer_no)
                .limit(limit).offset(offset).dicts())
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="VERIFY_QUEUE_VIEW", object_type=CHECK_TABLE, details={"count": len(rows), "offset": offset})
    return DuePage(_items(rows, today), *_due_counts(today), offset)


@service(Perm.CUSTOMER_VIEW)
def flagged_queue(actor: Actor, limit: int = 200) -> tuple[DueItem, ...]:
    """Records flagged after three unreachable checks in a row, oldest flag first."""
    today = clock.today()
    states = list(VerificationState.select().where(VerificationState.flagged_at.is_null(False))
                  .order_by(VerificationState.flagged_at).limit(limit))
    order = {s.customer_id: i for i, s in enumerate(states)}
    rows = list(Customer.select(*_ITEM_COLUMNS).where(Customer.id.in_(list(order))).dicts()) if order else []
    rows.sort(key=lambda r: order[r["id"]])
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="VERIFY_FLAGS_VIEW", object_type=CHECK_TABLE, details={"count": len(rows)})
    return _items(rows, today)


# --- one check ---------------------------------------------------------------------------


def _customer(customer_no: str) -> dict:
    row = Customer.select().where(Customer.customer_no == normalise.normalise_customer_number(customer_no)).dicts().first()
    if row is None:
        raise NotFound("no customer with that customer number")
    return row


def _note_aad(check_id: str, key_id: str) -> bytes:
    return crypto.field_aad(CHECK_TABLE, check_id, "note", key_id)


@service(Perm.CUSTOMER_VIEW)
def verification_card(actor: Actor, customer_no: str) -> VerificationCard:
    """A customer's record (masked) with their verification dates and past checks; audited as a view."""
    row = _customer(customer_no)
    record = customers.get_customer(actor, row["customer_no"])  # audits the view before decrypting
    key = keystore.load_data_key(row["key_id"])
    checks = []
    for c in (VerificationCheck.select().where(VerificationCheck.customer_id == row["id"])
              .order_by(VerificationCheck.checked_at.desc()).limit(10)):
        note = json.loads(crypto.decrypt(key, bytes(c.note), _note_aad(c.id, c.key_id))) if c.note else ""
        checks.append(CheckEntry(c.checked_at, c.actor, c.outcome, str(note), c.change_request_id))
    state = VerificationState.get_or_none(VerificationState.customer_id == row["id"])
    return VerificationCard(row["customer_no"], row["version"], row["category"], record.values,
                            row["next_verification_due"], row["last_verified"],
                            state.unreachable_streak if state else 0, bool(state and state.flagged_at),
                            tuple(checks))


def _record_check(actor: Actor, row: dict, outcome: str, *, note: str = "",
                  change_request_id: str | None = None) -> CheckResult:
    """Record one check inside the caller's write transaction and move the customer's dates."""
    today = clock.today()
    now = _naive_now()
    check_id = str(uuid.uuid4())
    sealed = None
    if note:
        key = keystore.load_data_key(row["key_id"])
        sealed = crypto.encrypt(key, json.dumps(note, ensure_ascii=False).encode(), _note_aad(check_id, row["key_id"]))
    VerificationCheck.insert(id=check_id, customer_id=row["id"], checked_at=now, checked_on=today,
                             actor_id=actor.staff_id, actor=actor.username, outcome=outcome, key_id=row["key_id"],
                             note=sealed, change_request_id=change_request_id).execute()
    state = VerificationState.get_or_none(VerificationState.customer_id == row["id"])
    streak, was_flagged = (state.unreachable_streak, state.flagged_at) if state else (0, None)
    flagged_at = was_flagged
    if outcome == "unreachable":
        streak += 1
        due = retry_due(today)
        if streak >= UNREACHABLE_FLAG_AFTER and was_flagged is None:
            flagged_at = now
        Customer.update(next_verification_due=due).where(Customer.id == row["id"]).execute()
    else:
        streak, flagged_at = 0, None
        due = next_due(row["category"], today)
        Customer.update(next_verification_due=due, last_verified=today).where(Customer.id == row["id"]).execute()
        _record_contact(row["id"], today)
    (VerificationState.insert(customer_id=row["id"], unreachable_streak=streak, flagged_at=flagged_at)
     .on_conflict(conflict_target=[VerificationState.customer_id],
                  update={VerificationState.unreachable_streak: streak, VerificationState.flagged_at: flagged_at})
     .execute())
    details = {"outcome": outcome, "check": check_id, "next_due": due.isoformat() if due else None,
               "unreachable_streak": streak}
    if change_request_id:
        details["request"] = change_request_id
    history._record_event(actor, row["id"], "verified", (), details)
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id, action="VERIFY",
                 object_type="customer", object_id=row["customer_no"], details=details)
    if flagged_at is not None and was_flagged is None:
        history._record_event(actor, row["id"], "flagged", (), {"reason": "unreachable", "streak": streak})
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="VERIFY_FLAG", object_type="customer", object_id=row["customer_no"],
                     details={"unreachable_streak": streak})
    return CheckResult(row["customer_no"], outcome, due, streak, flagged_at is not None)


def _clean_note(note: str, *, required: bool) -> str:
    text = (note or "").replace("\r\n", "\n").strip()
    if required and len(text) < 4:
        raise ValidationError([FieldError("note", "Note is required: say what was tried (at least 4 characters)",
                                          "required")])
    if len(text) > NOTE_MAX:
        raise ValidationError([FieldError("note", f"Note is too long (at most {NOTE_MAX} characters)", "too_long")])
    if validation.forbidden_characters(text, allow_newline=True):
        raise ValidationError([FieldError("note", "Note contains control or invisible characters", "control_chars")])
    return text


@service(Perm.CHANGE_REQUEST)
def record_check(actor: Actor, customer_no: str, outcome: str, note: str = "") -> CheckResult:
    """Record a periodic check: confirmed (the date moves on) or unreachable (tried again sooner)."""
    if outcome == "changed":
        raise ValidationError([FieldError("outcome", "A change is recorded by filing the change request "
                                          "(source: periodic check)", "use_change_request")])
    if outcome not in OUTCOMES:
        raise ValidationError([FieldError("outcome", "Outcome must be confirmed or unreachable", "bad_choice")])
    text = _clean_note(note, required=outcome == "unreachable")
    with write():
        row = _customer(customer_no)
        if row["next_verification_due"] is None or row["category"] == "terminated":
            raise ValidationError([FieldError("outcome", f"A {row['category']} customer is not verified "
                                              "periodically", "not_verified")])
        return _record_check(actor, row, outcome, note=text)


@service(Perm.CHANGE_APPROVE)
def clear_flag(actor: Actor, customer_no: str, note: str) -> CheckResult:
    """A supervisor closes an unreachable flag after dealing with it (the streak starts again)."""
    text = _clean_note(note, required=True)
    with write():
        row = _customer(customer_no)
        state = VerificationState.get_or_none(VerificationState.customer_id == row["id"])
        if state is None or state.flagged_at is None:
            raise NotFound("this record is not flagged")
        VerificationState.update(flagged_at=None, unreachable_streak=0).where(
            VerificationState.customer_id == row["id"]).execute()
        check_id = str(uuid.uuid4())
        key = keystore.load_data_key(row["key_id"])
        VerificationCheck.insert(id=check_id, customer_id=row["id"], checked_at=_naive_now(),
                                 checked_on=clock.today(), actor_id=actor.staff_id, actor=actor.username,
                                 outcome="flag_cleared", key_id=row["key_id"],
                                 note=crypto.encrypt(key, json.dumps(text, ensure_ascii=False).encode(),
                                                     _note_aad(check_id, row["key_id"]))).execute()
        history._record_event(actor, row["id"], "flag_cleared", (), {"check": check_id})
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="VERIFY_FLAG_CLEAR", object_type="customer", object_id=row["customer_no"],
                     details={"check": check_id})
    return CheckResult(row["customer_no"], "flag_cleared", row["next_verification_due"], 0, False)


def _record_contact(customer_id: str, day: dt.date) -> None:
    """The customer was reached: move last contact on (and, with the retention rules, their retention date)."""
    from models import change_requests

    retention = change_requests._retention()
    if retention is not None:
        retention._record_contact(customer_id, day)
        return
    Customer.update(last_contact=day).where((Customer.id == customer_id) & (
        Customer.last_contact.is_null() | (Customer.last_contact < day))).execute()


def _reset_state(customer_id: str) -> None:
    """Forget the unreachable streak and flag (a terminated customer is no longer verified)."""
    VerificationState.delete().where(VerificationState.customer_id == customer_id).execute()


@service(Perm.CHANGE_REQUEST)
def add_demo_checks(actor: Actor, seed: int = 2026) -> int:
    """Demo offices: spread never-checked customers' last checks over the past 14 months (so some are
    overdue) and record a few unreachable checks, one customer three times (flagged)."""
    import random

    rng = random.Random(seed)
    today = clock.today()
    rows = list(Customer.select(Customer.id, Customer.category, Customer.created_at)
                .where(Customer.last_verified.is_null() & Customer.next_verification_due.is_null(False)
                       & (Customer.category != "terminated")).order_by(Customer.customer_no).tuples())
    with write():
        for customer_id, category, _created in rows:
            verified = today - dt.timedelta(days=rng.randrange(0, 420))
            Customer.update(last_verified=verified, next_verification_due=next_due(category, verified)).where(
                Customer.id == customer_id).execute()
    overdue = [r.customer_no for r in Customer.select(Customer.customer_no)
               .where(Customer.next_verification_due.is_null(False) & (Customer.category != "terminated"))
               .order_by(Customer.next_verification_due, Customer.customer_no).limit(3)]
    for tries, customer_no in zip((3, 2, 1), overdue):
        for _ in range(tries):
            record_check(actor, customer_no, "unreachable", "电话无人接听")
    return len(rows)


def _home_counts(actor: Actor) -> dict[str, int]:
    today = clock.today()
    counts: dict[str, int] = {}
    if actor.has(Perm.CHANGE_REQUEST):
        counts["verification"] = _due_count(today)
    if actor.has(Perm.CHANGE_APPROVE):
        counts["verification_overdue"] = _overdue_count(today)
        counts["unreachable"] = _flagged_count()
    return counts


def all_tables() -> list[type[BaseModel]]:
    return [VerificationCheck, VerificationState]
