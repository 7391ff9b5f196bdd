"""Supporting documents: picked from the scanner inbox, checked by content, stored encrypted with their SHA-256.

A document belongs to an owner — an intake submission, a customer, or anything another module
registers (change requests) — and is encrypted under that owner's data key in 1 MiB chunks,
each bound to its document, position and key. The inbox copy is removed only after the
encrypted copy is committed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import os
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import peewee as pw

from models import audit, clock, crypto, keystore, office, validation
from models.db import BaseModel, write
from models.errors import FieldError, IntegrityFailure, NotFound, PermissionDenied, ValidationError
from models.permissions import Actor, Perm, permissions_of, service
from models.staff import Staff

TABLE = "document"
CHUNK_BYTES = 1024 * 1024
DOC_TYPES = ("id_card_copy", "proof_of_address", "application_form", "other")
DOC_TYPE_LABELS = {  # English msgids; the UI translates them
    "id_card_copy": "ID card copy",
    "proof_of_address": "Proof of address",
    "application_form": "Application form",
    "other": "Other",
}
CONTENT_TYPES = {
    "application/pdf": ".pdf",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/tiff": ".tif",
}
MAX_NAME_LENGTH = 255


class Document(BaseModel):
    id = pw.CharField(max_length=36, primary_key=True)
    owner_type = pw.CharField(max_length=24)
    owner_id = pw.CharField(max_length=36)
    key_id = pw.CharField(max_length=36)
    doc_type = pw.CharField(max_length=24)
    content_type = pw.CharField(max_length=32)
    size = pw.BigIntegerField()
    sha256 = pw.CharField(max_length=64)
    name = pw.BlobField()  # the inbox file name, encrypted: scanners often put the person's name in it
    chunks = pw.IntegerField()
    added_by = pw.ForeignKeyField(Staff, null=True, backref="+", on_delete="SET NULL")
    added_at = pw.DateTimeField()

    class Meta:
        table_name = TABLE
        indexes = ((("owner_type", "owner_id"), False),)


class DocumentChunk(BaseModel):
    document = pw.ForeignKeyField(Document, backref="chunk_rows", on_delete="CASCADE")
    seq = pw.IntegerField()
    data = pw.BlobField()

    class Meta:
        table_name = "document_chunk"
        primary_key = pw.CompositeKey("document", "seq")


# --- who may touch whose documents ------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """What a resolver reports about a document owner: its data key and how the audit log names it."""

    key_id: str
    audit_type: str
    audit_id: str


# A resolver checks that `actor` may read (write=False) or change (write=True) the owner's
# documents beyond the permission below, and raises NotFound, PermissionDenied or Conflict.
Resolver = Callable[[Actor, str, bool], Owner]

# owner type -> ("module:function" of its resolver, read permission, write permission)
_OWNER_KINDS: dict[str, tuple[str, Perm, Perm]] = {
    "customer": ("models.documents:_customer_owner", Perm.CUSTOMER_VIEW, Perm.CHANGE_REQUEST),
    # Reading a submission's documents: its clerk, or a reviewer once it is submitted (the resolver checks).
    "submission": ("models.intake:_document_owner", Perm.CUSTOMER_VIEW, Perm.INTAKE),
}


def register_owner(owner_type: str, resolver: str, read: Perm, write_: Perm) -> None:
    """Let another module own documents (e.g. change requests), named "module:function"."""
    _OWNER_KINDS[owner_type] = (resolver, read, write_)


def _customer_owner(actor: Actor, customer_id: str, write: bool) -> Owner:
    from models.customers import Customer

    row = Customer.select(Customer.key_id, Customer.customer_no).where(Customer.id == customer_id).first()
    if row is None:
        raise NotFound("no such customer")
    return Owner(row.key_id, "customer", row.customer_no)


def _deny(actor: Actor, permission: Perm, what: str) -> PermissionDenied:
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="DENIED", outcome="denied", details={"service": what, "permission": permission.value})
    return PermissionDenied(f"{actor.username} may not do this ({permission.value})")


def _resolve(actor: Actor, owner_type: str, owner_id: str, write: bool, what: str) -> Owner:
    kind = _OWNER_KINDS.get(owner_type)
    if kind is None:
        raise ValidationError([FieldError("owner_type", "is not a kind of record that holds documents",
                                          "bad_choice")])
    target, read_perm, write_perm = kind
    _require(actor, write_perm if write else read_perm, what)
    module_name, _sep, function_name = target.partition(":")
    resolver: Resolver = getattr(importlib.import_module(module_name), function_name)
    return resolver(actor, str(owner_id), write)


def _granted(actor: Actor) -> frozenset[Perm]:
    """What the actor's roles allow now (not at login)."""
    from models import staff

    return permissions_of(staff.current_roles(actor))


