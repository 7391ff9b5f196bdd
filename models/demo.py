"""A demo office: one account per role and realistic Chinese customers, made through the services."""

from __future__ import annotations

import datetime as dt
import random
import secrets
from typing import Callable

from faker import Faker

from models import audit, clock, customers, normalise, staff
from models.db import write
from models.permissions import Actor

DEMO_ACCOUNTS = (
    ("clerk", "王丽 Wang Li", ("clerk",)),
    ("reviewer", "李强 Li Qiang", ("reviewer",)),
    ("supervisor", "张敏 Zhang Min", ("supervisor",)),
    ("officer", "陈静 Chen Jing", ("records_officer",)),
    ("auditor", "刘洋 Liu Yang", ("auditor",)),
)
REGION_CODES = ("110105", "110108", "310104", "310115", "440106", "440305", "510107", "330106",
                "320102", "420106", "610113", "370202", "210102", "500103", "350203")
BRANCHES = ("北京朝阳支公司", "上海浦东支公司", "广州天河支公司", "深圳南山支公司", "成都武侯支公司")


PASSWORD_WORDS = ("lotus", "harbor", "maple", "river", "cedar", "amber", "willow", "summit")


def demo_password() -> str:
    return "-".join(secrets.choice(PASSWORD_WORDS) for _ in range(3)) + f"-{secrets.randbelow(90) + 10}"


def resident_id(rng: random.Random, birth: dt.date, sex: str) -> str:
    """A resident ID that passes GB 11643 for the given birth date and sex."""
    sequence = rng.randrange(0, 500) * 2 + (1 if sex == "male" else 0)
    body = f"{rng.choice(REGION_CODES)}{birth:%Y%m%d}{sequence:03d}"
    return body + normalise.resident_id_check_char(body)


def fake_customer(fake: Faker, rng: random.Random, today: dt.date) -> dict[str, object]:
    sex = rng.choice(("male", "female"))
    birth = today - dt.timedelta(days=rng.randrange(18 * 366, 80 * 365))
    category = rng.choices(("prospect", "active", "terminated"), weights=(3, 6, 1))[0]
    return {
        "full_name": fake.name_male() if sex == "male" else fake.name_female(),
        "gender": sex,
        "date_of_birth": birth.isoformat(),
        "id_type": "resident_id",
        "id_number": resident_id(rng, birth, sex),
        "nationality": "中国",
        "mobile": f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}",
        "email": fake.free_email() if rng.random() < 0.4 else "",
        "preferred_channel": rng.choice(("phone", "sms", "email")),
        "province": fake.province(),
        "city": fake.city_name(),
        "district": fake.district() + "区",
        "street": fake.street_address(),
        "postcode": fake.postcode(),
        "occupation": fake.job()[:60],
        "occupation_class": str(rng.randint(1, 4)),
        "employer": fake.company(),
        "category": "prospect" if category == "terminated" else category,
        "source_channel": rng.choice(("counter", "agent", "phone", "online", "referral")),
        "branch": rng.choice(BRANCHES),
        "policy_numbers": "" if category == "prospect" else f"P{rng.randrange(10**11):011d}",
        "paper_location": f"柜{rng.randint(1, 20)}-屉{rng.randint(1, 6)}-夹{rng.randint(1, 50)}",
        "notes": "",
        "consent_date": (today - dt.timedelta(days=rng.randrange(0, 900))).isoformat(),
        "consent_scope": "投保、核保、理赔及客户服务",
        "consent_marketing": rng.random() < 0.3,
    }


def add_demo_accounts(admin: Actor, password: str) -> list[str]:
    """Add one account per role (no forced password change: this is a demo)."""
    names = []
    for username, display, roles in DEMO_ACCOUNTS:
        with write():
            row = staff._insert_staff(username, display, password, roles, must_change=False)
            audit.append(actor_id=admin.staff_id, actor=admin.username, session_id=admin.session_id,
                         action="STAFF_CREATE", object_type="staff", object_id=str(row.id),
                         details={"roles": list(roles), "demo": True})
        names.append(username)
    return names


def add_demo_customers(clerk: Actor, count: int, seed: int = 2026,
                       progress: Callable[[int, int], None] | None = None) -> int:
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    today = clock.today()
    for done in range(1, count + 1):
        customers.create_customer(clerk, fake_customer(fake, rng, today))
        if progress and (done % 25 == 0 or done == count):
            progress(done, count)
    return count
