"""Retention rules as data (each with its legal basis), each customer's retention date, and legal holds.

A terminated customer is kept 5 or 10 years after termination (PRC Insurance Law art. 87), a
prospect 2 years after the last contact (PIPL art. 19/47); admins may lengthen the periods but
never go below the statutory minimum. A legal hold makes a customer ineligible for destruction.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Mapping

import peewee as pw

from models import audit, clock, crypto, history, keystore, normalise, validation
from models.db import BaseModel, write
from models.errors import FieldError, NotFound, ValidationError
from models.permissions import Actor, Perm, service

# --- the rules ----------------------------------------------------------------------------

TERMINATED_SHORT = "terminated_short"
TERMINATED_LONG = "terminated_long"
PROSPECT = "prospect"
RETAINED_CATEGORIES = ("terminated", "prospect")


@dataclass(frozen=True)
class RuleDefault:
    code: str
    category: str
    years: int
    minimum_years: int
    maximum_years: int
    starts_from: str  # "terminated_on" or "last_contact"
    label: str  # English msgid
    basis: str  # English msgid: the legal basis shown to users


DEFAULT_RULES: tuple[RuleDefault, ...] = (
    RuleDefault(TERMINATED_SHORT, "terminated", 5, 5, 30, "terminated_on",
                "Terminated, policies of one year or less",
                "PRC Insurance Law art. 87: at least 5 years after the contract ends"),
    RuleDefault(TERMINATED_LONG, "terminated", 10, 10, 30, "terminated_on",
                "Terminated, a policy longer than one year",
                "PRC Insurance Law art. 87: at least 10 years after the contract ends"),
    RuleDefault(PROSPECT, "prospect", 2, 1, 5, "last_contact",
                "Prospect (never insured)",
                "PIPL art. 19 and 47: no longer than needed; delete when the purpose ends"),
)
DEFAULTS_BY_CODE = {rule.code: rule for rule in DEFAULT_RULES}
DEFAULT_YEARS: dict[str, int] = {rule.code: rule.years for rule in DEFAULT_RULES}

# Why a customer is eligible, per rule (English msgids; the UI translates and fills them in).
WHY_TEMPLATES = {
    TERMINATED_SHORT: "terminated {start}, policies ≤ 1 year: {years} years ended {until}",
    TERMINATED_LONG: "terminated {start}, a policy > 1 year: {years} years ended {until}",
    PROSPECT: "prospect, last contact {start}: {years} years ended {until}",
}


class RetentionRule(BaseModel):
    code = pw.CharField(max_length=32, primary_key=True)
    category = pw.CharField(max_length=16)
    years = pw.IntegerField()
    minimum_years = pw.IntegerField()
    maximum_years = pw.IntegerField()
    starts_from = pw.CharField(max_length=16)
    label = pw.CharField(max_length=100)
    basis = pw.CharField(max_length=200)
    updated_at = pw.DateTimeField(null=True)
    updated_by = pw.CharField(max_length=64, default="")

    class Meta:
        table_name = "retention_rule"


def _seed_rules() -> None:
    """Insert the default rules (inside the migration's transaction)."""
    for rule in DEFAULT_RULES:
        RetentionRule.insert(code=rule.code, category=rule.category, years=rule.years,
                             minimum_years=rule.minimum_years, maximum_years=rule.maximum_years,
                             starts_from=rule.starts_from, label=rule.label, basis=rule.basis).execute()


def add_years(day: dt.date, years: int) -> dt.date:
    """The same day `years` later; a 29 February with no counterpart becomes 28 February.

    Civil Code art. 200–203: a period in years ends on the corresponding day of the last year, or
    on the last day of that month when it has no such day.
    """
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def policy_is_long(starts: dt.date, ends: dt.date) -> bool:
    """Whether a policy ran longer than one year (a policy of exactly one year is not long)."""
    return ends > add_years(starts, 1)


def rule_code_for(category: str, long_policy: bool | None) -> str | None:
    """The rule that governs a customer; an unknown policy term takes the longer period."""
    if category == "terminated":
        return TERMINATED_SHORT if long_policy is False else TERMINATED_LONG
    if category == "prospect":
        return PROSPECT
    return None


def compute_retention_until(category: str, terminated_on: dt.date | None, long_policy: bool | None,
                            last_contact: dt.date | None,
                            years: Mapping[str, int] | None = None) -> dt.date | None:
    """The last day a customer's record must be kept (None: not yet counting, e.g. an active customer).

    The customer becomes eligible for destruction the day after. Pure: the periods come from
    `years` (rule code → years; the statutory defaults when omitted).
    """
    periods = DEFAULT_YEARS if years is None else years
    code = rule_code_for(category, long_policy)
    if code is None:
        return None
    start = terminated_on if code in (TERMINATED_SHORT, TERMINATED_LONG) else last_contact
    if start is None:
        return None
    return add_years(start, periods[code])


def is_past_retention(retention_until: dt.date | None, today: dt.date) -> bool:
    return retention_until is not None and today > retention_until


def current_years() -> dict[str, int]:
    """Rule code → years, as stored (defaults for any rule not yet stored)."""
    stored = {r.code: r.years for r in RetentionRule.select(RetentionRule.code, RetentionRule.years)}
    return {**DEFAULT_YEARS, **stored}


# --- applying the rules to customers -------------------------------------------------------


def _customer_by_no(customer_no: str):
    from models.customers import Customer

    row = Customer.get_or_none(Customer.customer_no == normalise.normalise_customer_number(customer_no))
    if row is None:
        raise NotFound("no customer with that customer number")
    return row


def _apply_retention(customer_id: str, years: Mapping[str, int] | None = None) -> dt.date | None:
    """Recompute one customer's retention date from their category and dates (inside the caller's write)."""
    from models.customers import Customer

    row = Customer.get_or_none(Customer.id == customer_id)
    if row is None:
        raise NotFound("no such customer")
    until = compute_retention_until(row.category, row.terminated_on, row.long_policy, row.last_contact,
                                    years if years is not None else current_years())
    if until != row.retention_until:
        Customer.update(retention_until=until).where(Customer.id == customer_id).execute()
    return until


def _set_termination(actor: Actor, customer_id: str, terminated_on: dt.date, long_policy: bool) -> dt.date | None:
    """Make a customer terminated on a date, with or without a policy over one year (inside the caller's write).

    Sets category, terminated_on and long_policy, bumps the version, recomputes retention_until and
    records a history event; returns the new retention date.
    """
    from models.customers import Customer

    # A terminated customer is in storage only (PIPL art. 47(2)): no more periodic verification.
    Customer.update(category="terminated", terminated_on=terminated_on, long_policy=long_policy,
                    next_verification_due=None,
                    version=Customer.version + 1).where(Customer.id == customer_id).execute()
    until = _apply_retention(customer_id)
    history._record_event(actor, customer_id, "category", ("category", "terminated_on", "long_policy"),
                          {"category": "terminated", "rule": rule_code_for("terminated", long_policy)})
    return until


def _record_contact(customer_id: str, on: dt.date) -> dt.date | None:
    """A contact with the customer on a day: moves last_contact forward and recomputes retention."""
    from models.customers import Customer

    Customer.update(last_contact=on).where((Customer.id == customer_id)
                                           & ((Customer.last_contact.is_null()) | (Customer.last_contact < on))
                                           ).execute()
    return _apply_retention(customer_id)


def _check_termination(terminated_on: object, long_policy: object) -> tuple[dt.date, bool]:
    errors = []
    day: dt.date | None = None
    if isinstance(terminated_on, dt.date):
        day = terminated_on
    else:
        try:
            day = validation.parse_date(str(terminated_on))
        except (ValueError, ValidationError):
            errors.append(FieldError("terminated_on", "must be a date written YYYY-MM-DD", "bad_date"))
    if day is not None and day > clock.today():
        errors.append(FieldError("terminated_on", "cannot be in the future", "future_date"))
    if not isinstance(long_policy, bool):
        errors.append(FieldError("long_policy", "say whether any policy ran longer than one year", "required"))
    if errors:
        raise ValidationError(errors)
    return day, bool(long_policy)  # type: ignore[return-value]


@dataclass(frozen=True)
class RetentionInfo:
    """A customer's retention date and why; shown in the customer file."""

    customer_no: str
    category: str
    terminated_on: dt.date | None
    long_policy: bool | None
    last_contact: dt.date | None
    retention_until: dt.date | None
    rule_code: str | None
    rule_label: str  # English msgid
    basis: str  # English msgid
    legal_hold: bool
    eligible: bool


def _info(row, rules: dict[str, RetentionRule]) -> RetentionInfo:
    code = rule_code_for(row.category, row.long_policy)
    rule = rules.get(code) if code else None
    return RetentionInfo(row.customer_no, row.category, row.terminated_on, row.long_policy, row.last_contact,
                         row.retention_until, code, rule.label if rule else "", rule.basis if rule else "",
                         bool(row.legal_hold),
                         is_past_retention(row.retention_until, clock.today()) and not row.legal_hold)


@service(Perm.RETENTION)
def record_termination(actor: Actor, customer_no: str, terminated_on: object, long_policy: object) -> RetentionInfo:
    """Record that a customer's last contract ended (the records officer's direct route; change requests call
    `_set_termination`)."""
    day, long_ = _check_termination(terminated_on, long_policy)
    with write():
        row = _customer_by_no(customer_no)
        until = _set_termination(actor, row.id, day, long_)
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="CUSTOMER_TERMINATE", object_type="customer", object_id=row.customer_no,
                     fields=("category", "terminated_on", "long_policy", "retention_until"),
                     details={"rule": rule_code_for("terminated", long_), "retention_until": str(until)})
    return retention_info_of(row.customer_no)


