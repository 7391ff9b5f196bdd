"""Staff accounts, argon2id password logins, throttling and lockout, sessions.

Unknown usernames cost the same argon2 verify as wrong passwords and get the same message.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import secrets
import string
import unicodedata
from dataclasses import dataclass

import peewee as pw
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from models import audit, clock, office
from models.db import BaseModel, write
from models.errors import AuthenticationFailed, FieldError, NotFound, PermissionDenied, ValidationError
from models.permissions import ROLES, Actor, Perm, service

MIN_PASSWORD = 12
MAX_PASSWORD = 128
LOCK_AFTER_FAILURES = 10
DELAY_FROM_FAILURE = 3
MAX_DELAY_SECONDS = 30
FAILURE_WINDOW = dt.timedelta(minutes=15)
COMMON_PASSWORDS_FILE = "data/common-passwords.txt"  # in this package; its header names source and licence
# Words of this trade and office, and local favourites, that a list of leaked passwords lacks (ASVS 6.2.11).
CONTEXT_PASSWORDS = frozenset({
    "123456789012", "1234567890123", "password1234", "password123456", "qwertyuiop12", "qwertyuiopas",
    "abcdefghijkl", "111111111111", "000000000000", "admin1234567", "iloveyou1234", "woaini123456",
    "baoxian12345", "baoxian123456", "insurance123", "insurance1234", "recordkeeper", "recordkeeper1",
    "a1234567890b", "1qaz2wsx3edc", "1q2w3e4r5t6y", "zaq12wsxcde3", "welcome12345", "changeme1234",
    "baoxian", "baoxiangongsi", "insurance", "woaini",
})
PASSWORD_PADDING = string.digits + string.punctuation + " "  # stripped from both ends before the blocklist check
MIN_BLOCKLIST_CORE = 4
WRONG_LOGIN = "Wrong username or password."


class Staff(BaseModel):
    username = pw.CharField(max_length=32, unique=True)
    display_name = pw.CharField(max_length=60)
    password_hash = pw.CharField(max_length=200)
    roles = pw.CharField(max_length=200)  # comma-separated ROLES
    active = pw.BooleanField(default=True)
    must_change_password = pw.BooleanField(default=True)
    failed_count = pw.IntegerField(default=0)
    last_failed_at = pw.DateTimeField(null=True)
    next_attempt_at = pw.DateTimeField(null=True)
    locked = pw.BooleanField(default=False)
    sessions_valid_after = pw.DateTimeField(null=True)
    language = pw.CharField(max_length=5, default="")
    created_at = pw.DateTimeField()

    class Meta:
        table_name = "staff"


@dataclass(frozen=True)
class StaffSummary:
    staff_id: int
    username: str
    display_name: str
    roles: tuple[str, ...]
    active: bool
    locked: bool
    must_change_password: bool
    failed_count: int


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def normalise_username(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw).strip().casefold()[:64]


def _prepare_password(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw)


@functools.cache
def common_passwords() -> frozenset[str]:
    """The blocklist: the bundled 10,000 most common passwords, lower-cased, and CONTEXT_PASSWORDS (read once)."""
    text = importlib.resources.files("models").joinpath(COMMON_PASSWORDS_FILE).read_text(encoding="utf-8")
    entries = (line.strip().casefold() for line in text.splitlines())
    return frozenset(entry for entry in entries if entry and not entry.startswith("#")) | CONTEXT_PASSWORDS


def is_common_password(password: str) -> bool:
    """Whether a password is on the blocklist, or is a listed one padded out with digits and punctuation.

    Nearly every listed password is shorter than MIN_PASSWORD, so "password2024!" must count as "password".
    """
    folded = password.casefold()
    blocklist = common_passwords()
    if folded in blocklist:
        return True
    lead = len(folded) - len(folded.lstrip(PASSWORD_PADDING))
    trail = len(folded) - len(folded.rstrip(PASSWORD_PADDING))
    return any(folded[start:len(folded) - end] in blocklist
               for start in range(lead + 1) for end in range(trail + 1)
               if len(folded) - start - end >= MIN_BLOCKLIST_CORE)


def password_problems(username: str, password: str) -> list[FieldError]:
    """Why a new password is not acceptable (empty when it is)."""
    pw_norm = _prepare_password(password)
    problems = []
    if len(pw_norm) < MIN_PASSWORD:
        problems.append(FieldError("new_password", f"must be at least {MIN_PASSWORD} characters", "too_short"))
    elif len(pw_norm) > MAX_PASSWORD:
        problems.append(FieldError("new_password", f"must be at most {MAX_PASSWORD} characters", "too_long"))
    elif username and normalise_username(username) in pw_norm.casefold():
        problems.append(FieldError("new_password", "must not contain the username", "contains_username"))
    elif is_common_password(pw_norm) or len(set(pw_norm)) < 4:
        problems.append(FieldError("new_password", "is too common or too simple", "too_common"))
    return problems


def _check_roles(roles: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValidationError([FieldError("roles", "must be one or more of " + ", ".join(ROLES), "bad_choice")])
    return tuple(dict.fromkeys(roles))


def _check_username(username: str) -> str:
    name = normalise_username(username)
    if not (2 <= len(name) <= 32) or not all(c.isalnum() or c in "._-" for c in name) or not name.isascii():
        raise ValidationError([FieldError(
            "username", "must be 2 to 32 letters, digits, '.', '_' or '-'", "bad_format")])
    return name


def _insert_staff(username: str, display_name: str, password: str, roles, must_change: bool) -> Staff:
    name = _check_username(username)
    roles = _check_roles(roles)
    problems = password_problems(name, password)
    if problems:
        raise ValidationError([FieldError("password", p.message, p.code) for p in problems])
    if Staff.select().where(Staff.username == name).exists():
        raise ValidationError([FieldError("username", "is already taken", "duplicate")])
    return Staff.create(
        username=name,
        display_name=display_name.strip()[:60] or name,
        password_hash=office.current().hasher.hash(_prepare_password(password)),
        roles=",".join(roles),
        must_change_password=must_change,
        created_at=_naive(clock.now()),
    )


def _summary(row: Staff) -> StaffSummary:
    return StaffSummary(row.id, row.username, row.display_name, tuple(row.roles.split(",")), row.active,
                        row.locked, row.must_change_password, row.failed_count)


def create_first_admin(username: str, password: str, display_name: str = "") -> StaffSummary:
    """Create the first administrator of an empty office (for `recordkeeper init`)."""
    with write():
        if Staff.select().exists():
            raise PermissionDenied("this office already has staff; an admin must add accounts")
        row = _insert_staff(username, display_name or username, password, ("admin",), must_change=False)
        audit.append(actor_id=row.id, actor=row.username, action="STAFF_CREATE", object_type="staff",
                     object_id=str(row.id), details={"roles": ["admin"], "bootstrap": True})
    return _summary(row)


def _actor_for(row: Staff) -> Actor:
    return Actor(
        staff_id=row.id, username=row.username, display_name=row.display_name,
        roles=frozenset(row.roles.split(",")), session_id=secrets.token_hex(8),
        must_change_password=row.must_change_password, language=row.language,
        started_at=clock.now().isoformat(),
    )


def authenticate(username: str, password: str) -> Actor:
    """Check a login; every failure raises AuthenticationFailed with the same message and cost."""
    the_office = office.current()
    name = normalise_username(username)
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co") for char in name):
        name = ""  # no account has such a name (and NUL or a lone surrogate must not reach SQL): unknown user
    row = Staff.get_or_none(Staff.username == name) if name else None
    pw_text = _prepare_password(password)[:MAX_PASSWORD]
    try:
        # bytes: a lone surrogate cannot be UTF-8 encoded, yet must cost a verify and fail like any wrong password
        ok = the_office.hasher.verify(row.password_hash if row else the_office.dummy_hash,
                                      pw_text.encode("utf-8", "surrogatepass"))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    now = clock.now()
    with write():
        if row is None:
            audit.append(actor_id=None, actor="(unknown)", action="LOGIN", outcome="failed",
                         details={"reason": "unknown_user"})
        else:
            actor = _login_attempt(row.id, ok, pw_text, now)
            if actor is not None:
                return actor
    # Raised outside the write transaction so that the failure's audit entry is kept.
    raise AuthenticationFailed(WRONG_LOGIN)


def _login_attempt(staff_id: int, ok: bool, pw_text: str, now: dt.datetime) -> Actor | None:
    """Inside the login's write transaction: record success or failure, return the actor on success."""
    the_office = office.current()
    row = Staff.get_by_id(staff_id)  # re-read inside the write lock
    throttled = row.next_attempt_at is not None and _naive(now) < row.next_attempt_at
    if ok and row.active and not row.locked and not throttled:
        updates = {"failed_count": 0, "next_attempt_at": None}
        if the_office.hasher.check_needs_rehash(row.password_hash):
            updates["password_hash"] = the_office.hasher.hash(pw_text)
        Staff.update(**updates).where(Staff.id == row.id).execute()
        actor = _actor_for(row)
        audit.append(actor_id=row.id, actor=row.username, session_id=actor.session_id, action="LOGIN",
                     details={"rehashed": "password_hash" in updates})
        return actor
    reason = ("disabled" if not row.active else "locked" if row.locked
              else "throttled" if throttled else "bad_password")
    if reason in ("bad_password", "throttled"):
        recent = row.last_failed_at is not None and _naive(now) - row.last_failed_at < FAILURE_WINDOW
        failures = (row.failed_count if recent else 0) + 1
        delay = None
        if failures >= DELAY_FROM_FAILURE:
            delay = _naive(now) + dt.timedelta(
                seconds=min(2 ** (failures - DELAY_FROM_FAILURE), MAX_DELAY_SECONDS))
        locked = failures >= LOCK_AFTER_FAILURES
        Staff.update(failed_count=failures, last_failed_at=_naive(now), next_attempt_at=delay,
                     locked=locked).where(Staff.id == row.id).execute()
        if locked:
            audit.append(actor_id=row.id, actor=row.username, action="ACCOUNT_LOCK",
                         object_type="staff", object_id=str(row.id), details={"failures": failures})
    audit.append(actor_id=row.id, actor=row.username, action="LOGIN", outcome="failed",
                 details={"reason": reason})
    return None


