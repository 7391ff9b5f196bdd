"""The audit log: hash chain verification, append-only guards, no personal data, audit before decryption."""

from __future__ import annotations

import json
import random

import peewee as pw
import pytest
from faker import Faker

from models import audit, clock, crypto, customers, demo, keystore, normalise
from models.audit import AuditEntry
from models.db import db, is_sqlite

SENTINEL = {
    "full_name": "测试哨兵乙",
    "mobile": "13712345098",
    "street": "哨兵大道乙九十九号",
    "email": "sentinel.beta@example.com",
    "employer": "哨兵审计测试有限公司",
    "notes": "哨兵备注乙：客户喜欢下午来电",
}


def entries() -> list[dict]:
    return list(AuditEntry.select().order_by(AuditEntry.seq).dicts())


def fill(n: int = 8) -> None:
    for i in range(n):
        audit.append(actor_id=1, actor="admin", action="TEST", object_type="thing", object_id=str(i),
                     fields=["a", "b"], details={"i": i, "note": "编号"})


def disable_guards() -> None:
    """What an attacker with write access to the database would do first."""
    if is_sqlite():
        db.execute_sql("DROP TRIGGER audit_entry_no_update")
        db.execute_sql("DROP TRIGGER audit_entry_no_delete")
    else:
        db.execute_sql("ALTER TABLE audit_entry DISABLE TRIGGER USER")


def tamper_update(target: int, **values) -> None:
    AuditEntry.update(**values).where(AuditEntry.seq == target).execute()


# --- the chain ---------------------------------------------------------------------------


def test_a_chain_of_entries_verifies(office):
    fill(20)
    rows = entries()
    result = audit.verify_chain()
    assert result.ok and result.first_bad_seq is None
    assert result.entries == len(rows) == AuditEntry.select().count()
    assert result.head_hash == rows[-1]["hash"]
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0]["prev_hash"] == audit.GENESIS
    assert all(rows[i]["prev_hash"] == rows[i - 1]["hash"] for i in range(1, len(rows)))


