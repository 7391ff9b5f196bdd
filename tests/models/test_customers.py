"""Customers: encrypted storage, masking, audited reveal, blind-index search, shredding, and no plaintext at rest."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
from dataclasses import replace
from pathlib import Path

import pytest
from faker import Faker

from models import audit, clock, crypto, customers, demo, keystore, office as office_mod
from models.audit import AuditEntry
from models.customers import Customer
from models.db import db, is_sqlite
from models.errors import IntegrityFailure, NotFound, PermissionDenied, ValidationError
from models.fields import PERSONAL_FIELDS
from models.keystore import DataKey

PURPOSE = "客户来电核实身份"


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


def make_data(seed: int, **overrides) -> dict:
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    data = demo.fake_customer(fake, random.Random(seed), clock.today())
    data.update(overrides)
    return data


def resident_id_for(data: dict, *, seed: int = 0, ending: str | None = None) -> str:
    """A valid resident ID matching the record's birth date and sex (optionally with a given check char)."""
    rng = random.Random(seed)
    birth = dt.date.fromisoformat(str(data["date_of_birth"]))
    while True:
        number = demo.resident_id(rng, birth, str(data["gender"]))
        if ending is None or number.endswith(ending):
            return number


def key_id_of(customer_no: str) -> str:
    return Customer.get(Customer.customer_no == customer_no).key_id


def numbers(summaries) -> list[str]:
    return [s.customer_no for s in summaries]


# --- creating and viewing --------------------------------------------------------------


def test_create_with_demo_values(clerk):
    made = [customers.create_customer(clerk, make_data(seed)) for seed in range(12)]
    assert customers.count_customers() == 12
    assert numbers(made) == [f"C{clock.today().year}{n:06d}" for n in range(1, 13)]
    assert all(s.responsible_clerk == "clerk" for s in made)
    assert len({s.customer_id for s in made}) == 12
    # One data key per customer, in the key store and not in the main database.
    key_ids = [key_id_of(s.customer_no) for s in made]
    assert len(set(key_ids)) == 12
    assert DataKey.select().where(DataKey.key_id.in_(key_ids)).count() == 12
    assert not db.table_exists("data_key")


def test_personal_fields_are_stored_as_ciphertext(clerk):
    data = make_data(1, full_name="测试存储丙")
    summary = customers.create_customer(clerk, data)
    row = Customer.select().where(Customer.customer_no == summary.customer_no).dicts().get()
    for name in PERSONAL_FIELDS:
        blob = bytes(row[name])
        assert blob[:1] == crypto.FORMAT_V1, name
    assert "测试存储丙".encode() not in bytes(row["full_name"])
    assert str(data["id_number"]).encode() not in bytes(row["id_number"])
    assert row["category"] == data["category"]  # plain fields stay plain


def test_get_customer_masks(clerk):
    data = make_data(2, full_name="张三", mobile="13912345678", street="中山路88号")
    data["id_number"] = resident_id_for(data)
    number = customers.create_customer(clerk, data).customer_no
    record = customers.get_customer(clerk, number)
    values = record.values
    assert values["full_name"] == "张*"
    assert values["id_number"] == "*" * 14 + data["id_number"][-4:]
    assert values["mobile"] == "*******5678"
    assert values["street"] == "***" and values["date_of_birth"] == "***" and values["employer"] == "***"
    assert record.revealed == frozenset()
    assert values["category"] == data["category"] and values["branch"] == data["branch"]
    shown = json.dumps(values, ensure_ascii=False, default=str)
    for secret in ("张三", data["id_number"], "13912345678", "中山路88号", data["date_of_birth"]):
        assert secret not in shown
    assert record.customer_no == number and record.version == 1
    view = AuditEntry.select().where(AuditEntry.action == "VIEW").get()
    assert view.object_id == number and view.actor == "clerk"


