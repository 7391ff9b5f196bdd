"""The compliance dashboard: each figure against the data behind it, anomalies and their drill-down."""

from __future__ import annotations

import datetime as dt
import random
import sys
import uuid

import pytest
from faker import Faker

from models import audit_browse, branches, clock, customers, dashboard, demo, staff, training
from models.audit import AuditEntry
from models.customers import Customer
from models.errors import AuthenticationFailed, PermissionDenied
from tests.models.test_audit import disable_guards, tamper_update


def make_customers(clerk, count: int) -> list[str]:
    fake = Faker("zh_CN")
    fake.seed_instance(17)
    rng = random.Random(17)
    return [customers.create_customer(clerk, demo.fake_customer(fake, rng, clock.today())).customer_no
            for _ in range(count)]


def chart(board, chart_id):
    return next(c for c in board.charts if c.chart_id == chart_id)


def bars(board, chart_id) -> dict[str, int]:
    return {b.label: b.value for b in chart(board, chart_id).bars}


def week(today=None):
    today = today or clock.today()
    return today - dt.timedelta(days=6), today


def kinds(board) -> list[str]:
    return [a.kind for a in board.anomalies]


def test_verifications_overdue_by_category_and_by_branch(office, clerk, supervisor):
    numbers = make_customers(clerk, 6)
    past = clock.today() - dt.timedelta(days=3)
    Customer.update(next_verification_due=past, category="active", branch="北京朝阳支公司").where(
        Customer.customer_no.in_(numbers[:2])).execute()
    Customer.update(next_verification_due=past, category="prospect", branch="上海浦东支公司").where(
        Customer.customer_no == numbers[2]).execute()
    board = dashboard.compliance_dashboard(supervisor, *week())
    assert bars(board, "verification_overdue") == {"prospect": 1, "active": 2, "terminated": 0}
    assert "verification_overdue" in kinds(board)
    rows = {row.name: row for row in board.branches}
    assert rows["北京朝阳支公司"].overdue_verifications == 2 and rows["上海浦东支公司"].overdue_verifications == 1
    assert sum(row.customers for row in board.branches) == 6
    one = dashboard.compliance_dashboard(supervisor, *week(), branch="北京朝阳支公司")
    assert bars(one, "verification_overdue")["active"] == 2 and bars(one, "verification_overdue")["prospect"] == 0


def test_customers_due_for_destruction_by_month_skip_legal_holds(office, clerk, supervisor):
    numbers = make_customers(clerk, 5)
    today = clock.today()
    in_two_months = (today.replace(day=1) + dt.timedelta(days=62)).replace(day=10)
    Customer.update(retention_until=today - dt.timedelta(days=1)).where(Customer.customer_no.in_(numbers[:2])).execute()
    Customer.update(legal_hold=True).where(Customer.customer_no == numbers[1]).execute()
    Customer.update(retention_until=in_two_months).where(Customer.customer_no.in_(numbers[2:4])).execute()
    board = dashboard.compliance_dashboard(supervisor, *week())
    counts = bars(board, "destruction_due")
    assert counts["already past"] == 1 and counts[f"{in_two_months:%Y-%m}"] == 2
    assert len(counts) == 13 and chart(board, "destruction_due").total == 3
    assert "retention_passed" in kinds(board)


def test_reveals_per_staff_member_flag_those_above_the_threshold(office, clerk, supervisor, make_staff):
    numbers = make_customers(clerk, 2)
    careful = make_staff("careful", "clerk")
    start, end = week()
    threshold = dashboard.reveal_threshold(start, end)
    assert threshold == dashboard.REVEAL_ALERT_PER_WEEK
    for _ in range(threshold + 1):
        customers.reveal_fields(clerk, numbers[0], ["mobile"], "客户来电核实身份")
    for _ in range(3):
        customers.reveal_fields(careful, numbers[1], ["mobile"], "客户来电核实身份")
    board = dashboard.compliance_dashboard(supervisor, start, end)
    reveal_bars = {b.label: b for b in chart(board, "reveals").bars}
    assert reveal_bars["clerk"].value == threshold + 1 and reveal_bars["clerk"].flagged
    assert reveal_bars["careful"].value == 3 and not reveal_bars["careful"].flagged
    high = [a for a in board.anomalies if a.kind == "reveals_high"]
    assert len(high) == 1 and high[0].severity == "danger" and dict(high[0].params)["staff"] == "clerk"
    # The drill-down filter finds exactly the entries behind the anomaly.
    page = audit_browse.browse(supervisor, high[0].drill, limit=500)
    assert len(page.rows) == threshold + 1 and {r.action for r in page.rows} == {"REVEAL"}
    assert "threshold" in high[0].text()


def test_failed_logins_per_day_and_locks(office, clerk, supervisor):
    for _ in range(staff.LOCK_AFTER_FAILURES):
        staff.Staff.update(next_attempt_at=None).where(staff.Staff.username == "clerk").execute()
        with pytest.raises(AuthenticationFailed):
            staff.authenticate("clerk", "not the password at all")
    start, end = week()
    board = dashboard.compliance_dashboard(supervisor, start, end)
    per_day = bars(board, "failed_logins")
    assert len(per_day) == 7 and per_day[f"{end:%m-%d}"] == staff.LOCK_AFTER_FAILURES
    assert "failed_logins" in kinds(board) and "account_locked" in kinds(board)
    locked = next(a for a in board.anomalies if a.kind == "account_locked")
    assert audit_browse.browse(supervisor, locked.drill).rows[0].action == "ACCOUNT_LOCK"


