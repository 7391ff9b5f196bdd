"""The compliance dashboard's figures: queues, verification, retention, logins, reveals, training, chain.

Each figure is built from the audit log and the tables that hold it; a table another part of the
system has not created is reported as "not available" instead of failing the dashboard. Every
chart is a list of labelled numbers, and each anomaly names the audit filter that shows the
entries behind it. Messages are English msgids marked with `N_`; the UI translates them.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import math
from dataclasses import dataclass, field

import peewee as pw

from models import audit, clock
from models.audit import AuditEntry
from models.audit_browse import AuditFilter, conditions_for, local_midnight_utc
from models.customers import Customer
from models.permissions import Actor, Perm, service


def N_(message: str) -> str:
    """Mark an English message for translation (translated by the UI, not here)."""
    return message


REVEAL_ALERT_PER_WEEK = 30
FAILED_LOGIN_ALERT = 5
QUEUE_AGE_ALERT_DAYS = 7
VERIFY_STALE_DAYS = 7
DESTRUCTION_SOON_DAYS = 90
FAILED_LOGIN_TITLES = {"day": N_("Failed logins per day"), "week": N_("Failed logins per week"),
                       "month": N_("Failed logins per month")}
AGE_BUCKETS = ((1, N_("under 1 day")), (3, N_("1–3 days")), (7, N_("3–7 days")), (None, N_("7+ days")))


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    flagged: bool = False  # above its threshold; the UI shows a word as well as a colour
    translate: bool = False  # the label is an English msgid (else data: a name or a date)


@dataclass(frozen=True)
class Chart:
    chart_id: str
    title: str  # English msgid
    bars: tuple[Bar, ...]
    available: bool = True
    threshold: int | None = None
    total: int = 0


@dataclass(frozen=True)
class Anomaly:
    kind: str
    severity: str  # "danger" or "warning"
    message: str  # English msgid with {named} fields
    params: tuple[tuple[str, str], ...] = ()
    drill: AuditFilter | None = None  # the audit entries behind it
    drill_seq: int | None = None  # or one entry

    def text(self, translate=lambda s: s) -> str:
        return translate(self.message).format(**dict(self.params))


@dataclass(frozen=True)
class BranchRow:
    name: str
    code: str
    records_person: str
    customers: int
    overdue_verifications: int
    due_for_destruction: int
    pending_changes: int | None


@dataclass(frozen=True)
class ChainStatus:
    verified_at: str  # empty: never verified
    ok: bool | None
    entries: int
    first_bad_seq: int | None
    reason: str
    log_size: int


@dataclass(frozen=True)
class Dashboard:
    start: dt.date
    end: dt.date
    today: dt.date
    branch: str
    charts: tuple[Chart, ...]
    anomalies: tuple[Anomaly, ...]
    branches: tuple[BranchRow, ...]
    chain: ChainStatus
    live: tuple[str, ...] = field(default=())  # chart ids built from live tables


def _utc_naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _age_bars(submitted: list[dt.datetime], now: dt.datetime) -> tuple[Bar, ...]:
    counts = [0] * len(AGE_BUCKETS)
    for moment in submitted:
        days = (now - moment).total_seconds() / 86400
        for index, (limit, _label) in enumerate(AGE_BUCKETS):
            if limit is None or days < limit:
                counts[index] += 1
                break
    return tuple(Bar(label, count, flagged=limit is None and count > 0, translate=True)
                 for (limit, label), count in zip(AGE_BUCKETS, counts))


def _oldest_days(moments: list[dt.datetime], now: dt.datetime) -> int:
    return max(((now - m).days for m in moments), default=0)


def _safe(read):
    """Run a figure's query; None when its table does not exist in this build."""
    try:
        return read()
    except (ImportError, pw.OperationalError, pw.ProgrammingError):
        return None


# --- figures from other parts of the system (read if present) --------------------------------