def test_masked_names_of_other_lengths(clerk):
    long_name = "阿卜杜拉·买买提"
    number = customers.create_customer(clerk, make_data(3, full_name=long_name)).customer_no
    summary = customers.find_customers(clerk, "customer_no", number)[0]
    assert summary.masked_name == "阿*"  # one star whatever the length
    assert customers.get_customer(clerk, number).values["full_name"] == summary.masked_name
    assert customers.mask_name("王") == "王*", "a one-character name still hides its length"


def test_unknown_customer_number(clerk):
    with pytest.raises(NotFound):
        customers.get_customer(clerk, "C2026999999")


# --- reveal ------------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", ["", "   ", "abc", "\x1b[2Jwipe", "why\u202e"])
def test_reveal_requires_a_purpose(clerk, purpose):
    number = customers.create_customer(clerk, make_data(4)).customer_no
    with pytest.raises(ValidationError) as caught:
        customers.reveal_fields(clerk, number, ["mobile"], purpose)
    assert "purpose" in caught.value.by_field()
    assert not AuditEntry.select().where(AuditEntry.action == "REVEAL").exists()


@pytest.mark.parametrize("names", [[], ["category"], ["password_hash"], ["mobile", "nope"]])
def test_reveal_requires_personal_field_names(clerk, names):
    number = customers.create_customer(clerk, make_data(5)).customer_no
    with pytest.raises(ValidationError) as caught:
        customers.reveal_fields(clerk, number, names, PURPOSE)
    assert "fields" in caught.value.by_field()


def test_reveal_unmasks_only_the_named_fields_and_is_audited_with_the_purpose(clerk):
    data = make_data(6, full_name="李四五")
    number = customers.create_customer(clerk, data).customer_no
    record = customers.reveal_fields(clerk, number, ["id_number", "mobile"], "  " + PURPOSE + " ")
    assert record.revealed == frozenset({"id_number", "mobile"})
    assert record.values["id_number"] == data["id_number"]
    assert record.values["mobile"] == data["mobile"]
    assert record.values["full_name"] == "李*"
    entry = AuditEntry.select().where(AuditEntry.action == "REVEAL").get()
    assert (entry.purpose, entry.fields, entry.object_id, entry.actor) == (
        PURPOSE, "id_number,mobile", number, "clerk")
    assert data["id_number"] not in entry.details + entry.purpose + entry.fields


# --- search --------------------------------------------------------------------------


@pytest.fixture
def x_customer(clerk):
    """A customer whose resident ID ends in X, plus two others to not be found."""
    data = make_data(7, full_name="测试搜索丁", mobile="13812345670")
    data["id_number"] = resident_id_for(data, seed=7, ending="X")
    customers.create_customer(clerk, make_data(8))
    number = customers.create_customer(clerk, data).customer_no
    customers.create_customer(clerk, make_data(9))
    return number, data


def test_find_by_id_number_in_many_spellings(clerk, x_customer):
    number, data = x_customer
    id_number = data["id_number"]
    assert id_number.endswith("X")
    spellings = [
        id_number,
        id_number.lower(),
        full_width(id_number),
        full_width(id_number.lower()),
        f" {id_number[:6]} {id_number[6:14]} {id_number[14:]} ",
        f"{id_number[:6]}-{id_number[6:14]}-{id_number[14:]}",
    ]
    for term in spellings:
        assert numbers(customers.find_customers(clerk, "id_number", term)) == [number], term


def test_find_by_legacy_15_digit_id(clerk):
    data = make_data(10, date_of_birth="1980-01-01")
    data["id_number"] = resident_id_for(data, seed=10)
    number = customers.create_customer(clerk, data).customer_no
    legacy = data["id_number"][:6] + data["id_number"][8:17]
    assert numbers(customers.find_customers(clerk, "id_number", legacy)) == [number]


def test_find_by_passport_number(clerk):
    number = customers.create_customer(clerk, make_data(26, id_type="passport", id_number="E12345678")).customer_no
    assert numbers(customers.find_customers(clerk, "id_number", "E12345678")) == [number]
    assert numbers(customers.find_customers(clerk, "id_number", "e 1234 5678")) == [number]


