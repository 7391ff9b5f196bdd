"""Supporting documents: inbox picking without path tricks, type by content, size limit, encrypted storage."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace

import pytest

from models import customers, documents, intake, office as office_mod
from models.audit import AuditEntry
from models.db import is_sqlite
from models.documents import Document, DocumentChunk
from models.errors import Conflict, IntegrityFailure, NotFound, PermissionDenied, ValidationError
from tests.models.test_intake import form

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x11" * 100
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x22" * 100
TIFF_LE = b"II*\x00" + b"\x08\x00\x00\x00" + b"\x33" * 100
TIFF_BE = b"MM\x00*" + b"\x00\x00\x00\x08" + b"\x44" * 100


def actions(action: str) -> list[AuditEntry]:
    return list(AuditEntry.select().where(AuditEntry.action == action).order_by(AuditEntry.seq))


def code_of(exc: pytest.ExceptionInfo) -> str:
    return exc.value.errors[0].code


@pytest.fixture
def inbox(office):
    return office.settings.inbox_dir


@pytest.fixture
def draft(clerk):
    return intake.save_draft(clerk, None, {"full_name": "王小丽"}).submission_id


# --- content type ----------------------------------------------------------------------------


@pytest.mark.parametrize("head, expected", [
    (PDF, "application/pdf"), (JPEG, "image/jpeg"), (PNG, "image/png"), (TIFF_LE, "image/tiff"),
    (TIFF_BE, "image/tiff"), (b"GIF89a....", None), (b"PK\x03\x04 zip", None), (b"MZ\x90\x00", None),
    (b"<html>%PDF-", None), (b"", None), (b"\x89PNG", None), (b"\xff\xd8", None),
])
def test_sniff(head, expected):
    assert documents.sniff_content_type(head) == expected


@pytest.mark.parametrize("name, data, content_type", [
    ("a.pdf", PDF, "application/pdf"), ("b.jpg", JPEG, "image/jpeg"), ("c.png", PNG, "image/png"),
    ("d.tif", TIFF_LE, "image/tiff"), ("misnamed.txt", PDF, "application/pdf"),
])
def test_attach_each_type_and_remove_the_inbox_copy(clerk, inbox, draft, name, data, content_type):
    (inbox / name).write_bytes(data)
    view = documents.attach_document(clerk, "submission", draft, name, "application_form")
    assert view.content_type == content_type and view.size == len(data)
    assert view.sha256 == hashlib.sha256(data).hexdigest() and view.inbox_copy_removed
    assert not (inbox / name).exists()
    entry = actions("DOCUMENT_ATTACH")[0]
    assert entry.object_type == "submission" and entry.object_id == intake.ref_of(draft)
    assert json.loads(entry.details)["sha256"] == view.sha256 and name not in entry.details


@pytest.mark.parametrize("data", [b"GIF89a" + b"\x00" * 50, b"just some text", b"PK\x03\x04" + b"\x00" * 40,
                                  b"MZ\x90\x00" + b"\x00" * 40])
def test_other_content_is_refused_whatever_its_name(clerk, inbox, draft, data):
    (inbox / "scan.pdf").write_bytes(data)
    with pytest.raises(ValidationError) as exc:
        documents.attach_document(clerk, "submission", draft, "scan.pdf", "id_card_copy")
    assert code_of(exc) == "bad_type" and "PDF, JPEG, PNG or TIFF" in exc.value.errors[0].message
    assert (inbox / "scan.pdf").exists() and Document.select().count() == 0


def test_size_limit_from_settings(clerk, inbox, draft, office):
    office.settings = replace(office.settings, max_document_mb=1)
    (inbox / "big.pdf").write_bytes(PDF + b"\x00" * (1024 * 1024))
    with pytest.raises(ValidationError) as exc:
        documents.attach_document(clerk, "submission", draft, "big.pdf", "other")
    assert code_of(exc) == "too_large" and "the limit is 1 MB" in exc.value.errors[0].message
    (inbox / "empty.pdf").write_bytes(b"")
    with pytest.raises(ValidationError) as exc:
        documents.attach_document(clerk, "submission", draft, "empty.pdf", "other")
    assert code_of(exc) == "empty"
    (inbox / "fits.pdf").write_bytes(PDF + b"\x00" * (1024 * 1024 - len(PDF)))
    assert documents.attach_document(clerk, "submission", draft, "fits.pdf", "other").size == 1024 * 1024
    assert (inbox / "big.pdf").exists()


def test_default_limit_is_20_mb(settings):
    assert settings.max_document_mb == 20


def test_bad_document_type(clerk, inbox, draft):
    (inbox / "a.pdf").write_bytes(PDF)
    with pytest.raises(ValidationError) as exc:
        documents.attach_document(clerk, "submission", draft, "a.pdf", "passport_photo")
    assert code_of(exc) == "bad_choice"


# --- nothing outside the inbox ---------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "../recordkeeper.db", "..", ".", "/etc/passwd", "sub/a.pdf", "..\\keys\\master.key", "a.pdf\x00.png",
    ".hidden.pdf", "", "a\x1b[31m.pdf", "a\u202e.pdf", "x" * 300, "keys/master.key",
])
def test_path_tricks_are_refused(clerk, inbox, draft, name):
    with pytest.raises(ValidationError) as exc:
        documents.attach_document(clerk, "submission", draft, name, "other")
    assert code_of(exc) == "bad_path"


def test_links_folders_and_devices_are_refused(clerk, inbox, draft, office, tmp_path):
    outside = tmp_path / "outside.pdf"
    outside.write_bytes(PDF)
    (inbox / "link.pdf").symlink_to(outside)
    (inbox / "keylink.pdf").symlink_to(office.settings.master_key_path)
    os.link(outside, inbox / "hard.pdf")
    (inbox / "folder.pdf").mkdir()
    os.mkfifo(inbox / "pipe.pdf")
    for name in ("link.pdf", "keylink.pdf", "hard.pdf", "folder.pdf", "pipe.pdf"):
        with pytest.raises(ValidationError) as exc:
            documents.attach_document(clerk, "submission", draft, name, "other")
        assert code_of(exc) == "bad_path", name
    assert outside.exists() and Document.select().count() == 0
    listed = {f.name: f.problem for f in documents.list_inbox(clerk)}
    assert all(listed[name] for name in ("link.pdf", "hard.pdf", "folder.pdf", "pipe.pdf"))


def test_an_inbox_that_is_a_link_is_refused(clerk, inbox, draft, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.pdf").write_bytes(PDF)
    inbox.rmdir()
    inbox.symlink_to(elsewhere)
    with pytest.raises(ValidationError) as exc:
        documents.attach_document(clerk, "submission", draft, "a.pdf", "other")
    assert code_of(exc) == "bad_path"


def test_missing_file(clerk, inbox, draft):
    with pytest.raises(ValidationError) as exc:
        documents.attach_document(clerk, "submission", draft, "gone.pdf", "other")
    assert code_of(exc) == "not_found"


def test_list_inbox(clerk, inbox, reviewer):
    (inbox / "b.png").write_bytes(PNG)
    (inbox / "a.pdf").write_bytes(PDF)
    (inbox / "notes.txt").write_bytes(b"hello")
    (inbox / ".partial").write_bytes(PDF)
    listed = documents.list_inbox(clerk)
    assert [(f.name, f.content_type, bool(f.problem)) for f in listed] == [
        ("a.pdf", "application/pdf", False), ("b.png", "image/png", False), ("notes.txt", "", True)]
    assert actions("INBOX_LIST")
    with pytest.raises(PermissionDenied):
        documents.list_inbox(reviewer)


# --- the inbox copy goes only after the commit ------------------------------------------------------


def test_inbox_copy_stays_when_storing_fails(clerk, inbox, draft, monkeypatch):
    (inbox / "a.pdf").write_bytes(PDF)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(documents.audit, "append", broken)
    with pytest.raises(RuntimeError):
        documents.attach_document(clerk, "submission", draft, "a.pdf", "other")
    monkeypatch.undo()
    assert (inbox / "a.pdf").read_bytes() == PDF
    assert Document.select().count() == 0 and DocumentChunk.select().count() == 0


def test_a_file_replaced_while_attaching_is_left_alone(clerk, inbox, draft, monkeypatch):
    (inbox / "a.pdf").write_bytes(PDF)
    real_store = documents._store

    def store_then_replace(*args, **kwargs):
        row = real_store(*args, **kwargs)
        (inbox / "a.pdf").unlink()
        (inbox / "a.pdf").write_bytes(PNG)  # a new scan under the same name
        return row

    monkeypatch.setattr(documents, "_store", store_then_replace)
    view = documents.attach_document(clerk, "submission", draft, "a.pdf", "other")
    assert not view.inbox_copy_removed and (inbox / "a.pdf").read_bytes() == PNG


# --- encrypted storage -------------------------------------------------------------------------------


def test_stored_encrypted_in_chunks_and_exported_intact(clerk, inbox, draft, office, monkeypatch):
    monkeypatch.setattr(documents, "CHUNK_BYTES", 64)
    data = PDF + "客户王小丽身份证QXZ".encode() * 20
    (inbox / "王小丽身份证.pdf").write_bytes(data)
    view = documents.attach_document(clerk, "submission", draft, "王小丽身份证.pdf", "id_card_copy")
    row = Document.get_by_id(view.document_id)
    chunks = list(DocumentChunk.select().where(DocumentChunk.document == row.id).order_by(DocumentChunk.seq))
    assert row.chunks == len(chunks) > 3
    assert all("QXZ".encode() not in bytes(c.data) for c in chunks)
    assert "王小丽".encode() not in bytes(row.name)
    assert documents.list_documents(clerk, "submission", draft)[0].name == "王小丽身份证.pdf"
    exported = documents.export_document(clerk, view.document_id, "打印存档")
    assert exported.path.parent == office.settings.export_dir and exported.path.read_bytes() == data
    assert exported.path.suffix == ".pdf" and "王" not in exported.path.name
    assert oct(exported.path.stat().st_mode & 0o777) == "0o600"
    entry = actions("DOCUMENT_EXPORT")[0]
    assert entry.purpose == "打印存档" and json.loads(entry.details)["document"] == view.document_id


def test_tampered_or_reordered_chunks_fail(clerk, inbox, draft, monkeypatch):
    monkeypatch.setattr(documents, "CHUNK_BYTES", 32)
    (inbox / "a.pdf").write_bytes(PDF * 4)
    view = documents.attach_document(clerk, "submission", draft, "a.pdf", "other")
    first = DocumentChunk.get((DocumentChunk.document == view.document_id) & (DocumentChunk.seq == 0))
    second = DocumentChunk.get((DocumentChunk.document == view.document_id) & (DocumentChunk.seq == 1))
    DocumentChunk.update(data=bytes(second.data)).where(
        (DocumentChunk.document == view.document_id) & (DocumentChunk.seq == 0)).execute()
    with pytest.raises(IntegrityFailure):
        documents.export_document(clerk, view.document_id)
    DocumentChunk.update(data=bytes(first.data)).where(
        (DocumentChunk.document == view.document_id) & (DocumentChunk.seq == 0)).execute()
    DocumentChunk.delete().where((DocumentChunk.document == view.document_id) & (DocumentChunk.seq == 2)).execute()
    with pytest.raises(IntegrityFailure):
        documents.export_document(clerk, view.document_id)


# --- who may do what ---------------------------------------------------------------------------------


def test_only_the_owner_attaches_to_a_draft(clerk, make_staff, inbox, draft):
    other = make_staff("clerk2", "clerk")
    (inbox / "a.pdf").write_bytes(PDF)
    with pytest.raises(PermissionDenied):
        documents.attach_document(other, "submission", draft, "a.pdf", "other")
    with pytest.raises(PermissionDenied):
        documents.list_documents(other, "submission", draft)
    assert (inbox / "a.pdf").exists() and len(actions("DENIED")) == 2


def test_reviewers_read_submitted_documents_but_cannot_change_them(clerk, reviewer, inbox, draft):
    (inbox / "a.pdf").write_bytes(PDF)
    view = documents.attach_document(clerk, "submission", draft, "a.pdf", "other")
    with pytest.raises(PermissionDenied):  # a draft is nobody else's business
        documents.list_documents(reviewer, "submission", draft)
    intake.submit(clerk, draft, form())
    assert [d.document_id for d in documents.list_documents(reviewer, "submission", draft)] == [view.document_id]
    assert documents.export_document(reviewer, view.document_id).path.read_bytes() == PDF
    with pytest.raises(PermissionDenied):
        documents.remove_document(reviewer, view.document_id)
    with pytest.raises(Conflict):  # with the reviewer: the clerk cannot change it either
        documents.remove_document(clerk, view.document_id)
    (inbox / "b.pdf").write_bytes(PDF)
    with pytest.raises(Conflict):
        documents.attach_document(clerk, "submission", draft, "b.pdf", "other")


def test_remove_is_audited_and_deletes_the_ciphertext(clerk, inbox, draft):
    (inbox / "a.pdf").write_bytes(PDF)
    view = documents.attach_document(clerk, "submission", draft, "a.pdf", "other")
    documents.remove_document(clerk, view.document_id)
    assert Document.select().count() == 0 and DocumentChunk.select().count() == 0
    assert json.loads(actions("DOCUMENT_REMOVE")[0].details)["document"] == view.document_id
    with pytest.raises(NotFound):
        documents.export_document(clerk, view.document_id)


def test_customer_documents_use_the_customers_key(clerk, reviewer, auditor, inbox):
    customer = customers.create_customer(clerk, form())
    (inbox / "proof.jpg").write_bytes(JPEG)
    view = documents.attach_document(clerk, "customer", customer.customer_id, "proof.jpg", "proof_of_address")
    row = Document.get_by_id(view.document_id)
    assert row.key_id == customers.Customer.get_by_id(customer.customer_id).key_id
    entry = actions("DOCUMENT_ATTACH")[0]
    assert (entry.object_type, entry.object_id) == ("customer", customer.customer_no)
    assert [d.doc_type for d in documents.list_documents(reviewer, "customer", customer.customer_id)] == [
        "proof_of_address"]
    assert documents.export_document(reviewer, view.document_id).path.read_bytes() == JPEG
    (inbox / "more.jpg").write_bytes(JPEG)
    with pytest.raises(PermissionDenied):  # reviewers do not change customer records
        documents.attach_document(reviewer, "customer", customer.customer_id, "more.jpg", "other")
    with pytest.raises(PermissionDenied):  # auditors see no personal data
        documents.list_documents(auditor, "customer", customer.customer_id)
    with pytest.raises(NotFound):
        documents.list_documents(clerk, "customer", "no-such-customer")
    with pytest.raises(ValidationError):
        documents.list_documents(clerk, "spaceship", customer.customer_id)


def test_no_document_bytes_in_clear_on_disk(clerk, inbox, draft, settings):
    if not is_sqlite():
        pytest.skip("the raw-bytes check reads the SQLite files")
    secret = "身份证号码哨兵QXZ-4711".encode()
    (inbox / "哨兵文件QXZ.pdf").write_bytes(PDF + secret * 10)
    documents.attach_document(clerk, "submission", draft, "哨兵文件QXZ.pdf", "id_card_copy")
    for path in settings.home.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            assert secret not in raw and "哨兵文件QXZ".encode() not in raw, path.name