def _review_queue() -> list[dt.datetime] | None:
    def read():
        from models.intake import IntakeSubmission

        return [r.submitted_at for r in IntakeSubmission.select(IntakeSubmission.submitted_at)
                .where(IntakeSubmission.status == "submitted", IntakeSubmission.submitted_at.is_null(False))]
    return _safe(read)


def _pending_changes(branch: str) -> list[tuple[dt.datetime, str]] | None:
    def read():
        from models.change_requests import ChangeRequest

        query = (ChangeRequest.select(ChangeRequest.requested_at, Customer.branch)
                 .join(Customer, pw.JOIN.LEFT_OUTER, on=(ChangeRequest.customer_id == Customer.id))
                 .where(ChangeRequest.status == "pending"))
        if branch:
            query = query.where(Customer.branch == branch)
        return [(r["requested_at"], r["branch"] or "") for r in query.dicts()]
    return _safe(read)


def _destroyed_by_month(months: list[tuple[dt.date, dt.date]]) -> list[int] | None:
    def read():
        from models.destruction import DestructionRegister

        out = []
        for first, after in months:
            low = local_midnight_utc(first).replace(tzinfo=None)
            high = local_midnight_utc(after).replace(tzinfo=None)
            out.append(DestructionRegister.select().where(DestructionRegister.destroyed_at >= low,
                                                          DestructionRegister.destroyed_at < high).count())
        return out
    return _safe(read)


# --- figures from the customer table -------------------------------------------------------


def _month_starts(first: dt.date, count: int) -> list[tuple[dt.date, dt.date]]:
    out = []
    month = first.replace(day=1)
    for _ in range(count):
        following = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        out.append((month, following))
        month = following
    return out


def _customer_query(branch: str):
    query = Customer.select()
    return query.where(Customer.branch == branch) if branch else query


def _overdue_by_category(today: dt.date, branch: str) -> dict[str, int]:
    query = (Customer.select(Customer.category, pw.fn.COUNT(Customer.id).alias("n"))
             .where(Customer.next_verification_due < today).group_by(Customer.category))
    if branch:
        query = query.where(Customer.branch == branch)
    return {r["category"]: r["n"] for r in query.dicts()}


def _destruction_due(today: dt.date, branch: str) -> tuple[int, list[tuple[str, int]]]:
    """Customers past retention (not on hold), and those reaching it in each of the next 12 months."""
    base = _customer_query(branch).where(Customer.legal_hold == False)  # noqa: E712
    overdue = base.where(Customer.retention_until < today).count()
    months = []
    for first, after in _month_starts(today, 12):
        low = max(first, today)
        months.append((f"{first:%Y-%m}", base.where(Customer.retention_until >= low,
                                                    Customer.retention_until < after).count()))
    return overdue, months


# --- figures from the audit log ----------------------------------------------------------------


def _audit_rows(start: dt.date, end: dt.date, **filters) -> pw.ModelSelect | None:
    conditions = conditions_for(AuditFilter(since=start, until=end, **filters))
    if conditions is None:
        return None
    return AuditEntry.select().where(*conditions)


def _count_by_actor(start: dt.date, end: dt.date, **filters) -> list[tuple[str, int]]:
    query = _audit_rows(start, end, **filters)
    if query is None:
        return []
    rows = (query.select(AuditEntry.actor, pw.fn.COUNT(AuditEntry.seq).alias("n")).group_by(AuditEntry.actor)
            .order_by(pw.fn.COUNT(AuditEntry.seq).desc(), AuditEntry.actor).dicts())
    return [(r["actor"], r["n"]) for r in rows]


def _buckets(start: dt.date, end: dt.date) -> tuple[str, list[tuple[dt.date, str]]]:
    """Days for a period up to a month, weeks up to four months, else months: (unit, [(first day, label)])."""
    days = (end - start).days + 1
    if days <= 31:
        return "day", [(start + dt.timedelta(days=i), f"{start + dt.timedelta(days=i):%m-%d}") for i in range(days)]
    if days <= 122:
        return "week", [(start + dt.timedelta(days=i), f"{start + dt.timedelta(days=i):%m-%d}")
                        for i in range(0, days, 7)]
    return "month", [(first if first >= start else start, f"{first:%Y-%m}")
                     for first, _after in _month_starts(start, 24) if first <= end]


