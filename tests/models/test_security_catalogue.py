"""Cases of the security test catalogue (security-anchors §8) that no other test file covered fully.

T2 a corrupt stored hash; T4 a long brute-force run against one account; T9 a tampered or moved
ciphertext is refused and audited as INTEGRITY_FAIL; T10 nonces under one data key (10^5 here,
10^6 in tests/benchmarks/bench_security.py); T12 blind-index buckets hold about R/2^L candidates.
The README's "Security tests" table maps every case to its tests.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from collections import Counter

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from faker import Faker

from models import audit, bulkgen, clock, crypto, customers, demo, staff
from models.audit import AuditEntry
from models.customers import Customer
from models.errors import AuthenticationFailed, IntegrityFailure
from models.staff import Staff
from tests.conftest import TEST_PASSWORD


def _actions(action: str, **where) -> list[AuditEntry]:
    query = AuditEntry.select().where(AuditEntry.action == action)
    for column, value in where.items():
        query = query.where(getattr(AuditEntry, column) == value)
    return list(query.order_by(AuditEntry.seq))


# --- T2 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stored", ["not-a-hash", "$argon2id$v=19$m=8192,t=1,p=1$c2FsdA$", "", "$argon2id$" + "x" * 180])
def test_t2_a_corrupt_stored_hash_is_the_generic_failure_and_audited(office, make_staff, stored):
    make_staff("victim", "clerk")
    Staff.update(password_hash=stored).where(Staff.username == "victim").execute()
    with pytest.raises(AuthenticationFailed) as failed:
        staff.authenticate("victim", TEST_PASSWORD)
    assert str(failed.value) == staff.WRONG_LOGIN
    assert _actions("LOGIN", outcome="failed")[-1].actor == "victim"
    assert audit.verify_chain().ok


# --- T4 -----------------------------------------------------------------------------------------


def test_t4_150_wrong_passwords_in_an_hour(office, admin, make_staff, frozen_clock):
    make_staff("target", "clerk")
    make_staff("bystander", "clerk")
    for _ in range(150):  # one attempt every 24 seconds for an hour
        with pytest.raises(AuthenticationFailed):
            staff.authenticate("target", "wrong password guess")
        frozen_clock.advance(dt.timedelta(seconds=24))
    checked = [e for e in _actions("LOGIN", outcome="failed", actor="target") if '"bad_password"' in e.details]
    refused = [e for e in _actions("LOGIN", outcome="failed", actor="target") if '"bad_password"' not in e.details]
    # delays from the third failure, locked at the tenth: few guesses are checked at all, far under 100 an hour
    assert len(checked) <= 10 and len(checked) + len(refused) == 150
    assert len(_actions("ACCOUNT_LOCK", actor="target")) == 1  # on record for the admin and the auditor
    assert next(s for s in staff.list_staff(admin) if s.username == "target").locked
    with pytest.raises(AuthenticationFailed):  # even the right password, until an admin unlocks
        staff.authenticate("target", TEST_PASSWORD)
    assert staff.authenticate("bystander", TEST_PASSWORD).username == "bystander"  # others unaffected


# --- T9 -----------------------------------------------------------------------------------------


@pytest.fixture
def stored_customer(office, make_staff):
    clerk = make_staff("clerk", "clerk")
    fake, rng = Faker("zh_CN"), random.Random(3)
    fake.seed_instance(3)
    number = customers.create_customer(clerk, {**demo.fake_customer(fake, rng, clock.today()),
                                               "category": "active"}).customer_no
    return clerk, number


@pytest.mark.parametrize("tamper", ["flip a bit of the name", "ID ciphertext in the mobile column",
                                    "another customer's name"])
def test_t9_a_tampered_ciphertext_is_refused_and_audited(stored_customer, tamper):
    clerk, number = stored_customer
    row = Customer.get(Customer.customer_no == number)
    if tamper == "flip a bit of the name":
        blob = bytearray(bytes(row.full_name))
        blob[len(blob) // 2] ^= 0x01
        Customer.update(full_name=bytes(blob)).where(Customer.id == row.id).execute()
    elif tamper == "ID ciphertext in the mobile column":
        Customer.update(mobile=bytes(row.id_number)).where(Customer.id == row.id).execute()
    else:
        fake, rng = Faker("zh_CN"), random.Random(4)
        fake.seed_instance(4)
        other = customers.create_customer(clerk, {**demo.fake_customer(fake, rng, clock.today()),
                                                  "category": "active"}).customer_no
        Customer.update(full_name=bytes(Customer.get(Customer.customer_no == other).full_name)).where(
            Customer.id == row.id).execute()
    for call in (lambda: customers.get_customer(clerk, number),
                 lambda: customers.reveal_fields(clerk, number, ["full_name", "mobile"], "check the record")):
        before = AuditEntry.select().count()
        with pytest.raises(IntegrityFailure) as refused:
            call()
        assert "integrity" in str(refused.value)
        new = list(AuditEntry.select().where(AuditEntry.seq > before).order_by(AuditEntry.seq))
        assert [e.action for e in new][0] in ("VIEW", "REVEAL")  # audited before anything was decrypted
        assert new[-1].action == "INTEGRITY_FAIL" and new[-1].outcome == "failed" and new[-1].actor == "clerk"
    assert audit.verify_chain().ok


# --- T10 ----------------------------------------------------------------------------------------


def test_t10_nonces_never_repeat_under_one_data_key():
    key = crypto.new_data_key()
    aes = AESGCM(key)
    aad = crypto.field_aad("customer", "c1", "full_name", "k1")
    seen_nonces, seen_ciphertexts = set(), set()
    for _ in range(100_000):
        blob = crypto.encrypt(key, b"\xe7\x8e\x8b\xe4\xbc\x9f", aad)
        nonce = blob[1:1 + crypto.NONCE_BYTES]
        seen_nonces.add(nonce)
        seen_ciphertexts.add(blob[1 + crypto.NONCE_BYTES:])
    assert len(seen_nonces) == len(seen_ciphertexts) == 100_000
    assert aes.decrypt(nonce, blob[1 + crypto.NONCE_BYTES:], aad) == "王伟".encode()


# --- T12 ----------------------------------------------------------------------------------------


def test_t12_buckets_hold_about_r_over_2_to_the_l_candidates(office, make_staff):
    clerk = make_staff("clerk", "clerk")
    bits = office.settings.blind_index_bits
    count = 3000
    bulkgen.generate_customers(clerk, count, with_labels=False)
    for column in (Customer.id_bidx, Customer.mobile_bidx):
        sizes = Counter(v for (v,) in Customer.select(column).tuples())
        expected = count / 2 ** bits
        assert len(sizes) > 0.5 * min(count, 2 ** bits)  # spread over the index's range
        occupied = sum(sizes.values()) / len(sizes)
        assert expected * 0.8 < occupied < expected * 1.6 + 1, (occupied, expected)
        assert max(sizes.values()) < expected * 4 + 6  # no bucket collects a crowd
    # a search decrypts only the bucket and returns the exact match, false positives filtered
    target = Customer.select().order_by(Customer.customer_no).first()
    mobile = customers.reveal_fields(clerk, target.customer_no, ["mobile"], "check the search").values["mobile"]
    spaced = f"+86 {mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"
    assert [s.customer_no for s in customers.find_customers(clerk, "mobile", spaced)] == [target.customer_no]


# --- T5 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("password, code", [
    ("password", "too_short"), ("baoxian123", "too_short"), ("eleven-char", "too_short"),
    ("baoxian12345", "too_common"), ("x" * 129, "too_long"), ("twelve-chars", None),
])
def test_t5_password_policy(password, code):
    assert [p.code for p in staff.password_problems("wang", password)] == ([code] if code else [])


def test_t5_a_full_width_password_is_its_nfkc_form(office, admin):
    full_width = "ｃｏｒｒｅｃｔ　ｈｏｒｓｅ　ｂａｔｔｅｒｙ"  # what a Chinese IME in full-width mode types
    staff.add_staff(admin, "wang", "Wang", full_width, ("clerk",))
    assert staff.authenticate("wang", "correct horse battery").username == "wang"
    assert staff.authenticate("wang", full_width).username == "wang"


# --- T11 ----------------------------------------------------------------------------------------


def test_t11_a_master_key_owned_by_another_account_is_refused(settings, office):
    from models import office as office_mod
    from models.errors import KeyFileError

    if os.geteuid() != 0:
        pytest.skip("giving the key file to another account needs root")
    office_mod.close_office()
    os.chown(settings.master_key_path, 65534, 65534)  # nobody
    try:
        with pytest.raises(KeyFileError, match="belongs to another user"):
            office_mod.open_office(settings)
    finally:
        os.chown(settings.master_key_path, 0, 0)
    office_mod.open_office(settings)