def retention_info_of(customer_no: str) -> RetentionInfo:
    """A customer's retention facts (no personal data) for a caller that has checked permission."""
    rules = {r.code: r for r in RetentionRule.select()}
    return _info(_customer_by_no(customer_no), rules)


@service(Perm.CUSTOMER_VIEW)
def retention_info(actor: Actor, customer_no: str) -> RetentionInfo:
    """A customer's retention date, the rule and its legal basis, and hold status (for the customer file)."""
    return retention_info_of(customer_no)


# --- rule administration ----------------------------------------------------------------


@dataclass(frozen=True)
class RuleView:
    code: str
    category: str
    label: str
    basis: str
    years: int
    minimum_years: int
    maximum_years: int
    starts_from: str
    updated_at: dt.datetime | None
    updated_by: str


def _rule_view(row: RetentionRule) -> RuleView:
    return RuleView(row.code, row.category, row.label, row.basis, row.years, row.minimum_years,
                    row.maximum_years, row.starts_from, row.updated_at, row.updated_by)


@service(Perm.HOME)
def list_rules(actor: Actor) -> list[RuleView]:
    """The retention rules with their legal basis, in a fixed order."""
    order = {rule.code: index for index, rule in enumerate(DEFAULT_RULES)}
    return sorted((_rule_view(r) for r in RetentionRule.select()), key=lambda v: order.get(v.code, 99))


