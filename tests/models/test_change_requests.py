"""Change requests: filing, category transitions, four-eyes, approval in one transaction, conflicts."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import random

import pytest
from faker import Faker

from models import change_requests as cr
from models import clock, customers, demo, history
from models.audit import AuditEntry
from models.change_requests import ChangeConflict, ChangeRequest, StaleForm
from models.customers import Customer
from models.db import db
from models.errors import Conflict, NotFound, PermissionDenied, ValidationError
from tests.conftest import TEST_PASSWORD

NEW_MOBILE = "13912345678"
REPORT = {"source": "customer_report", "channel": "phone", "reported_on": "2026-11-24",
          "reason": "客户来电告知新手机号"}


def make_customer(actor, seed: int = 1, **overrides):
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    data = demo.fake_customer(fake, random.Random(seed), clock.today())
    data.update({"category": "active", **overrides})
    return customers.create_customer(actor, data)


def record(customer_no: str) -> dict:
    return Customer.select().where(Customer.customer_no == customer_no).dicts().first()


def values(actor, customer_no: str, *names: str) -> dict:
    return customers.reveal_fields(actor, customer_no, list(names), "check the test result").values


def file_phone(actor, customer_no: str, mobile: str = NEW_MOBILE, **meta):
    base = record(customer_no)["version"]
    return cr.submit_change_request(actor, customer_no, base, {"mobile": mobile}, **{**REPORT, **meta})


def errors_of(excinfo) -> dict[str, str]:
    return {e.field: e.code for e in excinfo.value.errors}


@pytest.fixture
def supervisor2(make_staff):
    return make_staff("supervisor2", "supervisor")


@pytest.fixture
def customer(clerk):
    return make_customer(clerk)


# --- filing -----------------------------------------------------------------------------


def test_filing_stores_the_proposal_encrypted_against_the_base_version(clerk, customer):
    request = file_phone(clerk, customer.customer_no)
    assert request.fields == ("mobile",) and request.status == "pending" and request.base_version == 1
    assert request.requester == "clerk" and request.source == "customer_report" and not request.stale
    row = ChangeRequest.get_by_id(request.request_id)
    for blob in (row.proposed, row.base, row.reason):
        assert NEW_MOBILE.encode() not in bytes(blob) and "新手机号".encode() not in bytes(blob)
    # the record itself is untouched until approval
    assert record(customer.customer_no)["version"] == 1
    assert values(clerk, customer.customer_no, "mobile")["mobile"] != NEW_MOBILE
    entry = AuditEntry.select().where(AuditEntry.action == "CHANGE_REQUEST").get()
    assert entry.fields == "mobile" and NEW_MOBILE not in entry.details and "手机" not in entry.details


def test_ciphertext_is_bound_to_its_request(clerk, customer):
    first = file_phone(clerk, customer.customer_no)
    second = file_phone(clerk, customer.customer_no, "13800001111")
    moved = ChangeRequest.get_by_id(first.request_id).proposed
    ChangeRequest.update(proposed=moved).where(ChangeRequest.id == second.request_id).execute()
    from models.errors import IntegrityFailure
    with pytest.raises(IntegrityFailure):
        cr._open(b"\0" * 32, "x", second.request_id, "proposed", moved)
    req = ChangeRequest.get_by_id(second.request_id)
    from models import keystore
    with pytest.raises(IntegrityFailure):
        cr._open(keystore.load_data_key(req.key_id), req.key_id, req.id, "proposed", req.proposed)


def test_nothing_changed_is_refused(clerk, customer):
    current = values(clerk, customer.customer_no, "mobile")["mobile"]
    with pytest.raises(ValidationError) as excinfo:
        file_phone(clerk, customer.customer_no, current)
    assert errors_of(excinfo) == {"fields": "no_change"}


def test_bad_values_and_missing_source_details_are_reported_together(clerk, customer):
    with pytest.raises(ValidationError) as excinfo:
        cr.submit_change_request(clerk, customer.customer_no, 1, {"mobile": "12345", "email": "not an email"},
                                 source="customer_report", channel="", reported_on="2027-01-01", reason="")
    codes = errors_of(excinfo)
    assert codes == {"mobile": "bad_format", "email": "bad_format", "channel": "required",
                     "reported_on": "future_date", "reason": "required"}
    assert all("12345" not in e.message for e in excinfo.value.errors)
    assert ChangeRequest.select().count() == 0


def test_unknown_source_and_fields_outside_the_form_are_refused(clerk, customer):
    with pytest.raises(ValidationError) as excinfo:
        cr.submit_change_request(clerk, customer.customer_no, 1, {"consent_date": "2020-01-01", "version": 9},
                                 source="rumour", reason="because")
    assert errors_of(excinfo) == {"source": "bad_choice", "consent_date": "not_editable", "version": "not_editable"}


def test_channel_only_for_customer_reports(clerk, customer):
    with pytest.raises(ValidationError) as excinfo:
        cr.submit_change_request(clerk, customer.customer_no, 1, {"mobile": NEW_MOBILE},
                                 source="clerk_correction", channel="phone", reason="typo at intake")
    assert errors_of(excinfo) == {"channel": "not_allowed"}
    done = cr.submit_change_request(clerk, customer.customer_no, 1, {"mobile": NEW_MOBILE},
                                    source="clerk_correction", reason="typo at intake")
    assert done.source == "clerk_correction"


def test_a_form_opened_on_an_older_version_is_stale(clerk, supervisor, customer):
    file_phone(clerk, customer.customer_no)
    cr.approve_change_request(supervisor, cr.approval_queue(supervisor)[0].request_id)
    with pytest.raises(StaleForm) as excinfo:
        cr.submit_change_request(clerk, customer.customer_no, 1, {"email": "new@example.com"}, **REPORT)
    assert excinfo.value.current_version == 2


def test_clearing_an_optional_field_and_refusing_to_clear_a_required_one(clerk, supervisor, customer):
    with pytest.raises(ValidationError) as excinfo:
        cr.submit_change_request(clerk, customer.customer_no, 1, {"mobile": ""}, **REPORT)
    assert errors_of(excinfo) == {"mobile": "required"}
    request = cr.submit_change_request(clerk, customer.customer_no, 1, {"employer": ""}, **REPORT)
    cr.approve_change_request(supervisor, request.request_id)
    assert values(clerk, customer.customer_no, "employer")["employer"] == ""


def test_several_pending_requests_on_one_record_are_listed(clerk, customer):
    file_phone(clerk, customer.customer_no)
    clock.advance(dt.timedelta(minutes=5))
    cr.submit_change_request(clerk, customer.customer_no, 1, {"email": "new@example.com"}, **REPORT)
    pending = cr.pending_for_customer(clerk, customer.customer_no)
    assert [p.fields for p in pending] == [("mobile",), ("email",)]


def test_only_staff_with_the_permission_file_requests(make_staff, customer):
    auditor = make_staff("auditor", "auditor")
    with pytest.raises(PermissionDenied):
        file_phone(auditor, customer.customer_no)


# --- approving ----------------------------------------------------------------------------


def test_approval_applies_the_change_in_one_transaction(clerk, supervisor, customer):
    request = file_phone(clerk, customer.customer_no)
    old_mobile = values(clerk, customer.customer_no, "mobile")["mobile"]
    clock.advance(dt.timedelta(hours=3))
    queue = cr.approval_queue(supervisor)
    assert [q.request_id for q in queue] == [request.request_id]
    assert queue[0].age == dt.timedelta(hours=3) and queue[0].masked_name.endswith("*")
    detail = cr.request_detail(supervisor, request.request_id)
    changed = [row for row in detail.rows if row.requested]
    assert [(r.field, r.old, r.new) for r in changed] == [("mobile", old_mobile, NEW_MOBILE)]
    unchanged = {r.field: r for r in detail.rows if not r.requested}
    assert unchanged["full_name"].old == unchanged["full_name"].new and "*" in str(unchanged["full_name"].old)
    assert detail.reason == REPORT["reason"] and detail.channel == "phone"
    assert detail.reported_on == dt.date(2026, 11, 24)

    decision = cr.approve_change_request(supervisor, request.request_id, "customer confirmed by phone")
    assert decision.status == "approved" and decision.new_version == 2
    assert values(clerk, customer.customer_no, "mobile")["mobile"] == NEW_MOBILE
    assert record(customer.customer_no)["version"] == 2
    # the blind index follows the new number
    assert [s.customer_no for s in customers.find_customers(clerk, "mobile", NEW_MOBILE)] == [customer.customer_no]
    assert customers.find_customers(clerk, "mobile", old_mobile) == []
    # history: who changed what and when
    events = history._history_of(record(customer.customer_no)["id"])
    assert events[0].kind == "changed" and events[0].actor == "supervisor" and events[0].fields == ("mobile",)
    assert events[0].details["requested_by"] == "clerk" and events[0].at == clock.now().replace(tzinfo=None)
    entry = AuditEntry.select().where(AuditEntry.action == "CHANGE_APPROVE").get()
    assert entry.object_id == customer.customer_no and entry.fields == "mobile" and NEW_MOBILE not in entry.details
    assert cr.approval_queue(supervisor) == []


def test_an_id_number_change_moves_the_identity_indexes(clerk, supervisor, customer):
    shown = values(clerk, customer.customer_no, "date_of_birth", "gender", "id_number")
    birth = dt.date.fromisoformat(shown["date_of_birth"])
    new_id = next(n for n in (demo.resident_id(random.Random(s), birth, shown["gender"]) for s in range(50))
                  if n != shown["id_number"])
    request = cr.submit_change_request(clerk, customer.customer_no, 1, {"id_number": new_id}, **REPORT)
    cr.approve_change_request(supervisor, request.request_id)
    assert [s.customer_no for s in customers.find_customers(clerk, "id_number", new_id)] == [customer.customer_no]
    assert customers.find_customers(clerk, "id_number", shown["id_number"]) == []


def test_nobody_approves_or_rejects_their_own_request(make_staff, customer):
    both = make_staff("lead", "clerk", "supervisor")
    request = file_phone(both, customer.customer_no)
    with pytest.raises(PermissionDenied):
        cr.approve_change_request(both, request.request_id)
    with pytest.raises(PermissionDenied):
        cr.reject_change_request(both, request.request_id, "changed my mind")
    denied = AuditEntry.select().where(AuditEntry.action == "DENIED").order_by(AuditEntry.seq)
    assert [json.loads(d.details)["rule"] for d in denied] == ["four_eyes", "four_eyes"]
    assert ChangeRequest.get_by_id(request.request_id).status == "pending"
    assert record(customer.customer_no)["version"] == 1


def test_a_clerk_cannot_approve(clerk, make_staff, customer):
    other = make_staff("clerk2", "clerk")
    request = file_phone(other, customer.customer_no)
    with pytest.raises(PermissionDenied):
        cr.approve_change_request(clerk, request.request_id)


def test_a_decided_request_cannot_be_decided_again(clerk, supervisor, supervisor2, customer):
    request = file_phone(clerk, customer.customer_no)
    cr.approve_change_request(supervisor, request.request_id)
    with pytest.raises(Conflict):
        cr.approve_change_request(supervisor2, request.request_id)
    with pytest.raises(Conflict):
        cr.reject_change_request(supervisor2, request.request_id, "too late now")
    assert record(customer.customer_no)["version"] == 2


def test_rejection_needs_a_note_and_leaves_the_record_alone(clerk, supervisor, customer):
    request = file_phone(clerk, customer.customer_no)
    with pytest.raises(ValidationError) as excinfo:
        cr.reject_change_request(supervisor, request.request_id, "  ")
    assert errors_of(excinfo) == {"note": "required"}
    cr.reject_change_request(supervisor, request.request_id, "号码无法接通，请再核实")
    assert record(customer.customer_no)["version"] == 1
    row = ChangeRequest.get_by_id(request.request_id)
    assert row.status == "rejected" and "核实".encode() not in bytes(row.note)


def test_the_requester_sees_outcomes_until_they_have_looked(clerk, supervisor, customer, make_staff):
    first = file_phone(clerk, customer.customer_no)
    second = cr.submit_change_request(clerk, customer.customer_no, 1, {"email": "a@example.com"}, **REPORT)
    assert cr._home_counts(clerk) == {"my_requests": 0}
    assert cr._home_counts(supervisor) == {"changes": 2}
    cr.approve_change_request(supervisor, first.request_id)
    clock.advance(dt.timedelta(minutes=1))
    cr.reject_change_request(supervisor, second.request_id, "record changed; file again")
    assert cr._home_counts(clerk)["my_requests"] == 2
    from models import home
    notices = home.home_notices(clerk)
    assert [(n.msgid, n.params) for n in notices] == [
        ("Change rejected: {customer}", {"customer": customer.customer_no}),
        ("Change approved: {customer}", {"customer": customer.customer_no})]
    assert home.home_notices(supervisor) == []
    mine = cr.my_requests(clerk, mark_seen=True)
    assert {m.request_id: (m.status, m.decider, m.outcome_seen) for m in mine} == {
        first.request_id: ("approved", "supervisor", False), second.request_id: ("rejected", "supervisor", False)}
    assert cr._home_counts(clerk)["my_requests"] == 0 and home.home_notices(clerk) == []
    detail = cr.my_request_detail(clerk, second.request_id)
    assert detail.note == "record changed; file again"
    other = make_staff("clerk2", "clerk")
    with pytest.raises(NotFound):
        cr.my_request_detail(other, second.request_id)
    assert cr.proposed_values(clerk, second.request_id) == {"email": "a@example.com"}


def test_withdrawing_a_pending_request(clerk, make_staff, customer):
    request = file_phone(clerk, customer.customer_no)
    with pytest.raises(NotFound):
        cr.withdraw_change_request(make_staff("clerk2", "clerk"), request.request_id)
    assert cr.withdraw_change_request(clerk, request.request_id).status == "withdrawn"
    with pytest.raises(Conflict):
        cr.withdraw_change_request(clerk, request.request_id)


# --- conflicts ------------------------------------------------------------------------------


def test_a_stale_approval_is_refused_with_the_three_way_picture(clerk, supervisor, customer):
    old_mobile = values(clerk, customer.customer_no, "mobile")["mobile"]
    phone = file_phone(clerk, customer.customer_no, NEW_MOBILE)
    other = cr.submit_change_request(clerk, customer.customer_no, 1,
                                     {"mobile": "13800001111", "city": "杭州市"}, **REPORT)
    cr.approve_change_request(supervisor, phone.request_id)
    assert [q.stale for q in cr.approval_queue(supervisor)] == [True]
    with pytest.raises(ChangeConflict) as excinfo:
        cr.approve_change_request(supervisor, other.request_id)
    assert (excinfo.value.base_version, excinfo.value.current_version) == (1, 2)
    assert "1380000" not in str(excinfo.value)
    # never a silent overwrite: the first approval stands, the second request is still pending
    assert values(clerk, customer.customer_no, "mobile")["mobile"] == NEW_MOBILE
    row = ChangeRequest.get_by_id(other.request_id)
    assert row.status == "pending" and row.conflict_at is not None
    refused = AuditEntry.select().where((AuditEntry.action == "CHANGE_APPROVE") & (AuditEntry.outcome == "conflict"))
    assert refused.count() == 1

    view = cr.conflict_view(supervisor, other.request_id)
    by_field = {r.field: r for r in view.rows}
    assert (view.base_version, view.current_version) == (1, 2)
    assert by_field["mobile"].base == old_mobile and by_field["mobile"].old == NEW_MOBILE
    assert by_field["mobile"].new == "13800001111"
    assert view.conflicting == ("mobile",) and view.changed_since == ("mobile",)
    assert by_field["city"].requested and by_field["city"].new == "杭州市"
    assert set(by_field) == {"mobile", "city"}
    cr.reject_change_request(supervisor, other.request_id, "record changed since; please file again")


def _approve_in_process(settings, username, request_id, barrier, results):
    """One real process: open the office on its own connection, wait for the other, approve."""
    from models import change_requests, office, staff as staff_mod
    from models.change_requests import ChangeConflict as Stale

    office.open_office(settings)
    actor = staff_mod.authenticate(username, TEST_PASSWORD)
    barrier.wait(timeout=30)
    try:
        change_requests.approve_change_request(actor, request_id)
        results.put((username, "approved"))
    except Stale:
        results.put((username, "conflict"))
    except Exception as exc:  # reported to the parent, which fails the test with it
        results.put((username, f"error {type(exc).__name__}: {exc}"))
    finally:
        office.close_office()


def test_two_concurrent_approvals_on_one_record_in_real_processes(settings, clerk, supervisor, supervisor2,
                                                                  customer):
    phone = file_phone(clerk, customer.customer_no, NEW_MOBILE)
    email = cr.submit_change_request(clerk, customer.customer_no, 1, {"email": "race@example.com"}, **REPORT)
    db.close()
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_approve_in_process, args=(settings, name, rid, barrier, results))
               for name, rid in (("supervisor", phone.request_id), ("supervisor2", email.request_id))]
    for w in workers:
        w.start()
    outcomes = dict(results.get(timeout=120) for _ in workers)
    for w in workers:
        w.join(timeout=60)
    assert sorted(outcomes.values()) == ["approved", "conflict"], outcomes
    db.connect(reuse_if_open=True)
    row = record(customer.customer_no)
    assert row["version"] == 2
    statuses = {r.id: r.status for r in ChangeRequest.select()}
    winner = phone.request_id if outcomes["supervisor"] == "approved" else email.request_id
    loser = email.request_id if winner == phone.request_id else phone.request_id
    assert statuses == {winner: "approved", loser: "pending"}
    assert ChangeRequest.get_by_id(loser).conflict_at is not None
    shown = values(clerk, customer.customer_no, "mobile", "email")
    if winner == phone.request_id:
        assert shown["mobile"] == NEW_MOBILE and shown["email"] != "race@example.com"
    else:
        assert shown["email"] == "race@example.com" and shown["mobile"] != NEW_MOBILE
    from models import audit
    assert audit.verify_chain().ok


# --- category transitions ----------------------------------------------------------------------


def transition(clerk, supervisor, customer_no, category, **meta):
    base = record(customer_no)["version"]
    request = cr.submit_change_request(clerk, customer_no, base, {"category": category},
                                       **{"source": "clerk_correction", "reason": "category update", **meta})
    return cr.approve_change_request(supervisor, request.request_id)


def test_prospect_becomes_active_with_a_twelve_month_verification(clerk, supervisor):
    prospect = make_customer(clerk, category="prospect")
    assert record(prospect.customer_no)["next_verification_due"] == dt.date(2027, 5, 25)
    clock.advance(dt.timedelta(days=10))
    transition(clerk, supervisor, prospect.customer_no, "active")
    row = record(prospect.customer_no)
    assert row["category"] == "active" and row["next_verification_due"] == dt.date(2027, 12, 5)
    assert row["retention_until"] is None
    kinds = [e.kind for e in history._history_of(row["id"])]
    assert kinds[:2] == ["category", "changed"]


def test_termination_needs_a_date_and_the_policy_length(clerk, customer):
    with pytest.raises(ValidationError) as excinfo:
        cr.submit_change_request(clerk, customer.customer_no, 1, {"category": "terminated"},
                                 source="clerk_correction", reason="policy lapsed")
    assert errors_of(excinfo) == {"terminated_on": "required", "long_policy": "required"}
    with pytest.raises(ValidationError) as excinfo:
        cr.submit_change_request(clerk, customer.customer_no, 1, {"category": "terminated"},
                                 source="clerk_correction", reason="policy lapsed",
                                 terminated_on="2026-12-01", long_policy="maybe")
    assert errors_of(excinfo) == {"terminated_on": "future_date", "long_policy": "bad_format"}


@pytest.mark.parametrize(("long_policy", "until"), [(False, dt.date(2031, 10, 31)), (True, dt.date(2036, 10, 31))])
def test_termination_sets_the_retention_date(clerk, supervisor, customer, long_policy, until):
    transition(clerk, supervisor, customer.customer_no, "terminated", terminated_on="2026-10-31",
               long_policy=long_policy)
    row = record(customer.customer_no)
    assert (row["category"], row["terminated_on"], row["long_policy"]) == ("terminated", dt.date(2026, 10, 31),
                                                                          long_policy)
    assert row["retention_until"] == until and row["next_verification_due"] is None


def test_termination_on_29_february_counts_whole_years(clerk, supervisor, customer):
    transition(clerk, supervisor, customer.customer_no, "terminated", terminated_on="2024-02-29", long_policy=False)
    assert record(customer.customer_no)["retention_until"] == dt.date(2029, 2, 28)


def test_a_returning_customer_clears_the_retention_date(clerk, supervisor, customer):
    transition(clerk, supervisor, customer.customer_no, "terminated", terminated_on="2026-10-31", long_policy=True)
    clock.advance(dt.timedelta(days=40))
    transition(clerk, supervisor, customer.customer_no, "active")
    row = record(customer.customer_no)
    assert row["category"] == "active" and row["retention_until"] is None
    assert row["terminated_on"] is None and row["long_policy"] is None
    assert row["next_verification_due"] == dt.date(2028, 1, 4)


@pytest.mark.parametrize(("start", "target"), [("prospect", "terminated"), ("active", "prospect")])
def test_transitions_outside_the_life_cycle_are_refused(clerk, supervisor, start, target):
    made = make_customer(clerk, category=start)
    meta = {"terminated_on": "2026-10-31", "long_policy": False} if target == "terminated" else {}
    with pytest.raises(ValidationError) as excinfo:
        cr.submit_change_request(clerk, made.customer_no, 1, {"category": target}, source="clerk_correction",
                                 reason="category update", **meta)
    assert errors_of(excinfo) == {"category": "bad_transition"}


def test_terminated_cannot_go_back_to_prospect(clerk, supervisor, customer):
    transition(clerk, supervisor, customer.customer_no, "terminated", terminated_on="2026-10-31", long_policy=False)
    with pytest.raises(ValidationError) as excinfo:
        cr.submit_change_request(clerk, customer.customer_no, 2, {"category": "prospect"},
                                 source="clerk_correction", reason="category update")
    assert errors_of(excinfo) == {"category": "bad_transition"}


def test_termination_details_only_with_a_termination(clerk, customer):
    with pytest.raises(ValidationError) as excinfo:
        cr.submit_change_request(clerk, customer.customer_no, 1, {"city": "杭州市"}, source="clerk_correction",
                                 reason="moved", terminated_on="2026-10-31", long_policy=True)
    assert errors_of(excinfo) == {"terminated_on": "not_allowed", "long_policy": "not_allowed"}


def test_retention_rule_fallback_matches_the_statutory_periods():
    assert cr.customers._add_months(dt.date(2026, 10, 31), 60) == dt.date(2031, 10, 31)
    assert cr.customers._add_months(dt.date(2024, 2, 29), 120) == dt.date(2034, 2, 28)


def test_destroyed_keys_leave_the_queue_readable(clerk, supervisor, customer):
    file_phone(clerk, customer.customer_no)
    from models import keystore
    keystore.destroy_data_key(record(customer.customer_no)["key_id"])
    assert [q.masked_name for q in cr.approval_queue(supervisor)] == ["?"]



def test_a_version_bumped_between_read_and_write_is_still_a_conflict(clerk, supervisor, customer, monkeypatch):
    request = file_phone(clerk, customer.customer_no)
    real = cr._current_values

    def read_then_someone_writes(row, key):
        values = real(row, key)
        Customer.update(version=Customer.version + 1).where(Customer.id == row["id"]).execute()
        return values

    monkeypatch.setattr(cr, "_current_values", read_then_someone_writes)
    with pytest.raises(ChangeConflict) as excinfo:
        cr.approve_change_request(supervisor, request.request_id)
    assert excinfo.value.current_version == 2
    monkeypatch.setattr(cr, "_current_values", real)
    assert record(customer.customer_no)["version"] == 1  # the whole approval rolled back
    assert ChangeRequest.get_by_id(request.request_id).status == "pending"


def test_lapsed_training_blocks_viewing_and_approving(admin, clerk, supervisor, customer):
    from models import training

    request = file_phone(clerk, customer.customer_no)
    training.record_training(admin, "supervisor", "数据保护培训", "2024-01-10", "2025-01-10")
    with pytest.raises(training.TrainingExpired):
        cr.request_detail(supervisor, request.request_id)
    with pytest.raises(training.TrainingExpired):
        cr.approve_change_request(supervisor, request.request_id)
    assert record(customer.customer_no)["version"] == 1
    training.record_training(admin, "supervisor", "数据保护培训", "2026-11-01")
    assert cr.approve_change_request(supervisor, request.request_id).status == "approved"


def test_evidence_from_the_inbox_belongs_to_the_request(office, clerk, supervisor, make_staff, customer):
    from models import documents

    inbox = office.settings.inbox_dir
    for name in ("report.pdf", "late.pdf"):
        (inbox / name).write_bytes(b"%PDF-1.4\n" + b"x" * 100)
    request = file_phone(clerk, customer.customer_no)
    attached = documents.attach_document(clerk, cr.TABLE, request.request_id, "report.pdf", "other")
    assert attached.inbox_copy_removed and not (inbox / "report.pdf").exists()
    with pytest.raises(PermissionDenied):
        documents.attach_document(make_staff("clerk2", "clerk"), cr.TABLE, request.request_id, "late.pdf", "other")
    detail = cr.request_detail(supervisor, request.request_id)
    assert detail.documents == ((attached.document_id, "other", "report.pdf"),)
    exported = documents.export_document(supervisor, attached.document_id, "change request approval")
    assert exported.path.read_bytes().startswith(b"%PDF")
    cr.approve_change_request(supervisor, request.request_id)
    with pytest.raises(PermissionDenied):  # decided: the evidence is closed
        documents.attach_document(clerk, cr.TABLE, request.request_id, "late.pdf", "other")
