"""Browsing: keyset pages at the edges and under concurrent inserts, filters, counts, search, the file, generator."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid

import pytest
from faker import Faker

from models import audit, browse, bulkgen, clock, crypto, customers, demo, keystore, labels, office as office_mod
from models import validation
from models.audit import AuditEntry
from models.browse import BrowseFilter, Cursor
from models.customers import Customer
from models.errors import PermissionDenied, ValidationError
from models.fields import PERSONAL_FIELDS

SORTS = browse.SORTS


def make_data(seed: int, **overrides) -> dict:
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    data = demo.fake_customer(fake, random.Random(seed), clock.today())
    data.update(overrides)
    return data


@pytest.fixture
def crowd(clerk):
    """60 generated customers over ten years (dates of every kind, some without), a few labelled."""
    bulkgen.generate_customers(clerk, 60, workers=0, seed=11)
    return clerk


def expected_order(rows: list[dict], sort: str) -> list[str]:
    if sort == "customer_no":
        return sorted(r["customer_no"] for r in rows)
    return [r["customer_no"] for r in sorted(rows, key=lambda r: (r[sort] is None, r[sort] or dt.date.min,
                                                                   r["customer_no"]))]


def all_rows(flt: BrowseFilter = BrowseFilter()) -> list[dict]:
    query = Customer.select(Customer.id, Customer.customer_no, Customer.category, Customer.branch,
                            Customer.next_verification_due, Customer.retention_until)
    if flt.category:
        query = query.where(Customer.category == flt.category)
    if flt.branch:
        query = query.where(Customer.branch == flt.branch)
    rows = list(query.dicts())
    if flt.label_id is not None:
        labelled = {link.customer_id for link in labels.CustomerLabel.select().where(
            labels.CustomerLabel.label == flt.label_id)}
        rows = [r for r in rows if r["id"] in labelled]
    return rows


def walk_forward(actor, flt, sort, limit) -> list[str]:
    seen, page = [], browse.browse_customers(actor, flt, sort, limit=limit)
    assert not page.has_before
    while True:
        seen += [r.customer_no for r in page.rows]
        if not page.has_after:
            return seen
        page = browse.browse_customers(actor, flt, sort, after=page.rows[-1].cursor, limit=limit)
        assert page.has_before


def walk_backward(actor, flt, sort, limit) -> list[str]:
    seen, page = [], browse.browse_customers(actor, flt, sort, from_end=True, limit=limit)
    assert not page.has_after
    while True:
        seen = [r.customer_no for r in page.rows] + seen
        if not page.has_before:
            return seen
        page = browse.browse_customers(actor, flt, sort, before=page.rows[0].cursor, limit=limit)
        assert page.has_after


# --- keyset paging ------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("limit", [1, 7, 60, 61, 200])
def test_every_order_pages_through_everyone_once_both_ways(crowd, sort, limit):
    expected = expected_order(all_rows(), sort)
    assert len(expected) == 60
    assert walk_forward(crowd, BrowseFilter(), sort, limit) == expected
    assert walk_backward(crowd, BrowseFilter(), sort, limit) == expected


def test_dates_sort_before_the_rows_without_one(crowd):
    for sort in ("next_verification_due", "retention_until"):
        values = [getattr(r, sort) for r in browse.browse_customers(crowd, BrowseFilter(), sort, limit=60).rows]
        dated = [v for v in values if v is not None]
        assert dated and None in values, "the crowd has rows with and without the date"
        assert values == dated + [None] * (len(values) - len(dated))
        assert dated == sorted(dated)


@pytest.mark.parametrize("sort", SORTS)
def test_filters_page_through_exactly_the_matching_customers(crowd, sort):
    counts = browse.browse_counts(crowd)
    label = max(counts.labels, key=lambda lc: lc.count)
    branch = counts.branches[0][0]
    for flt in (BrowseFilter(category="terminated"), BrowseFilter(category="active", branch=branch),
                BrowseFilter(label_id=label.label_id), BrowseFilter(category="prospect", label_id=label.label_id)):
        expected = expected_order(all_rows(flt), sort)
        assert walk_forward(crowd, flt, sort, 4) == expected, flt
        assert walk_backward(crowd, flt, sort, 4) == expected, flt
        assert browse.count_matching(crowd, flt) == len(expected)


def test_a_rare_label_and_a_common_one_take_different_plans_with_the_same_answer(crowd, monkeypatch):
    counts = browse.browse_counts(crowd)
    label = max(counts.labels, key=lambda lc: lc.count)
    flt = BrowseFilter(label_id=label.label_id)
    rare = walk_forward(crowd, flt, "customer_no", 5)
    monkeypatch.setattr(browse, "RARE_LABEL", 0)
    browse._label_sizes.clear()
    assert walk_forward(crowd, flt, "customer_no", 5) == rare
    assert rare == expected_order(all_rows(flt), "customer_no")


def test_edges_empty_exactly_full_and_one_over(clerk):
    empty = browse.browse_customers(clerk)
    assert empty.rows == () and not empty.has_after and not empty.has_before
    assert browse.browse_customers(clerk, from_end=True).rows == ()
    bulkgen.generate_customers(clerk, 5, workers=0, with_labels=False)
    full = browse.browse_customers(clerk, limit=5)
    assert len(full.rows) == 5 and not full.has_after
    over = browse.browse_customers(clerk, limit=4)
    assert len(over.rows) == 4 and over.has_after
    last = browse.browse_customers(clerk, after=over.rows[-1].cursor, limit=4)
    assert len(last.rows) == 1 and not last.has_after and last.has_before
    beyond = browse.browse_customers(clerk, after=last.rows[-1].cursor, limit=4)
    assert beyond.rows == () and not beyond.has_after


def test_at_reloads_a_page_from_its_own_first_row(crowd):
    for sort in SORTS:
        first = browse.browse_customers(crowd, BrowseFilter(), sort, limit=10)
        second = browse.browse_customers(crowd, BrowseFilter(), sort, after=first.rows[-1].cursor, limit=10)
        again = browse.browse_customers(crowd, BrowseFilter(), sort, at=second.rows[0].cursor, limit=10)
        assert [r.customer_no for r in again.rows] == [r.customer_no for r in second.rows]


def test_bad_requests_are_refused(crowd):
    cursor = Cursor("C2026000001")
    with pytest.raises(ValidationError):
        browse.browse_customers(crowd, BrowseFilter(), "full_name")
    with pytest.raises(ValidationError):
        browse.browse_customers(crowd, BrowseFilter(category="vip"))
    with pytest.raises(ValidationError):
        browse.browse_customers(crowd, after=cursor, before=cursor)
    assert len(browse.browse_customers(crowd, limit=10_000).rows) == 60  # capped at MAX_PAGE_ROWS, not refused


@pytest.mark.parametrize("sort", SORTS)
def test_paging_while_others_insert_misses_nobody_and_repeats_nobody(crowd, sort):
    before = set(expected_order(all_rows(), sort))
    seen: list[str] = []
    page = browse.browse_customers(crowd, BrowseFilter(), sort, limit=9)
    seed = 100
    while True:
        seen += [r.customer_no for r in page.rows]
        # Another clerk adds customers between every two pages (some sort before the cursor, some after).
        for _ in range(3):
            seed += 1
            customers.create_customer(crowd, make_data(seed))
        if not page.has_after:
            break
        page = browse.browse_customers(crowd, BrowseFilter(), sort, after=page.rows[-1].cursor, limit=9)
    assert len(seen) == len(set(seen)), "no customer shows twice"
    assert before <= set(seen), "every customer there at the start is reached"
    order = expected_order(all_rows(), sort)
    assert seen == [n for n in order if n in set(seen)], "the pages keep the order"


# --- what a page carries -------------------------------------------------------------------------


def test_pages_are_masked_and_audited_before_decryption_without_values(crowd, monkeypatch):
    row = Customer.select().order_by(Customer.customer_no).first()
    key = keystore.load_data_key(row.key_id)
    clear = customers.decrypt_fields(row.id, row.key_id, key, {n: getattr(row, n) for n in PERSONAL_FIELDS})
    order: list[str] = []
    real_append, real_decrypt = audit.append, customers.decrypt_fields
    monkeypatch.setattr(audit, "append", lambda **kw: (order.append(kw["action"]), real_append(**kw))[1])
    monkeypatch.setattr(customers, "decrypt_fields", lambda *a, **k: (order.append("decrypt"), real_decrypt(*a, **k))[1])
    page = browse.browse_customers(crowd, limit=3)
    assert order[0] == "BROWSE" and order.count("BROWSE") == 1 and "decrypt" in order
    first = page.rows[0]
    assert first.customer_no == row.customer_no
    assert first.masked_name == customers.mask_name(str(clear["full_name"]))
    text = repr(page)
    for name in ("full_name", "id_number", "mobile", "street", "date_of_birth"):
        if len(str(clear[name])) > 1:
            assert str(clear[name]) not in text
    entry = AuditEntry.select().where(AuditEntry.action == "BROWSE").order_by(AuditEntry.seq.desc()).first()
    assert json.loads(entry.details)["first"] == row.customer_no
    assert str(clear["full_name"]) not in entry.details


def test_page_rows_carry_labels_clerk_and_dates(crowd):
    labelled = labels.CustomerLabel.select().first()
    number = Customer.get_by_id(labelled.customer_id).customer_no
    rows = browse.browse_customers(crowd, at=Cursor(number), limit=1).rows
    assert rows[0].customer_no == number
    assert labelled.label_id in {lv.label_id for lv in rows[0].labels}
    assert rows[0].responsible_clerk == "clerk"


def test_counts_match_the_rows(crowd):
    counts = browse.browse_counts(crowd)
    rows = all_rows()
    assert counts.total == len(rows) == 60
    for category in ("prospect", "active", "terminated"):
        assert counts.by_category[category] == sum(r["category"] == category for r in rows)
    assert dict(counts.branches) == {b: sum(r["branch"] == b for r in rows) for b in {r["branch"] for r in rows}}
    for lc in counts.labels:
        assert lc.count == labels.CustomerLabel.select().where(labels.CustomerLabel.label == lc.label_id).count()
    assert browse.label_usage(crowd) == {lc.label_id: lc.count for lc in counts.labels if lc.count}


def test_only_staff_who_search_may_browse(crowd, auditor):
    for call in (lambda: browse.browse_customers(auditor), lambda: browse.browse_counts(auditor),
                 lambda: browse.search(auditor, "auto", "C2026")):
        with pytest.raises(PermissionDenied):
            call()


# --- search -----------------------------------------------------------------------------------


@pytest.mark.parametrize("term, kind", [
    ("C2026000001", "customer_no"), ("c2026", "customer_no"), ("Ｃ２０２６０００", "customer_no"),
    ("11010519491231002X", "id_number"), ("110105 19491231 002x", "id_number"), ("110105491231002", "id_number"),
    ("13800138000", "mobile"), ("+86 138-0013-8000", "mobile"), ("１３８００１３８０００", "mobile"),
    ("E12345678", "id_number"), ("张三", "full_name"), ("Zhang San", "full_name"), ("阿卜杜拉·买买提", "full_name"),
])
def test_guess_search_kind(term, kind):
    assert browse.guess_search_kind(term) == kind


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


def test_search_finds_a_customer_typed_every_which_way(clerk):
    made = customers.create_customer(clerk, make_data(3, full_name="欧阳 娜娜", mobile="13912345678"))
    record = customers.reveal_fields(clerk, made.customer_no, ["id_number"], "test the search")
    id_number = str(record.values["id_number"])
    for kind, term in (("id_number", id_number.lower()), ("id_number", full_width(id_number)),
                       ("id_number", f"{id_number[:6]} {id_number[6:14]} {id_number[14:]}"),
                       ("mobile", "+86 139 1234 5678"), ("mobile", full_width("13912345678")),
                       ("mobile", "139-1234-5678"), ("full_name", "欧阳娜娜"), ("full_name", " 欧阳  娜娜 "),
                       ("customer_no", made.customer_no.lower()), ("customer_no", made.customer_no[:-2]),
                       ("auto", id_number), ("auto", "13912345678"), ("auto", "欧阳娜娜")):
        page = browse.search(clerk, kind, term)
        assert made.customer_no in [r.customer_no for r in page.rows], (kind, term)
        assert all(r.masked_name.endswith("*") for r in page.rows)
    assert browse.search(clerk, "full_name", "欧阳娜").rows == (), "names match exactly, not by prefix"
    assert browse.search(clerk, "mobile", "13912345679").rows == ()


def test_search_is_audited_without_the_term(clerk):
    customers.create_customer(clerk, make_data(4, full_name="司马相如", mobile="13712345678"))
    for kind, term in (("full_name", "司马相如"), ("mobile", "13712345678")):
        browse.search(clerk, kind, term)
        entry = AuditEntry.select().where(AuditEntry.action == "SEARCH").order_by(AuditEntry.seq.desc()).first()
        assert term not in entry.details and json.loads(entry.details)["kind"] == kind
        assert json.loads(entry.details)["term_hmac"]


def test_a_common_name_stops_at_the_limit_but_finds_the_first(clerk):
    made = [customers.create_customer(clerk, make_data(20 + i, full_name="王伟")).customer_no for i in range(6)]
    found = [r.customer_no for r in browse.search(clerk, "full_name", "王伟", limit=4).rows]
    assert found == sorted(made)[:4]


def test_id_search_reaches_rows_written_before_fingerprints(clerk):
    made = customers.create_customer(clerk, make_data(5))
    id_number = str(customers.reveal_fields(clerk, made.customer_no, ["id_number"], "test search").values["id_number"])
    Customer.update(id_fp=None).where(Customer.customer_no == made.customer_no).execute()
    assert [r.customer_no for r in browse.search(clerk, "id_number", id_number).rows] == [made.customer_no]
    assert customers._backfill_fingerprints() == 1
    assert Customer.get(Customer.customer_no == made.customer_no).id_fp
    assert [r.customer_no for r in browse.search(clerk, "id_number", id_number).rows] == [made.customer_no]


# --- the customer file -------------------------------------------------------------------------


def test_the_file_is_masked_audited_and_complete(clerk, make_staff):
    officer = make_staff("officer", "records_officer")
    made = customers.create_customer(clerk, make_data(6, full_name="诸葛亮", mobile="13612345678"))
    vip = labels.create_label(officer, "VIP", "accent", "High value")
    labels.label_customer(clerk, made.customer_no, [vip.label_id])
    before = AuditEntry.select().where(AuditEntry.action == "VIEW").count()
    file = browse.open_customer_file(clerk, made.customer_no)
    assert AuditEntry.select().where(AuditEntry.action == "VIEW").count() == before + 1
    assert file.record.values["full_name"] == "诸*" and file.record.revealed == frozenset()
    assert "诸葛亮" not in repr(file) and "13612345678" not in repr(file)
    assert [lv.name for lv in file.labels] == ["VIP"]
    assert {e.kind for e in file.history} >= {"created", "labelled"}
    assert file.imported is None and file.category in ("active", "prospect")
    assert file.documents == () and file.revisions == ()


# --- the fast paths keep the stored format --------------------------------------------------------


def test_bulk_sealing_is_the_ordinary_format(clerk):
    keys = customers.seal_keys()
    values = validation.check_valid(make_data(7), today=clock.today())
    sealed = customers.seal_customer(values, keys)
    assert uuid.UUID(sealed.customer_id).version == 7 and uuid.UUID(sealed.key_id).version == 7
    key = crypto.decrypt(office_mod.current().keyring.wrapping, sealed.wrapped_key, keystore._aad(sealed.key_id))
    for name in PERSONAL_FIELDS:
        blob = sealed.column(name)
        plain = crypto.decrypt(key, blob, crypto.field_aad("customer", sealed.customer_id, name, sealed.key_id))
        assert json.loads(plain) == values.get(name, "")
    assert sealed.column("id_bidx") == customers.blind_indexes(values)["id_bidx"]
    ring, bits = office_mod.current().keyring, office_mod.current().settings.blind_index_bits
    for index_name, text in (("mobile", "13800138000"), ("full_name", "张三"), ("id_number", "11010519491231002X")):
        assert customers._blind(ring.blind_index_root, index_name, text, bits) == ring.blind_index(index_name, text,
                                                                                                    bits)


def test_sealing_many_at_once_is_sealing_each(clerk):
    keys = customers.seal_keys()
    records = [validation.check_valid(make_data(seed), today=clock.today()) for seed in (11, 12, 13)]
    many = customers.seal_customers(records, keys)
    assert len({s.customer_id for s in many}) == 3 and len({s.key_id for s in many}) == 3
    for sealed, values in zip(many, records):
        one = customers.seal_customer(values, keys)
        index_columns = ("id_bidx", "mobile_bidx", "name_bidx", "id_fp", *customers.PLAIN_FIELDS)
        assert [sealed.column(n) for n in index_columns] == [one.column(n) for n in index_columns]
        key = crypto.decrypt(office_mod.current().keyring.wrapping, sealed.wrapped_key, keystore._aad(sealed.key_id))
        assert customers.decrypt_fields(sealed.customer_id, sealed.key_id, key,
                                        dict(zip(customers.SEALED_COLUMNS, sealed.values))) == {
            name: values.get(name, "") for name in PERSONAL_FIELDS}


@pytest.mark.parametrize("key_size", [0, 1, 32, 64, 65, 200])
def test_the_index_hmac_is_rfc_2104_hmac_sha256(key_size):
    import hmac
    import os

    for message in (b"", b"13800138000", "张三".encode(), os.urandom(300)):
        key = os.urandom(key_size)
        assert crypto.hmac_sha256(key, message) == hmac.digest(key, message, "sha256")


def test_generated_customers_are_valid_and_readable(clerk):
    pools = bulkgen._pools(3)
    rng = random.Random(3)
    today = clock.today()
    for _ in range(200):
        values = bulkgen.generated_customer(rng, pools, today, today - dt.timedelta(days=rng.randrange(3000)))
        validation.check_valid(values, today=today)
    assert bulkgen.generate_customers(clerk, 25, workers=0, seed=5) == 25
    numbers = [c.customer_no for c in Customer.select().order_by(Customer.created_at, Customer.customer_no)]
    assert numbers == sorted(numbers, key=lambda n: (n[1:5], n)), "numbers follow creation, per year"
    for number in numbers[::6]:
        record = customers.reveal_fields(clerk, number, list(PERSONAL_FIELDS), "check generated data")
        assert validation.check_valid({**record.values, "category": record.values["category"]}, today=today)
    entries = AuditEntry.select().where(AuditEntry.action == "CUSTOMER_BULK_CREATE")
    assert sum(json.loads(e.details)["count"] for e in entries) == 25
    assert keystore.DataKey.select().count() == 25


def test_a_failed_batch_leaves_no_customers_and_no_keys(clerk, monkeypatch):
    def refuse(**kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(audit, "append", refuse)
    with pytest.raises(RuntimeError):
        bulkgen.generate_customers(clerk, 10, workers=0, with_labels=False)
    monkeypatch.undo()
    assert Customer.select().count() == 0
    assert keystore.DataKey.select().count() == 0
