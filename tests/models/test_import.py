"""Bulk import: every rule of intake, rejects with row and reason (never the value), idempotence, whole rows only."""

from __future__ import annotations

import csv
import io
import json
import random
import sys

import pytest
from faker import Faker

from models import audit, bulkgen, clock, customers, demo, importer, keystore
from models.audit import AuditEntry
from models.customers import Customer
from models.errors import PermissionDenied
from models.importer import CANONICAL_HEADER, ImportBatch, ImportFileError
from tests.conftest import TEST_PASSWORD

HEADER = (*CANONICAL_HEADER, "consent_date", "consent_scope")


def person(seed: int, **overrides) -> dict[str, str]:
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    data = demo.fake_customer(fake, random.Random(seed), clock.today())
    data["birth_date"] = data["date_of_birth"]
    data.update(overrides)
    return {name: str(data.get(name, "")) for name in HEADER}


def write_csv(path, rows: list[dict], header=HEADER, encoding="utf-8") -> None:
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(name, "") for name in header])


def problems_by_row(report) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for p in report.problems:
        out.setdefault(p.row, set()).add(p.code)
    return out


@pytest.fixture
def csv_path(tmp_path):
    return tmp_path / "legacy.csv"


def run(clerk, path, **kwargs):
    kwargs.setdefault("workers", 0)
    kwargs.setdefault("rejects_path", path.with_name("rejects.csv"))
    return importer.import_customers(clerk, path, **kwargs)


# --- importing ----------------------------------------------------------------------------------


def test_a_canonical_file_imports_every_row_encrypted_indexed_and_marked(clerk, csv_path):
    rows = [person(seed) for seed in range(12)]
    write_csv(csv_path, rows)
    report = run(clerk, csv_path, batch_rows=5)
    assert (report.rows, report.imported, report.rejected, report.skipped) == (12, 12, 0, 0)
    assert report.status == "done" and report.rejects_path is None
    batch = ImportBatch.get_by_id(report.batch_id)
    assert (batch.imported, batch.status) == (12, "done")
    assert Customer.select().where(Customer.import_batch == report.batch_id).count() == 12
    for row in rows[:3]:
        found = customers.find_customers(clerk, "id_number", row["id_number"])
        assert len(found) == 1
        record = customers.reveal_fields(clerk, found[0].customer_no, ["full_name", "mobile"], "check the import")
        assert record.values["full_name"] == row["full_name"] and record.values["mobile"] == row["mobile"]
    assert customers.find_customers(clerk, "mobile", rows[5]["mobile"])[0].masked_name.endswith("*")
    chunks = AuditEntry.select().where(AuditEntry.action == "CUSTOMER_IMPORT").order_by(AuditEntry.seq)
    assert [json.loads(e.details)["count"] for e in chunks] == [5, 5, 2], "one audit entry per batch"
    assert all(e.object_id == report.batch_id for e in chunks)
    every_detail = " ".join(e.details for e in AuditEntry.select())
    assert rows[0]["full_name"] not in every_detail and rows[0]["id_number"] not in every_detail
    assert [e.action for e in AuditEntry.select().where(AuditEntry.object_id == report.batch_id)
            .order_by(AuditEntry.seq)] == ["IMPORT_START", "CUSTOMER_IMPORT", "CUSTOMER_IMPORT", "CUSTOMER_IMPORT",
                                           "IMPORT_FINISH"]


def test_importing_the_same_file_again_adds_nobody(clerk, csv_path):
    write_csv(csv_path, [person(seed) for seed in range(6)])
    first = run(clerk, csv_path)
    second = run(clerk, csv_path)
    assert first.imported == 6
    assert (second.imported, second.skipped, second.rejected) == (0, 6, 0)
    assert Customer.select().count() == 6
    assert {p.code for p in second.problems} == {"already_present"}
    assert all(p.reason.startswith("already a customer: C") for p in second.problems)


def test_the_same_person_twice_in_one_file_is_imported_once(clerk, csv_path):
    one = person(1)
    write_csv(csv_path, [one, person(2), {**one, "mobile": "13900000000"}])
    report = run(clerk, csv_path)
    assert (report.imported, report.rejected) == (2, 1)
    assert problems_by_row(report) == {4: {"duplicate_in_file"}}
    assert "row 2" in report.problems[0].reason


def test_someone_already_entered_by_hand_is_skipped(clerk, csv_path):
    row = person(3)
    data = {**row, "date_of_birth": row["birth_date"]}
    del data["birth_date"]
    made = customers.create_customer(clerk, data)
    write_csv(csv_path, [row])
    report = run(clerk, csv_path)
    assert (report.imported, report.skipped) == (0, 1)
    assert made.customer_no in report.problems[0].reason


# --- rejects ------------------------------------------------------------------------------------


