"""Numbered schema migrations and the start-up version check.

The app refuses a database newer than itself and asks for `recordkeeper migrate` on an older one.
"""

from __future__ import annotations

from typing import Callable

import peewee as pw

from models import audit
from models.db import BaseModel, db, keys_db, write
from models.errors import SchemaError


class SchemaVersion(BaseModel):
    version = pw.IntegerField(primary_key=True)
    applied_at = pw.CharField(max_length=32)

    class Meta:
        table_name = "schema_version"


def _m001_foundation() -> None:
    from models.customers import Customer, CustomerNumberSequence
    from models.staff import Staff

    db.create_tables([Staff, audit.AuditEntry, Customer, CustomerNumberSequence])
    audit.install_guards()


def _m002_labels_and_history() -> None:
    from models.history import CustomerEvent
    from models.labels import CustomerLabel, Label

    db.create_tables([Label, CustomerLabel, CustomerEvent])


def _m003_intake_and_documents() -> None:
    from models.documents import Document, DocumentChunk
    from models.intake import IntakeRevision, IntakeSubmission

    db.create_tables([IntakeSubmission, IntakeRevision, Document, DocumentChunk])


def _m004_browse_and_import() -> None:
    from playhouse.migrate import SchemaMigrator, migrate as apply_operations

    from models.customers import _backfill_fingerprints
    from models.importer import ImportBatch

    present = {column.name for column in db.get_columns("customer")}
    migrator = SchemaMigrator.from_database(db.obj)
    apply_operations(*[migrator.add_column("customer", name, pw.CharField(max_length=length, null=True))
                       for name, length in (("id_fp", 32), ("import_batch", 36)) if name not in present])
    # Keyset paging: every browser order and filter is one index range scan, first page or last.
    for name, columns in (("customer_id_fp", "id_fp"), ("customer_category_no", "category, customer_no"),
                          ("customer_branch_no", "branch, customer_no"),
                          ("customer_verification_queue", "next_verification_due, customer_no"),
                          ("customer_retention_no", "retention_until, customer_no"),
                          ("customer_category_due_no", "category, next_verification_due, customer_no"),
                          ("customer_category_retention_no", "category, retention_until, customer_no")):
        db.execute_sql(f"CREATE INDEX IF NOT EXISTS {name} ON customer ({columns})")
    # The single-column indexes of migration 1 are prefixes of the ones above: every insert paid
    # for them (a fifth of an import's write time) and no query needs them any more.
    for name in ("customer_category", "customer_branch", "customer_next_verification_due",
                 "customer_retention_until"):
        db.execute_sql(f"DROP INDEX IF EXISTS {name}")
    db.create_tables([ImportBatch])
    _backfill_fingerprints()


def _m005_change_requests_and_verification() -> None:
    from models.change_requests import ChangeRequest
    from models.verification import VerificationCheck, VerificationState

    db.create_tables([ChangeRequest, VerificationCheck, VerificationState])
    # The due queue reads (next_verification_due, customer_no) in order straight from this index.
    db.execute_sql("CREATE INDEX IF NOT EXISTS customer_verification_queue "
                   "ON customer (next_verification_due, customer_no)")


def _m007_supervision() -> None:
    from models.branches import Branch
    from models.suggestions import Suggestion
    from models.training import TrainingRecord

    db.create_tables([TrainingRecord, Branch, Suggestion])
    # The audit browser pages by seq under each filter; these keep every page an index range scan.
    for name, columns in (("audit_entry_ts", "ts, seq"), ("audit_entry_actor_seq", "actor, seq"),
                          ("audit_entry_action_seq", "action, seq"), ("audit_entry_object_seq", "object_id, seq"),
                          ("audit_entry_outcome_seq", "outcome, seq")):
        db.execute_sql(f"CREATE INDEX IF NOT EXISTS {name} ON audit_entry ({columns})")


def _m006_retention_and_destruction() -> None:
    from models import destruction, retention

    db.create_tables([retention.RetentionRule, retention.LegalHold, *destruction.tables()])
    retention._seed_rules()


MIGRATIONS: list[tuple[int, str, Callable[[], None]]] = [
    (1, "foundation: staff, audit log, customers", _m001_foundation),
    (2, "labels and customer history", _m002_labels_and_history),
    (3, "intake submissions, revisions and documents", _m003_intake_and_documents),
    (4, "browse indexes, import batches, ID fingerprints", _m004_browse_and_import),
    (5, "change requests and periodic verification", _m005_change_requests_and_verification),
    (6, "retention rules, legal holds, destruction requests and register", _m006_retention_and_destruction),
    (7, "training, branches, suggestions, audit browse indexes", _m007_supervision),
]
SCHEMA_VERSION = max(number for number, _title, _step in MIGRATIONS)


def applied_versions() -> set[int]:
    if not db.table_exists("schema_version"):
        return set()
    return {row.version for row in SchemaVersion.select(SchemaVersion.version)}


def database_version() -> int:
    """The highest applied migration (0 for an empty database)."""
    return max(applied_versions(), default=0)


def check_version() -> None:
    found = database_version()
    if found > SCHEMA_VERSION:
        raise SchemaError(
            f"the database is at schema version {found}, newer than this program ({SCHEMA_VERSION}); "
            "install the newer RecordKeeper release"
        )
    if found == 0:
        raise SchemaError("the database is empty; run `recordkeeper init` first")
    if found < SCHEMA_VERSION or applied_versions() != {number for number, _t, _s in MIGRATIONS}:
        raise SchemaError(
            f"the database is at schema version {found} and this program needs {SCHEMA_VERSION}; "
            "back it up, then run `recordkeeper migrate`"
        )


def migrate(progress: Callable[[int, str], None] | None = None) -> list[int]:
    """Apply every pending migration, each in its own transaction; returns those applied."""
    import datetime as dt

    applied = []
    with write():
        db.create_tables([SchemaVersion])
    if database_version() > SCHEMA_VERSION:
        check_version()
    done = applied_versions()
    for number, title, step in MIGRATIONS:
        if number in done:
            continue
        with write():
            step()
            SchemaVersion.create(version=number, applied_at=dt.datetime.now(dt.timezone.utc).isoformat())
        applied.append(number)
        if progress:
            progress(number, title)
    return applied


def ensure_keystore() -> None:
    from models.keystore import DataKey
    from models.ledger import LedgerMark

    with keys_db.atomic():
        keys_db.create_tables([DataKey, LedgerMark])