def _require(actor: Actor, permission: Perm, what: str) -> None:
    if permission not in _granted(actor):
        raise _deny(actor, permission, what)


# --- the inbox ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxFile:
    """A file waiting in the scanner inbox; `problem` says why it cannot be attached (else empty)."""

    name: str
    size: int
    content_type: str
    problem: str


def sniff_content_type(head: bytes) -> str | None:
    """The content type the first bytes show (PDF, JPEG, PNG, TIFF), or None for anything else."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # TIFF and BigTIFF
        return "image/tiff"
    return None


def _limit_bytes() -> int:
    return office.current().settings.max_document_mb * 1024 * 1024


def _file_error(message: str, code: str) -> ValidationError:
    return ValidationError([FieldError("file", message, code)])


def _check_inbox_name(name: object) -> str:
    """Refuse anything that is not the plain name of one entry of the inbox folder."""
    if (not isinstance(name, str) or not name or name in (".", "..") or name.startswith(".")
            or "/" in name or "\\" in name or "\x00" in name or len(name) > MAX_NAME_LENGTH
            or validation.forbidden_characters(name)):
        raise _file_error("must be the name of a file in the scanner inbox (no folders, no paths)", "bad_path")
    return name


def _open_inbox() -> int:
    inbox = office.current().settings.inbox_dir
    try:
        return os.open(inbox, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise _file_error("the scanner inbox folder is missing", "not_found") from None
    except OSError:
        raise _file_error("the scanner inbox folder is not a real folder (a link?)", "bad_path") from None


def _open_inbox_file(dir_fd: int, name: str) -> tuple[int, os.stat_result]:
    """Open a regular, singly linked file of the inbox without following links."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except FileNotFoundError:
        raise _file_error("is no longer in the scanner inbox", "not_found") from None
    except OSError:
        raise _file_error("is a link or cannot be read; only plain files in the inbox can be attached",
                          "bad_path") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise _file_error("is not a plain file (a folder, device or linked file cannot be attached)", "bad_path")
    return fd, info


def _check_size(size: int) -> None:
    limit_mb = office.current().settings.max_document_mb
    if size == 0:
        raise _file_error("is empty", "empty")
    if size > _limit_bytes():
        raise _file_error(f"is {size / 1024 / 1024:.1f} MB; the limit is {limit_mb} MB", "too_large")


def _read_all(fd: int) -> bytes:
    limit = _limit_bytes()
    parts, total = [], 0
    while True:
        part = os.read(fd, min(CHUNK_BYTES, limit + 1 - total))
        if not part:
            break
        parts.append(part)
        total += len(part)
        if total > limit:
            break
    data = b"".join(parts)
    _check_size(len(data))
    return data


@service(Perm.CUSTOMER_VIEW)
def list_inbox(actor: Actor) -> list[InboxFile]:
    """The files in the scanner inbox, each with its size, sniffed type and any reason it cannot be attached."""
    if not _granted(actor) & {Perm.INTAKE, Perm.CHANGE_REQUEST}:
        raise _deny(actor, Perm.INTAKE, "list_inbox")
    dir_fd = _open_inbox()
    found: list[InboxFile] = []
    try:
        for name in sorted(os.listdir(dir_fd)):
            if name.startswith("."):
                continue
            try:
                _check_inbox_name(name)
                fd, info = _open_inbox_file(dir_fd, name)
            except ValidationError as exc:
                found.append(InboxFile(name, 0, "", exc.errors[0].message))
                continue
            try:
                kind = sniff_content_type(os.read(fd, 16))
            finally:
                os.close(fd)
            problem = ""
            try:
                _check_size(info.st_size)
            except ValidationError as exc:
                problem = exc.errors[0].message
            if kind is None:
                problem = "is not a PDF, JPEG, PNG or TIFF file"
            found.append(InboxFile(name, info.st_size, kind or "", problem))
    finally:
        os.close(dir_fd)
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="INBOX_LIST", details={"files": len(found)})
    return found


# --- stored documents -------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentView:
    document_id: str
    owner_type: str
    owner_id: str
    doc_type: str
    content_type: str
    size: int
    sha256: str
    name: str  # the inbox file name (data: show it through safe_text)
    added_by: str
    added_at: dt.datetime
    inbox_copy_removed: bool = True


def _utcnow() -> dt.datetime:
    return clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None)


def _name_aad(document_id: str, key_id: str) -> bytes:
    return crypto.field_aad(TABLE, document_id, "name", key_id)


