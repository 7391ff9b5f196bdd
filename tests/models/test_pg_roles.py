"""PostgreSQL only: the application's own login role cannot change the audit log.

A real role is created for each test with exactly the README's GRANT/REVOKE statements
(`engine_migrate.app_role_statements`); the office then runs as that role. UPDATE, DELETE and
TRUNCATE on audit_entry are refused by privilege, and — for the table's owner — by the triggers.
Skipped on SQLite (the triggers there are tested in test_audit.py).
"""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
from faker import Faker

from models import audit, change_requests, clock, customers, demo, engine_migrate, intake, office as office_mod, staff
from models.db import db, is_sqlite
from tests.conftest import TEST_PASSWORD

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def pg_office(office):
    if is_sqlite():
        pytest.skip("database roles and privileges are PostgreSQL's")
    return office


def _schema_of(url: str) -> str:
    return re.search(r"search_path%3D(\w+)", url).group(1)


def _as_user(url: str, user: str) -> str:
    parts = urlparse(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunparse(parts._replace(netloc=f"{user}@{host}"))


def _superuser(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


@pytest.fixture
def app_role(pg_office):
    """A login role granted what the README says, and nothing else; dropped afterwards."""
    url = pg_office.settings.database_url
    schema = _schema_of(url)
    role = "rk_app_" + uuid.uuid4().hex[:10]
    with _superuser(url) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        for statement in engine_migrate.app_role_statements(role, schema):
            conn.execute(statement)
    yield role, _as_user(url, role)
    office_mod.close_office()
    with _superuser(url) as conn:
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")


def _errors_of(statement: str, url: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            return f"{type(exc).__name__}: {exc}"
    return "accepted"


def test_the_office_runs_as_the_restricted_role(pg_office, app_role, make_staff):
    clerk = make_staff("clerk", "clerk")
    make_staff("reviewer", "reviewer")
    make_staff("supervisor", "supervisor")
    role, url = app_role
    office_mod.close_office()
    office_mod.open_office(replace(pg_office.settings, database_url=url))
    assert db.execute_sql("SELECT current_user").fetchone()[0] == role
    clerk = staff.authenticate("clerk", TEST_PASSWORD)
    reviewer = staff.authenticate("reviewer", TEST_PASSWORD)
    supervisor = staff.authenticate("supervisor", TEST_PASSWORD)
    fake, rng = Faker("zh_CN"), random.Random(9)
    fake.seed_instance(9)
    values = {k: ("yes" if v is True else "no" if v is False else str(v))
              for k, v in {**demo.fake_customer(fake, rng, clock.today()), "category": "active"}.items()}
    submitted = intake.submit(clerk, None, values)
    number = intake.approve_submission(reviewer, submitted.submission_id, 1).customer_no
    record = customers.get_customer(clerk, number)
    request = change_requests.submit_change_request(clerk, number, record.version, {"mobile": "13912345678"},
                                                    source="clerk_correction", reason="客户来电更正手机号码")
    change_requests.approve_change_request(supervisor, request.request_id, "")
    shown = customers.reveal_fields(clerk, number, ["mobile"], "call the customer back")
    assert shown.values["mobile"] == "13912345678"
    assert customers.find_customers(clerk, "mobile", "13912345678")[0].customer_no == number
    admin = staff.authenticate("admin", TEST_PASSWORD)
    staff.add_staff(admin, "newcomer", "Newcomer", TEST_PASSWORD, ("clerk",))  # sequences are usable
    assert audit.verify_chain().ok


@pytest.mark.parametrize("statement", [
    "UPDATE audit_entry SET outcome = 'ok' WHERE seq = 1",
    "DELETE FROM audit_entry WHERE seq = 1",
    "TRUNCATE audit_entry",
    "DROP TRIGGER audit_entry_no_change ON audit_entry",
    "ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_no_change",
    "DROP TABLE audit_entry CASCADE",
])
def test_the_role_cannot_change_or_remove_audit_entries(pg_office, app_role, statement):
    _role, url = app_role
    before = audit.AuditEntry.select().count()
    outcome = _errors_of(statement, url)
    assert outcome.startswith("InsufficientPrivilege"), outcome
    assert audit.AuditEntry.select().count() == before and audit.verify_chain().ok


def test_the_role_may_still_append_and_read(pg_office, app_role):
    _role, url = app_role
    assert _errors_of("SELECT count(*) FROM audit_entry", url) == "accepted"
    office_mod.close_office()
    office_mod.open_office(replace(pg_office.settings, database_url=url))
    seq = audit.append(actor_id=None, actor="system", action="TEST_APPEND")
    assert audit.AuditEntry.get_by_id(seq).action == "TEST_APPEND" and audit.verify_chain().ok


@pytest.mark.parametrize("statement", [
    "UPDATE audit_entry SET outcome = 'ok' WHERE seq = 1",
    "DELETE FROM audit_entry WHERE seq = 1",
    "TRUNCATE audit_entry",
])
def test_even_the_owner_meets_the_triggers(pg_office, statement):
    outcome = _errors_of(statement, pg_office.settings.database_url)
    assert "audit log is append-only" in outcome, outcome
    assert audit.verify_chain().ok


def test_the_readme_documents_the_same_statements():
    text = README.read_text(encoding="utf-8")
    for statement in engine_migrate.app_role_statements("recordkeeper_app", "public", owner="recordkeeper_owner"):
        assert statement in text, statement