@dataclass(frozen=True)
class RuleChange:
    rule: RuleView
    previous_years: int
    customers_recomputed: int


def _recompute_rule(code: str, years: Mapping[str, int], batch: int = 2000) -> int:
    """Recompute retention_until for every customer the rule governs; returns how many changed."""
    from models.customers import Customer

    rule = DEFAULTS_BY_CODE[code]
    query = Customer.select(Customer.id, Customer.category, Customer.terminated_on, Customer.long_policy,
                            Customer.last_contact, Customer.retention_until).where(
        Customer.category == rule.category)
    if code == TERMINATED_SHORT:
        query = query.where(Customer.long_policy == False)  # noqa: E712 (peewee expression)
    elif code == TERMINATED_LONG:
        query = query.where((Customer.long_policy == True) | Customer.long_policy.is_null())  # noqa: E712
    changed: dict[dt.date | None, list[str]] = {}
    for row in query.tuples().iterator():
        customer_id, category, terminated_on, long_policy, last_contact, until = row
        new_until = compute_retention_until(category, terminated_on, long_policy, last_contact, years)
        if new_until != until:
            changed.setdefault(new_until, []).append(customer_id)
    total = 0
    for new_until, ids in changed.items():
        for start in range(0, len(ids), batch):
            chunk = ids[start:start + batch]
            Customer.update(retention_until=new_until).where(Customer.id.in_(chunk)).execute()
            total += len(chunk)
    return total


@service(Perm.RETENTION_RULES)
def set_rule_years(actor: Actor, code: str, years: object) -> RuleChange:
    """Change a rule's period (never below its statutory minimum); every affected retention date is recomputed."""
    with write():
        row = RetentionRule.get_or_none(RetentionRule.code == code)
        if row is None:
            raise NotFound("no such retention rule")
        try:
            value = int(str(years).strip())
        except ValueError:
            raise ValidationError([FieldError("years", "must be a whole number of years", "bad_format")]) from None
        if value < row.minimum_years:
            raise ValidationError([FieldError("years", f"cannot be below the legal minimum of {row.minimum_years} "
                                                       "years", "below_minimum")])
        if value > row.maximum_years:
            raise ValidationError([FieldError("years", f"must be at most {row.maximum_years} years", "too_long")])
        previous = row.years
        if value == previous:
            return RuleChange(_rule_view(row), previous, 0)
        RetentionRule.update(years=value, updated_at=_utc_now(), updated_by=actor.username).where(
            RetentionRule.code == code).execute()
        recomputed = _recompute_rule(code, current_years())
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="RETENTION_RULE_CHANGE", object_type="retention_rule", object_id=code,
                     fields=("years",), details={"from": previous, "to": value, "recomputed": recomputed})
        return RuleChange(_rule_view(RetentionRule.get_by_id(code)), previous, recomputed)