def _per_period(start: dt.date, end: dt.date, **filters) -> tuple[str, list[tuple[str, int]]]:
    """Matching entries counted per day, week or month of [start, end] (office local time)."""
    unit, buckets = _buckets(start, end)
    firsts = [first for first, _label in buckets]
    counts = [0] * len(buckets)
    query = _audit_rows(start, end, **filters)
    if query is not None:
        for row in query.select(AuditEntry.ts).limit(200_000):
            day = dt.datetime.fromisoformat(row.ts).astimezone().date()
            index = bisect.bisect_right(firsts, day) - 1
            if index >= 0 and day <= end:
                counts[index] += 1
    return unit, [(label, count) for (_first, label), count in zip(buckets, counts)]


def chain_status() -> ChainStatus:
    """The newest recorded verification of the audit chain (a full replay is a separate, slow step)."""
    size = (AuditEntry.select(AuditEntry.seq).order_by(AuditEntry.seq.desc()).first() or AuditEntry(seq=0)).seq
    last = (AuditEntry.select(AuditEntry.ts, AuditEntry.details).where(AuditEntry.action == "AUDIT_VERIFY")
            .order_by(AuditEntry.seq.desc()).first())
    if last is None:
        return ChainStatus("", None, 0, None, "", size)
    details = json.loads(last.details or "{}")
    return ChainStatus(last.ts, bool(details.get("ok")), int(details.get("entries", 0)),
                       details.get("first_bad_seq"), str(details.get("reason", "")), size)


def reveal_threshold(start: dt.date, end: dt.date) -> int:
    """Reveals per staff member above which the period's count is flagged (scaled from a week)."""
    return max(1, math.ceil(REVEAL_ALERT_PER_WEEK * ((end - start).days + 1) / 7))


# --- the dashboard -------------------------------------------------------------------------------


