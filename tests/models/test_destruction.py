"""Destruction: the sweep, requests, four-eyes approval, resumable execution, the register, the ledger."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from faker import Faker

import models.db
from models import audit, clock, customers, demo, destruction, keystore, labels, ledger, office as office_mod, retention
from models.audit import AuditEntry
from models.customers import Customer
from models.destruction import DestructionItem, DestructionRegister, DestructionRequest
from models.errors import Conflict, IntegrityFailure, NotFound, PermissionDenied, ValidationError
from models.keystore import DataKey
from tests.conftest import FROZEN_NOW, TEST_PASSWORD

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def officer(make_staff):
    return make_staff("officer", "records_officer")


@pytest.fixture
def supervisor2(make_staff):
    return make_staff("supervisor2", "supervisor")


def make_customers(clerk, count: int, seed: int = 11, **overrides) -> list[str]:
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        data = {**demo.fake_customer(fake, rng, clock.today()), "category": "active", **overrides}
        made.append(customers.create_customer(clerk, data).customer_no)
    return made


def terminated_long_ago(clerk, officer, count: int, seed: int = 11, **overrides) -> list[str]:
    numbers = make_customers(clerk, count, seed, **overrides)
    for number in numbers:
        retention.record_termination(officer, number, "2014-06-30", False)  # kept until 2019-06-30
    return numbers


def approved_request(officer, supervisor, numbers, reason="retention period over") -> str:
    request = destruction.file_request(officer, numbers, reason)
    destruction.decide_request(supervisor, request.request_no, True, "checked the list")
    return request.request_no


def customer_id_of(number: str) -> str:
    return Customer.get(Customer.customer_no == number).id


def assert_destroyed(customer_id: str, number: str, key_ids: list[str]) -> None:
    assert not Customer.select().where(Customer.id == customer_id).exists()
    for key_id in key_ids:
        assert not DataKey.select().where(DataKey.key_id == key_id).exists()
    for spec, model in destruction.active_customer_data():
        assert not model.select().where(getattr(model, spec.column) == customer_id).exists(), spec.model
    assert DestructionRegister.select().where(DestructionRegister.customer_id == customer_id).count() == 1
    assert [e["customer_id"] for e in ledger.read_entries()].count(customer_id) == 1
    done = AuditEntry.select().where((AuditEntry.action == "DESTROY_DONE") & (AuditEntry.object_id == number))
    assert done.count() == 1


# --- the sweep ------------------------------------------------------------------------------------


def test_the_sweep_lists_customers_past_retention_and_not_held_with_why(office, clerk, officer):
    old = terminated_long_ago(clerk, officer, 3)
    recent = make_customers(clerk, 1, seed=12)
    retention.record_termination(officer, recent[0], "2024-01-01", False)  # kept until 2029
    active = make_customers(clerk, 1, seed=13)
    retention.place_hold(officer, old[2], "open_claim")
    result = destruction.retention_sweep(officer)
    assert [e.customer_no for e in result.eligible] == sorted(old[:2])
    assert result.eligible_total == 2 and result.held_past_retention == 1
    first = result.eligible[0]
    assert first.rule_code == retention.TERMINATED_SHORT and first.retention_until == dt.date(2019, 6, 30)
    assert first.why() == "terminated 2014-06-30, policies ≤ 1 year: 5 years ended 2019-06-30"
    assert "art. 87" in first.basis
    assert active[0] not in [e.customer_no for e in result.eligible]
    assert AuditEntry.select().where(AuditEntry.action == "RETENTION_SWEEP").count() == 1
    with pytest.raises(PermissionDenied):
        destruction.retention_sweep(clerk)


def test_prospects_past_two_years_since_last_contact_are_eligible(office, clerk, officer):
    (number,) = make_customers(clerk, 1, category="prospect")
    Customer.update(last_contact=dt.date(2024, 11, 25)).where(Customer.customer_no == number).execute()
    retention._apply_retention(customer_id_of(number))
    assert destruction.retention_sweep(officer).eligible == []  # until 2026-11-25: the last day, today
    clock.advance(dt.timedelta(days=1))
    (entry,) = destruction.retention_sweep(officer).eligible
    assert (entry.customer_no, entry.rule_code) == (number, retention.PROSPECT)


# --- requests and four-eyes -------------------------------------------------------------------------


def test_a_request_takes_only_eligible_customers(office, clerk, officer):
    old = terminated_long_ago(clerk, officer, 2)
    (active,) = make_customers(clerk, 1, seed=14)
    with pytest.raises(ValidationError) as caught:
        destruction.file_request(officer, [old[0], active], "retention period over")
    assert active in caught.value.by_field()["customers"]
    with pytest.raises(ValidationError) as caught:
        destruction.file_request(officer, old, "")
    assert "reason" in caught.value.by_field()
    with pytest.raises(ValidationError):
        destruction.file_request(officer, [], "retention period over")
    request = destruction.file_request(officer, old, "retention period over")
    assert (request.status, request.customer_count, request.requested_by) == ("pending", 2, "officer")
    assert request.request_no == f"DR{clock.today().year}-0001"
    with pytest.raises(ValidationError):  # already in an open request
        destruction.file_request(officer, [old[0]], "retention period over")
    assert destruction.retention_sweep(officer).already_requested == 2


def test_nobody_approves_their_own_request(office, clerk, make_staff, supervisor):
    both = make_staff("both", "records_officer", "supervisor")
    old = terminated_long_ago(clerk, both, 1)
    request = destruction.file_request(both, old, "retention period over")
    with pytest.raises(PermissionDenied):
        destruction.decide_request(both, request.request_no, True, "looks fine")
    denied = AuditEntry.select().where(AuditEntry.action == "DENIED").order_by(AuditEntry.seq.desc()).first()
    assert denied.object_id == request.request_no and "four_eyes" in denied.details
    assert DestructionRequest.get_by_id(request.request_id).status == "pending"
    with pytest.raises(PermissionDenied):
        destruction.decide_request(clerk, request.request_no, True, "looks fine")
    with pytest.raises(ValidationError):
        destruction.decide_request(supervisor, request.request_no, True, "")  # a note is required
    decided = destruction.decide_request(supervisor, request.request_no, True, "checked the list")
    assert (decided.status, decided.decided_by) == ("approved", "supervisor")
    with pytest.raises(Conflict):
        destruction.decide_request(supervisor, request.request_no, False, "changed my mind")


def test_a_supervisor_whose_training_lapsed_cannot_decide(office, clerk, officer, supervisor, admin):
    training = pytest.importorskip("models.training")
    old = terminated_long_ago(clerk, officer, 1)
    request = destruction.file_request(officer, old, "retention period over")
    training.record_training(admin, "supervisor", "data protection", "2024-01-01", "2025-01-01")
    with pytest.raises(training.TrainingExpired):
        destruction.decide_request(supervisor, request.request_no, True, "looks fine")
    assert DestructionRequest.get_by_id(request.request_id).status == "pending"


def test_a_rejected_or_pending_request_cannot_be_executed(office, clerk, officer, supervisor):
    old = terminated_long_ago(clerk, officer, 2)
    pending = destruction.file_request(officer, old[:1], "retention period over")
    with pytest.raises(Conflict):
        destruction.execute_request(officer, pending.request_no)
    rejected = destruction.decide_request(supervisor, pending.request_no, False, "claim still open")
    assert rejected.status == "rejected"
    with pytest.raises(Conflict):
        destruction.execute_request(officer, pending.request_no)
    assert Customer.select().where(Customer.customer_no == old[0]).exists()
    # A rejected request frees its customers for a later one.
    assert destruction.file_request(officer, old, "retention period over").customer_count == 2


def test_the_requester_may_withdraw_a_pending_request(office, clerk, officer, make_staff):
    other = make_staff("officer2", "records_officer")
    old = terminated_long_ago(clerk, officer, 1)
    request = destruction.file_request(officer, old, "retention period over")
    with pytest.raises(PermissionDenied):
        destruction.withdraw_request(other, request.request_no)
    assert destruction.withdraw_request(officer, request.request_no).status == "withdrawn"


def test_the_approver_sees_category_dates_basis_and_hold_status(office, clerk, officer, supervisor):
    old = terminated_long_ago(clerk, officer, 2)
    request = destruction.file_request(officer, old, "retention period over")
    retention.place_hold(supervisor, old[1], "dispute")
    detail = destruction.request_detail(supervisor, request.request_no)
    items = {item.customer_no: item for item in detail.items}
    assert items[old[0]].category == "terminated" and items[old[0]].start_date == dt.date(2014, 6, 30)
    assert items[old[0]].retention_until == dt.date(2019, 6, 30) and "art. 87" in items[old[0]].basis
    assert (items[old[0]].legal_hold, items[old[1]].legal_hold) == (False, True)


# --- execution ---------------------------------------------------------------------------------------


def test_execution_destroys_registers_and_certifies(office, clerk, officer, supervisor):
    old = terminated_long_ago(clerk, officer, 3)
    keep = make_customers(clerk, 1, seed=21)
    label = labels.create_label(officer, "VIP")
    labels.label_customer(officer, old[0], [label.label_id])
    hold = retention.place_hold(officer, old[0], "open_claim", "claim 7")
    retention.release_hold(supervisor, hold.hold_id, "claim settled")
    ids = {number: customer_id_of(number) for number in old}
    keys = {number: Customer.get(Customer.customer_no == number).key_id for number in old}
    request_no = approved_request(officer, supervisor, old)
    seen = []
    result = destruction.execute_request(officer, request_no, progress=lambda done, total: seen.append((done, total)))
    assert (result.destroyed, result.excluded, result.wal_truncated) == (3, 0, True)
    assert seen[-1] == (3, 3)
    for number in old:
        assert_destroyed(ids[number], number, [keys[number]])
        with pytest.raises(NotFound):
            customers.get_customer(officer, number)
    assert customers.get_customer(officer, keep[0]).customer_no == keep[0]
    request = destruction.request_detail(officer, request_no).request
    assert (request.status, request.executed_by, request.destroyed_count) == ("done", "officer", 3)

    register = destruction.destruction_register(officer)
    assert sorted(e.customer_no for e in register) == sorted(old)
    entry = next(e for e in register if e.customer_no == old[0])
    assert (entry.requested_by, entry.approved_by, entry.executed_by) == ("officer", "supervisor", "officer")
    assert entry.method == destruction.METHOD
    assert entry.counts["customer"] == 1 and entry.counts["data_key"] == 1
    assert entry.counts["customer_label"] == 1 and entry.counts["legal_hold"] == 1
    assert entry.counts["customer_event"] >= 3
    intents = AuditEntry.select().where(AuditEntry.action == "DESTROY_INTENT").order_by(AuditEntry.seq)
    dones = AuditEntry.select().where(AuditEntry.action == "DESTROY_DONE").order_by(AuditEntry.seq)
    assert intents.count() == 3 and dones.count() == 3 and intents[0].seq < dones[0].seq
    assert audit.verify_chain().ok

    text = destruction.certificate(officer, request_no)
    assert request_no in text and destruction.METHOD in text and all(number in text for number in old)
    assert "supervisor" in text and "SHA-256" in text
    path = destruction.export_certificate(officer, request_no)
    assert path.read_text(encoding="utf-8").startswith("销毁证明")
    with pytest.raises(PermissionDenied):
        destruction.destruction_register(clerk)


def test_the_auditor_reads_the_register_but_cannot_destroy(office, clerk, officer, supervisor, auditor):
    old = terminated_long_ago(clerk, officer, 1)
    request_no = approved_request(officer, supervisor, old)
    with pytest.raises(PermissionDenied):
        destruction.execute_request(auditor, request_no)
    with pytest.raises(PermissionDenied):
        destruction.execute_request(supervisor, request_no)
    destruction.execute_request(officer, request_no)
    assert [e.customer_no for e in destruction.destruction_register(auditor)] == old


def test_a_hold_placed_after_approval_keeps_the_customer(office, clerk, officer, supervisor):
    old = terminated_long_ago(clerk, officer, 2)
    request_no = approved_request(officer, supervisor, old)
    retention.place_hold(supervisor, old[1], "regulator_request")
    result = destruction.execute_request(officer, request_no)
    assert (result.destroyed, result.excluded, result.excluded_reasons) == (1, 1, {"legal_hold": 1})
    assert customers.get_customer(officer, old[1]).customer_no == old[1]
    assert not Customer.select().where(Customer.customer_no == old[0]).exists()
    assert "on legal hold" in destruction.certificate(officer, request_no)


def test_a_customer_who_returned_since_the_request_is_kept(office, clerk, officer, supervisor):
    old = terminated_long_ago(clerk, officer, 1)
    request_no = approved_request(officer, supervisor, old)
    Customer.update(category="active").where(Customer.customer_no == old[0]).execute()
    retention._apply_retention(customer_id_of(old[0]))
    result = destruction.execute_request(officer, request_no)
    assert result.excluded_reasons == {"not_eligible": 1}
    assert Customer.select().where(Customer.customer_no == old[0]).exists()


def test_a_hold_cannot_be_placed_once_destruction_is_under_way(office, clerk, officer, supervisor):
    old = terminated_long_ago(clerk, officer, 1)
    request_no = approved_request(officer, supervisor, old)
    row = DestructionRequest.get(DestructionRequest.request_no == request_no)
    item = DestructionItem.get(DestructionItem.request_id == row.id)
    ctx = destruction._context_for(officer, row, "officer")
    destruction._step_intent(ctx, item)
    with pytest.raises(ValidationError) as caught:
        retention.place_hold(supervisor, old[0], "dispute")
    assert caught.value.errors[0].code == "destroying"


def test_every_table_holding_customer_data_is_registered(office):
    assert destruction.unregistered_customer_tables() == []


def test_change_requests_and_their_rows_go_with_the_customer(office, clerk, officer, supervisor):
    change_requests = pytest.importorskip("models.change_requests")
    old = terminated_long_ago(clerk, officer, 1)
    version = Customer.get(Customer.customer_no == old[0]).version
    change_requests.submit_change_request(clerk, old[0], version, {"notes": "moved abroad"},
                                          source="customer_report", reason="customer called", channel="phone",
                                          reported_on=clock.today().isoformat())
    customer_id = customer_id_of(old[0])
    assert change_requests.ChangeRequest.select().where(change_requests.ChangeRequest.customer_id
                                                        == customer_id).exists()
    destruction.execute_request(officer, approved_request(officer, supervisor, old))
    assert not change_requests.ChangeRequest.select().where(change_requests.ChangeRequest.customer_id
                                                            == customer_id).exists()
    (entry,) = destruction.destruction_register(officer)
    assert entry.counts.get("change_request") == 1


def test_documents_of_the_customer_and_of_their_change_requests_go_too(office, settings, clerk, officer, supervisor):
    documents = pytest.importorskip("models.documents")
    old = terminated_long_ago(clerk, officer, 1)
    customer_id = customer_id_of(old[0])
    (settings.inbox_dir / "scan-0001.pdf").write_bytes(b"%PDF-1.4\nSENTINEL-DOCUMENT-BODY\n%%EOF\n")
    documents.attach_document(clerk, "customer", customer_id, "scan-0001.pdf", "other")
    assert documents.Document.select().where(documents.Document.owner_id == customer_id).count() == 1
    destruction.execute_request(officer, approved_request(officer, supervisor, old))
    assert not documents.Document.select().where(documents.Document.owner_id == customer_id).exists()
    assert documents.DocumentChunk.select().count() == 0
    (entry,) = destruction.destruction_register(officer)
    assert entry.counts.get("document") == 1


# --- crash at every step, then resume -----------------------------------------------------------------

CHILD = r"""
import datetime as dt, json, os, signal, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from models import clock, destruction, keystore, ledger, office, staff
from tests.conftest import make_settings

