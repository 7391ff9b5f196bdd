"""A fast generator of realistic customers for benchmarks and big demo offices.

A million customers through `create_customer` would take most of an hour (one transaction,
one key-store write and one audit entry each). Here worker processes build and seal records
from pools drawn once from Faker, and the main process writes them a batch at a time through
the same bulk path as the importer (customers._insert_sealed): the same ciphertext, indexes,
key store and history, one audit entry per batch.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Callable

from models import clock, customers, demo, labels as labels_mod
from models.db import db, write
from models.importer import ordered_map, worker_count
from models.labels import CustomerLabel, Label
from models.permissions import Actor, Perm, service

FIRST_YEAR_BACK = 9  # customers created over this many years before this one (≈100k a year at a million)
BATCH = 5000
DEMO_LABELS = (
    ("VIP", "accent", "高价值客户，由资深经办人处理"),
    ("理赔中", "state-warning", "有未结理赔"),
    ("需回访", "primary", "上次联系后需回访"),
    ("高风险", "state-danger", "反洗钱审查中"),
    ("纸档缺失", "state-muted", "柜中未找到纸质档案"),
)
LABEL_SHARE = 0.06  # each demo label goes to about this share of customers
GIVEN_CHARS = ("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建飞文辉力鹏宇浩"
               "俊凯博睿欣怡梓涵雨轩子晨嘉琪佳颖思彤诗雅婷晓倩洁琳雪慧颖淑惠珍莉兰凤洁梅"
               "志国海峰波斌斌林东亮成康永健世广义兴良海山仁波宁贵福生龙元全国胜学祥才发武新利清飞彬富顺信子杰涛昌")


@dataclass(frozen=True)
class _Pools:
    surnames: tuple[str, ...]
    surname_weights: tuple[float, ...]
    given_male: tuple[str, ...]
    given_female: tuple[str, ...]
    provinces: tuple[str, ...]
    cities: tuple[str, ...]
    districts: tuple[str, ...]
    streets: tuple[str, ...]
    postcodes: tuple[str, ...]
    jobs: tuple[str, ...]
    companies: tuple[str, ...]
    email_users: tuple[str, ...]


def _pools(seed: int) -> _Pools:
    from faker import Faker

    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    person = fake.provider("faker.providers.person")
    surnames = tuple(person.last_names.keys())
    return _Pools(
        surnames=surnames, surname_weights=tuple(person.last_names.values()),
        given_male=tuple(person.first_names_male), given_female=tuple(person.first_names_female),
        provinces=tuple(fake.province() for _ in range(300)), cities=tuple(fake.city_name() for _ in range(300)),
        districts=tuple(fake.district() + "区" for _ in range(300)),
        streets=tuple(fake.street_address() for _ in range(3000)),
        postcodes=tuple(fake.postcode() for _ in range(1000)), jobs=tuple(fake.job()[:60] for _ in range(500)),
        companies=tuple(fake.company() for _ in range(2000)),
        email_users=tuple(fake.user_name() for _ in range(3000)),
    )


_POOLS: _Pools | None = None


def _name(rng: random.Random, pools: _Pools, sex: str) -> str:
    surname = rng.choices(pools.surnames, pools.surname_weights)[0]
    if rng.random() < 0.5:
        return surname + rng.choice(pools.given_male if sex == "male" else pools.given_female)
    return surname + "".join(rng.choice(GIVEN_CHARS) for _ in range(rng.choice((1, 2, 2))))


def generated_customer(rng: random.Random, pools: _Pools, today: dt.date, created: dt.date) -> dict[str, object]:
    """One customer's field values, valid by construction (tests check a sample against validation)."""
    sex = rng.choice(("male", "female"))
    birth = created - dt.timedelta(days=rng.randrange(18 * 366, 80 * 365))
    category = rng.choices(("prospect", "active", "terminated"), weights=(3, 6, 1))[0]
    email = f"{rng.choice(pools.email_users)}{rng.randrange(1000)}@{rng.choice(('qq.com', '163.com', '126.com'))}" \
        if rng.random() < 0.4 else ""
    return {
        "full_name": _name(rng, pools, sex), "gender": sex, "date_of_birth": birth.isoformat(),
        "id_type": "resident_id", "id_number": demo.resident_id(rng, birth, sex), "nationality": "中国",
        "mobile": f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}", "mobile_international": False,
        "other_phone": "", "email": email, "preferred_channel": rng.choice(("phone", "sms", "email")),
        "province": rng.choice(pools.provinces), "city": rng.choice(pools.cities),
        "district": rng.choice(pools.districts), "street": rng.choice(pools.streets),
        "postcode": rng.choice(pools.postcodes), "occupation": rng.choice(pools.jobs),
        "occupation_class": str(rng.randint(1, 4)), "employer": rng.choice(pools.companies),
        "category": category, "source_channel": rng.choice(("counter", "agent", "phone", "online", "referral")),
        "branch": rng.choice(demo.BRANCHES),
        "policy_numbers": "" if category == "prospect" else f"P{rng.randrange(10**11):011d}",
        "paper_location": f"柜{rng.randint(1, 20)}-屉{rng.randint(1, 6)}-夹{rng.randint(1, 50)}", "notes": "",
        "consent_date": created.isoformat(), "consent_scope": "投保、核保、理赔及客户服务",
        "consent_marketing": rng.random() < 0.3, "guardian_name": "",
    }