def test_find_by_mobile_in_many_spellings(clerk, x_customer):
    number, _ = x_customer
    for term in ("13812345670", "+86 138-1234-5670", "+86 13812345670", "0086 138 1234 5670", "(138) 1234-5670",
                 full_width("13812345670"), "86-138-1234-5670"):
        assert numbers(customers.find_customers(clerk, "mobile", term)) == [number], term


def test_find_by_name_with_spaces(clerk, x_customer):
    number, _ = x_customer
    for term in ("测试搜索丁", "测 试 搜 索 丁", " 测试 搜索丁 ", "测试\u3000搜索丁", "测 试搜索 丁"):
        assert numbers(customers.find_customers(clerk, "full_name", term)) == [number], term
    assert customers.find_customers(clerk, "full_name", "测试搜索") == []


def test_find_by_customer_number_prefix(clerk, x_customer):
    year = clock.today().year
    everyone = [f"C{year}{n:06d}" for n in (1, 2, 3)]
    assert numbers(customers.find_customers(clerk, "customer_no", f"C{year}")) == everyone
    assert numbers(customers.find_customers(clerk, "customer_no", f"c{year}")) == everyone
    assert numbers(customers.find_customers(clerk, "customer_no", f" c {year} 000002")) == [everyone[1]]
    assert numbers(customers.find_customers(clerk, "customer_no", full_width(f"C{year}000003"))) == [everyone[2]]
    assert numbers(customers.find_customers(clerk, "customer_no", "C", limit=2)) == everyone[:2]
    assert customers.find_customers(clerk, "customer_no", "C1999") == []


def test_customer_numbers_past_a_million_in_a_year_keep_their_order(clerk):
    from models import browse

    year = clock.today().year
    assert [customers.format_customer_no(year, n) for n in (1, 999_999, 1_000_000, 2_000_001, 26_999_999)] == [
        f"C{year}000001", f"C{year}999999", f"C{year}A000000", f"C{year}B000001", f"C{year}Z999999"]
    samples = [customers.format_customer_no(year, n) for n in range(999_990, 1_000_010)] \
        + [customers.format_customer_no(year, n) for n in (1, 5_000_000, 26_999_999)]
    assert sorted(samples) == [customers.format_customer_no(year, n)
                               for n in sorted((*range(999_990, 1_000_010), 1, 5_000_000, 26_999_999))]
    with pytest.raises(customers.RecordKeeperError):
        customers.format_customer_no(year, 27_000_000)
    customers.CustomerNumberSequence.insert(year=year, last=999_998).execute()
    made = [customers.create_customer(clerk, make_data(seed)).customer_no for seed in (31, 32)]
    assert made == [f"C{year}999999", f"C{year}A000000"]
    assert numbers(customers.find_customers(clerk, "customer_no", f"c{year}a")) == [made[1]]
    assert browse.guess_search_kind(f"C{year}A000000") == "customer_no"
    assert [r.customer_no for r in browse.browse_customers(clerk).rows] == made


@pytest.mark.parametrize("term", ["%", "_", "C%", "C____", "\\", "' OR 1=1 --"])
def test_customer_number_search_treats_wildcards_literally(clerk, x_customer, term):
    assert customers.find_customers(clerk, "customer_no", term) == []


def test_searches_that_find_nothing(clerk, x_customer):
    _, data = x_customer
    other_id = resident_id_for(data, seed=99, ending="5")
    assert customers.find_customers(clerk, "id_number", other_id) == []
    assert customers.find_customers(clerk, "mobile", "13812345679") == []
    assert customers.find_customers(clerk, "full_name", "没有此人") == []


@pytest.mark.parametrize("kind, term, field", [
    ("email", "a@b.cn", "kind"), ("mobile", "", "term"), ("mobile", "   ", "term"),
    ("full_name", "x" * 121, "term"), ("full_name", "张\x1b[31m三", "term"),
])
def test_bad_searches_are_refused(clerk, kind, term, field):
    with pytest.raises(ValidationError) as caught:
        customers.find_customers(clerk, kind, term)
    assert field in caught.value.by_field()


