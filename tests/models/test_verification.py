"""Periodic verification: date arithmetic, the due queue, outcomes, the unreachable flag, counts."""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import replace

import pytest
from faker import Faker

from models import change_requests as cr
from models import clock, customers, demo, history, office as office_mod, verification
from models.audit import AuditEntry
from models.customers import Customer
from models.db import db, is_sqlite
from models.errors import NotFound, PermissionDenied, ValidationError
from models.verification import VerificationCheck, VerificationState

TODAY = dt.date(2026, 11, 25)


def make_customer(actor, seed: int, **overrides):
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    data = demo.fake_customer(fake, random.Random(seed), clock.today())
    data.update({"category": "active", **overrides})
    return customers.create_customer(actor, data)


def set_due(customer_no: str, due: dt.date | None) -> None:
    Customer.update(next_verification_due=due).where(Customer.customer_no == customer_no).execute()


def row(customer_no: str) -> dict:
    return Customer.select().where(Customer.customer_no == customer_no).dicts().first()


# --- date arithmetic ----------------------------------------------------------------------


@pytest.mark.parametrize(("category", "checked", "due"), [
    ("active", dt.date(2026, 1, 31), dt.date(2027, 1, 31)),
    ("active", dt.date(2024, 2, 29), dt.date(2025, 2, 28)),     # leap day → last day of February
    ("active", dt.date(2027, 2, 28), dt.date(2028, 2, 28)),     # not moved to the 29th in a leap year
    ("prospect", dt.date(2026, 8, 31), dt.date(2027, 2, 28)),   # month end into a short month
    ("prospect", dt.date(2027, 8, 31), dt.date(2028, 2, 29)),   # ... of a leap year
    ("prospect", dt.date(2026, 3, 31), dt.date(2026, 9, 30)),
    ("prospect", dt.date(2026, 7, 15), dt.date(2027, 1, 15)),   # over the year end
    ("active", dt.date(2026, 12, 31), dt.date(2027, 12, 31)),
    ("terminated", dt.date(2026, 1, 1), None),
])
def test_next_verification_dates(category, checked, due):
    assert verification.next_due(category, checked) == due


def test_unreachable_retry_crosses_month_and_year_ends():
    assert verification.retry_due(dt.date(2026, 12, 25)) == dt.date(2027, 1, 8)
    assert verification.retry_due(dt.date(2028, 2, 20)) == dt.date(2028, 3, 5)


def test_intervals_come_from_the_office_settings(office, clerk):
    office_mod.current().settings = replace(office.settings, verify_months_active=24, verify_months_prospect=3,
                                            verify_retry_days=7)
    assert verification.next_due("active", dt.date(2024, 2, 29)) == dt.date(2026, 2, 28)
    assert verification.next_due("prospect", dt.date(2026, 11, 30)) == dt.date(2027, 2, 28)
    assert verification.retry_due(TODAY) == dt.date(2026, 12, 2)
    made = make_customer(clerk, 1)
    assert row(made.customer_no)["next_verification_due"] == dt.date(2028, 11, 25)


def test_settings_reject_silly_intervals(tmp_path):
    from models.errors import ConfigurationError
    from models.settings import load_settings

    (tmp_path / "recordkeeper.toml").write_text("verify_months_active = 0\n")
    with pytest.raises(ConfigurationError, match="verify_months_active"):
        load_settings({"RECORDKEEPER_HOME": str(tmp_path)})


# --- the queue ------------------------------------------------------------------------------


@pytest.fixture
def population(clerk):
    """Five customers: three due (two overdue), one not yet due, one terminated."""
    made = {name: make_customer(clerk, seed) for seed, name in enumerate(
        ("long_overdue", "overdue", "due_today", "later", "gone"), start=1)}
    set_due(made["long_overdue"].customer_no, TODAY - dt.timedelta(days=40))
    set_due(made["overdue"].customer_no, TODAY - dt.timedelta(days=3))
    set_due(made["due_today"].customer_no, TODAY)
    set_due(made["later"].customer_no, TODAY + dt.timedelta(days=1))
    set_due(made["gone"].customer_no, None)
    Customer.update(category="terminated").where(Customer.customer_no == made["gone"].customer_no).execute()
    return made