def test_refused_actions_and_expired_training_are_anomalies(office, admin, clerk, supervisor):
    with pytest.raises(PermissionDenied):
        audit_browse.browse(clerk, audit_browse.AuditFilter())
    training.record_training(admin, "clerk", "DP", clock.today() - dt.timedelta(days=400))
    training.record_training(admin, "supervisor", "DP", clock.today())
    board = dashboard.compliance_dashboard(supervisor, *week())
    denied = next(a for a in board.anomalies if a.kind == "denied")
    assert dict(denied.params) == {"count": "1", "staff": "clerk"} and denied.drill.outcome == "denied"
    assert "training_expired" in kinds(board)
    counts = bars(board, "training")
    assert counts["expired"] == 1 and counts["current"] == 1 and counts["no record"] == 1  # the admin
    assert [a.severity for a in board.anomalies] == sorted(a.severity for a in board.anomalies)  # danger first


def test_chain_status_comes_from_the_latest_verification(office, auditor, supervisor):
    board = dashboard.compliance_dashboard(supervisor, *week())
    assert board.chain.ok is None and "chain_unverified" in kinds(board)
    audit_browse.verify_log(auditor)
    board = dashboard.compliance_dashboard(supervisor, *week())
    assert board.chain.ok is True and "chain_unverified" not in kinds(board)
    disable_guards()
    tamper_update(2, action="NOTHING")
    assert not audit_browse.verify_log(auditor).ok
    board = dashboard.compliance_dashboard(supervisor, *week())
    assert board.anomalies[0].kind == "chain_broken" and board.anomalies[0].drill_seq == 2


def test_branches_show_their_records_person_or_its_absence(office, admin, clerk, supervisor):
    make_customers(clerk, 3)
    names = {row.branch for row in Customer.select(Customer.branch)}
    named = sorted(names)[0]
    branches.save_branch(admin, "B1", named, "supervisor")
    branches.save_branch(admin, "B2", "无客户支公司")
    board = dashboard.compliance_dashboard(supervisor, *week())
    rows = {row.name: row for row in board.branches}
    assert rows[named].records_person == "supervisor" and rows[named].code == "B1"
    assert rows["无客户支公司"].customers == 0
    missing = [dict(a.params)["branch"] for a in board.anomalies if a.kind == "branch_no_person"]
    assert missing == ["无客户支公司"]


def test_a_missing_part_of_the_system_is_reported_not_fatal(office, supervisor, monkeypatch):
    monkeypatch.setitem(sys.modules, "models.intake", None)
    monkeypatch.setitem(sys.modules, "models.change_requests", None)
    monkeypatch.setitem(sys.modules, "models.destruction", None)
    board = dashboard.compliance_dashboard(supervisor, *week())
    for chart_id in ("review_queue", "change_requests", "destructions"):
        assert not chart(board, chart_id).available and chart_id not in board.live
    assert chart(board, "reveals").available and "reveals" in board.live


def test_review_queue_and_change_requests_by_age_when_present(office, clerk, supervisor):
    intake = pytest.importorskip("models.intake")
    now = clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None)
    for days in (0, 2, 5, 9, 12):
        intake.IntakeSubmission.insert(id=str(uuid.uuid4()), key_id="k", status="submitted", created_by=clerk.staff_id,
                                       created_at=now, updated_at=now,
                                       submitted_at=now - dt.timedelta(days=days, hours=1)).execute()
    intake.IntakeSubmission.insert(id=str(uuid.uuid4()), key_id="k", status="draft", created_by=clerk.staff_id,
                                   created_at=now, updated_at=now).execute()
    board = dashboard.compliance_dashboard(supervisor, *week())
    assert list(bars(board, "review_queue").values()) == [1, 1, 1, 2]
    assert chart(board, "review_queue").total == 5 and "review_queue_old" in kinds(board)
    assert "review_queue" in board.live


def test_only_supervisors_and_auditors_see_it_and_viewing_is_audited(office, clerk, auditor, admin):
    for who in (clerk, admin):
        with pytest.raises(PermissionDenied):
            dashboard.compliance_dashboard(who, *week())
    dashboard.compliance_dashboard(auditor, *week())
    assert AuditEntry.select().where(AuditEntry.action == "DASHBOARD_VIEW").count() == 1


def test_the_period_must_run_forwards(office, supervisor):
    from models.errors import ValidationError

    with pytest.raises(ValidationError):
        dashboard.compliance_dashboard(supervisor, clock.today(), clock.today() - dt.timedelta(days=1))


def test_drill_filters_use_the_dashboard_period(office, clerk, supervisor, frozen_clock):
    numbers = make_customers(clerk, 1)
    start, end = week()
    for _ in range(dashboard.reveal_threshold(start, end) + 1):
        customers.reveal_fields(clerk, numbers[0], ["mobile"], "客户来电核实身份")
    frozen_clock.advance(dt.timedelta(days=10))
    later = dashboard.compliance_dashboard(supervisor, *week())
    assert "reveals_high" not in kinds(later)
    earlier = dashboard.compliance_dashboard(supervisor, start, end)
    high = next(a for a in earlier.anomalies if a.kind == "reveals_high")
    assert (high.drill.since, high.drill.until) == (start, end)


@pytest.mark.parametrize("days, unit, count", [(7, "day", 7), (31, "day", 31), (90, "week", 13),
                                               (365, "month", 13)])
def test_failed_logins_are_counted_per_day_week_or_month(office, supervisor, days, unit, count):
    with pytest.raises(AuthenticationFailed):
        staff.authenticate("supervisor", "not the password at all")
    end = clock.today()
    board = dashboard.compliance_dashboard(supervisor, end - dt.timedelta(days=days - 1), end)
    failed = chart(board, "failed_logins")
    assert failed.title == dashboard.FAILED_LOGIN_TITLES[unit]
    assert len(failed.bars) == count and failed.total == 1 and failed.bars[-1].value == 1