def test_blind_index_collisions_are_filtered_exactly(clerk, monkeypatch):
    """With few index bits many values share a bucket; the search still returns only exact matches."""
    the_office = office_mod.current()
    monkeypatch.setattr(the_office, "settings", replace(the_office.settings, blind_index_bits=8))
    ring = the_office.keyring
    buckets: dict[int, str] = {}
    first = second = None
    for n in range(2000):
        mobile = f"139{n:08d}"
        bucket = ring.blind_index("mobile", mobile, 8)
        if bucket in buckets:
            first, second = buckets[bucket], mobile
            break
        buckets[bucket] = mobile
    assert first and second
    a = customers.create_customer(clerk, make_data(11, mobile=first)).customer_no
    b = customers.create_customer(clerk, make_data(12, mobile=second)).customer_no
    assert Customer.get(Customer.customer_no == a).mobile_bidx == Customer.get(Customer.customer_no == b).mobile_bidx
    assert numbers(customers.find_customers(clerk, "mobile", first)) == [a]
    assert numbers(customers.find_customers(clerk, "mobile", second)) == [b]


def test_blind_indexes_are_truncated_to_the_configured_bits(clerk):
    customers.create_customer(clerk, make_data(13))
    bits = office_mod.current().settings.blind_index_bits
    row = Customer.select().get()
    for column in ("id_bidx", "mobile_bidx", "name_bidx"):
        assert 0 <= getattr(row, column) < 2**bits


# --- invalid data ----------------------------------------------------------------------


def test_invalid_data_raises_validation_error_naming_fields(clerk):
    data = make_data(14)
    good_id = str(data["id_number"])
    bad_id = good_id[:-1] + ("0" if good_id[-1] != "0" else "1")
    data.update(full_name="", id_number=bad_id, mobile="12345", email="not-an-email")
    before = customers.count_customers()
    with pytest.raises(ValidationError) as caught:
        customers.create_customer(clerk, data)
    errors = caught.value.by_field()
    assert {"full_name", "id_number", "mobile", "email"} <= set(errors), errors
    for value in (bad_id, "12345", "not-an-email"):
        assert value not in str(caught.value), "messages never repeat the value"
    assert customers.count_customers() == before
    assert not AuditEntry.select().where(AuditEntry.action == "CUSTOMER_CREATE").exists()


def test_only_permitted_roles_create(make_staff):
    auditor = make_staff("auditor", "auditor")
    with pytest.raises(PermissionDenied):
        customers.create_customer(auditor, make_data(15))
    assert customers.count_customers() == 0


# --- keys and tampering ----------------------------------------------------------------


def test_destroyed_key_cannot_be_decrypted(clerk):
    data = make_data(16)
    number = customers.create_customer(clerk, data).customer_no
    other = customers.create_customer(clerk, make_data(17)).customer_no
    assert keystore.destroy_data_key(key_id_of(number)) is True
    assert keystore.destroy_data_key(key_id_of(number)) is False  # idempotent
    with pytest.raises(IntegrityFailure):
        customers.get_customer(clerk, number)
    with pytest.raises(IntegrityFailure):
        customers.reveal_fields(clerk, number, ["full_name"], PURPOSE)
    with pytest.raises(IntegrityFailure):
        keystore.load_data_key(key_id_of(number))
    assert customers.find_customers(clerk, "mobile", data["mobile"]) == []
    assert customers.get_customer(clerk, other).customer_no == other  # others unaffected


def test_prefix_search_over_a_destroyed_key_fails_cleanly(clerk):
    """A row whose key is gone (destruction interrupted, key store not restored) must not crash listings."""
    gone = customers.create_customer(clerk, make_data(18)).customer_no
    kept = customers.create_customer(clerk, make_data(19)).customer_no
    keystore.destroy_data_key(key_id_of(gone))
    try:
        found = numbers(customers.find_customers(clerk, "customer_no", "C"))
    except IntegrityFailure:
        return
    assert kept in found