args = json.loads(sys.argv[1])
clock.freeze(dt.datetime.fromisoformat(args["now"]))
office.open_office(make_settings(Path(args["home"]), database_url=args["url"]))
actor = staff.authenticate("officer", args["password"])
owner, name = args["kill_after"].split(":")
target = {{"destruction": destruction, "ledger": ledger, "keystore": keystore}}[owner]
original = getattr(target, name)
calls = []

def wrapped(*a, **k):
    result = original(*a, **k)
    calls.append(1)
    if len(calls) == args["on_call"]:
        os.kill(os.getpid(), signal.SIGKILL)
    return result

setattr(target, name, wrapped)
destruction.execute_request(actor, args["request_no"])
print("finished without being killed")
"""

KILL_POINTS = [
    ("destruction:_step_intent", 1),        # intent audited, nothing else
    ("ledger:append", 1),                   # ledger line fsynced, key still there
    ("keystore:destroy_data_key", 1),       # key gone, item not yet marked
    ("destruction:_step_destroy_key", 2),   # second customer: key gone, rows still there
    ("destruction:_purge_rows", 1),         # rows deleted but not committed
    ("destruction:_step_delete_rows", 1),   # rows gone, no register entry
    ("destruction:_step_register", 1),      # registered, DESTROY_DONE not audited
    ("destruction:_step_done", 2),          # first two customers done, third untouched
    ("destruction:_refresh_request_status", 1),  # all done, request still "executing"
    ("destruction:checkpoint_both", 1),     # everything committed, WAL not yet truncated
]


@pytest.mark.parametrize("kill_after, on_call", KILL_POINTS, ids=[k for k, _n in KILL_POINTS])
def test_kill_9_at_any_step_then_resume_leaves_no_half_destroyed_customer(
        office, settings, clerk, officer, supervisor, kill_after, on_call):
    old = terminated_long_ago(clerk, officer, 3)
    (bystander,) = make_customers(clerk, 1, seed=31)
    ids = {number: customer_id_of(number) for number in old}
    keys = {number: Customer.get(Customer.customer_no == number).key_id for number in old}
    request_no = approved_request(officer, supervisor, old)
    args = {"home": str(settings.home), "url": settings.database_url, "now": FROZEN_NOW.isoformat(),
            "password": TEST_PASSWORD, "kill_after": kill_after, "on_call": on_call, "request_no": request_no}
    child = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), json.dumps(args)],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert child.returncode == -9, child.stdout + child.stderr[-3000:]
    unfinished = DestructionItem.select().where(DestructionItem.step != "done").count()
    assert unfinished == 0 if kill_after.endswith(("_refresh_request_status", "checkpoint_both")) else unfinished > 0

    # The office is opened again (the start-up replay runs), and the sweep resumes what is unfinished.
    office_mod.open_office(settings)
    destruction.execute_approved(officer)
    for number in old:
        assert_destroyed(ids[number], number, [keys[number]])
    assert DestructionRequest.get(DestructionRequest.request_no == request_no).status == "done"
    assert customers.get_customer(officer, bystander).customer_no == bystander
    assert audit.verify_chain().ok
    assert ledger.keystore_mark()[0] == ledger.database_mark()[0] == ledger.tail()[0] == 3


def test_resuming_twice_changes_nothing(office, clerk, officer, supervisor):
    old = terminated_long_ago(clerk, officer, 2)
    request_no = approved_request(officer, supervisor, old)
    destruction.execute_request(officer, request_no)
    entries, register = len(ledger.read_entries()), DestructionRegister.select().count()
    with pytest.raises(Conflict):
        destruction.execute_request(officer, request_no)  # done: nothing to execute
    assert destruction.reconcile().keys_destroyed == 0
    assert (len(ledger.read_entries()), DestructionRegister.select().count()) == (entries, register)


def test_only_one_destruction_run_at_a_time(office, clerk, officer, supervisor):
    old = terminated_long_ago(clerk, officer, 1)
    request_no = approved_request(officer, supervisor, old)
    with ledger.run_lock():
        with pytest.raises(Conflict):
            destruction.execute_request(officer, request_no)
    destruction.execute_request(officer, request_no)


# --- nothing recoverable on disk ------------------------------------------------------------------


def _files_containing(home: Path, needles: dict[str, bytes]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for label, needle in needles.items():
                if needle in data:
                    found.setdefault(label, []).append(str(path.relative_to(home)))
    return found


def test_after_destruction_no_copy_of_the_customer_or_their_key_is_left_on_disk(office, settings, clerk, officer,
                                                                                 supervisor):
    if not models.db.is_sqlite():
        pytest.skip("raw-file check of the SQLite database and WAL")
    (number,) = make_customers(clerk, 1, seed=41, notes="SENTINEL-NOTE-Q7X3", street="哨兵街道九十九号",
                               email="sentinel.q7x3@example.com")
    bystanders = make_customers(clerk, 2, seed=42)
    retention.record_termination(officer, number, "2014-06-30", False)
    hold = retention.place_hold(officer, number, "open_claim", "SENTINEL-HOLD-NOTE")
    retention.release_hold(supervisor, hold.hold_id, "claim settled")
    row = Customer.get(Customer.customer_no == number)
    needles = {
        "notes": "SENTINEL-NOTE-Q7X3".encode(), "street": "哨兵街道九十九号".encode(),
        "email": b"sentinel.q7x3@example.com", "hold note": b"SENTINEL-HOLD-NOTE",
        "wrapped key": bytes(DataKey.get_by_id(row.key_id).wrapped),
        "name ciphertext": bytes(row.full_name)[13:45], "notes ciphertext": bytes(row.notes)[13:45],
    }
    destruction.checkpoint_both()
    before = _files_containing(settings.home, needles)
    assert set(before) == {"wrapped key", "name ciphertext", "notes ciphertext"}  # the check can see them

    destruction.execute_request(officer, approved_request(officer, supervisor, [number]))
    assert _files_containing(settings.home, needles) == {}
    for wal in settings.home.rglob("*-wal"):
        assert wal.stat().st_size == 0, wal
    for bystander in bystanders:  # the others are intact
        assert customers.get_customer(officer, bystander).customer_no == bystander


# --- the ledger ----------------------------------------------------------------------------------


def test_the_ledger_holds_ids_and_staff_names_only(office, clerk, officer, supervisor):
    old = terminated_long_ago(clerk, officer, 1)
    destruction.execute_request(officer, approved_request(officer, supervisor, old))
    (entry,) = ledger.read_entries()
    assert entry["customer_no"] == old[0] and entry["executed_by"] == "officer"
    assert set(entry) == {"at", "request_id", "request_no", "customer_id", "customer_no", "key_ids", "category",
                          "rule", "rule_years", "start_date", "retention_until", "requested_by", "approved_by",
                          "executed_by", "seq", "prev", "mac"}
    assert os.stat(ledger.ledger_path()).st_mode & 0o077 == 0


def test_a_tampered_ledger_is_refused(office, clerk, officer, supervisor):
    old = terminated_long_ago(clerk, officer, 2)
    destruction.execute_request(officer, approved_request(officer, supervisor, old))
    path = ledger.ledger_path()
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0].replace(old[0].encode(), b"C2000000001") + lines[1])
    with pytest.raises(IntegrityFailure):
        ledger.read_entries()


def test_a_torn_last_line_is_ignored_and_overwritten(office, clerk, officer, supervisor):
    old = terminated_long_ago(clerk, officer, 2)
    destruction.execute_request(officer, approved_request(officer, supervisor, old[:1]))
    with open(ledger.ledger_path(), "ab") as handle:
        handle.write(b'{"seq":2,"customer_id":"half-writ')
    assert len(ledger.read_entries()) == 1
    destruction.execute_request(officer, approved_request(officer, supervisor, old[1:]))
    assert [e["seq"] for e in ledger.read_entries()] == [1, 2]


def test_a_lost_or_older_ledger_stops_the_office_from_opening(office, settings, clerk, officer, supervisor):
    old = terminated_long_ago(clerk, officer, 2)
    destruction.execute_request(officer, approved_request(officer, supervisor, old[:1]))
    older = ledger.ledger_path().read_bytes()
    destruction.execute_request(officer, approved_request(officer, supervisor, old[1:]))
    ledger.ledger_path().write_bytes(older)
    with pytest.raises(IntegrityFailure):
        office_mod.open_office(settings)
    with pytest.raises(Exception):
        office_mod.current()  # refused: nobody is served