def _utc_now() -> dt.datetime:
    return clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None)


# --- legal holds ------------------------------------------------------------------------

HOLD_REASONS = ("open_claim", "dispute", "regulator_request", "aml_investigation", "other")
HOLD_REASON_LABELS = {
    "open_claim": "Open claim",
    "dispute": "Dispute or litigation",
    "regulator_request": "Regulator request",
    "aml_investigation": "Anti-money-laundering investigation",
    "other": "Other (see note)",
}
HOLD_TABLE = "legal_hold"


class LegalHold(BaseModel):
    id = pw.CharField(max_length=36, primary_key=True)
    customer_id = pw.CharField(max_length=36, index=True)
    key_id = pw.CharField(max_length=36)
    reason = pw.CharField(max_length=24)
    note = pw.BlobField(null=True)  # encrypted under the customer's data key
    placed_by_id = pw.IntegerField(null=True)
    placed_by = pw.CharField(max_length=64)
    placed_at = pw.DateTimeField()
    released_by_id = pw.IntegerField(null=True)
    released_by = pw.CharField(max_length=64, default="")
    released_at = pw.DateTimeField(null=True, index=True)
    release_note = pw.BlobField(null=True)

    class Meta:
        table_name = HOLD_TABLE


@dataclass(frozen=True)
class HoldView:
    hold_id: str
    customer_no: str
    reason: str
    placed_by: str
    placed_at: dt.datetime
    released_by: str
    released_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.released_at is None


def _clean_note(note: str, field_name: str, *, required: bool) -> str:
    text = (note or "").strip()
    if required and len(text) < 4:
        raise ValidationError([FieldError(field_name, "write a short note (at least 4 characters)", "required")])
    if len(text) > 200 or validation.forbidden_characters(text):
        raise ValidationError([FieldError(field_name, "must be at most 200 visible characters", "bad_format")])
    return text


def _seal(text: str, hold_id: str, column: str, key_id: str) -> bytes | None:
    if not text:
        return None
    key = keystore.load_data_key(key_id)
    return crypto.encrypt(key, json.dumps(text, ensure_ascii=False).encode(),
                          crypto.field_aad(HOLD_TABLE, hold_id, column, key_id))


def _hold_views(query) -> list[HoldView]:
    from models.customers import Customer

    rows = query.select(LegalHold, Customer.customer_no).join(
        Customer, pw.JOIN.LEFT_OUTER, on=(LegalHold.customer_id == Customer.id)).dicts()
    return [HoldView(r["id"], r["customer_no"] or "", r["reason"], r["placed_by"], r["placed_at"],
                     r["released_by"], r["released_at"]) for r in rows]


def _being_destroyed(customer_id: str) -> bool:
    from models.destruction import DestructionItem

    return DestructionItem.select().where((DestructionItem.customer_id == customer_id) & DestructionItem.step.in_(
        ("intent", "key_destroyed", "rows_deleted", "registered"))).exists()


def _sync_hold_flag(customer_id: str) -> bool:
    from models.customers import Customer

    held = LegalHold.select().where((LegalHold.customer_id == customer_id)
                                    & LegalHold.released_at.is_null()).exists()
    Customer.update(legal_hold=held).where(Customer.id == customer_id).execute()
    return held


@service(Perm.HOLD_PLACE)
def place_hold(actor: Actor, customer_no: str, reason: str, note: str = "") -> HoldView:
    """Put a customer on legal hold (never destroyed while it lasts); the note is encrypted with the record."""
    errors = []
    if reason not in HOLD_REASONS:
        errors.append(FieldError("reason", "choose one of the listed reasons", "bad_choice"))
    try:
        text = _clean_note(note, "note", required=reason == "other")
    except ValidationError as exc:
        errors.extend(exc.errors)
        text = ""
    if errors:
        raise ValidationError(errors)
    with write():
        row = _customer_by_no(customer_no)
        if _being_destroyed(row.id):
            raise ValidationError([FieldError("customer", "is already being destroyed; a hold can no longer stop it",
                                              "destroying")])
        hold_id = str(uuid.uuid4())
        LegalHold.create(id=hold_id, customer_id=row.id, key_id=row.key_id, reason=reason,
                         note=_seal(text, hold_id, "note", row.key_id), placed_by_id=actor.staff_id,
                         placed_by=actor.username, placed_at=_utc_now())
        _sync_hold_flag(row.id)
        history._record_event(actor, row.id, "hold", ("legal_hold",), {"hold": hold_id, "reason": reason,
                                                                        "placed": True})
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="HOLD_PLACE", object_type="customer", object_id=row.customer_no,
                     fields=("legal_hold",), details={"hold": hold_id, "reason": reason})
    return _hold_views(LegalHold.select().where(LegalHold.id == hold_id))[0]