def test_the_queue_is_ordered_by_how_overdue(clerk, population):
    page = verification.due_queue(clerk)
    assert [i.customer_no for i in page.items] == [population[n].customer_no
                                                   for n in ("long_overdue", "overdue", "due_today")]
    assert [i.days_overdue for i in page.items] == [40, 3, 0]
    assert (page.total_due, page.overdue) == (3, 2)
    assert all(i.masked_name.endswith("*") for i in page.items)
    assert AuditEntry.select().where(AuditEntry.action == "VERIFY_QUEUE_VIEW").count() == 1
    second = verification.due_queue(clerk, limit=2, offset=2)
    assert [i.customer_no for i in second.items] == [population["due_today"].customer_no]


def test_ties_are_ordered_by_customer_number(clerk, population):
    for name in ("overdue", "long_overdue"):
        set_due(population[name].customer_no, TODAY - dt.timedelta(days=5))
    numbers = [i.customer_no for i in verification.due_queue(clerk).items][:2]
    assert numbers == sorted(numbers)


def test_the_queue_reads_its_index(clerk, population):
    if not is_sqlite():
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    sql, params = (Customer.select(Customer.id).where(Customer.next_verification_due <= TODAY)
                   .order_by(Customer.next_verification_due, Customer.customer_no).limit(50).sql())
    plan = " ".join(str(r) for r in db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall())
    assert "customer_verification_queue" in plan and "TEMP B-TREE" not in plan


def test_home_counts(clerk, supervisor, population):
    assert verification._home_counts(clerk) == {"verification": 3}
    assert verification._home_counts(supervisor) == {"verification_overdue": 2, "unreachable": 0}
    from models import home
    by_id = {e.entry_id: e for e in home.home_menu(supervisor)}
    assert by_id["verification_overdue"].count == 2 and by_id["unreachable"].count == 0
    assert "verification" not in by_id
    assert {e.entry_id: e.count for e in home.home_menu(clerk)}["verification"] == 3


# --- outcomes ---------------------------------------------------------------------------------


def test_confirmed_moves_the_date_on(clerk, population):
    number = population["long_overdue"].customer_no
    result = verification.record_check(clerk, number, "confirmed")
    assert result.next_due == dt.date(2027, 11, 25) and result.unreachable_streak == 0
    r = row(number)
    assert r["last_verified"] == TODAY and r["next_verification_due"] == dt.date(2027, 11, 25)
    assert r["version"] == 1  # a check changes no field of the record
    assert history._history_of(r["id"])[0].kind == "verified"
    entry = AuditEntry.select().where(AuditEntry.action == "VERIFY").get()
    assert json.loads(entry.details)["outcome"] == "confirmed" and entry.object_id == number
    assert [i.customer_no for i in verification.due_queue(clerk).items][0] == population["overdue"].customer_no


def test_a_prospect_is_checked_again_in_six_months(clerk):
    made = make_customer(clerk, 9, category="prospect")
    set_due(made.customer_no, TODAY - dt.timedelta(days=1))
    assert verification.record_check(clerk, made.customer_no, "confirmed").next_due == dt.date(2027, 5, 25)


def test_unreachable_needs_a_note_retries_sooner_and_flags_after_three(clerk, supervisor, population):
    number = population["overdue"].customer_no
    with pytest.raises(ValidationError) as excinfo:
        verification.record_check(clerk, number, "unreachable", "")
    assert excinfo.value.errors[0].field == "note"
    for attempt in range(1, 4):
        result = verification.record_check(clerk, number, "unreachable", f"无人接听 第{attempt}次")
        assert result.next_due == clock.today() + dt.timedelta(days=14)
        assert result.unreachable_streak == attempt and result.flagged == (attempt == 3)
        clock.advance(dt.timedelta(days=14))
    assert verification._home_counts(supervisor)["unreachable"] == 1
    flagged = verification.flagged_queue(supervisor)
    assert [f.customer_no for f in flagged] == [number] and flagged[0].unreachable_streak == 3
    kinds = [e.kind for e in history._history_of(row(number)["id"])]
    assert "flagged" in kinds and AuditEntry.select().where(AuditEntry.action == "VERIFY_FLAG").count() == 1
    # a fourth miss keeps the one flag
    verification.record_check(clerk, number, "unreachable", "still nobody")
    assert AuditEntry.select().where(AuditEntry.action == "VERIFY_FLAG").count() == 1
    # notes are stored encrypted
    for check in VerificationCheck.select():
        assert check.note is None or "无人接听".encode() not in bytes(check.note)
    card = verification.verification_card(clerk, number)
    assert card.unreachable_streak == 4 and card.flagged
    assert [c.note for c in card.checks][:2] == ["still nobody", "无人接听 第3次"]