def _dates(rng: random.Random, category: str, created: dt.date, today: dt.date) -> dict[str, object]:
    """The record's life-cycle dates, as the services would have set them over the years."""
    last_contact = created + dt.timedelta(days=rng.randrange(0, max((today - created).days, 1)))
    out: dict[str, object] = {"last_contact": last_contact, "legal_hold": rng.random() < 0.005}
    if category in ("active", "prospect"):
        verified = max(created, today - dt.timedelta(days=rng.randrange(0, 420)))
        out["last_verified"] = verified
        out["next_verification_due"] = customers.next_verification(category, verified)
    if category == "prospect":
        out["retention_until"] = customers._add_months(last_contact, 24)
    if category == "terminated":
        ended = created + dt.timedelta(days=rng.randrange(0, max((today - created).days, 1)))
        long_policy = rng.random() < 0.6
        out.update(terminated_on=ended, long_policy=long_policy,
                   retention_until=customers._add_months(ended, 120 if long_policy else 60))
    return out


def _make_chunk(task: tuple) -> tuple[list[customers.SealedCustomer], list[dict[str, object]]]:
    """Build and seal one chunk of customers (runs in a worker process)."""
    global _POOLS
    seed, start, count, today, clerk_ids, keys, total = task
    if _POOLS is None:
        _POOLS = _pools(seed)
    rng = random.Random(seed * 1_000_003 + start)
    first_day = dt.date(today.year - FIRST_YEAR_BACK, 1, 1)
    span = (today - first_day).days
    made, records = [], []
    # Creation dates rise with the sequence, so numbers follow the order customers arrived in.
    for index in range(start, start + count):
        created = first_day + dt.timedelta(days=min(span, int(span * index / max(total, 1))))
        values = generated_customer(rng, _POOLS, today, created)
        moment = dt.datetime.combine(created, dt.time(9)) + dt.timedelta(seconds=rng.randrange(8 * 3600))
        record = {"created_at": moment, "approved_at": moment, "responsible_clerk": rng.choice(clerk_ids),
                  **_dates(rng, str(values["category"]), created, today)}
        made.append(values)
        records.append(record)
    return customers.seal_customers(made, keys), records


def _demo_labels(actor: Actor) -> list[int]:
    """The demo label set (created if missing, directly: the generator stands in for the records officer)."""
    ids = []
    with write():
        for name, colour, description in DEMO_LABELS:
            row = Label.get_or_none(Label.name == name)
            if row is None:
                row = Label.create(name=name, colour=colour, description=description,
                                   created_at=clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None))
            ids.append(row.id)
    return ids


@service(Perm.CUSTOMER_CREATE)
def generate_customers(actor: Actor, count: int, *, seed: int = 2026, workers: int | None = None,
                       with_labels: bool = True, clerk_ids: list[int] | None = None,
                       progress: Callable[[int, int], None] | None = None) -> int:
    """Add `count` generated customers (created over the last ten years), a batch per transaction."""
    from models.staff import Staff

    if count < 1:
        return 0
    today = clock.today()
    if not clerk_ids:
        clerk_ids = [s.id for s in Staff.select(Staff.id, Staff.roles) if "clerk" in s.roles.split(",")] \
            or [actor.staff_id]
    label_ids = _demo_labels(actor) if with_labels else []
    keys = customers.seal_keys()
    tasks = [(seed, start, min(BATCH, count - start), today, clerk_ids, keys, count)
             for start in range(0, count, BATCH)]
    label_rng = random.Random(seed)
    done = 0
    with customers.bulk_cache():
        for number, (sealed, records) in enumerate(ordered_map(_make_chunk, tasks, worker_count(count, workers))):
            done += _store_chunk(actor, number, sealed, records, label_ids, label_rng)
            if progress:
                progress(done, count)
    return done


def _store_chunk(actor: Actor, number: int, sealed: list, records: list, label_ids: list[int],
                 label_rng: random.Random) -> int:
    """Write one generated chunk (one transaction, one audit entry) and label a share of it."""
    customers._insert_sealed(
        actor, sealed, records, event_kind="created", event_details={"generated": True},
        audit_action="CUSTOMER_BULK_CREATE", audit_object_type="customer", audit_object_id="",
        audit_details={"generated": True, "chunk": number})
    links = [{"customer_id": s.customer_id, "label": label_id} for s in sealed for label_id in label_ids
             if label_rng.random() < LABEL_SHARE]
    if links:
        with write():
            customers._executemany(db, CustomerLabel, links)
    return len(sealed)


def add_demo_labels(officer: Actor, clerk: Actor, share: float = 0.1, seed: int = 7) -> int:
    """Create the demo labels (as the records officer) and label a share of customers (as the clerk)."""
    from models.customers import Customer

    existing = {v.name: v.label_id for v in labels_mod.list_labels(officer, include_inactive=True)}
    ids = [existing.get(name) or labels_mod.create_label(officer, name, colour, description).label_id
           for name, colour, description in DEMO_LABELS]
    rng = random.Random(seed)
    labelled = 0
    for (number,) in Customer.select(Customer.customer_no).order_by(Customer.customer_no).tuples():
        chosen = [label_id for label_id in ids if rng.random() < share]
        if chosen:
            labels_mod.label_customer(clerk, number, chosen)
            labelled += 1
    return labelled


def write_import_file(path, count: int, *, seed: int = 99, encoding: str = "utf-8",
                      header: tuple[str, ...] | None = None) -> int:
    """A legacy-system CSV of `count` valid generated customers (the canonical header plus consent columns)."""
    import csv

    from models.importer import CANONICAL_HEADER

    columns = header or (*CANONICAL_HEADER, "consent_date", "consent_scope")
    rng = random.Random(seed)
    pools = _pools(seed)
    today = clock.today()
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for index in range(count):
            created = today - dt.timedelta(days=rng.randrange(0, 3000))
            values = generated_customer(rng, pools, today, created)
            values["birth_date"] = values["date_of_birth"]
            writer.writerow([values.get(name, "") for name in columns])
    return count


__all__ = ["DEMO_LABELS", "add_demo_labels", "generate_customers", "generated_customer", "write_import_file"]
