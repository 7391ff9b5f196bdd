"""Roles, permissions and the `service` decorator: default deny, every denial audited.

Every public service function takes the acting staff member first and declares its
permission with `@service(Perm.X)`; tests/models/test_permissions.py fails on one that does not.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import Enum
from typing import Callable, TypeVar

from models.errors import PermissionDenied

ROLES = ("clerk", "reviewer", "supervisor", "records_officer", "auditor", "admin")


class Perm(str, Enum):
    HOME = "home.view"
    CUSTOMER_CREATE = "customer.create"
    CUSTOMER_VIEW = "customer.view"
    CUSTOMER_REVEAL = "customer.reveal"
    CUSTOMER_SEARCH = "customer.search"
    INTAKE = "intake.edit"
    REVIEW = "intake.review"
    CHANGE_REQUEST = "change.request"
    CHANGE_APPROVE = "change.approve"
    LABEL_MANAGE = "label.manage"
    RETENTION = "retention.manage"
    DESTRUCTION_REQUEST = "destruction.request"
    DESTRUCTION_APPROVE = "destruction.approve"
    HOLD_PLACE = "hold.place"
    HOLD_RELEASE = "hold.release"
    RETENTION_RULES = "retention.rules"
    DESTRUCTION_VIEW = "destruction.view"
    AUDIT_VIEW = "audit.view"
    AUDIT_VERIFY = "audit.verify"
    STAFF_MANAGE = "staff.manage"
    REPORT = "report.view"
    SUGGEST = "suggestion.submit"
    SUGGESTION_REVIEW = "suggestion.review"
    TRAINING_VIEW = "training.view"


_CUSTOMER_WORK = {Perm.CUSTOMER_VIEW, Perm.CUSTOMER_REVEAL, Perm.CUSTOMER_SEARCH}

ROLE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    "clerk": frozenset({Perm.HOME, Perm.CUSTOMER_CREATE, Perm.INTAKE, Perm.CHANGE_REQUEST, *_CUSTOMER_WORK}),
    "reviewer": frozenset({Perm.HOME, Perm.REVIEW, *_CUSTOMER_WORK}),
    "supervisor": frozenset({
        Perm.HOME, Perm.CHANGE_APPROVE, Perm.DESTRUCTION_APPROVE, Perm.DESTRUCTION_VIEW, Perm.HOLD_PLACE,
        Perm.HOLD_RELEASE,
        Perm.AUDIT_VIEW, Perm.AUDIT_VERIFY, Perm.REPORT, Perm.SUGGESTION_REVIEW, Perm.TRAINING_VIEW,
        *_CUSTOMER_WORK,
    }),
    "records_officer": frozenset({
        Perm.HOME, Perm.LABEL_MANAGE, Perm.RETENTION, Perm.DESTRUCTION_REQUEST, Perm.HOLD_PLACE,
        Perm.CHANGE_REQUEST, Perm.DESTRUCTION_VIEW, *_CUSTOMER_WORK,
    }),
    # The auditor and the admin see no personal data.
    "auditor": frozenset({Perm.HOME, Perm.AUDIT_VIEW, Perm.AUDIT_VERIFY, Perm.REPORT, Perm.DESTRUCTION_VIEW}),
    "admin": frozenset({Perm.HOME, Perm.STAFF_MANAGE, Perm.RETENTION_RULES, Perm.AUDIT_VERIFY, Perm.TRAINING_VIEW}),
}
# Every staff member may suggest improvements to the process (seed §6).
ROLE_PERMISSIONS = {role: granted | {Perm.SUGGEST} for role, granted in ROLE_PERMISSIONS.items()}


@dataclass(frozen=True)
class Actor:
    """The authenticated staff member on whose behalf a service runs."""

    staff_id: int
    username: str
    display_name: str
    roles: frozenset[str]
    session_id: str
    must_change_password: bool = False
    language: str = ""
    started_at: str = ""

    def has(self, permission: Perm) -> bool:
        return any(permission in ROLE_PERMISSIONS.get(role, ()) for role in self.roles)


def permissions_of(roles: frozenset[str] | set[str]) -> frozenset[Perm]:
    granted: set[Perm] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)


F = TypeVar("F", bound=Callable)
SERVICES: dict[str, Perm] = {}


def service(permission: Perm) -> Callable[[F], F]:
    """Declare a service's permission; check it against the actor's current roles and audit denials."""

    def decorate(fn: F) -> F:
        name = f"{fn.__module__}.{fn.__qualname__}"

        def checked(actor: Actor, *args, **kwargs):
            from models import staff  # late import: staff uses this module

            roles = staff.current_roles(actor)
            if permission not in permissions_of(roles):
                from models import audit

                audit.append(
                    actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                    action="DENIED", outcome="denied",
                    details={"service": fn.__qualname__, "permission": permission.value},
                )
                raise PermissionDenied(f"{actor.username} may not do this ({permission.value})")
            return fn(actor, *args, **kwargs)

        @functools.wraps(fn)
        def wrapper(actor: Actor, *args, **kwargs):
            if not isinstance(actor, Actor):
                raise TypeError(f"{name} needs the acting staff member first")
            try:
                return checked(actor, *args, **kwargs)
            except Exception as exc:
                from models import storage

                failure = storage.storage_failure(exc)  # a full or read-only disk: a clear refusal, not a driver error
                if failure is None:
                    storage._audit_integrity_failure(actor, fn.__qualname__, exc)  # a tampered ciphertext or key
                    raise
                storage.after_failure(failure)
                raise failure from None

        wrapper.__permission__ = permission  # type: ignore[attr-defined]
        SERVICES[name] = permission
        return wrapper  # type: ignore[return-value]

    return decorate
