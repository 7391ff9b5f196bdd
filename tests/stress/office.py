"""A throw-away office for the stress runs, on SQLite or in a fresh PostgreSQL schema, and its checks."""

from __future__ import annotations

import json
import os
import random
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from faker import Faker

from models import clock, demo
from models.settings import Settings

PASSWORD = "correct horse battery"


def settings_for(home: Path, database_url: str = "") -> Settings:
    """Cheap argon2 (the runs measure the database, not password hashing) and a short busy timeout:
    what the app would meet on a loaded office, with no extra patience bought for the test."""
    return Settings(home=home, argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1,
                    database_url=database_url)


def new_pg_schema(server_url: str) -> tuple[str, str]:
    """A new empty schema on `server_url`; returns (schema, URL whose search_path is that schema)."""
    import psycopg

    schema = "rk_stress_" + uuid.uuid4().hex[:10]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema, f"{server_url}{'&' if '?' in server_url else '?'}options=-csearch_path%3D{schema}"


def drop_pg_schema(server_url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def form_values(fake: Faker, rng: random.Random) -> dict[str, str]:
    """A complete, valid intake form as a clerk would type it (strings only)."""
    values = {**demo.fake_customer(fake, rng, clock.today()), "category": rng.choice(("prospect", "active"))}
    return {k: ("yes" if v is True else "no" if v is False else str(v)) for k, v in values.items()}


@dataclass
class StressOffice:
    home: Path
    database_url: str
    staff: dict[str, list[str]] = field(default_factory=dict)  # role -> usernames
    seed_file: Path | None = None

    @property
    def settings(self) -> Settings:
        return settings_for(self.home, self.database_url)


def build_office(home: Path, database_url: str = "", *, clerks: int, reviewers: int, supervisors: int,
                 officers: int = 0, customers: int = 40) -> StressOffice:
    """Create the office, its staff and `customers` active customers; write the seed facts the workers use."""
    from models import customers as customer_service, migrations, office as office_mod, staff

    settings = settings_for(home, database_url)
    office_mod.create_office_files(settings)
    office_mod.open_office(settings, check_schema=False)
    try:
        migrations.migrate()
        staff.create_first_admin("admin", PASSWORD)
        admin = staff.authenticate("admin", PASSWORD)
        roster: dict[str, list[str]] = {}
        for role, count, prefix in (("clerk", clerks, "clerk"), ("reviewer", reviewers, "reviewer"),
                                    ("supervisor", supervisors, "supervisor"),
                                    ("records_officer", officers, "officer")):
            roster[role] = []
            for i in range(count):
                name = f"{prefix}{i + 1}"
                staff.add_staff(admin, name, name.title(), PASSWORD, (role,))
                roster[role].append(name)
        maker = "clerk1" if clerks else None
        seeds = []
        if maker and customers:
            actor = staff.authenticate(maker, PASSWORD)
            fake, rng = Faker("zh_CN"), random.Random(20261125)
            fake.seed_instance(20261125)
            for _ in range(customers):
                data = {**demo.fake_customer(fake, rng, clock.today()), "category": "active"}
                made = customer_service.create_customer(actor, data)
                seeds.append({"customer_no": made.customer_no, "full_name": data["full_name"],
                              "mobile": data["mobile"], "id_number": data["id_number"]})
        seed_file = home / "stress-seeds.json"  # test data only: fabricated people
        seed_file.write_text(json.dumps(seeds, ensure_ascii=False))
        os.chmod(seed_file, 0o600)
    finally:
        office_mod.close_office()
    return StressOffice(home, database_url, roster, seed_file)


def open_again(stress: StressOffice):
    from models import office as office_mod

    return office_mod.open_office(replace(stress.settings))