def test_bad_rows_are_rejected_with_row_number_and_reason_and_the_rest_imported(clerk, csv_path):
    good = person(10)
    bad_check = person(11)
    bad_check["id_number"] = bad_check["id_number"][:-1] + ("1" if bad_check["id_number"][-1] != "1" else "2")
    control = person(12, full_name="张\x1b[31m三")
    huge = person(13, street="路" * 10_000)
    bad_mobile = person(14, mobile="12345")
    no_name = person(15, full_name="")
    write_csv(csv_path, [good, bad_check, control, huge, bad_mobile, no_name])
    rejects = csv_path.with_name("rejects.csv")
    report = run(clerk, csv_path, rejects_path=rejects)
    assert (report.imported, report.rejected) == (1, 5)
    assert problems_by_row(report) == {3: {"bad_check_digit"}, 4: {"control_chars"}, 5: {"too_long"},
                                       6: {"bad_format"}, 7: {"required"}}
    with open(rejects, encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert {(int(r["row"]), r["field"], r["code"]) for r in lines} >= {
        (3, "id_number", "bad_check_digit"), (4, "full_name", "control_chars"), (5, "street", "too_long"),
        (6, "mobile", "bad_format"), (7, "full_name", "required")}
    assert all(r["reason"] for r in lines)
    text = rejects.read_text(encoding="utf-8-sig")
    for value in (bad_check["id_number"], "12345", "张\x1b[31m三", "路" * 20):
        assert value not in text, "the rejects file never repeats a value"


def test_rows_with_the_wrong_number_of_cells_are_rejected(clerk, csv_path):
    with open(csv_path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerow([person(20).get(n, "") for n in HEADER])
        writer.writerow(["only", "three", "cells"])
        handle.write("\n")  # a blank line is not a row to import
        writer.writerow([person(21).get(n, "") for n in HEADER] + ["extra"])
    report = run(clerk, csv_path)
    assert report.imported == 1
    assert problems_by_row(report) == {3: {"bad_format"}, 5: {"bad_format"}}
    assert "3 cells" in report.problems[0].reason


def test_a_row_that_is_not_valid_utf8_is_rejected_by_number(clerk, csv_path):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    rows = [person(30), person(31), person(32)]
    for row in rows:
        writer.writerow([row[n] for n in HEADER])
    data = bytearray(buffer.getvalue().encode("utf-8"))
    name = rows[1]["full_name"].encode("utf-8")
    at = data.index(name)
    data[at:at + len(name)] = b"\xff\xfe" + name[2:]  # a broken byte sequence in row 3
    csv_path.write_bytes(bytes(data))
    report = run(clerk, csv_path, encoding="utf-8")
    assert report.imported == 2
    assert problems_by_row(report) == {3: {"bad_encoding"}}
    assert report.problems[0].field == "full_name" and "utf-8" in report.problems[0].reason


def test_gb18030_files_are_recognised(clerk, csv_path):
    rows = [person(40), person(41, street="北京市朝阳区建国路１号")]
    write_csv(csv_path, rows, encoding="gb18030")
    assert importer.detect_encoding(csv_path) == "gb18030"
    report = run(clerk, csv_path)
    assert (report.imported, report.encoding) == (2, "gb18030")
    number = customers.find_customers(clerk, "mobile", rows[1]["mobile"])[0].customer_no
    assert customers.reveal_fields(clerk, number, ["street"], "check the import").values["street"] == rows[1]["street"]
    write_csv(csv_path, rows[:1], encoding="utf-8-sig")
    assert importer.detect_encoding(csv_path) == "utf-8-sig"


def test_a_file_without_required_columns_is_refused_before_anything_is_imported(clerk, csv_path):
    header = tuple(n for n in HEADER if n not in ("id_number", "mobile"))
    write_csv(csv_path, [person(50)], header=header)
    with pytest.raises(ImportFileError) as caught:
        run(clerk, csv_path)
    assert caught.value.row == 1 and "id_number" in caught.value.reason and "mobile" in caught.value.reason
    assert Customer.select().count() == 0 and ImportBatch.select().count() == 0


@pytest.mark.parametrize("header, expected", [
    ((*HEADER, "favourite colour"), "unknown columns"),
    ((*HEADER, "mobile"), "more than one column"),
    (tuple(n for n in HEADER if n != "consent_date"), "--consent-date"),
])
def test_header_problems_are_named(clerk, csv_path, header, expected):
    write_csv(csv_path, [person(51)], header=header)
    with pytest.raises(ImportFileError, match=expected):
        run(clerk, csv_path)


def test_other_headers_are_mapped_and_chinese_labels_understood(clerk, csv_path):
    row = person(60)
    header = ("姓名", "证件号码", "手机号码", "客户类别", "老系统编号", "地址")
    with open(csv_path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerow([row["full_name"], row["id_number"], row["mobile"], "active", "L-0001", row["street"]])
    report = run(clerk, csv_path, mapping={"老系统编号": "", "地址": "street"},
                 defaults={"consent_date": "2020-01-01", "consent_scope": "投保"})
    assert report.imported == 1, report.problems
    number = customers.find_customers(clerk, "id_number", row["id_number"])[0].customer_no
    record = customers.reveal_fields(clerk, number, ["street", "gender", "date_of_birth"], "check the import")
    assert record.values["street"] == row["street"]
    assert record.values["date_of_birth"] == row["birth_date"], "filled from the resident ID"
    assert record.values["consent_date"] == "2020-01-01"


def test_bad_file_wide_values_are_refused_once(clerk, csv_path):
    write_csv(csv_path, [person(61)], header=tuple(n for n in HEADER if n != "consent_date"))
    with pytest.raises(ImportFileError, match="Consent date"):
        run(clerk, csv_path, defaults={"consent_date": "2999-01-01"})


def test_check_only_imports_nothing(clerk, csv_path):
    write_csv(csv_path, [person(70), person(71, mobile="1")])
    report = run(clerk, csv_path, check_only=True)
    assert (report.imported, report.rejected, report.status) == (1, 1, "checked")
    assert Customer.select().count() == 0 and keystore.DataKey.select().count() == 0
    assert AuditEntry.select().where(AuditEntry.action == "IMPORT_CHECK").count() == 1


# --- nothing half-imported ----------------------------------------------------------------------


def test_a_batch_that_fails_is_not_imported_at_all(clerk, csv_path, monkeypatch):
    write_csv(csv_path, [person(seed) for seed in range(80, 87)])
    real_append = audit.append
    seen = {"batches": 0}

    def append(**kwargs):
        if kwargs["action"] == "CUSTOMER_IMPORT":
            seen["batches"] += 1
            if seen["batches"] == 2:
                raise RuntimeError("disk full")
        return real_append(**kwargs)

    monkeypatch.setattr(audit, "append", append)
    with pytest.raises(RuntimeError):
        run(clerk, csv_path, batch_rows=3)
    monkeypatch.undo()
    assert Customer.select().count() == 3, "the first batch stays, whole; the second left nothing"
    assert keystore.DataKey.select().count() == 3, "no keys of the failed batch remain"
    batch = ImportBatch.get()
    assert (batch.status, batch.imported) == ("failed", 3)
    again = run(clerk, csv_path, batch_rows=3)
    assert (again.imported, again.skipped) == (4, 3), "running it again finishes the job"


def test_a_batch_whose_keys_cannot_be_stored_leaves_nothing(clerk, csv_path, monkeypatch):
    write_csv(csv_path, [person(seed) for seed in range(140, 145)])

    def refuse(self):
        raise RuntimeError("key store unavailable")

    monkeypatch.setattr(customers.SealedBatch, "_store_keys", refuse)
    with pytest.raises(RuntimeError):
        run(clerk, csv_path, batch_rows=2)
    monkeypatch.undo()
    assert Customer.select().count() == 0 and keystore.DataKey.select().count() == 0
    assert not AuditEntry.select().where(AuditEntry.action == "CUSTOMER_IMPORT").exists()


def test_a_batch_is_written_chunk_by_chunk_in_one_transaction(clerk, csv_path):
    write_csv(csv_path, [person(seed) for seed in range(150, 161)])
    report = run(clerk, csv_path, batch_rows=6, chunk_rows=2)
    assert report.imported == 11
    entries = [json.loads(e.details) for e in AuditEntry.select().where(AuditEntry.action == "CUSTOMER_IMPORT")
               .order_by(AuditEntry.seq)]
    assert [e["count"] for e in entries] == [6, 5], "a batch ends at the first chunk that fills it"
    assert keystore.DataKey.select().count() == 11


# --- workers, permissions, the command --------------------------------------------------------


def test_worker_processes_give_the_same_result(clerk, csv_path):
    rows = [person(seed) for seed in range(90, 120)]
    rows[4]["mobile"] = "123"
    write_csv(csv_path, rows)
    report = run(clerk, csv_path, workers=2, batch_rows=7)
    assert (report.imported, report.rejected) == (29, 1)
    assert problems_by_row(report) == {6: {"bad_format"}}
    assert len(customers.find_customers(clerk, "id_number", rows[20]["id_number"])) == 1


def test_only_staff_who_create_customers_import(auditor, csv_path):
    write_csv(csv_path, [person(1)])
    with pytest.raises(PermissionDenied):
        run(auditor, csv_path)


def test_the_import_command(clerk, csv_path, settings, monkeypatch, capsys):
    from tui import cli

    rows = [person(seed) for seed in range(130, 134)]
    rows[2]["id_number"] = "110105194912310021"
    write_csv(csv_path, rows)
    assert cli.main(["import", "--template"]) == 0
    assert capsys.readouterr().out.strip() == ",".join(CANONICAL_HEADER)
    monkeypatch.setattr(sys, "stdin", io.StringIO(TEST_PASSWORD + "\n"))
    monkeypatch.setenv("RECORDKEEPER_HOME", str(settings.home))
    if settings.database_url:
        monkeypatch.setenv("RECORDKEEPER_DATABASE_URL", settings.database_url)
    for name in ("RECORDKEEPER_ARGON2_MEMORY_KIB",):
        monkeypatch.setenv(name, str(settings.argon2_memory_kib))
    code = cli.main(["import", str(csv_path), "--as", "clerk", "--password-stdin", "--workers", "0"])
    out = capsys.readouterr()
    assert code == 3, out
    assert "imported 3 of 4 rows" in out.out and "rejected 1" in out.out
    assert csv_path.with_name("legacy.rejects.csv").exists()
    assert "110105194912310021" not in out.out + out.err
