"""Training records: validation, default one-year expiry, status, and lapsed training blocking reveals."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
from faker import Faker

from models import audit, clock, customers, demo, training
from models.audit import AuditEntry
from models.errors import NotFound, PermissionDenied, ValidationError
from models.training import TrainingExpired


def _customer_no(clerk) -> str:
    fake = Faker("zh_CN")
    fake.seed_instance(5)
    return customers.create_customer(clerk, demo.fake_customer(fake, random.Random(5), clock.today())).customer_no


def test_expiry_defaults_to_one_year_after_completion(admin, clerk):
    entry = training.record_training(admin, "clerk", "数据保护培训 2026", "2026-03-31")
    assert entry.expires_on == dt.date(2027, 3, 31)
    leap = training.record_training(admin, "clerk", "Data protection", dt.date(2024, 2, 29))
    assert leap.expires_on == dt.date(2025, 2, 28)
    row = AuditEntry.select().where(AuditEntry.action == "TRAINING_RECORD").order_by(AuditEntry.seq.desc()).get()
    assert row.object_id == str(clerk.staff_id) and "Data protection" not in row.details
    assert json.loads(row.details)["expires_on"] == "2025-02-28"


@pytest.mark.parametrize("course, completed, expires, field", [
    ("", "2026-01-05", None, "course"),
    ("x" * 101, "2026-01-05", None, "course"),
    ("Course\x1b[31m", "2026-01-05", None, "course"),
    ("Data protection", "", None, "completed_on"),
    ("Data protection", "2026-13-01", None, "completed_on"),
    ("Data protection", "2099-01-01", None, "completed_on"),
    ("Data protection", "2026-01-05", "2026-01-05", "expires_on"),
    ("Data protection", "2026-01-05", "2025-12-31", "expires_on"),
    ("Data protection", "2026-01-05", "soon", "expires_on"),
])
def test_bad_records_are_refused_naming_the_field(admin, clerk, course, completed, expires, field):
    with pytest.raises(ValidationError) as caught:
        training.record_training(admin, "clerk", course, completed, expires)
    assert field in caught.value.by_field()
    assert training.TrainingRecord.select().count() == 0


def test_only_admins_record_training_and_unknown_staff_is_not_found(admin, clerk, supervisor):
    with pytest.raises(PermissionDenied):
        training.record_training(supervisor, "clerk", "Data protection", "2026-01-05")
    with pytest.raises(NotFound):
        training.record_training(admin, "nobody", "Data protection", "2026-01-05")


def test_status_none_current_due_soon_expired(admin, clerk, reviewer, supervisor, auditor):
    today = clock.today()
    training.record_training(admin, "reviewer", "DP", today - dt.timedelta(days=10))
    training.record_training(admin, "supervisor", "DP", today - dt.timedelta(days=350))
    training.record_training(admin, "auditor", "DP", today - dt.timedelta(days=400))
    statuses = {s.username: s for s in training.training_overview(supervisor)}
    assert statuses["clerk"].status == "none" and statuses["clerk"].expires_on is None
    assert statuses["reviewer"].status == "current"
    assert statuses["supervisor"].status == "due_soon" and 0 <= statuses["supervisor"].days_left <= 30
    assert statuses["auditor"].status == "expired" and statuses["auditor"].days_left < 0
    order = [s.username for s in training.training_overview(admin)]
    assert order.index("auditor") < order.index("clerk") < order.index("supervisor") < order.index("reviewer")
    with pytest.raises(PermissionDenied):
        training.training_overview(clerk)


def test_the_latest_expiry_counts_and_history_lists_every_record(admin, clerk):
    today = clock.today()
    training.record_training(admin, "clerk", "First", today - dt.timedelta(days=500))
    assert training.my_training(clerk).status == "expired"
    training.record_training(admin, "clerk", "Renewal", today - dt.timedelta(days=1))
    assert training.my_training(clerk).status == "current"
    history = training.training_history(admin, "clerk")
    assert [h.course for h in history] == ["Renewal", "First"] and history[0].recorded_by == "admin"


def test_expired_training_blocks_reveal_and_the_denial_is_audited(admin, clerk):
    number = _customer_no(clerk)
    training.record_training(admin, "clerk", "DP", clock.today() - dt.timedelta(days=366))
    reveals_before = AuditEntry.select().where(AuditEntry.action == "REVEAL").count()
    with pytest.raises(TrainingExpired) as caught:
        customers.reveal_fields(clerk, number, ["mobile"], "客户来电核实身份")
    assert isinstance(caught.value, PermissionDenied) and "renewed" in str(caught.value)
    assert AuditEntry.select().where(AuditEntry.action == "REVEAL").count() == reveals_before
    denial = AuditEntry.select().order_by(AuditEntry.seq.desc()).get()
    assert (denial.action, denial.outcome) == ("DENIED", "denied")
    assert json.loads(denial.details)["reason"] == "training_expired"
    # Viewing masked data is still allowed; a renewal lifts the block at once.
    assert customers.get_customer(clerk, number).values["mobile"].startswith("*")
    training.record_training(admin, "clerk", "DP renewal", clock.today())
    assert customers.reveal_fields(clerk, number, ["mobile"], "客户来电核实身份").values["mobile"].isdigit()
    assert audit.verify_chain().ok


def test_expiry_is_judged_on_todays_date(admin, clerk, frozen_clock):
    training.record_training(admin, "clerk", "DP", clock.today() - dt.timedelta(days=5),
                             clock.today() + dt.timedelta(days=1))
    training.require_training(clerk, "approve")
    frozen_clock.advance(dt.timedelta(days=1))
    training.require_training(clerk, "approve")  # the expiry day itself still counts
    frozen_clock.advance(dt.timedelta(days=1))
    with pytest.raises(TrainingExpired):
        training.require_training(clerk, "approve")


def test_staff_without_any_record_are_not_blocked(clerk):
    training.require_training(clerk, "export")
    assert training.my_training(clerk).status == "none"