def build(start: dt.date, end: dt.date, branch: str = "") -> Dashboard:
    """Every figure for [start, end] (optionally one branch's customers); no permission check."""
    from models import branches, training

    today = clock.today()
    now = _utc_naive(clock.now())
    charts: list[Chart] = []
    anomalies: list[Anomaly] = []
    live: list[str] = []

    queue = _review_queue()
    if queue is None:
        charts.append(Chart("review_queue", N_("Review queue by age"), (), available=False))
    else:
        live.append("review_queue")
        charts.append(Chart("review_queue", N_("Review queue by age"), _age_bars(queue, now), total=len(queue)))
        oldest = _oldest_days(queue, now)
        if oldest >= QUEUE_AGE_ALERT_DAYS:
            anomalies.append(Anomaly("review_queue_old", "warning",
                                     N_("The oldest submission has waited {days} days for review"),
                                     (("days", str(oldest)),)))

    changes = _pending_changes(branch)
    if changes is None:
        charts.append(Chart("change_requests", N_("Change requests pending by age"), (), available=False))
    else:
        live.append("change_requests")
        moments = [m for m, _b in changes]
        charts.append(Chart("change_requests", N_("Change requests pending by age"), _age_bars(moments, now),
                            total=len(moments)))
        oldest = _oldest_days(moments, now)
        if oldest >= QUEUE_AGE_ALERT_DAYS:
            anomalies.append(Anomaly("changes_old", "warning",
                                     N_("The oldest change request has waited {days} days for a decision"),
                                     (("days", str(oldest)),), AuditFilter(action="CHANGE_REQUEST")))

    overdue = _overdue_by_category(today, branch)
    live.append("verification_overdue")
    bars = tuple(Bar(category, overdue.get(category, 0), flagged=overdue.get(category, 0) > 0, translate=True)
                 for category in ("prospect", "active", "terminated"))
    charts.append(Chart("verification_overdue", N_("Overdue verifications"), bars,
                        total=sum(overdue.values())))
    if sum(overdue.values()):
        anomalies.append(Anomaly("verification_overdue", "warning",
                                 N_("{count} customers are overdue for periodic verification"),
                                 (("count", str(sum(overdue.values()))),)))

    past_retention, months = _destruction_due(today, branch)
    live.append("destruction_due")
    charts.append(Chart("destruction_due", N_("Retention ends, by month"),
                        (Bar(N_("already past"), past_retention, flagged=past_retention > 0, translate=True),
                         *(Bar(label, count) for label, count in months)),
                        total=past_retention + sum(c for _l, c in months)))
    if past_retention:
        anomalies.append(Anomaly("retention_passed", "warning",
                                 N_("{count} customers are past their retention period and not on hold"),
                                 (("count", str(past_retention)),)))

    month_ranges = _month_starts(end.replace(day=1) - dt.timedelta(days=31 * 5), 6)
    destroyed = _destroyed_by_month(month_ranges)
    if destroyed is None:
        charts.append(Chart("destructions", N_("Destructions executed by month"), (), available=False))
    else:
        live.append("destructions")
        charts.append(Chart("destructions", N_("Destructions executed by month"),
                            tuple(Bar(f"{first:%Y-%m}", n) for (first, _a), n in zip(month_ranges, destroyed)),
                            total=sum(destroyed)))

    unit, failed = _per_period(start, end, action="LOGIN", outcome="failed")
    locks = _count_by_actor(start, end, action="ACCOUNT_LOCK")
    live.append("failed_logins")
    charts.append(Chart("failed_logins", FAILED_LOGIN_TITLES[unit], tuple(Bar(d, n) for d, n in failed),
                        total=sum(n for _d, n in failed)))
    for username, count in _count_by_actor(start, end, action="LOGIN", outcome="failed"):
        if count >= FAILED_LOGIN_ALERT:
            anomalies.append(Anomaly("failed_logins", "warning",
                                     N_("{count} failed logins as {staff}"),
                                     (("count", str(count)), ("staff", username)),
                                     AuditFilter(since=start, until=end, staff=username, action="LOGIN",
                                                 outcome="failed")))
    for username, count in locks:
        anomalies.append(Anomaly("account_locked", "danger", N_("{staff} was locked out {count} times"),
                                 (("staff", username), ("count", str(count))),
                                 AuditFilter(since=start, until=end, staff=username, action="ACCOUNT_LOCK")))

    threshold = reveal_threshold(start, end)
    reveals = _count_by_actor(start, end, action="REVEAL", outcome="ok")
    live.append("reveals")
    charts.append(Chart("reveals", N_("Reveals per staff member"),
                        tuple(Bar(name, n, flagged=n > threshold) for name, n in reveals),
                        threshold=threshold, total=sum(n for _s, n in reveals)))
    for username, count in reveals:
        if count > threshold:
            anomalies.append(Anomaly("reveals_high", "danger",
                                     N_("{staff} revealed personal data {count} times (threshold {threshold})"),
                                     (("staff", username), ("count", str(count)), ("threshold", str(threshold))),
                                     AuditFilter(since=start, until=end, staff=username, action="REVEAL")))
    for username, count in _count_by_actor(start, end, outcome="denied"):
        anomalies.append(Anomaly("denied", "warning", N_("{count} refused actions by {staff}"),
                                 (("count", str(count)), ("staff", username)),
                                 AuditFilter(since=start, until=end, staff=username, outcome="denied")))

    people = training._overview(today)
    live.append("training")
    by_status = {status: sum(1 for p in people if p.status == status)
                 for status in ("current", "due_soon", "expired", "none")}
    charts.append(Chart("training", N_("Data-protection training"), (
        Bar(N_("current"), by_status["current"], translate=True),
        Bar(N_("due soon"), by_status["due_soon"], translate=True),
        Bar(N_("expired"), by_status["expired"], flagged=by_status["expired"] > 0, translate=True),
        Bar(N_("no record"), by_status["none"], flagged=by_status["none"] > 0, translate=True),
    ), total=len(people)))
    if by_status["none"]:
        anomalies.append(Anomaly("training_missing", "warning",
                                 N_("{count} staff members have no data-protection training recorded"),
                                 (("count", str(by_status["none"])),)))
    for person in people:
        if person.status == "expired":
            anomalies.append(Anomaly("training_expired", "danger",
                                     N_("{staff}'s data-protection training expired on {date}"),
                                     (("staff", person.username), ("date", str(person.expires_on)))))

    chain = chain_status()
    if chain.ok is False and chain.first_bad_seq:
        anomalies.insert(0, Anomaly("chain_broken", "danger",
                                    N_("The audit chain failed verification at entry {seq}"),
                                    (("seq", str(chain.first_bad_seq)),), drill_seq=chain.first_bad_seq))
    elif chain.ok is False:  # the log itself replayed, a signed checkpoint file did not
        anomalies.insert(0, Anomaly("chain_broken", "danger", N_("The audit chain failed verification: {reason}"),
                                    (("reason", chain.reason),), AuditFilter(action="AUDIT_VERIFY")))
    elif not chain.verified_at or (now - _utc_naive(dt.datetime.fromisoformat(chain.verified_at))).days \
            >= VERIFY_STALE_DAYS:
        anomalies.append(Anomaly("chain_unverified", "warning",
                                 N_("The audit chain has not been verified in the last {days} days"),
                                 (("days", str(VERIFY_STALE_DAYS)),), AuditFilter(action="AUDIT_VERIFY")))

    rows = _branch_rows(today, changes, branches._by_name())
    for row in rows:
        if row.code and not row.records_person:
            anomalies.append(Anomaly("branch_no_person", "warning",
                                     N_("Branch {branch} has no responsible records person"),
                                     (("branch", row.name),)))
    order = {"danger": 0, "warning": 1}
    anomalies.sort(key=lambda a: order[a.severity])
    return Dashboard(start, end, today, branch, tuple(charts), tuple(anomalies), tuple(rows), chain, tuple(live))


