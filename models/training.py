"""Data-protection training records (seed §3.4.3) and the rule that lapsed training blocks sensitive work.

Staff whose latest training has expired cannot reveal personal data, approve anything or export
until an admin records a renewal: services that do those things call `require_training(actor)`
first (before opening their write transaction, so the denial's audit entry is kept).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

import peewee as pw

from models import audit, clock, validation
from models.db import BaseModel, write
from models.errors import FieldError, NotFound, PermissionDenied, ValidationError
from models.permissions import Actor, Perm, service
from models.staff import Staff, normalise_username

DEFAULT_VALID_MONTHS = 12
DUE_SOON_DAYS = 30
COURSE_MAX = 100

STATUS_CURRENT = "current"
STATUS_DUE_SOON = "due_soon"
STATUS_EXPIRED = "expired"
STATUS_NONE = "none"


class TrainingRecord(BaseModel):
    staff = pw.ForeignKeyField(Staff, backref="training", on_delete="CASCADE")
    course = pw.CharField(max_length=COURSE_MAX)
    completed_on = pw.DateField()
    expires_on = pw.DateField(index=True)
    recorded_by = pw.ForeignKeyField(Staff, null=True, backref="+", on_delete="SET NULL")
    recorded_at = pw.DateTimeField()

    class Meta:
        table_name = "training_record"


class TrainingExpired(PermissionDenied):
    """The actor's data-protection training has lapsed; the denial was audited."""


@dataclass(frozen=True)
class TrainingStatus:
    staff_id: int
    username: str
    display_name: str
    active: bool
    status: str  # current, due_soon, expired, none
    course: str
    completed_on: dt.date | None
    expires_on: dt.date | None
    days_left: int | None


@dataclass(frozen=True)
class TrainingEntry:
    record_id: int
    course: str
    completed_on: dt.date
    expires_on: dt.date
    recorded_by: str


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later (the 29th–31st fall back to the month's last day)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def status_for(expires_on: dt.date | None, today: dt.date) -> str:
    if expires_on is None:
        return STATUS_NONE
    if expires_on < today:
        return STATUS_EXPIRED
    if (expires_on - today).days <= DUE_SOON_DAYS:
        return STATUS_DUE_SOON
    return STATUS_CURRENT


def _latest_by_staff() -> dict[int, TrainingRecord]:
    """Each staff member's record with the latest expiry."""
    latest: dict[int, TrainingRecord] = {}
    for row in TrainingRecord.select().order_by(TrainingRecord.expires_on, TrainingRecord.id):
        latest[row.staff_id] = row
    return latest


def _latest_expiry(staff_id: int) -> TrainingRecord | None:
    return (TrainingRecord.select().where(TrainingRecord.staff == staff_id)
            .order_by(TrainingRecord.expires_on.desc(), TrainingRecord.id.desc()).first())


def _as_date(value: dt.date | str | None, field: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError([FieldError(field, "must be a date like 2026-03-31", "bad_date")]) from None


def check_record(course: str, completed_on, expires_on) -> tuple[str, dt.date, dt.date]:
    """Validate a training record's fields; every problem names its field."""
    errors: list[FieldError] = []
    course_text = " ".join(str(course).split())
    if len(course_text) < 2 or len(course_text) > COURSE_MAX or validation.forbidden_characters(course_text):
        errors.append(FieldError("course", f"name the course (2 to {COURSE_MAX} characters)", "required"))
    completed = expires = None
    try:
        completed = _as_date(completed_on, "completed_on")
        if completed is None:
            errors.append(FieldError("completed_on", "enter the date the training was completed", "required"))
        elif completed > clock.today():
            errors.append(FieldError("completed_on", "must not be in the future", "future"))
    except ValidationError as exc:
        errors.extend(exc.errors)
    try:
        expires = _as_date(expires_on, "expires_on")
    except ValidationError as exc:
        errors.extend(exc.errors)
    if completed and expires is None and not any(e.field == "expires_on" for e in errors):
        expires = add_months(completed, DEFAULT_VALID_MONTHS)
    if completed and expires and expires <= completed:
        errors.append(FieldError("expires_on", "must be after the completion date", "before_start"))
    if errors:
        raise ValidationError(errors)
    return course_text, completed, expires  # type: ignore[return-value]


@service(Perm.STAFF_MANAGE)
def record_training(actor: Actor, username: str, course: str, completed_on, expires_on=None) -> TrainingEntry:
    """Record a staff member's data-protection training; expiry defaults to one year after completion."""
    course_text, completed, expires = check_record(course, completed_on, expires_on)
    with write():
        person = Staff.get_or_none(Staff.username == normalise_username(username))
        if person is None:
            raise NotFound("no staff account with that username")
        row = TrainingRecord.create(staff=person.id, course=course_text, completed_on=completed, expires_on=expires,
                                    recorded_by=actor.staff_id,
                                    recorded_at=clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None))
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="TRAINING_RECORD", object_type="staff", object_id=str(person.id),
                     details={"record": row.id, "completed_on": completed.isoformat(),
                              "expires_on": expires.isoformat()})
    return TrainingEntry(row.id, course_text, completed, expires, actor.username)


