"""Shared fixtures: a fresh office in a temp data directory, on SQLite or (RK_TEST_DATABASE) PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from models import clock, migrations, office as office_mod, staff
from models.errors import ValidationError
from models.settings import Settings

TEST_PASSWORD = "correct horse battery"
FROZEN_NOW = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.timezone.utc)


def _postgres_url() -> str:
    return os.environ.get("RK_TEST_DATABASE", "")


def make_settings(home: Path, **overrides) -> Settings:
    base = Settings(home=home, argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1)
    return replace(base, **overrides)


@pytest.fixture
def pg_schema():
    """A throw-away PostgreSQL schema (when RK_TEST_DATABASE is set), dropped afterwards."""
    url = _postgres_url()
    if not url:
        yield ""
        return
    import psycopg

    schema = "rk_" + uuid.uuid4().hex[:12]
    with psycopg.connect(url.replace("postgresql://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    yield f"{url}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def frozen_clock():
    clock.freeze(FROZEN_NOW)
    yield clock
    clock.freeze(None)


@pytest.fixture
def settings(tmp_path, pg_schema) -> Settings:
    home = tmp_path / "office"
    return make_settings(home, database_url=pg_schema)


@pytest.fixture
def office(settings, frozen_clock):
    """An initialised office with an admin account; closed afterwards."""
    office_mod.create_office_files(settings)
    opened = office_mod.open_office(settings, check_schema=False)
    migrations.migrate()
    staff.create_first_admin("admin", TEST_PASSWORD)
    yield opened
    office_mod.close_office()


@pytest.fixture
def admin(office):
    return staff.authenticate("admin", TEST_PASSWORD)


@pytest.fixture
def make_staff(office, admin):
    """Create a staff member with the given roles and return their logged-in actor."""

    def _make(username: str, *roles: str):
        staff.add_staff(admin, username, username.title(), TEST_PASSWORD, roles)
        actor = staff.authenticate(username, TEST_PASSWORD)
        return actor

    return _make


@pytest.fixture
def clerk(make_staff):
    return make_staff("clerk", "clerk")


@pytest.fixture
def reviewer(make_staff):
    return make_staff("reviewer", "reviewer")


@pytest.fixture
def supervisor(make_staff):
    return make_staff("supervisor", "supervisor")


@pytest.fixture
def auditor(make_staff):
    return make_staff("auditor", "auditor")


__all__ = ["ValidationError"]
