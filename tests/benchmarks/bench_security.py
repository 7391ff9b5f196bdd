"""The security catalogue's measured cases at full size (security-anchors §8):

- T3: 50 logins each for an unknown user, a known user with a wrong password and a locked user, with
  the real argon2id parameters (m=64 MiB, t=3, p=4): the same message, and medians within ±10%.
- T10: one million encryptions under one data key: every nonce and every ciphertext different.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

import pytest

from models import crypto, migrations, office as office_mod, staff
from models.errors import AuthenticationFailed
from models.settings import Settings
from tests.benchmarks.figures import record
from tests.conftest import TEST_PASSWORD

LOGINS = 50


@pytest.fixture
def real_office(tmp_path, frozen_clock):
    settings = replace(Settings(home=tmp_path / "office"))  # the shipped argon2id parameters
    office_mod.create_office_files(settings)
    office_mod.open_office(settings, check_schema=False)
    migrations.migrate()
    staff.create_first_admin("admin", TEST_PASSWORD)
    admin = staff.authenticate("admin", TEST_PASSWORD)
    staff.add_staff(admin, "known", "Known", TEST_PASSWORD, ("clerk",))
    staff.add_staff(admin, "locked", "Locked", TEST_PASSWORD, ("clerk",))
    from models.staff import Staff

    Staff.update(locked=True).where(Staff.username == "locked").execute()
    yield settings
    office_mod.close_office()


def test_t3_login_timing_is_the_same_for_unknown_wrong_and_locked(real_office):
    def timed(username: str) -> tuple[float, str]:
        start = time.perf_counter()
        with pytest.raises(AuthenticationFailed) as failed:
            staff.authenticate(username, "Not-The-Password-42")
        return time.perf_counter() - start, str(failed.value)

    for name in ("nobody", "known", "locked"):
        timed(name)  # warm up
    times: dict[str, list[float]] = {"nobody": [], "known": [], "locked": []}
    messages = set()
    for _ in range(LOGINS):
        for name in times:  # interleaved, so the machine's load falls on all three alike
            seconds, message = timed(name)
            times[name].append(seconds)
            messages.add(message)
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    spread = max(medians.values()) / min(medians.values())
    print(f"\nT3 login medians (ms) with m=64 MiB, t=3, p=4: {medians}; spread {spread:.3f}")
    record("T3: login median, unknown user (real argon2id)", medians["nobody"], "ms")
    record("T3: login median, wrong password vs unknown user", medians["known"], "ms", goal=("<=", 1.10),
           goal_on="ratio", baseline=medians["nobody"], baseline_label="unknown user")
    record("T3: login median, locked account vs unknown user", medians["locked"], "ms", goal=("<=", 1.10),
           goal_on="ratio", baseline=medians["nobody"], baseline_label="unknown user")
    assert messages == {staff.WRONG_LOGIN}
    assert spread <= 1.10, medians


def test_t10_a_million_nonces_under_one_key():
    key = crypto.new_data_key()
    aad = crypto.field_aad("customer", "c1", "mobile", "k1")
    nonces, tags = set(), set()
    start = time.perf_counter()
    for _ in range(1_000_000):
        blob = crypto.encrypt(key, b"13800138000", aad)
        nonces.add(blob[1:1 + crypto.NONCE_BYTES])
        tags.add(blob[-16:])
    seconds = time.perf_counter() - start
    repeats = 1_000_000 - len(nonces)
    record("T10: repeated nonces in 10^6 encryptions under one data key", repeats, "", goal=("==", 0),
           note=f"{1_000_000 / seconds:,.0f} encryptions/s; {1_000_000 - len(tags)} repeated tags")
    assert repeats == 0 and len(tags) == 1_000_000