def test_verify_works_across_batches_and_reports_progress(office):
    fill(25)
    seen = []
    result = audit.verify_chain(progress=lambda done, total: seen.append((done, total)), batch=7)
    assert result.ok
    total = AuditEntry.select().count()
    assert seen[-1] == (total, total) and len(seen) == -(-total // 7)


def test_an_empty_log_verifies(settings, frozen_clock):
    from models import migrations, office as office_mod

    office_mod.create_office_files(settings)
    office_mod.open_office(settings, check_schema=False)
    try:
        migrations.migrate()
        assert audit.verify_chain() == audit.VerifyResult(0, True)
    finally:
        office_mod.close_office()


@pytest.mark.parametrize("column, value", [
    ("action", "LOGOUT"), ("actor", "someone-else"), ("outcome", "failed"), ("object_id", "C2026999999"),
    ("details", '{"i":3,"note":"x"}'), ("ts", "2020-01-01T00:00:00.000+00:00"), ("purpose", "cover-up"),
    ("fields", "a"), ("actor_id", 2),
])
def test_editing_a_row_is_detected_at_that_seq(office, column, value):
    fill(10)
    target = 6
    disable_guards()
    tamper_update(target, **{column: value})
    result = audit.verify_chain()
    assert not result.ok and result.first_bad_seq == target, result
    assert result.entries == target - 1


def test_editing_a_row_and_its_hash_is_detected_at_the_next_seq(office):
    fill(10)
    disable_guards()
    row = AuditEntry.get_by_id(4).__data__
    row["outcome"] = "failed"
    tamper_update(4, outcome="failed", hash=audit.chain_hash(row["prev_hash"], row))
    result = audit.verify_chain()
    assert not result.ok and result.first_bad_seq == 5


def test_deleting_a_row_is_detected(office):
    fill(10)
    disable_guards()
    AuditEntry.delete().where(AuditEntry.seq == 4).execute()
    result = audit.verify_chain()
    assert not result.ok and result.first_bad_seq == 4 and "missing" in result.reason


def test_deleting_the_first_row_is_detected(office):
    fill(5)
    disable_guards()
    AuditEntry.delete().where(AuditEntry.seq == 1).execute()
    result = audit.verify_chain()
    assert not result.ok and result.first_bad_seq == 1


def test_swapping_two_rows_content_is_detected(office):
    fill(10)
    disable_guards()
    a, b = AuditEntry.get_by_id(3).__data__, AuditEntry.get_by_id(7).__data__
    content = [c for c in a if c != "seq"]
    with db.atomic():
        tamper_update(3, **{c: b[c] for c in content})
        tamper_update(7, **{c: a[c] for c in content})
    result = audit.verify_chain()
    assert not result.ok and result.first_bad_seq == 3


def test_reordering_rows_by_renumbering_is_detected(office):
    fill(10)
    disable_guards()
    with db.atomic():
        tamper_update(5, seq=1000)
        tamper_update(6, seq=5)
        tamper_update(1000, seq=6)
    result = audit.verify_chain()
    assert not result.ok and result.first_bad_seq == 5


def test_inserting_a_forged_row_is_detected(office):
    fill(5)
    disable_guards()
    with db.atomic():
        newest = AuditEntry.select().count()
        for seq in range(newest, 2, -1):  # make room after seq 2
            tamper_update(seq, seq=seq + 1)
    forged = {"seq": 3, "ts": "2026-11-25T02:00:00.000+00:00", "actor_id": 1, "actor": "admin",
              "session_id": "", "action": "TEST", "object_type": "", "object_id": "", "fields": "",
              "purpose": "", "outcome": "ok", "details": "{}"}
    AuditEntry.insert(**forged, prev_hash="0" * 64, hash=audit.chain_hash("0" * 64, forged)).execute()
    result = audit.verify_chain()
    assert not result.ok and result.first_bad_seq == 3


def test_deleting_the_newest_rows_is_detected(office):
    fill(10)
    disable_guards()
    AuditEntry.delete().where(AuditEntry.seq >= 9).execute()
    assert not audit.verify_chain().ok


def test_rewriting_an_entry_and_recomputing_the_chain_is_detected(office):
    fill(10)
    disable_guards()
    rows = entries()
    prev = rows[3]["prev_hash"]
    with db.atomic():
        for row in rows[3:]:
            if row["seq"] == 4:
                row["outcome"] = "failed"
            row["hash"] = audit.chain_hash(prev, row)
            tamper_update(row["seq"], outcome=row["outcome"], prev_hash=prev, hash=row["hash"])
            prev = row["hash"]
    assert not audit.verify_chain().ok


# --- the append-only guards ----------------------------------------------------------


def test_guards_block_update_and_delete(office):
    fill(5)
    with pytest.raises(pw.PeeweeException):
        with db.atomic():
            tamper_update(2, outcome="failed")
    with pytest.raises(pw.PeeweeException):
        with db.atomic():
            AuditEntry.delete().where(AuditEntry.seq == 2).execute()
    with pytest.raises(pw.PeeweeException):
        with db.atomic():
            AuditEntry.delete().execute()
    with pytest.raises(pw.PeeweeException):
        with db.atomic():
            db.execute_sql("UPDATE audit_entry SET hash = 'x'")
    if not is_sqlite():
        with pytest.raises(pw.PeeweeException):
            with db.atomic():
                db.execute_sql("TRUNCATE audit_entry")
    assert AuditEntry.get_by_id(2).outcome == "ok"
    assert AuditEntry.select().count() == len(entries()) >= 5
    assert audit.verify_chain().ok
    # Appending still works after the refused attempts.
    audit.append(actor_id=None, actor="system", action="TEST")
    assert audit.verify_chain().ok


def test_service_writes_keep_the_chain_valid(office, clerk):
    fill(3)
    customers_made = []
    fake = Faker("zh_CN")
    fake.seed_instance(3)
    rng = random.Random(3)
    for _ in range(3):
        customers_made.append(customers.create_customer(clerk, demo.fake_customer(fake, rng, clock.today())))
    result = audit.verify_chain()
    assert result.ok and result.entries == AuditEntry.select().count()


# --- no personal data in the log -------------------------------------------------------


def _sentinel_customer() -> dict:
    fake = Faker("zh_CN")
    fake.seed_instance(11)
    rng = random.Random(11)
    data = demo.fake_customer(fake, rng, clock.today())
    data.update(SENTINEL)
    return data


def _forms(data: dict) -> set[str]:
    forms = {str(data[k]) for k in (*SENTINEL, "id_number", "date_of_birth")}
    forms |= {normalise.normalise_name(str(data["full_name"])), normalise.normalise_phone(str(data["mobile"])),
              str(data["id_number"])[-8:], str(data["mobile"])[-8:], data["date_of_birth"].replace("-", "")}
    return forms


def test_audit_never_holds_personal_values(office, clerk):
    data = _sentinel_customer()
    summary = customers.create_customer(clerk, data)
    number = summary.customer_no
    customers.get_customer(clerk, number)
    customers.reveal_fields(clerk, number, ["full_name", "mobile", "id_number", "street"], "客户来电核实身份")
    spaced_name = " ".join(data["full_name"])
    searches = [("full_name", data["full_name"]), ("full_name", spaced_name), ("mobile", data["mobile"]),
                ("mobile", "+86 " + data["mobile"]), ("id_number", data["id_number"]), ("customer_no", number)]
    for kind, term in searches:
        assert [s.customer_no for s in customers.find_customers(clerk, kind, term)] == [number], (kind, term)
    customers.find_customers(clerk, "mobile", "13800000000")  # a search that finds nothing

    rows = entries()
    actions = [r["action"] for r in rows]
    for action in ("CUSTOMER_CREATE", "VIEW", "REVEAL", "SEARCH"):
        assert action in actions
    dump = json.dumps(rows, default=str, ensure_ascii=False)
    for value in _forms(data) | {"13800000000", spaced_name}:
        assert value not in dump, f"personal value {value!r} leaked into the audit log"
    # The searches left keyed fingerprints, one per distinct normalised term.
    fingerprints = [json.loads(r["details"])["term_hmac"] for r in rows if r["action"] == "SEARCH"]
    assert len(fingerprints) == len(searches) + 1
    assert fingerprints[0] == fingerprints[1] and fingerprints[2] == fingerprints[3]
    reveal = next(r for r in rows if r["action"] == "REVEAL")
    assert reveal["purpose"] == "客户来电核实身份" and reveal["object_id"] == number
    assert reveal["fields"] == "full_name,mobile,id_number,street"
    assert audit.verify_chain().ok


# --- audited before decryption ----------------------------------------------------------


@pytest.fixture
def customer_no(office, clerk):
    return customers.create_customer(clerk, _sentinel_customer()).customer_no


@pytest.fixture
def broken_audit(customer_no, monkeypatch):
    """audit.append fails; record every attempt to load a data key or decrypt."""
    calls = []

    def refuse(**kwargs):
        calls.append(("append", kwargs.get("action")))
        raise RuntimeError("audit store unavailable")

    def spy(name, real):
        def wrapper(*args, **kwargs):
            calls.append((name, None))
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(audit, "append", refuse)
    monkeypatch.setattr(keystore, "load_data_key", spy("load_data_key", keystore.load_data_key))
    monkeypatch.setattr(keystore, "load_data_keys", spy("load_data_keys", keystore.load_data_keys))
    monkeypatch.setattr(crypto, "decrypt", spy("decrypt", crypto.decrypt))
    return calls


def test_a_view_is_audited_before_anything_is_decrypted(clerk, customer_no, broken_audit):
    with pytest.raises(RuntimeError, match="audit store unavailable"):
        customers.get_customer(clerk, customer_no)
    assert broken_audit == [("append", "VIEW")], "nothing may be decrypted before the view is audited"


def test_a_reveal_is_audited_before_anything_is_decrypted(clerk, customer_no, broken_audit):
    with pytest.raises(RuntimeError):
        customers.reveal_fields(clerk, customer_no, ["id_number"], "客户来电核实身份")
    assert broken_audit == [("append", "REVEAL")]


@pytest.mark.parametrize("kind, term", [("customer_no", "C2026"), ("full_name", SENTINEL["full_name"]),
                                        ("mobile", SENTINEL["mobile"])])
def test_a_search_is_audited_before_anything_is_decrypted(clerk, customer_no, broken_audit, kind, term):
    with pytest.raises(RuntimeError):
        customers.find_customers(clerk, kind, term)
    assert broken_audit == [("append", "SEARCH")]


def test_a_view_with_a_working_audit_does_decrypt(clerk, customer_no, monkeypatch):
    """The spies above would notice decryption: check they do when the audit works."""
    calls = []
    real = keystore.load_data_key
    monkeypatch.setattr(keystore, "load_data_key", lambda key_id: calls.append(key_id) or real(key_id))
    record = customers.get_customer(clerk, customer_no)
    assert len(calls) == 1 and record.values["full_name"] == "测*"  # one star, whatever the length


def test_if_the_audit_write_fails_the_change_fails(clerk, customer_no, monkeypatch):
    before = customers.count_customers()

    def refuse(**kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(audit, "append", refuse)
    with pytest.raises(RuntimeError):
        customers.create_customer(clerk, _sentinel_customer())
    monkeypatch.undo()
    assert customers.count_customers() == before
    assert audit.verify_chain().ok


def test_verify_chain_is_not_fooled_by_a_wrong_genesis(office):
    fill(3)
    disable_guards()
    first = AuditEntry.get_by_id(1).__data__
    tamper_update(1, prev_hash="f" * 64, hash=audit.chain_hash("f" * 64, first))
    result = audit.verify_chain()
    assert not result.ok and result.first_bad_seq == 1
    assert result.reason