def current_roles(actor: Actor) -> frozenset[str]:
    """The actor's roles now; an ended session or a disabled account has none."""
    row = Staff.get_or_none(Staff.id == actor.staff_id)
    if row is None or not row.active or row.locked:
        return frozenset()
    if row.sessions_valid_after and actor.started_at and (
        _naive(dt.datetime.fromisoformat(actor.started_at)) < row.sessions_valid_after
    ):
        return frozenset()
    return frozenset(row.roles.split(","))


@service(Perm.HOME)
def unlock_screen(actor: Actor, password: str) -> None:
    """Re-authenticate after the idle lock; a wrong password counts as a failed login."""
    authenticate(actor.username, password)
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="SCREEN_UNLOCK")


@service(Perm.HOME)
def record_screen_lock(actor: Actor, reason: str = "idle") -> None:
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                 action="SCREEN_LOCK", details={"reason": reason})


@service(Perm.HOME)
def logout(actor: Actor) -> None:
    audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id, action="LOGOUT")


@service(Perm.HOME)
def change_password(actor: Actor, current_password: str, new_password: str) -> Actor:
    """Change one's own password; ends other sessions of the account."""
    row = Staff.get_by_id(actor.staff_id)
    try:
        ok = office.current().hasher.verify(row.password_hash, _prepare_password(current_password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if not ok:
        raise ValidationError([FieldError("current_password", "is not your current password", "wrong")])
    problems = password_problems(actor.username, new_password)
    if not problems and _prepare_password(new_password) == _prepare_password(current_password):
        problems = [FieldError("new_password", "must differ from the current password", "unchanged")]
    if problems:
        raise ValidationError(problems)
    now = clock.now()
    with write():
        Staff.update(password_hash=office.current().hasher.hash(_prepare_password(new_password)),
                     must_change_password=False,
                     sessions_valid_after=_naive(now)).where(
            Staff.id == actor.staff_id).execute()
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="PASSWORD_CHANGE", object_type="staff", object_id=str(actor.staff_id))
    return Actor(actor.staff_id, actor.username, actor.display_name, actor.roles, actor.session_id,
                 False, actor.language, now.isoformat())


@service(Perm.HOME)
def set_language(actor: Actor, language: str) -> None:
    if language not in ("zh", "en", ""):
        raise ValidationError([FieldError("language", "must be zh or en", "bad_choice")])
    with write():
        Staff.update(language=language).where(Staff.id == actor.staff_id).execute()


@service(Perm.STAFF_MANAGE)
def add_staff(actor: Actor, username: str, display_name: str, password: str, roles) -> StaffSummary:
    """Add an account; the person must change the password at first login."""
    with write():
        row = _insert_staff(username, display_name, password, roles, must_change=True)
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="STAFF_CREATE", object_type="staff", object_id=str(row.id),
                     details={"roles": list(roles)})
    return _summary(row)