def _branch_rows(today: dt.date, changes, registered) -> list[BranchRow]:
    def grouped(query) -> dict[str, int]:
        return {r["branch"]: r["n"] for r in query.select(Customer.branch, pw.fn.COUNT(Customer.id).alias("n"))
                .group_by(Customer.branch).dicts()}

    customers = grouped(Customer.select())
    overdue = grouped(Customer.select().where(Customer.next_verification_due < today))
    due = grouped(Customer.select().where(Customer.legal_hold == False,  # noqa: E712
                                          Customer.retention_until < today + dt.timedelta(days=DESTRUCTION_SOON_DAYS)))
    pending: dict[str, int] | None = None
    if changes is not None:
        pending = {}
        for _moment, name in changes:
            pending[name] = pending.get(name, 0) + 1
    names = sorted(set(customers) | set(registered))
    out = []
    for name in names:
        view = registered.get(name)
        out.append(BranchRow(name, view.code if view else "", view.records_person if view else "",
                             customers.get(name, 0), overdue.get(name, 0), due.get(name, 0),
                             None if pending is None else pending.get(name, 0)))
    return out


@service(Perm.REPORT)
def compliance_dashboard(actor: Actor, start: dt.date, end: dt.date, branch: str = "") -> Dashboard:
    """The dashboard for [start, end]; viewing it is audited (it holds no personal data)."""
    if end < start:
        from models.errors import FieldError, ValidationError

        raise ValidationError([FieldError("end", "must not be before the start", "before_start")])
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="DASHBOARD_VIEW", details={"start": start.isoformat(), "end": end.isoformat(),
                                                   "branch": branch})
    return build(start, end, branch)