def _chunk_aad(document_id: str, seq: int, key_id: str) -> bytes:
    return crypto.field_aad(TABLE, document_id, f"content.{seq}", key_id)


def _store(owner_type: str, owner_id: str, key_id: str, key: bytes, doc_type: str, content_type: str,
           name: str, data: bytes, added_by: int | None) -> Document:
    """Encrypt and insert one document inside the caller's transaction."""
    document_id = str(uuid.uuid4())
    pieces = [data[i:i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
    row = Document.create(
        id=document_id, owner_type=owner_type, owner_id=owner_id, key_id=key_id, doc_type=doc_type,
        content_type=content_type, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
        name=crypto.encrypt(key, name.encode("utf-8"), _name_aad(document_id, key_id)),
        chunks=len(pieces), added_by=added_by, added_at=_utcnow(),
    )
    for seq, piece in enumerate(pieces):
        DocumentChunk.insert(document=document_id, seq=seq,
                             data=crypto.encrypt(key, piece, _chunk_aad(document_id, seq, key_id))).execute()
    return row


def _views(rows: list[dict]) -> list[DocumentView]:
    keys = keystore.load_data_keys(sorted({r["key_id"] for r in rows}))
    out = []
    for r in rows:
        key = keys.get(r["key_id"])
        if key is None:
            raise IntegrityFailure("a document's data key is missing from the key store")
        name = crypto.decrypt(key, bytes(r["name"]), _name_aad(r["id"], r["key_id"])).decode("utf-8")
        out.append(DocumentView(r["id"], r["owner_type"], r["owner_id"], r["doc_type"], r["content_type"],
                                r["size"], r["sha256"], name, r["username"] or "", r["added_at"]))
    return out


def _rows(where) -> list[dict]:
    return list(Document.select(Document, Staff.username.alias("username"))
                .join(Staff, pw.JOIN.LEFT_OUTER, on=(Document.added_by == Staff.id))
                .where(where).order_by(Document.added_at, Document.id).dicts())


@service(Perm.CUSTOMER_VIEW)
def attach_document(actor: Actor, owner_type: str, owner_id: str, inbox_name: str, doc_type: str) -> DocumentView:
    """Attach a file from the scanner inbox to a submission or customer; the inbox copy goes after commit."""
    if doc_type not in DOC_TYPES:
        raise ValidationError([FieldError("doc_type", "must be one of: " + ", ".join(DOC_TYPES), "bad_choice")])
    name = _check_inbox_name(inbox_name)
    owner = _resolve(actor, owner_type, owner_id, True, "attach_document")
    dir_fd = _open_inbox()
    try:
        fd, info = _open_inbox_file(dir_fd, name)
        try:
            _check_size(info.st_size)
            data = _read_all(fd)
        finally:
            os.close(fd)
        content_type = sniff_content_type(data[:16])
        if content_type is None:
            raise _file_error("is not a PDF, JPEG, PNG or TIFF file (checked by its content)", "bad_type")
        key = keystore.load_data_key(owner.key_id)
        with write():
            owner = _resolve(actor, owner_type, owner_id, True, "attach_document")  # still editable?
            row = _store(owner_type, owner_id, owner.key_id, key, doc_type, content_type, name, data,
                         actor.staff_id)
            audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                         action="DOCUMENT_ATTACH", object_type=owner.audit_type, object_id=owner.audit_id,
                         details={"document": row.id, "doc_type": doc_type, "content_type": content_type,
                                  "size": len(data), "sha256": row.sha256})
        removed = _remove_inbox_copy(dir_fd, name, info)
    finally:
        os.close(dir_fd)
    view = _views(_rows(Document.id == row.id))[0]
    return DocumentView(**{**view.__dict__, "inbox_copy_removed": removed})


def _remove_inbox_copy(dir_fd: int, name: str, read: os.stat_result) -> bool:
    """Delete the inbox file if it is still the one that was read; True when it is gone."""
    try:
        now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return True
    if (now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns) != (
            read.st_dev, read.st_ino, read.st_size, read.st_mtime_ns):
        return False  # replaced or changed since it was read: leave it for the clerk to look at
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        return False
    return True


@service(Perm.CUSTOMER_VIEW)
def list_documents(actor: Actor, owner_type: str, owner_id: str) -> list[DocumentView]:
    """The documents of a submission or customer (names decrypted); the listing is audited first."""
    owner = _resolve(actor, owner_type, owner_id, False, "list_documents")
    rows = _rows((Document.owner_type == owner_type) & (Document.owner_id == owner_id))
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="DOCUMENT_LIST", object_type=owner.audit_type, object_id=owner.audit_id,
                 details={"documents": len(rows)})
    return _views(rows)