def test_reaching_the_customer_clears_the_streak_and_flag(clerk, supervisor, population):
    number = population["overdue"].customer_no
    for _ in range(3):
        verification.record_check(clerk, number, "unreachable", "no answer")
    verification.record_check(clerk, number, "confirmed")
    state = VerificationState.get_by_id(row(number)["id"])
    assert state.unreachable_streak == 0 and state.flagged_at is None
    assert verification.flagged_queue(supervisor) == ()


def test_a_supervisor_clears_a_flag_with_a_note(clerk, supervisor, population):
    number = population["overdue"].customer_no
    for _ in range(3):
        verification.record_check(clerk, number, "unreachable", "no answer")
    with pytest.raises(PermissionDenied):
        verification.clear_flag(clerk, number, "asked the branch")
    with pytest.raises(ValidationError):
        verification.clear_flag(supervisor, number, "")
    verification.clear_flag(supervisor, number, "branch will visit the customer")
    assert verification._home_counts(supervisor)["unreachable"] == 0
    with pytest.raises(NotFound):
        verification.clear_flag(supervisor, number, "again please")


def test_changed_is_filed_as_a_change_request(clerk, population):
    number = population["overdue"].customer_no
    with pytest.raises(ValidationError) as excinfo:
        verification.record_check(clerk, number, "changed")
    assert excinfo.value.errors[0].code == "use_change_request"
    request = cr.submit_change_request(clerk, number, 1, {"email": "checked@example.com"},
                                       source="periodic_check", reason="定期核实：邮箱已更换")
    check = VerificationCheck.get(VerificationCheck.customer_id == row(number)["id"])
    assert check.outcome == "changed" and check.change_request_id == request.request_id
    assert row(number)["next_verification_due"] == dt.date(2027, 11, 25)
    assert row(number)["last_verified"] == TODAY


def test_customers_not_verified_and_staff_without_the_permission(clerk, supervisor, population):
    with pytest.raises(ValidationError) as excinfo:
        verification.record_check(clerk, population["gone"].customer_no, "confirmed")
    assert excinfo.value.errors[0].code == "not_verified"
    with pytest.raises(PermissionDenied):
        verification.record_check(supervisor, population["overdue"].customer_no, "confirmed")
    with pytest.raises(ValidationError):
        verification.record_check(clerk, population["overdue"].customer_no, "lost")
    with pytest.raises(NotFound):
        verification.record_check(clerk, "C2026999999", "confirmed")


def test_termination_ends_verification(clerk, supervisor, population):
    number = population["overdue"].customer_no
    for _ in range(3):
        verification.record_check(clerk, number, "unreachable", "no answer")
    request = cr.submit_change_request(clerk, number, 1, {"category": "terminated"}, source="clerk_correction",
                                       reason="all policies ended", terminated_on="2026-11-01", long_policy=False)
    cr.approve_change_request(supervisor, request.request_id)
    assert row(number)["next_verification_due"] is None
    assert verification.flagged_queue(supervisor) == ()
    assert number not in [i.customer_no for i in verification.due_queue(clerk).items]


def test_demo_checks_and_requests(clerk, supervisor):
    made = [make_customer(clerk, seed) for seed in range(1, 9)]
    assert verification.add_demo_checks(clerk) == len(made)
    rows = [row(m.customer_no) for m in made]
    assert all(r["last_verified"] is not None and r["last_verified"] <= TODAY for r in rows)
    assert verification._home_counts(supervisor)["unreachable"] == 1
    assert cr.add_demo_requests(clerk) == 3
    queue = cr.approval_queue(supervisor)
    assert len(queue) == 3 and len({q.customer_no for q in queue}) == 2