@service(Perm.HOLD_RELEASE)
def release_hold(actor: Actor, hold_id: str, note: str) -> HoldView:
    """Release a legal hold (a supervisor, with a note); the customer may become eligible again."""
    text = _clean_note(note, "note", required=True)
    with write():
        hold = LegalHold.get_or_none(LegalHold.id == hold_id)
        if hold is None:
            raise NotFound("no such legal hold")
        if hold.released_at is not None:
            raise ValidationError([FieldError("hold", "has already been released", "released")])
        LegalHold.update(released_by_id=actor.staff_id, released_by=actor.username, released_at=_utc_now(),
                         release_note=_seal(text, hold_id, "release_note", hold.key_id)).where(
            LegalHold.id == hold_id).execute()
        _sync_hold_flag(hold.customer_id)
        from models.customers import Customer

        customer_no = Customer.select(Customer.customer_no).where(Customer.id == hold.customer_id).scalar() or ""
        history._record_event(actor, hold.customer_id, "hold", ("legal_hold",),
                              {"hold": hold_id, "reason": hold.reason, "placed": False})
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="HOLD_RELEASE", object_type="customer", object_id=customer_no,
                     fields=("legal_hold",), details={"hold": hold_id, "reason": hold.reason})
    return _hold_views(LegalHold.select().where(LegalHold.id == hold_id))[0]


@service(Perm.HOLD_PLACE)
def list_holds(actor: Actor, active_only: bool = True, customer_no: str = "") -> list[HoldView]:
    """Legal holds, newest first (reasons, who and when; notes stay encrypted)."""
    query = LegalHold.select()
    if active_only:
        query = query.where(LegalHold.released_at.is_null())
    if customer_no.strip():
        query = query.where(LegalHold.customer_id == _customer_by_no(customer_no).id)
    return _hold_views(query.order_by(LegalHold.placed_at.desc()))


@service(Perm.HOLD_PLACE)
def hold_notes(actor: Actor, hold_id: str) -> tuple[str, str]:
    """The placing and release notes of a hold; audited before they are decrypted."""
    hold = LegalHold.get_or_none(LegalHold.id == hold_id)
    if hold is None:
        raise NotFound("no such legal hold")
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="VIEW", object_type=HOLD_TABLE, object_id=hold_id, fields=("note", "release_note"))
    key = keystore.load_data_key(hold.key_id)

    def _open(blob, column):
        if blob is None:
            return ""
        return json.loads(crypto.decrypt(key, bytes(blob), crypto.field_aad(HOLD_TABLE, hold_id, column,
                                                                              hold.key_id)))

    return _open(hold.note, "note"), _open(hold.release_note, "release_note")


def count_active_holds() -> int:
    return LegalHold.select().where(LegalHold.released_at.is_null()).count()


def add_demo_terminations(officer: Actor, share: float = 0.06, seed: int = 2026) -> int:
    """Demo only: terminate a share of the customers years ago (some now past retention), hold one of them."""
    import random

    from models.customers import Customer

    rng = random.Random(seed)
    numbers = [no for (no,) in Customer.select(Customer.customer_no).where(Customer.category == "active")
               .order_by(Customer.customer_no).tuples()]
    chosen = sorted(rng.sample(numbers, max(1, int(len(numbers) * share)))) if numbers else []
    today = clock.today()
    for index, number in enumerate(chosen):
        years_ago = rng.choice((3, 6, 8, 11, 12, 14))
        ended = add_years(today, -years_ago) - dt.timedelta(days=rng.randrange(0, 300))
        record_termination(officer, number, ended, rng.random() < 0.4)
    eligible = [no for (no,) in Customer.select(Customer.customer_no).where(
        Customer.customer_no.in_(chosen) & (Customer.retention_until < today)).order_by(Customer.customer_no).tuples()]
    if eligible:
        place_hold(officer, eligible[-1], "open_claim", "演示：理赔尚未结案")
    return len(chosen)
