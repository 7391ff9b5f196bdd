"""`recordkeeper migrate --to postgresql://…`: a SQLite office copied to PostgreSQL as stored, checked after.

Builds a SQLite office through the services (customers, an approved intake with a document, a change
request, a legal hold, staff), runs the real CLI, then opens the office on PostgreSQL and compares.
Needs the server: skipped without one, a failure in CI (as the PostgreSQL model suite).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from dataclasses import replace

import pytest
from faker import Faker

from models import (audit, change_requests, clock, customers, demo, documents, engine_migrate, intake, migrations,
                    office as office_mod, staff)
from models.db import db
from tests.conftest import TEST_PASSWORD
from tests.postgres.test_model_suites_on_postgres import ROOT, _reachable, _server_url

pytestmark = pytest.mark.postgres

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def pg_target():
    """An empty PostgreSQL schema and its URL (dropped afterwards)."""
    url = _server_url()
    problem = _reachable(url)
    if problem:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL at {url} is unreachable in CI: {problem}")
        pytest.skip(f"no PostgreSQL server at {url}: {problem}")
    import psycopg

    schema = "rk_mig_" + uuid.uuid4().hex[:10]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _tables(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema = current_schema() ORDER BY 1")]


def _sqlite_counts() -> dict[str, int]:
    names = [n for (n,) in db.execute_sql("SELECT name FROM sqlite_master WHERE type = 'table' "
                                          "AND name NOT LIKE 'sqlite_%'")]
    return {n: db.execute_sql(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}


@pytest.fixture
def sqlite_office(office, admin, make_staff):
    if not office.settings.database_path.exists() or office.settings.uses_postgres:
        pytest.skip("the source office must be SQLite")
    clerk = make_staff("clerk", "clerk")
    reviewer = make_staff("reviewer", "reviewer")
    supervisor = make_staff("supervisor", "supervisor")
    fake, rng = Faker("zh_CN"), random.Random(4)
    fake.seed_instance(4)
    numbers = [customers.create_customer(clerk, {**demo.fake_customer(fake, rng, clock.today()),
                                                 "category": "active"}).customer_no for _ in range(30)]
    values = {**demo.fake_customer(fake, rng, clock.today()), "category": "prospect"}
    values = {k: ("yes" if v is True else "no" if v is False else str(v)) for k, v in values.items()}
    draft = intake.save_draft(clerk, None, values)
    (office.settings.inbox_dir / "scan.pdf").write_bytes(PDF)
    documents.attach_document(clerk, "submission", draft.submission_id, "scan.pdf", "id_card_copy")
    submitted = intake.submit(clerk, draft.submission_id, values)
    approved = intake.approve_submission(reviewer, submitted.submission_id, 1)
    base = customers.get_customer(clerk, numbers[0]).version
    request = change_requests.submit_change_request(
        clerk, numbers[0], base, {"mobile": "13912345678"}, source="clerk_correction", reason="客户来电告知新手机号码")
    change_requests.approve_change_request(supervisor, request.request_id, "checked by phone")
    return office, clerk, numbers + [approved.customer_no]


def _migrate(home, url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RECORDKEEPER_HOME": str(home), "RECORDKEEPER_ARGON2_MEMORY_KIB": "8192",
           "RECORDKEEPER_ARGON2_TIME_COST": "1", "RECORDKEEPER_ARGON2_PARALLELISM": "1"}
    env.pop("RECORDKEEPER_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "tui.cli", "migrate", "--to", url], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_copies_every_table_as_stored_and_the_office_works_on_postgresql(sqlite_office, pg_target):
    office, clerk, numbers = sqlite_office
    settings = office.settings
    revealed = {n: customers.reveal_fields(clerk, n, ["full_name", "id_number", "mobile"], "compare copy").values
                for n in numbers[:5] + numbers[-1:]}
    before = _sqlite_counts()
    head = audit.AuditEntry.select().order_by(audit.AuditEntry.seq.desc()).first()
    raw = {r["id"]: r for r in customers.Customer.select().dicts()}
    office_mod.close_office()  # the CLI is another process

    done = _migrate(settings.home, pg_target)
    assert done.returncode == 0, done.stderr
    assert "audit chain of" in done.stdout and "verified" in done.stdout
    assert "rows [##############################]" in done.stderr  # the progress bar reached the end
    assert set(before) <= set(_tables(pg_target))

    office_mod.open_office(replace(settings, database_url=pg_target))
    try:
        assert not db.obj.__class__.__name__.startswith("Sqlite")
        after = {n: db.execute_sql(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in before}
        assert after == {**before, "audit_entry": before["audit_entry"] + 1}  # + the DATABASE_COPY entry
        assert migrations.database_version() == migrations.SCHEMA_VERSION
        # ciphertext as is: every encrypted column byte for byte
        for row in customers.Customer.select().dicts():
            original = raw[row["id"]]
            for name, value in row.items():
                if isinstance(value, (bytes, memoryview)):
                    assert bytes(value) == bytes(original[name]), name
            assert row["customer_no"] == original["customer_no"] and row["version"] == original["version"]
        verified = audit.verify_chain()
        assert verified.ok and verified.entries == head.seq + 1 and verified.checkpoints >= 1
        copied = audit.AuditEntry.get_by_id(head.seq + 1)
        assert copied.action == "DATABASE_COPY" and copied.prev_hash == head.hash
        # the office carries on: logins, reveals, new rows with fresh serial ids, the chain continues
        clerk_pg = staff.authenticate("clerk", TEST_PASSWORD)
        for number, values in revealed.items():
            again = customers.reveal_fields(clerk_pg, number, ["full_name", "id_number", "mobile"], "compare copy")
            assert again.values == values
        admin = staff.authenticate("admin", TEST_PASSWORD)
        staff.add_staff(admin, "newcomer", "Newcomer", TEST_PASSWORD, ("clerk",))  # a serial id after the copied ones
        assert audit.verify_chain().ok
    finally:
        office_mod.close_office()


def test_a_target_that_is_not_empty_is_refused(sqlite_office, pg_target):
    office, _clerk, _numbers = sqlite_office
    engine_migrate.copy_to_postgres(pg_target)
    tables = _tables(pg_target)
    with pytest.raises(engine_migrate.EngineMigrationError, match="already holds RecordKeeper tables"):
        engine_migrate.copy_to_postgres(pg_target)
    assert _tables(pg_target) == tables


def test_a_broken_audit_chain_is_not_copied_and_the_target_is_left_empty(sqlite_office, pg_target):
    db.execute_sql("DROP TRIGGER audit_entry_no_update")
    db.execute_sql("UPDATE audit_entry SET details = '{\"edited\":1}' WHERE seq = 5")
    with pytest.raises(engine_migrate.EngineMigrationError, match="audit chain does not verify at entry 5"):
        engine_migrate.copy_to_postgres(pg_target)
    assert _tables(pg_target) == []


def test_a_row_postgresql_cannot_hold_fails_the_copy_by_table_and_leaves_nothing(sqlite_office, pg_target):
    # SQLite does not enforce VARCHAR lengths; PostgreSQL does. The message names the table, not the value.
    db.execute_sql("UPDATE staff SET display_name = ? WHERE username = 'clerk'", ("名" * 300,))
    with pytest.raises(engine_migrate.EngineMigrationError, match=r"copying table staff failed") as failed:
        engine_migrate.copy_to_postgres(pg_target)
    assert "名名" not in str(failed.value)
    assert _tables(pg_target) == []


def test_refusals_before_anything_is_written(sqlite_office, pg_target):
    with pytest.raises(engine_migrate.EngineMigrationError, match="postgresql:// URL"):
        engine_migrate.copy_to_postgres("mysql://somewhere/db")
    with pytest.raises(engine_migrate.EngineMigrationError, match="cannot connect") as failed:
        engine_migrate.copy_to_postgres("postgresql://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
    assert "secret" not in str(failed.value)
    assert engine_migrate.redacted("postgresql://app:s3cret@db.example/records") == \
        "postgresql://app:***@db.example/records"
    assert _tables(pg_target) == []