def _update_blob(customer_no: str, **values) -> None:
    Customer.update(**values).where(Customer.customer_no == customer_no).execute()


def test_a_flipped_ciphertext_byte_is_an_integrity_failure(clerk):
    number = customers.create_customer(clerk, make_data(20)).customer_no
    blob = bytearray(bytes(Customer.get(Customer.customer_no == number).street))
    blob[-3] ^= 0x01
    _update_blob(number, street=bytes(blob))
    with pytest.raises(IntegrityFailure):
        customers.get_customer(clerk, number)


def test_ciphertexts_moved_between_fields_or_records_fail(clerk):
    a = customers.create_customer(clerk, make_data(21)).customer_no
    b = customers.create_customer(clerk, make_data(22)).customer_no
    c = customers.create_customer(clerk, make_data(23)).customer_no
    row_a = Customer.get(Customer.customer_no == a)
    # Field swap within one record.
    _update_blob(a, full_name=bytes(row_a.street), street=bytes(row_a.full_name))
    with pytest.raises(IntegrityFailure):
        customers.get_customer(clerk, a)
    # The same field copied from another record (different record id and data key).
    _update_blob(b, mobile=bytes(Customer.get(Customer.customer_no == c).mobile))
    with pytest.raises(IntegrityFailure):
        customers.get_customer(clerk, b)
    # A record pointed at another customer's data key.
    _update_blob(c, key_id=key_id_of(a))
    with pytest.raises(IntegrityFailure):
        customers.get_customer(clerk, c)


def test_a_tampered_wrapped_key_is_an_integrity_failure(clerk):
    number = customers.create_customer(clerk, make_data(24)).customer_no
    key_id = key_id_of(number)
    wrapped = bytearray(bytes(DataKey.get_by_id(key_id).wrapped))
    wrapped[20] ^= 0x80
    DataKey.update(wrapped=bytes(wrapped)).where(DataKey.key_id == key_id).execute()
    with pytest.raises(IntegrityFailure):
        customers.get_customer(clerk, number)


def test_another_master_key_cannot_decrypt(settings, clerk, monkeypatch):
    number = customers.create_customer(clerk, make_data(25)).customer_no
    office_mod.close_office()
    settings.master_key_path.unlink()
    crypto.create_master_key(settings.master_key_path)
    from models import storage
    from models.errors import KeyFileError

    with pytest.raises(KeyFileError, match="does not open this office's key store"):
        office_mod.open_office(settings)  # refused at start (tests/models/test_faults.py)
    monkeypatch.setattr(storage, "_check_master_key", lambda settings: None)  # past that check, the crypto holds
    office_mod.open_office(settings)
    with pytest.raises(IntegrityFailure):
        customers.get_customer(clerk, number)


# --- the sentinel: no plaintext anywhere on disk ---------------------------------------

SENTINEL = {
    "full_name": "测试哨兵甲",
    "mobile": "15967305148",
    "street": "哨兵测试路甲三十三号院",
    "email": "sentinel.alpha.rk@example.com",
    "employer": "哨兵甲测试科技有限公司",
    "notes": "哨兵甲备注：只在测试中出现的文字",
}


def _sentinel_data() -> dict:
    data = make_data(31, **SENTINEL)
    data["id_number"] = resident_id_for(data, seed=31)
    return data


def _needles(data: dict) -> dict[str, bytes]:
    id_number = str(data["id_number"])
    needles = {}
    for name, value in {**SENTINEL, "id_number": id_number}.items():
        needles[f"{name}/utf-8"] = value.encode("utf-8")
        if not value.isascii():
            needles[f"{name}/utf-16-le"] = value.encode("utf-16-le")
            needles[f"{name}/utf-16-be"] = value.encode("utf-16-be")
            needles[f"{name}/gb18030"] = value.encode("gb18030")
    needles["id digits"] = "".join(c for c in id_number if c.isdigit()).encode("ascii")
    needles["id first 17"] = id_number[:17].encode("ascii")
    needles["phone digits"] = SENTINEL["mobile"].encode("ascii")
    needles["phone digits/utf-16-le"] = SENTINEL["mobile"].encode("utf-16-le")
    return needles


