"""Staff logins: argon2id, same answer for every failure, throttling, lockout, rehash, sessions, audit."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import secrets
import statistics
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from models import audit, demo, office as office_mod, staff
from models.audit import AuditEntry
from models.errors import AuthenticationFailed, PermissionDenied, ValidationError
from models.staff import Staff
from tests.conftest import TEST_PASSWORD

WRONG_PASSWORDS = ("Wrong-Password-0001", "hunter2-not-mine!!")


def row(username: str) -> Staff:
    return Staff.get(Staff.username == username)


def naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def fail_login(username: str, password: str = WRONG_PASSWORDS[0]) -> AuthenticationFailed:
    with pytest.raises(AuthenticationFailed) as caught:
        staff.authenticate(username, password)
    return caught.value


def login_entries() -> list[AuditEntry]:
    return list(AuditEntry.select().where(AuditEntry.action == "LOGIN").order_by(AuditEntry.seq))


def all_audit_text() -> str:
    return "\n".join(json.dumps(e, default=str, ensure_ascii=False) for e in AuditEntry.select().dicts())


# --- logging in ------------------------------------------------------------------------


def test_login_ok(office):
    actor = staff.authenticate("admin", TEST_PASSWORD)
    assert actor.username == "admin"
    assert actor.roles == frozenset({"admin"})
    assert actor.staff_id == row("admin").id
    assert len(actor.session_id) == 16 and actor.started_at
    assert actor.must_change_password is False
    entry = login_entries()[-1]
    assert (entry.actor, entry.outcome, entry.session_id) == ("admin", "ok", actor.session_id)


def test_username_is_matched_case_and_width_insensitively(office):
    assert staff.authenticate("  ADMIN ", TEST_PASSWORD).username == "admin"
    assert staff.authenticate("ａｄｍｉｎ", TEST_PASSWORD).username == "admin"


def test_each_login_gets_its_own_session(office):
    first = staff.authenticate("admin", TEST_PASSWORD)
    second = staff.authenticate("admin", TEST_PASSWORD)
    assert first.session_id != second.session_id


def test_wrong_password_and_unknown_user_get_the_same_message(office):
    wrong = fail_login("admin")
    unknown = fail_login("nobody-here")
    empty = fail_login("")
    assert str(wrong) == str(unknown) == str(empty) == staff.WRONG_LOGIN
    assert type(wrong) is type(unknown) is AuthenticationFailed


def test_unknown_user_and_wrong_password_cost_the_same_time(office, make_staff, monkeypatch):
    # Heavier argon2 than the fixture's so that argon2, not the database, dominates the measurement.
    hasher = PasswordHasher(time_cost=2, memory_cost=32768, parallelism=1)
    the_office = office_mod.current()
    monkeypatch.setattr(the_office, "hasher", hasher)
    monkeypatch.setattr(the_office, "dummy_hash", hasher.hash(secrets.token_urlsafe(32)))
    make_staff("timed", "clerk")  # hashed with the heavier parameters
    assert "m=32768,t=2" in row("timed").password_hash

    def timed(username: str) -> float:
        start = time.perf_counter()
        with pytest.raises(AuthenticationFailed):
            staff.authenticate(username, "Not-The-Password-42")
        return time.perf_counter() - start

    timed("timed"), timed("nobody")  # warm up
    unknown, wrong = [], []
    for _ in range(7):
        unknown.append(timed("nobody"))
        wrong.append(timed("timed"))
    # The fastest of each is the cost itself; slower runs only measure what else the machine was doing.
    ratio = min(wrong) / min(unknown)
    assert 1 / 1.5 < ratio < 1.5, (unknown, wrong)
    assert statistics.median(wrong) > 0


def test_every_login_is_audited_without_the_password(office, make_staff):
    make_staff("clerk", "clerk")
    before = len(login_entries())
    fail_login("clerk", WRONG_PASSWORDS[0])
    fail_login("clerk", WRONG_PASSWORDS[1])
    fail_login("Someone-Unknown", TEST_PASSWORD)
    fail_login(TEST_PASSWORD, TEST_PASSWORD)  # the password typed into the username box
    staff.authenticate("clerk", TEST_PASSWORD)
    entries = login_entries()[before:]
    assert [(e.actor, e.outcome) for e in entries] == [
        ("clerk", "failed"), ("clerk", "failed"), ("(unknown)", "failed"), ("(unknown)", "failed"),
        ("clerk", "ok"),
    ]
    assert [json.loads(e.details).get("reason") for e in entries] == [
        "bad_password", "bad_password", "unknown_user", "unknown_user", None,
    ]
    text = all_audit_text()
    for secret in (TEST_PASSWORD, *WRONG_PASSWORDS, "someone-unknown", "Someone-Unknown"):
        assert secret not in text
    assert audit.verify_chain().ok


# --- throttling and lockout ------------------------------------------------------------


def test_growing_delays_after_three_failures(office, make_staff, frozen_clock):
    make_staff("clerk", "clerk")
    fail_login("clerk")
    fail_login("clerk")
    assert row("clerk").next_attempt_at is None
    fail_login("clerk")
    first_delay = row("clerk").next_attempt_at - naive(frozen_clock.now())
    assert first_delay > dt.timedelta(0)
    delays = [first_delay]
    for _ in range(3):
        frozen_clock.advance(delays[-1] + dt.timedelta(seconds=1))
        fail_login("clerk")
        delays.append(row("clerk").next_attempt_at - naive(frozen_clock.now()))
    assert delays == sorted(delays) and delays[-1] > delays[0], delays
    assert all(d <= dt.timedelta(seconds=staff.MAX_DELAY_SECONDS) for d in delays)


def test_a_correct_password_is_refused_while_throttled_then_accepted(office, make_staff, frozen_clock):
    make_staff("clerk", "clerk")
    for _ in range(3):
        fail_login("clerk")
    assert row("clerk").next_attempt_at is not None
    refused = fail_login("clerk", TEST_PASSWORD)
    assert str(refused) == staff.WRONG_LOGIN
    assert json.loads(login_entries()[-1].details)["reason"] == "throttled"
    wait_until = row("clerk").next_attempt_at
    frozen_clock.advance(wait_until - naive(frozen_clock.now()) + dt.timedelta(milliseconds=1))
    actor = staff.authenticate("clerk", TEST_PASSWORD)
    assert actor.username == "clerk"
    after = row("clerk")
    assert after.failed_count == 0 and after.next_attempt_at is None and not after.locked


def test_failures_outside_the_window_do_not_accumulate(office, make_staff, frozen_clock):
    make_staff("clerk", "clerk")
    fail_login("clerk")
    fail_login("clerk")
    frozen_clock.advance(staff.FAILURE_WINDOW + dt.timedelta(minutes=1))
    fail_login("clerk")
    assert row("clerk").failed_count == 1 and row("clerk").next_attempt_at is None


def test_lock_after_ten_failures_and_admin_unlock(office, admin, make_staff, frozen_clock):
    clerk = make_staff("clerk", "clerk")
    for n in range(1, staff.LOCK_AFTER_FAILURES + 1):
        assert not row("clerk").locked, f"locked too early, after {n - 1} failures"
        fail_login("clerk")
    assert row("clerk").locked
    lock_entries = list(AuditEntry.select().where(AuditEntry.action == "ACCOUNT_LOCK"))
    assert len(lock_entries) == 1 and lock_entries[0].object_id == str(clerk.staff_id)

    frozen_clock.advance(dt.timedelta(hours=2))  # a lock does not expire by itself
    fail_login("clerk", TEST_PASSWORD)
    assert json.loads(login_entries()[-1].details)["reason"] == "locked"
    with pytest.raises(PermissionDenied):  # the locked account's open session is cut off too
        staff.logout(clerk)

    summary = staff.unlock_account(admin, "clerk")
    assert not summary.locked and summary.failed_count == 0
    assert staff.authenticate("clerk", TEST_PASSWORD).username == "clerk"
    assert AuditEntry.select().where(AuditEntry.action == "ACCOUNT_UNLOCK").count() == 1


def test_only_staff_managers_can_unlock(office, make_staff):
    clerk = make_staff("clerk", "clerk")
    with pytest.raises(PermissionDenied):
        staff.unlock_account(clerk, "clerk")


# --- argon2 parameters -----------------------------------------------------------------


def test_hashes_are_argon2id(office):
    assert row("admin").password_hash.startswith("$argon2id$")
    assert TEST_PASSWORD not in row("admin").password_hash


def test_rehash_on_login_when_parameters_change(office, monkeypatch):
    old_hash = row("admin").password_hash
    monkeypatch.setattr(office_mod.current(), "hasher", PasswordHasher(time_cost=2, memory_cost=16384, parallelism=1))
    staff.authenticate("admin", TEST_PASSWORD)
    new_hash = row("admin").password_hash
    assert new_hash != old_hash and "m=16384,t=2,p=1" in new_hash
    assert json.loads(login_entries()[-1].details) == {"rehashed": True}
    # The password still works, and an up-to-date hash is not rewritten.
    staff.authenticate("admin", TEST_PASSWORD)
    assert row("admin").password_hash == new_hash
    assert json.loads(login_entries()[-1].details) == {"rehashed": False}


def test_no_rehash_on_a_failed_login(office, monkeypatch):
    old_hash = row("admin").password_hash
    monkeypatch.setattr(office_mod.current(), "hasher", PasswordHasher(time_cost=2, memory_cost=16384, parallelism=1))
    fail_login("admin")
    assert row("admin").password_hash == old_hash


# --- password rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("short-pw", "too_short"),
        ("", "too_short"),
        ("x" * 129, "too_long"),
        ("my-alice-is-great", "contains_username"),
        ("MY-ALICE-IS-GREAT", "contains_username"),
        ("password1234", "too_common"),
        ("Password1234", "too_common"),
        ("abababababababab", "too_common"),
    ],
)
def test_password_rules(password, code):
    problems = staff.password_problems("alice", password)
    assert [p.code for p in problems] == [code]
    assert password not in str(problems) or password == ""


def test_a_good_password_has_no_problems():
    assert staff.password_problems("alice", "maple-harbor-river-42") == []
    assert staff.password_problems("alice", TEST_PASSWORD) == []


def test_the_bundled_blocklist_holds_at_least_3000_common_passwords_read_once():
    blocklist = staff.common_passwords()
    assert len(blocklist) >= 10_000 and staff.common_passwords() is blocklist
    assert {"password1", "qwerty123", "iloveyou", "1qaz2wsx3edc", "qwerty123456"} <= blocklist
    assert all(entry == entry.casefold() and entry.strip() == entry and entry for entry in blocklist)
    assert not any(entry.startswith("#") for entry in blocklist), "the header is comments, not entries"
    text = (Path(staff.__file__).parent / staff.COMMON_PASSWORDS_FILE).read_text(encoding="utf-8")
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert "zxcvbn 4.5.0" in header and "MIT License" in header and "Copyright (c) 2016 Daniel Wolf" in header


def _listed_at_length() -> list[str]:
    """Entries from across the bundled file, long enough to pass the length rule as they stand or padded."""
    text = (Path(staff.__file__).parent / staff.COMMON_PASSWORDS_FILE).read_text(encoding="utf-8")
    entries = [line for line in text.splitlines() if line and not line.startswith("#")]
    long_ones = [e for e in entries if len(e) >= staff.MIN_PASSWORD and len(set(e)) >= 4][:3]
    padded = [e + "2024!!!"[:max(0, staff.MIN_PASSWORD - len(e))] for e in (entries[1], entries[4999], entries[-1])]
    return long_ones + padded


@pytest.mark.parametrize("password", [
    "password1!!!", "qwerty123456", "Qwerty123!!!", "PASSWORD1234!", "!!password1!!", "iloveyou2024",
    "ｐａｓｓｗｏｒｄ１２３４５", "baoxian2024!!", *_listed_at_length(),
])
def test_common_passwords_and_padded_ones_are_refused_with_the_usual_message(password):
    problems = staff.password_problems("alice", password)
    assert [(p.code, p.message) for p in problems] == [("too_common", "is too common or too simple")]


def test_short_common_passwords_are_refused_for_their_length_first():
    for password in ("password1", "qwerty123"):
        assert [p.code for p in staff.password_problems("alice", password)] == ["too_short"]


@pytest.mark.parametrize("password", [
    "maple-harbor-river-42", "correct horse battery", "长城上的月亮照着我家的小院", "tea-kettle-on-the-porch 7",
    "2024-dragon-boat-races", "password-manager-not-a-word",
])
def test_strong_passphrases_are_accepted(password):
    assert staff.password_problems("alice", password) == []


def test_every_demo_password_is_accepted():
    assert set(demo.demo_password().split("-")[:3]) <= set(demo.PASSWORD_WORDS)
    refused = [candidate for candidate in ("-".join(three) + f"-{number}"
                                           for three in itertools.product(demo.PASSWORD_WORDS, repeat=3)
                                           for number in range(10, 100))
               if staff.password_problems("clerk", candidate)]
    assert refused == []


def test_add_staff_enforces_password_and_username_rules(office, admin):
    with pytest.raises(ValidationError) as caught:
        staff.add_staff(admin, "bob", "Bob", "short", ["clerk"])
    assert "password" in caught.value.by_field()
    with pytest.raises(ValidationError) as caught:
        staff.add_staff(admin, "bob", "Bob", "bob-and-more-chars", ["clerk"])
    assert "password" in caught.value.by_field()
    with pytest.raises(ValidationError) as caught:
        staff.add_staff(admin, "bad name!", "X", TEST_PASSWORD, ["clerk"])
    assert "username" in caught.value.by_field()
    with pytest.raises(ValidationError) as caught:
        staff.add_staff(admin, "bob", "Bob", TEST_PASSWORD, ["emperor"])
    assert "roles" in caught.value.by_field()
    with pytest.raises(ValidationError) as caught:
        staff.add_staff(admin, "ADMIN", "Another admin", TEST_PASSWORD, ["admin"])
    assert "username" in caught.value.by_field()
    assert Staff.select().count() == 1


def test_first_admin_only_once(office):
    with pytest.raises(PermissionDenied):
        staff.create_first_admin("second", TEST_PASSWORD)


# --- first login, password changes and sessions ----------------------------------------


def test_first_login_must_change_password(office, admin, frozen_clock):
    staff.add_staff(admin, "newbie", "New Person", TEST_PASSWORD, ["clerk"])
    actor = staff.authenticate("newbie", TEST_PASSWORD)
    assert actor.must_change_password
    assert staff.authenticate("admin", TEST_PASSWORD).must_change_password is False

    with pytest.raises(ValidationError) as caught:
        staff.change_password(actor, "not my password", "maple-harbor-river-42")
    assert "current_password" in caught.value.by_field()
    with pytest.raises(ValidationError) as caught:
        staff.change_password(actor, TEST_PASSWORD, TEST_PASSWORD)
    assert caught.value.errors[0].code == "unchanged"
    with pytest.raises(ValidationError) as caught:
        staff.change_password(actor, TEST_PASSWORD, "newbie-password-1")
    assert caught.value.errors[0].code == "contains_username"

    changed = staff.change_password(actor, TEST_PASSWORD, "maple-harbor-river-42")
    assert changed.must_change_password is False
    fail_login("newbie", TEST_PASSWORD)
    assert staff.authenticate("newbie", "maple-harbor-river-42").must_change_password is False
    assert TEST_PASSWORD not in all_audit_text() and "maple-harbor-river-42" not in all_audit_text()


def test_change_password_ends_older_sessions(office, make_staff, frozen_clock):
    make_staff("clerk", "clerk")
    older = staff.authenticate("clerk", TEST_PASSWORD)
    other_device = staff.authenticate("clerk", TEST_PASSWORD)
    frozen_clock.advance(dt.timedelta(minutes=5))
    renewed = staff.change_password(other_device, TEST_PASSWORD, "maple-harbor-river-42")
    for stale in (older, other_device):
        with pytest.raises(PermissionDenied):
            staff.logout(stale)
    staff.logout(renewed)  # the session that changed the password goes on
    fresh = staff.authenticate("clerk", "maple-harbor-river-42")
    staff.logout(fresh)
    denied = AuditEntry.select().where(AuditEntry.action == "DENIED").count()
    assert denied == 2


def test_change_password_ends_a_session_started_just_before(office, make_staff, frozen_clock):
    make_staff("clerk", "clerk")
    older = staff.authenticate("clerk", TEST_PASSWORD)
    frozen_clock.advance(dt.timedelta(milliseconds=500))
    renewed = staff.change_password(older, TEST_PASSWORD, "maple-harbor-river-42")
    sneaky = older  # e.g. an attacker's session opened with the old password half a second earlier
    staff.logout(renewed)
    with pytest.raises(PermissionDenied):
        staff.logout(sneaky)


def test_reset_password(office, admin, make_staff, frozen_clock):
    clerk = make_staff("clerk", "clerk")
    for _ in range(staff.LOCK_AFTER_FAILURES):
        fail_login("clerk")
    assert row("clerk").locked
    frozen_clock.advance(dt.timedelta(minutes=1))

    with pytest.raises(ValidationError):
        staff.reset_password(admin, "clerk", "short")
    summary = staff.reset_password(admin, "clerk", "temporary-pass-77")
    assert summary.must_change_password and not summary.locked and summary.failed_count == 0
    with pytest.raises(PermissionDenied):  # the old session has ended
        staff.logout(clerk)
    fail_login("clerk", TEST_PASSWORD)
    actor = staff.authenticate("clerk", "temporary-pass-77")
    assert actor.must_change_password
    assert "temporary-pass-77" not in all_audit_text()
    assert AuditEntry.select().where(AuditEntry.action == "PASSWORD_RESET").count() == 1
    with pytest.raises(PermissionDenied):
        staff.reset_password(actor, "admin", "i-take-over-now-1")


def test_disabled_account_cannot_log_in(office, admin, make_staff, frozen_clock):
    clerk = make_staff("clerk", "clerk")
    frozen_clock.advance(dt.timedelta(seconds=1))
    staff.set_active(admin, "clerk", False)
    refused = fail_login("clerk", TEST_PASSWORD)
    assert str(refused) == staff.WRONG_LOGIN
    assert json.loads(login_entries()[-1].details)["reason"] == "disabled"
    assert row("clerk").failed_count == 0, "logins to a disabled account do not count towards the lock"
    with pytest.raises(PermissionDenied):
        staff.logout(clerk)
    staff.set_active(admin, "clerk", True)
    assert staff.authenticate("clerk", TEST_PASSWORD).username == "clerk"


def test_admin_cannot_disable_themselves(office, admin):
    with pytest.raises(PermissionDenied):
        staff.set_active(admin, "admin", False)
    assert row("admin").active


def test_list_staff(office, admin, make_staff):
    make_staff("zed", "clerk")
    make_staff("bea", "reviewer", "supervisor")
    listed = staff.list_staff(admin)
    assert [s.username for s in listed] == ["admin", "bea", "zed"]
    assert listed[1].roles == ("reviewer", "supervisor")
    assert not any(hasattr(s, "password_hash") for s in listed)
