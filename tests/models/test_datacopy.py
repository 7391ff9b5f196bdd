"""The customer's copy of their data (PIPL art. 45): complete, readable, private, audited first."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import random
import stat
import sys

import pytest
from faker import Faker

from models import audit, clock, customers, datacopy, demo, documents, labels
from models.audit import AuditEntry
from models.errors import NotFound, PermissionDenied
from models.fields import CUSTOMER_FIELDS
from tests.conftest import TEST_PASSWORD

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def make_data(seed: int, **overrides) -> dict:
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    data = demo.fake_customer(fake, random.Random(seed), clock.today())
    data.update(overrides)
    return data


@pytest.fixture
def customer(clerk, make_staff):
    officer = make_staff("officer", "records_officer")
    made = customers.create_customer(clerk, make_data(1, full_name="欧阳修", notes="prefers calls after 6pm"))
    vip = labels.create_label(officer, "VIP", "accent", "High value")
    labels.label_customer(clerk, made.customer_no, [vip.label_id])
    return made


def test_the_copy_holds_every_field_dates_labels_and_history(clerk, customer):
    clear = customers.reveal_fields(clerk, customer.customer_no, list(customers.PERSONAL_FIELDS), "test the copy")
    made = datacopy.export_customer_copy(clerk, customer.customer_no)
    data = json.loads(made.json_path.read_text(encoding="utf-8"))
    assert data["customer_no"] == customer.customer_no
    for spec in CUSTOMER_FIELDS:
        assert data["fields"][spec.name]["value"] == clear.values[spec.name], spec.name
    assert data["fields"]["gender"]["in_words"].endswith(("男", "女"))
    assert [label["name"] for label in data["labels"]] == ["VIP"]
    assert {event["what"] for event in data["history"]} >= {"created", "labelled"}
    assert data["dates"]["created_at"] and data["documents"] == []
    text = made.text_path.read_text(encoding="utf-8")
    for value in ("欧阳修", str(clear.values["id_number"]), str(clear.values["mobile"]), "prefers calls after 6pm",
                  "Full name / 姓名", "VIP", customer.customer_no):
        assert value in text


def test_the_copy_is_private_and_audited_before_decryption(clerk, customer, monkeypatch):
    order: list[str] = []
    real_append, real_decrypt = audit.append, customers.decrypt_fields
    monkeypatch.setattr(audit, "append", lambda **kw: (order.append(kw["action"]), real_append(**kw))[1])
    monkeypatch.setattr(customers, "decrypt_fields",
                        lambda *a, **k: (order.append("decrypt"), real_decrypt(*a, **k))[1])
    made = datacopy.export_customer_copy(clerk, customer.customer_no)
    assert order.index("DATA_COPY") < order.index("decrypt")
    entry = AuditEntry.select().where(AuditEntry.action == "DATA_COPY").get()
    assert entry.object_id == customer.customer_no and "PIPL" in entry.purpose and "欧阳修" not in entry.details
    assert stat.S_IMODE(made.folder.stat().st_mode) == 0o700
    for path in (made.json_path, made.text_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = datacopy.export_customer_copy(clerk, customer.customer_no)
    assert second.folder != made.folder, "a second copy never overwrites the first"


def test_documents_come_as_files_with_their_checksums(clerk, customer, office):
    customer_id = customers.Customer.get(customers.Customer.customer_no == customer.customer_no).id
    (office.settings.inbox_dir / "scan.pdf").write_bytes(PDF)
    documents.attach_document(clerk, "customer", customer_id, "scan.pdf", "id_card_copy")
    made = datacopy.export_customer_copy(clerk, customer.customer_no)
    data = json.loads(made.json_path.read_text(encoding="utf-8"))
    assert made.documents == 1 and len(data["documents"]) == 1
    doc = data["documents"][0]
    assert (made.folder / doc["file"]).read_bytes() == PDF
    assert doc["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert not any(p.is_file() for p in office.settings.export_dir.iterdir()), "nothing left loose in export/"


def test_who_may_make_a_copy(customer, auditor, make_staff):
    with pytest.raises(PermissionDenied):
        datacopy.export_customer_copy(auditor, customer.customer_no)
    reviewer = make_staff("reviewer2", "reviewer")
    assert datacopy.export_customer_copy(reviewer, customer.customer_no).json_path.exists()
    with pytest.raises(NotFound):
        datacopy.export_customer_copy(reviewer, "C1999000001")


def test_the_export_command(clerk, customer, settings, monkeypatch, capsys):
    from tui import cli

    monkeypatch.setattr(sys, "stdin", io.StringIO(TEST_PASSWORD + "\n"))
    monkeypatch.setenv("RECORDKEEPER_HOME", str(settings.home))
    monkeypatch.setenv("RECORDKEEPER_ARGON2_MEMORY_KIB", str(settings.argon2_memory_kib))
    if settings.database_url:
        monkeypatch.setenv("RECORDKEEPER_DATABASE_URL", settings.database_url)
    code = cli.main(["export", "--customer", customer.customer_no.lower(), "--as", "clerk", "--password-stdin"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "customer-data.json" in out and "customer-data.txt" in out and "欧阳修" not in out


def test_change_requests_on_the_person_are_in_the_copy(clerk, customer):
    from models import change_requests

    change_requests.submit_change_request(clerk, customer.customer_no, 1, {"mobile": "13512349876"},
                                          source="customer_report", channel="phone", reported_on="2026-11-24",
                                          reason="the customer called with a new number")
    made = datacopy.export_customer_copy(clerk, customer.customer_no)
    data = json.loads(made.json_path.read_text(encoding="utf-8"))
    assert [r["proposed"] for r in data["change_requests"]] == [{"mobile": "13512349876"}]
    assert data["change_requests"][0]["status"] == "pending" and data["not_included"] == []
    assert "13512349876" in made.text_path.read_text(encoding="utf-8")


def test_lapsed_training_refuses_the_copy_and_the_refusal_is_audited(admin, clerk, customer, settings):
    from models import training
    from models.training import TrainingExpired

    training.record_training(admin, "clerk", "DP", clock.today() - dt.timedelta(days=366))
    with pytest.raises(TrainingExpired) as caught:
        datacopy.export_customer_copy(clerk, customer.customer_no)
    assert isinstance(caught.value, PermissionDenied)
    assert str(caught.value).endswith("it must be renewed before revealing, approving or exporting")
    denial = AuditEntry.select().order_by(AuditEntry.seq.desc()).get()
    assert (denial.action, denial.outcome, denial.actor) == ("DENIED", "denied", "clerk")
    details = json.loads(denial.details)
    assert (details["reason"], details["service"]) == ("training_expired", "data_copy")
    assert dt.date.fromisoformat(details["expired_on"]) < clock.today()
    assert not AuditEntry.select().where(AuditEntry.action == "DATA_COPY").exists(), "refused before the audit"
    assert not settings.export_dir.exists() or not any(settings.export_dir.iterdir()), "nothing written"
    training.record_training(admin, "clerk", "DP renewal", clock.today())
    assert datacopy.export_customer_copy(clerk, customer.customer_no).json_path.exists()
    assert audit.verify_chain().ok


def test_the_export_command_says_why_lapsed_training_refuses_the_copy(admin, clerk, customer, settings,
                                                                      monkeypatch, capsys):
    from models import training
    from tui import cli

    training.record_training(admin, "clerk", "DP", clock.today() - dt.timedelta(days=366))
    monkeypatch.setattr(sys, "stdin", io.StringIO(TEST_PASSWORD + "\n"))
    monkeypatch.setenv("RECORDKEEPER_HOME", str(settings.home))
    monkeypatch.setenv("RECORDKEEPER_ARGON2_MEMORY_KIB", str(settings.argon2_memory_kib))
    if settings.database_url:
        monkeypatch.setenv("RECORDKEEPER_DATABASE_URL", settings.database_url)
    code = cli.main(["export", "--customer", customer.customer_no, "--as", "clerk", "--password-stdin"])
    captured = capsys.readouterr()
    assert code == cli.EXIT_DENIED
    assert "not allowed: clerk's data-protection training expired on" in captured.err
    assert "renewed" in captured.err and "customer-data" not in captured.out
