"""Schema versions: a fresh office is current; older asks for `recordkeeper migrate`; newer is refused."""

from __future__ import annotations

import datetime as dt

import pytest

from models import migrations, office as office_mod
from models.errors import RecordKeeperError, SchemaError
from models.migrations import SCHEMA_VERSION, SchemaVersion


def stored_versions() -> list[int]:
    return sorted(row.version for row in SchemaVersion.select())


def test_a_fresh_database_is_at_schema_version(office):
    assert migrations.database_version() == SCHEMA_VERSION
    assert stored_versions() == sorted(number for number, _title, _step in migrations.MIGRATIONS)
    migrations.check_version()
    assert migrations.migrate() == [], "migrate is a no-op on a current database"
    assert stored_versions()[-1] == SCHEMA_VERSION


def test_migration_numbers_are_unique_and_increasing():
    numbers = [number for number, _title, _step in migrations.MIGRATIONS]
    assert numbers == sorted(set(numbers)) and numbers[0] == 1
    assert SCHEMA_VERSION == numbers[-1]
    assert all(title.strip() for _n, title, _s in migrations.MIGRATIONS)


def test_an_older_database_asks_for_migrate(office, settings):
    SchemaVersion.delete().where(SchemaVersion.version == SCHEMA_VERSION).execute()
    with pytest.raises(SchemaError) as caught:
        migrations.check_version()
    assert "recordkeeper migrate" in str(caught.value)
    office_mod.close_office()
    with pytest.raises(SchemaError, match="recordkeeper migrate"):
        office_mod.open_office(settings)


def test_a_missing_middle_migration_asks_for_migrate(office):
    if SCHEMA_VERSION < 2:
        pytest.skip("needs two migrations")
    SchemaVersion.delete().where(SchemaVersion.version == 1).execute()
    assert migrations.database_version() == SCHEMA_VERSION
    with pytest.raises(SchemaError, match="recordkeeper migrate"):
        migrations.check_version()


def test_a_newer_database_is_refused(office, settings):
    SchemaVersion.create(version=SCHEMA_VERSION + 1, applied_at=dt.datetime.now(dt.timezone.utc).isoformat())
    with pytest.raises(SchemaError) as caught:
        migrations.check_version()
    message = str(caught.value)
    assert "newer" in message and str(SCHEMA_VERSION + 1) in message
    with pytest.raises(SchemaError, match="newer"):
        migrations.migrate()
    assert stored_versions()[-1] == SCHEMA_VERSION + 1, "migrate must not touch a newer database"
    office_mod.close_office()
    with pytest.raises(SchemaError, match="newer"):
        office_mod.open_office(settings)


def test_an_empty_database_asks_for_init(settings, frozen_clock):
    office_mod.create_office_files(settings)
    try:
        with pytest.raises(SchemaError, match="recordkeeper init"):
            office_mod.open_office(settings)
    finally:
        office_mod.close_office()


def test_migrate_applies_pending_migrations_in_order(office, monkeypatch):
    applied_steps = []
    extra = [(SCHEMA_VERSION + 1, "test step one", lambda: applied_steps.append(SCHEMA_VERSION + 1)),
             (SCHEMA_VERSION + 2, "test step two", lambda: applied_steps.append(SCHEMA_VERSION + 2))]
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS + extra)
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION + 2)
    with pytest.raises(SchemaError, match="recordkeeper migrate"):
        migrations.check_version()
    progress = []
    assert migrations.migrate(lambda number, title: progress.append((number, title))) == [
        SCHEMA_VERSION + 1, SCHEMA_VERSION + 2]
    assert applied_steps == [SCHEMA_VERSION + 1, SCHEMA_VERSION + 2]
    assert progress == [(SCHEMA_VERSION + 1, "test step one"), (SCHEMA_VERSION + 2, "test step two")]
    migrations.check_version()
    assert migrations.migrate() == [] and applied_steps == [SCHEMA_VERSION + 1, SCHEMA_VERSION + 2]


def test_a_failing_migration_is_not_recorded(office, monkeypatch):
    def broken():
        raise RuntimeError("step failed half-way")

    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS + [(SCHEMA_VERSION + 1, "broken", broken)])
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(RuntimeError):
        migrations.migrate()
    assert stored_versions()[-1] == SCHEMA_VERSION


def test_a_refused_office_is_not_left_open(office, settings):
    SchemaVersion.create(version=SCHEMA_VERSION + 1, applied_at="2026-11-25T02:00:00+00:00")
    office_mod.close_office()
    with pytest.raises(SchemaError):
        office_mod.open_office(settings)
    with pytest.raises(RecordKeeperError, match="no office is open"):
        office_mod.current()