def _document(document_id: str) -> Document:
    row = Document.get_or_none(Document.id == str(document_id))
    if row is None:
        raise NotFound("no such document")
    return row


def _decrypt_content(row: Document, key: bytes) -> bytes:
    chunks = list(DocumentChunk.select().where(DocumentChunk.document == row.id).order_by(DocumentChunk.seq))
    if [c.seq for c in chunks] != list(range(row.chunks)):
        raise IntegrityFailure("a stored document is incomplete")
    data = b"".join(crypto.decrypt(key, bytes(c.data), _chunk_aad(row.id, c.seq, row.key_id)) for c in chunks)
    if len(data) != row.size or hashlib.sha256(data).hexdigest() != row.sha256:
        raise IntegrityFailure("a stored document does not match its SHA-256")
    return data


@dataclass(frozen=True)
class ExportedDocument:
    document_id: str
    path: Path
    size: int
    sha256: str


@service(Perm.CUSTOMER_VIEW)
def export_document(actor: Actor, document_id: str, purpose: str = "") -> ExportedDocument:
    """Decrypt a document into the export folder for printing; audited before decryption, SHA-256 checked."""
    row = _document(document_id)
    owner = _resolve(actor, row.owner_type, row.owner_id, False, "export_document")
    purpose_text = purpose.strip()[:200]
    if validation.forbidden_characters(purpose_text):
        raise ValidationError([FieldError("purpose", "contains control or invisible characters", "control_chars")])
    from models.training import require_training

    require_training(actor, "document_export")  # lapsed data-protection training blocks exporting
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="DOCUMENT_EXPORT", object_type=owner.audit_type, object_id=owner.audit_id,
                 purpose=purpose_text, details={"document": row.id, "sha256": row.sha256})
    data = _decrypt_content(row, keystore.load_data_key(row.key_id))
    export_dir = office.current().settings.export_dir
    office.ensure_private_dir(export_dir)
    stamp = clock.now().strftime("%Y%m%d-%H%M%S")
    base = f"{owner.audit_id}-{row.doc_type}-{row.id[:8]}-{stamp}"
    suffix = CONTENT_TYPES.get(row.content_type, ".bin")
    for attempt in range(100):
        path = export_dir / f"{base}{'-' + str(attempt) if attempt else ''}{suffix}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            continue
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return ExportedDocument(row.id, path, row.size, row.sha256)
    raise IntegrityFailure("could not choose a free file name in the export folder")


@service(Perm.CUSTOMER_VIEW)
def remove_document(actor: Actor, document_id: str) -> None:
    """Remove a document from a record that may still be changed (audited; the ciphertext is deleted)."""
    row = _document(document_id)
    with write():
        owner = _resolve(actor, row.owner_type, row.owner_id, True, "remove_document")
        DocumentChunk.delete().where(DocumentChunk.document == row.id).execute()
        Document.delete().where(Document.id == row.id).execute()
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="DOCUMENT_REMOVE", object_type=owner.audit_type, object_id=owner.audit_id,
                     details={"document": row.id, "doc_type": row.doc_type, "sha256": row.sha256})


# --- helpers for other modules (the caller has checked permission and holds the transaction) ---


def _count_documents(owner_type: str, owner_id: str) -> int:
    return Document.select().where((Document.owner_type == owner_type) & (Document.owner_id == owner_id)).count()


def _counts_by_owner(owner_type: str, owner_ids: list[str]) -> dict[str, int]:
    if not owner_ids:
        return {}
    query = (Document.select(Document.owner_id, pw.fn.COUNT(Document.id).alias("n"))
             .where((Document.owner_type == owner_type) & (Document.owner_id.in_(owner_ids)))
             .group_by(Document.owner_id).dicts())
    return {r["owner_id"]: r["n"] for r in query}


def _move_documents(from_type: str, from_id: str, to_type: str, to_id: str) -> int:
    """Hand a submission's documents to the customer it became (same data key: nothing re-encrypted)."""
    return Document.update(owner_type=to_type, owner_id=to_id).where(
        (Document.owner_type == from_type) & (Document.owner_id == from_id)).execute()


def _delete_documents(owner_type: str, owner_id: str) -> int:
    """Delete every document of one owner (discarded drafts, destroyed customers)."""
    ids = [r.id for r in Document.select(Document.id).where(
        (Document.owner_type == owner_type) & (Document.owner_id == owner_id))]
    if not ids:
        return 0
    DocumentChunk.delete().where(DocumentChunk.document.in_(ids)).execute()
    return Document.delete().where(Document.id.in_(ids)).execute()


def all_tables() -> list[type[BaseModel]]:
    return [Document, DocumentChunk]