def _scan(home: Path, needles: dict[str, bytes], *, only=None) -> list[str]:
    leaks = []
    files = [p for p in home.rglob("*") if p.is_file() and (only is None or only(p))]
    for path in files:
        content = path.read_bytes()
        leaks += [f"{label} in {path.relative_to(home)}" for label, needle in needles.items() if needle in content]
    return leaks


def _files_under(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())


def test_sentinel_values_never_reach_the_disk(settings, clerk):
    data = _sentinel_data()
    for seed in range(40, 46):
        customers.create_customer(clerk, make_data(seed))
    number = customers.create_customer(clerk, data).customer_no
    for seed in range(46, 50):
        customers.create_customer(clerk, make_data(seed))
    # Work with the record the ways staff do.
    customers.get_customer(clerk, number)
    customers.reveal_fields(clerk, number, list(SENTINEL) + ["id_number"], PURPOSE)
    assert numbers(customers.find_customers(clerk, "full_name", " ".join(SENTINEL["full_name"]))) == [number]
    assert numbers(customers.find_customers(clerk, "mobile", "+86 159-6730-5148")) == [number]
    assert numbers(customers.find_customers(clerk, "id_number", data["id_number"].lower())) == [number]
    with pytest.raises(ValidationError):  # a refused create with the same values writes nothing either
        customers.create_customer(clerk, {**data, "mobile": "12"})

    needles = _needles(data)
    home = settings.home
    keystore_files = lambda p: p.parent == settings.key_dir  # noqa: E731

    if not is_sqlite():
        # The main database lives in PostgreSQL: check its content logically, then the files under home.
        texts = {*SENTINEL.values(), data["id_number"], data["id_number"][:17]}
        for table in db.get_tables():
            for (text,) in db.execute_sql(f'SELECT CAST(t AS text) FROM "{table}" t').fetchall():
                for value in texts:
                    assert value not in text, f"{value!r} stored in plain text in table {table}"
        office_mod.close_office()
        assert settings.keystore_path.exists()
        assert _scan(home, needles, only=keystore_files) == []
        assert _scan(home, needles) == []
        return

    # While open (WAL files present) and after closing, no file under home holds a sentinel.
    assert settings.database_path.exists() and settings.keystore_path.exists()
    open_files = _files_under(home)
    assert _scan(home, needles) == [], open_files
    office_mod.close_office()
    assert _scan(home, needles) == [], _files_under(home)
    assert _scan(home, needles, only=keystore_files) == []
    # The scan can see plaintext when it is there.
    probe = home / "probe.txt"
    probe.write_bytes(SENTINEL["full_name"].encode("utf-16-le"))
    assert _scan(home, needles) == ["full_name/utf-16-le in probe.txt"]
    probe.unlink()


def test_destroying_a_key_shreds_it_from_the_key_store_files(settings, clerk):
    data = _sentinel_data()
    number = customers.create_customer(clerk, data).customer_no
    customers.create_customer(clerk, make_data(51))
    key_id = key_id_of(number)
    wrapped = bytes(DataKey.get_by_id(key_id).wrapped)
    keystore.destroy_data_key(key_id)
    from models.db import checkpoint_truncate

    checkpoint_truncate()
    assert not DataKey.select().where(DataKey.key_id == key_id).exists()
    dump = json.dumps(list(AuditEntry.select().dicts()), default=str, ensure_ascii=False)
    for value in SENTINEL.values():
        assert value not in dump
    assert audit.verify_chain().ok
    office_mod.close_office()
    keys = settings.key_dir
    assert _scan(keys, _needles(data)) == []
    assert _scan(keys, {"wrapped key": wrapped, "key id": key_id.encode()}) == [], (
        "secure_delete and the WAL truncate must leave no copy of a destroyed key")
    assert os.stat(settings.keystore_path).st_mode & 0o077 == 0, "the key store is private to the service account"