@service(Perm.STAFF_MANAGE)
def list_staff(actor: Actor) -> list[StaffSummary]:
    return [_summary(r) for r in Staff.select().order_by(Staff.username)]


def _get_staff(username: str) -> Staff:
    row = Staff.get_or_none(Staff.username == normalise_username(username))
    if row is None:
        raise NotFound(f"no staff account named {normalise_username(username)!r}")
    return row


@service(Perm.STAFF_MANAGE)
def unlock_account(actor: Actor, username: str) -> StaffSummary:
    with write():
        row = _get_staff(username)
        Staff.update(locked=False, failed_count=0, next_attempt_at=None).where(Staff.id == row.id).execute()
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="ACCOUNT_UNLOCK", object_type="staff", object_id=str(row.id))
    return _summary(Staff.get_by_id(row.id))


@service(Perm.STAFF_MANAGE)
def reset_password(actor: Actor, username: str, new_password: str) -> StaffSummary:
    """Set a temporary password, end the account's sessions; it must be changed at next login."""
    with write():
        row = _get_staff(username)
        problems = password_problems(row.username, new_password)
        if problems:
            raise ValidationError([FieldError("password", p.message, p.code) for p in problems])
        Staff.update(password_hash=office.current().hasher.hash(_prepare_password(new_password)),
                     must_change_password=True, locked=False, failed_count=0, next_attempt_at=None,
                     sessions_valid_after=_naive(clock.now())).where(Staff.id == row.id).execute()
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="PASSWORD_RESET", object_type="staff", object_id=str(row.id))
    return _summary(Staff.get_by_id(row.id))


@service(Perm.STAFF_MANAGE)
def set_active(actor: Actor, username: str, active: bool) -> StaffSummary:
    with write():
        row = _get_staff(username)
        if row.id == actor.staff_id and not active:
            raise PermissionDenied("you cannot disable your own account")
        Staff.update(active=active, sessions_valid_after=_naive(clock.now())).where(Staff.id == row.id).execute()
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="STAFF_ENABLE" if active else "STAFF_DISABLE", object_type="staff",
                     object_id=str(row.id))
    return _summary(Staff.get_by_id(row.id))


@service(Perm.STAFF_MANAGE)
def set_roles(actor: Actor, username: str, roles) -> StaffSummary:
    """Replace an account's roles; they take effect at that person's next action."""
    roles = _check_roles(list(roles))
    with write():
        row = _get_staff(username)
        if row.id == actor.staff_id and "admin" not in roles:
            raise ValidationError([FieldError("roles", "you cannot remove your own admin role", "own_admin")])
        before = row.roles.split(",")
        Staff.update(roles=",".join(roles)).where(Staff.id == row.id).execute()
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="STAFF_ROLES", object_type="staff", object_id=str(row.id),
                     details={"before": before, "after": list(roles)})
    return _summary(Staff.get_by_id(row.id))