def _overview(today: dt.date, include_inactive: bool = False) -> list[TrainingStatus]:
    latest = _latest_by_staff()
    out = []
    query = Staff.select().order_by(Staff.username)
    if not include_inactive:
        query = query.where(Staff.active == True)  # noqa: E712 (peewee expression)
    for person in query:
        record = latest.get(person.id)
        expires = record.expires_on if record else None
        out.append(TrainingStatus(
            person.id, person.username, person.display_name, person.active, status_for(expires, today),
            record.course if record else "", record.completed_on if record else None, expires,
            (expires - today).days if expires else None))
    order = {STATUS_EXPIRED: 0, STATUS_NONE: 1, STATUS_DUE_SOON: 2, STATUS_CURRENT: 3}
    return sorted(out, key=lambda s: (order[s.status], s.expires_on or dt.date.min, s.username))


@service(Perm.TRAINING_VIEW)
def training_overview(actor: Actor, include_inactive: bool = False) -> list[TrainingStatus]:
    """Every staff member's training status, lapsed and due-soon first."""
    return _overview(clock.today(), include_inactive)


@service(Perm.TRAINING_VIEW)
def training_history(actor: Actor, username: str) -> list[TrainingEntry]:
    """One staff member's training records, newest first."""
    person = Staff.get_or_none(Staff.username == normalise_username(username))
    if person is None:
        raise NotFound("no staff account with that username")
    recorder = Staff.alias()
    rows = (TrainingRecord.select(TrainingRecord, recorder.username.alias("recorder"))
            .join(recorder, pw.JOIN.LEFT_OUTER, on=(TrainingRecord.recorded_by == recorder.id))
            .where(TrainingRecord.staff == person.id)
            .order_by(TrainingRecord.completed_on.desc(), TrainingRecord.id.desc()).dicts())
    return [TrainingEntry(r["id"], r["course"], r["completed_on"], r["expires_on"], r["recorder"] or "")
            for r in rows]


def _status_of(staff_id: int, today: dt.date) -> tuple[str, dt.date | None]:
    record = _latest_expiry(staff_id)
    expires = record.expires_on if record else None
    return status_for(expires, today), expires


@service(Perm.HOME)
def my_training(actor: Actor) -> TrainingStatus:
    """The actor's own training status (shown at login when it has lapsed or lapses soon)."""
    today = clock.today()
    record = _latest_expiry(actor.staff_id)
    expires = record.expires_on if record else None
    return TrainingStatus(actor.staff_id, actor.username, actor.display_name, True, status_for(expires, today),
                          record.course if record else "", record.completed_on if record else None, expires,
                          (expires - today).days if expires else None)


@service(Perm.HOME)
def require_training(actor: Actor, action: str = "") -> None:
    """Refuse (and audit the refusal) when the actor's training has expired; call before revealing,
    approving or exporting. Staff with no training record yet are not blocked (admins see them listed)."""
    status, expires = _status_of(actor.staff_id, clock.today())
    if status != STATUS_EXPIRED:
        return
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="DENIED", outcome="denied",
                 details={"reason": "training_expired", "service": action[:40],
                          "expired_on": expires.isoformat() if expires else ""})
    raise TrainingExpired(
        f"{actor.username}'s data-protection training expired on {expires}; it must be renewed before "
        "revealing, approving or exporting")


def all_tables() -> list[type[BaseModel]]:
    return [TrainingRecord]


def add_demo_training(admin: Actor) -> None:
    """Training for the demo accounts: current for most, due soon for the reviewer."""
    today = clock.today()
    for username, days_ago in (("admin", 20), ("clerk", 100), ("reviewer", 350), ("supervisor", 60),
                               ("officer", 200), ("auditor", 30)):
        record_training(admin, username, "数据保护与客户信息安全培训", today - dt.timedelta(days=days_ago))


def _home_counts(actor: Actor) -> dict[str, int]:
    """For the home menu: staff whose training has lapsed or lapses within 30 days."""
    if not actor.has(Perm.TRAINING_VIEW):
        return {}
    return {"training": sum(1 for s in _overview(clock.today()) if s.status in (STATUS_EXPIRED, STATUS_DUE_SOON))}
