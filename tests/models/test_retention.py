"""Retention rules and arithmetic, returning customers, rule changes, and legal holds."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from faker import Faker

from models import clock, customers, demo, retention
from models.audit import AuditEntry
from models.customers import Customer
from models.errors import NotFound, PermissionDenied, ValidationError
from models.retention import (PROSPECT, TERMINATED_LONG, TERMINATED_SHORT, add_years, compute_retention_until,
                              is_past_retention, policy_is_long)

D = dt.date


# --- pure arithmetic ------------------------------------------------------------------------


def test_a_29_february_without_a_counterpart_ends_on_28_february():
    assert add_years(D(2024, 2, 29), 5) == D(2029, 2, 28)
    assert add_years(D(2024, 2, 29), 4) == D(2028, 2, 29)
    assert add_years(D(2023, 2, 28), 1) == D(2024, 2, 28)


def test_terminated_short_and_long_periods():
    assert compute_retention_until("terminated", D(2020, 3, 15), False, None) == D(2025, 3, 15)
    assert compute_retention_until("terminated", D(2020, 3, 15), True, None) == D(2030, 3, 15)
    assert compute_retention_until("terminated", D(2024, 2, 29), False, None) == D(2029, 2, 28)
    assert compute_retention_until("terminated", D(2024, 2, 29), True, None) == D(2034, 2, 28)


def test_an_unknown_policy_term_takes_the_longer_period():
    assert compute_retention_until("terminated", D(2020, 3, 15), None, None) == D(2030, 3, 15)
    assert retention.rule_code_for("terminated", None) == TERMINATED_LONG


def test_prospects_count_from_the_last_contact():
    assert compute_retention_until("prospect", None, None, D(2024, 2, 29)) == D(2026, 2, 28)
    assert compute_retention_until("prospect", D(2001, 1, 1), True, D(2025, 6, 30)) == D(2027, 6, 30)
    assert compute_retention_until("prospect", None, None, None) is None


def test_active_customers_and_missing_dates_have_no_retention_date():
    assert compute_retention_until("active", D(2010, 1, 1), True, D(2010, 1, 1)) is None
    assert compute_retention_until("terminated", None, False, D(2010, 1, 1)) is None


def test_the_periods_come_from_the_rules_given():
    years = {TERMINATED_SHORT: 7, TERMINATED_LONG: 12, PROSPECT: 3}
    assert compute_retention_until("terminated", D(2020, 1, 31), False, None, years) == D(2027, 1, 31)
    assert compute_retention_until("terminated", D(2020, 1, 31), True, None, years) == D(2032, 1, 31)
    assert compute_retention_until("prospect", None, None, D(2020, 1, 31), years) == D(2023, 1, 31)


def test_eligible_only_the_day_after_the_last_day_of_retention():
    until = D(2025, 3, 15)
    assert not is_past_retention(until, D(2025, 3, 14))
    assert not is_past_retention(until, D(2025, 3, 15))
    assert is_past_retention(until, D(2025, 3, 16))
    assert not is_past_retention(None, D(2099, 1, 1))


@pytest.mark.parametrize("starts, ends, long_", [
    (D(2023, 1, 1), D(2024, 1, 1), False),     # exactly one year: "one year or shorter"
    (D(2023, 1, 1), D(2024, 1, 2), True),      # one day more
    (D(2024, 2, 29), D(2025, 2, 28), False),   # a leap-day start: the year ends on 28 February
    (D(2024, 2, 29), D(2025, 3, 1), True),
    (D(2023, 3, 1), D(2024, 2, 29), False),    # a year spanning a leap day
    (D(2023, 6, 1), D(2023, 12, 1), False),
])
def test_policy_term_boundary(starts, ends, long_):
    assert policy_is_long(starts, ends) is long_


# --- customers --------------------------------------------------------------------------------


@pytest.fixture
def officer(make_staff):
    return make_staff("officer", "records_officer")


def _make_customers(clerk, count: int, seed: int = 7) -> list[str]:
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        data = demo.fake_customer(fake, rng, clock.today())
        data["category"] = "active"
        made.append(customers.create_customer(clerk, data).customer_no)
    return made


def _row(customer_no: str) -> Customer:
    return Customer.get(Customer.customer_no == customer_no)


def test_recording_a_termination_sets_the_retention_date_and_is_audited(office, clerk, officer):
    (number,) = _make_customers(clerk, 1)
    info = retention.record_termination(officer, number, "2020-03-15", False)
    assert info.retention_until == D(2025, 3, 15)
    assert info.rule_code == TERMINATED_SHORT
    assert "art. 87" in info.basis
    assert info.eligible  # the frozen clock is in November 2026
    row = _row(number)
    assert (row.category, row.terminated_on, row.long_policy) == ("terminated", D(2020, 3, 15), False)
    entry = AuditEntry.select().where(AuditEntry.action == "CUSTOMER_TERMINATE").get()
    assert entry.object_id == number and "2025-03-15" in entry.details


def test_termination_input_is_checked(office, clerk, officer):
    (number,) = _make_customers(clerk, 1)
    with pytest.raises(ValidationError) as caught:
        retention.record_termination(officer, number, "2099-01-01", None)
    assert set(caught.value.by_field()) == {"terminated_on", "long_policy"}
    with pytest.raises(ValidationError) as caught:
        retention.record_termination(officer, number, "2020-02-30", True)
    assert "terminated_on" in caught.value.by_field()
    with pytest.raises(NotFound):
        retention.record_termination(officer, "C2026999999", "2020-01-01", True)
    with pytest.raises(PermissionDenied):
        retention.record_termination(clerk, number, "2020-01-01", True)
    assert _row(number).category == "active"


def test_a_returning_customer_stops_the_clock_and_a_new_termination_restarts_it(office, clerk, officer):
    (number,) = _make_customers(clerk, 1)
    retention.record_termination(officer, number, "2015-06-01", False)
    assert _row(number).retention_until == D(2020, 6, 1)
    # The customer buys a new policy: active again, nothing to keep "until".
    Customer.update(category="active").where(Customer.customer_no == number).execute()
    assert retention._apply_retention(_row(number).id) is None
    assert _row(number).retention_until is None
    # ...and leaves again later, with a longer policy this time.
    retention.record_termination(officer, number, "2026-01-10", True)
    assert _row(number).retention_until == D(2036, 1, 10)


def test_a_new_contact_moves_a_prospects_retention_forward_never_back(office, clerk):
    (number,) = _make_customers(clerk, 1)
    Customer.update(category="prospect", last_contact=D(2023, 5, 1)).where(Customer.customer_no == number).execute()
    customer_id = _row(number).id
    assert retention._apply_retention(customer_id) == D(2025, 5, 1)
    assert retention._record_contact(customer_id, D(2024, 2, 29)) == D(2026, 2, 28)
    assert retention._record_contact(customer_id, D(2023, 1, 1)) == D(2026, 2, 28)  # an older contact changes nothing
    assert _row(number).last_contact == D(2024, 2, 29)


# --- rules as data ----------------------------------------------------------------------------


def test_the_rules_are_stored_with_their_legal_basis(office, clerk):
    rules = retention.list_rules(clerk)
    assert [r.code for r in rules] == [TERMINATED_SHORT, TERMINATED_LONG, PROSPECT]
    by_code = {r.code: r for r in rules}
    assert (by_code[TERMINATED_SHORT].years, by_code[TERMINATED_LONG].years, by_code[PROSPECT].years) == (5, 10, 2)
    assert "Insurance Law art. 87" in by_code[TERMINATED_LONG].basis
    assert "PIPL" in by_code[PROSPECT].basis


def test_admins_lengthen_a_period_and_every_affected_date_is_recomputed(office, admin, clerk, officer):
    numbers = _make_customers(clerk, 3)
    retention.record_termination(officer, numbers[0], "2020-03-15", False)
    retention.record_termination(officer, numbers[1], "2020-03-15", True)
    change = retention.set_rule_years(admin, TERMINATED_SHORT, "7")
    assert (change.previous_years, change.rule.years, change.customers_recomputed) == (5, 7, 1)
    assert change.rule.updated_by == "admin"
    assert _row(numbers[0]).retention_until == D(2027, 3, 15)
    assert _row(numbers[1]).retention_until == D(2030, 3, 15)  # the other rule: untouched
    assert _row(numbers[2]).retention_until is None
    entry = AuditEntry.select().where(AuditEntry.action == "RETENTION_RULE_CHANGE").get()
    assert entry.object_id == TERMINATED_SHORT and '"from":5' in entry.details and '"to":7' in entry.details
    # New terminations use the new period.
    assert retention.record_termination(officer, numbers[2], "2021-01-01", False).retention_until == D(2028, 1, 1)


def test_a_period_never_goes_below_the_legal_minimum(office, admin):
    for code, too_short in ((TERMINATED_SHORT, 4), (TERMINATED_LONG, 9), (PROSPECT, 0)):
        with pytest.raises(ValidationError) as caught:
            retention.set_rule_years(admin, code, too_short)
        assert caught.value.errors[0].code == "below_minimum"
    with pytest.raises(ValidationError):
        retention.set_rule_years(admin, PROSPECT, 6)  # PIPL: keep no longer than needed
    with pytest.raises(ValidationError):
        retention.set_rule_years(admin, TERMINATED_LONG, "ten")
    with pytest.raises(NotFound):
        retention.set_rule_years(admin, "forever", 50)
    assert [r.years for r in retention.list_rules(admin)] == [5, 10, 2]


def test_only_admins_change_the_rules(office, clerk, officer, supervisor):
    for actor in (clerk, officer, supervisor):
        with pytest.raises(PermissionDenied):
            retention.set_rule_years(actor, TERMINATED_LONG, 12)


# --- legal holds --------------------------------------------------------------------------------


def test_a_hold_is_placed_with_a_reason_and_released_by_a_supervisor(office, clerk, officer, supervisor):
    (number,) = _make_customers(clerk, 1)
    hold = retention.place_hold(officer, number, "open_claim", "claim LP-2026-0042")
    assert hold.active and hold.customer_no == number and hold.placed_by == "officer"
    assert _row(number).legal_hold is True
    assert retention.retention_info(officer, number).legal_hold
    second = retention.place_hold(supervisor, number, "regulator_request")
    with pytest.raises(PermissionDenied):
        retention.release_hold(officer, hold.hold_id, "claim settled")
    released = retention.release_hold(supervisor, hold.hold_id, "claim settled")
    assert not released.active and released.released_by == "supervisor"
    assert _row(number).legal_hold is True  # the second hold still stands
    retention.release_hold(supervisor, second.hold_id, "regulator closed the file")
    assert _row(number).legal_hold is False
    with pytest.raises(ValidationError):
        retention.release_hold(supervisor, second.hold_id, "again")
    assert [h.hold_id for h in retention.list_holds(officer)] == []
    assert len(retention.list_holds(officer, active_only=False, customer_no=number)) == 2
    actions = [e.action for e in AuditEntry.select().where(AuditEntry.action.startswith("HOLD_"))]
    assert actions == ["HOLD_PLACE", "HOLD_PLACE", "HOLD_RELEASE", "HOLD_RELEASE"]


def test_hold_input_is_checked_and_clerks_cannot_place_holds(office, clerk, officer, supervisor):
    (number,) = _make_customers(clerk, 1)
    with pytest.raises(ValidationError) as caught:
        retention.place_hold(officer, number, "whim")
    assert "reason" in caught.value.by_field()
    with pytest.raises(ValidationError) as caught:
        retention.place_hold(officer, number, "other", "")  # "other" needs a note
    assert "note" in caught.value.by_field()
    with pytest.raises(ValidationError):
        retention.place_hold(officer, number, "dispute", "x\x1b[31m")
    with pytest.raises(PermissionDenied):
        retention.place_hold(clerk, number, "dispute")
    hold = retention.place_hold(officer, number, "dispute")
    with pytest.raises(ValidationError):
        retention.release_hold(supervisor, hold.hold_id, "")  # a release needs a note
    assert _row(number).legal_hold is True


def test_hold_notes_are_encrypted_and_reading_them_is_audited(office, clerk, officer):
    (number,) = _make_customers(clerk, 1)
    hold = retention.place_hold(officer, number, "dispute", "SENTINEL-NOTE-42")
    stored = retention.LegalHold.get_by_id(hold.hold_id)
    assert b"SENTINEL-NOTE-42" not in bytes(stored.note)
    before = AuditEntry.select().where(AuditEntry.action == "VIEW").count()
    assert retention.hold_notes(officer, hold.hold_id) == ("SENTINEL-NOTE-42", "")
    assert AuditEntry.select().where(AuditEntry.action == "VIEW").count() == before + 1


def test_a_terminated_customer_leaves_the_verification_queue(office, admin, make_staff):
    import datetime as dt

    from models import customers, demo, retention
    from models.db import write

    clerk = make_staff("termclerk", "clerk")
    summary = customers.create_customer(clerk, demo.fake_customer(
        __import__("faker").Faker("zh_CN"), __import__("random").Random(5), dt.date(2026, 11, 25)) | {"category": "active"})
    row = customers.Customer.get(customers.Customer.customer_no == summary.customer_no)
    assert row.next_verification_due is not None
    with write():
        retention._set_termination(clerk, row.id, dt.date(2026, 11, 1), False)
    assert customers.Customer.get_by_id(row.id).next_verification_due is None


def test_masked_names_do_not_show_their_length():
    from models import customers

    assert customers.mask_name("张三") == customers.mask_name("张") == "张*"
    assert customers.mask_name("欧阳娜娜") == "欧*"
