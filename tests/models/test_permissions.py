"""Default deny: every service declares a permission, the role matrix holds, and every denial is audited."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import random
from dataclasses import replace

import pytest
from faker import Faker

import models
from models import clock, customers, demo, staff
from models.audit import AuditEntry
from models.errors import PermissionDenied
from models.permissions import ROLE_PERMISSIONS, ROLES, SERVICES, Actor, Perm, permissions_of
from tests.conftest import TEST_PASSWORD

# Not services by design: the permission check itself (a service would recurse into it).
EXEMPT = {"models.staff.current_roles"}



def _model_modules():
    return [importlib.import_module(f"models.{m.name}")
            for m in pkgutil.iter_modules(models.__path__) if not m.name.startswith("_")]


def _actor_functions_without_permission() -> list[str]:
    offenders = []
    for module in _model_modules():
        for name, fn in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(fn):
                continue
            if getattr(fn, "__module__", None) != module.__name__:
                continue  # imported from elsewhere; checked where it is defined
            params = list(inspect.signature(fn).parameters)
            if params[:1] == ["actor"] and not hasattr(fn, "__permission__"):
                offenders.append(f"{module.__name__}.{name}")
    return sorted(offenders)


# --- (a) every service declares its permission ----------------------------------------


def test_every_public_function_taking_an_actor_declares_a_permission():
    offenders = [name for name in _actor_functions_without_permission() if name not in EXEMPT]
    assert offenders == [], (
        "these public functions take `actor` first but are not decorated with "
        "@models.permissions.service(...):\n  " + "\n  ".join(offenders)
    )


def test_the_exemptions_are_still_needed():
    assert EXEMPT <= set(_actor_functions_without_permission())


def test_the_scan_finds_services():
    """Guard against the scan silently checking nothing."""
    assert len(SERVICES) >= 10
    for name in ("models.customers.get_customer", "models.staff.add_staff"):
        assert name in SERVICES
    assert customers.get_customer.__permission__ is Perm.CUSTOMER_VIEW


def test_every_service_permission_is_granted_to_some_role():
    granted = set().union(*ROLE_PERMISSIONS.values())
    assert set(SERVICES.values()) <= granted
    assert set(ROLE_PERMISSIONS) == set(ROLES)


def test_the_auditor_and_admin_see_no_personal_data():
    personal = {Perm.CUSTOMER_VIEW, Perm.CUSTOMER_REVEAL, Perm.CUSTOMER_SEARCH, Perm.CUSTOMER_CREATE, Perm.INTAKE,
                Perm.REVIEW}
    for role in ("auditor", "admin"):
        assert not (ROLE_PERMISSIONS[role] & personal), role


# --- (b) the matrix, (c) denials audited -----------------------------------------------

EXPECTED_PERMISSION = {
    "create_customer": Perm.CUSTOMER_CREATE,
    "get_customer": Perm.CUSTOMER_VIEW,
    "reveal_fields": Perm.CUSTOMER_REVEAL,
    "find_customers": Perm.CUSTOMER_SEARCH,
    "add_staff": Perm.STAFF_MANAGE,
    "list_staff": Perm.STAFF_MANAGE,
    "unlock_account": Perm.STAFF_MANAGE,
    "reset_password": Perm.STAFF_MANAGE,
    "set_active": Perm.STAFF_MANAGE,
    "logout": Perm.HOME,
    "set_language": Perm.HOME,
    "record_screen_lock": Perm.HOME,
}


def _calls(customer_no: str, data: dict):
    """(name, service, call) for representative services of each permission."""
    return [
        ("create_customer", customers.create_customer, lambda a: customers.create_customer(a, dict(data))),
        ("get_customer", customers.get_customer, lambda a: customers.get_customer(a, customer_no)),
        ("reveal_fields", customers.reveal_fields,
         lambda a: customers.reveal_fields(a, customer_no, ["mobile"], "客户来电核实身份")),
        ("find_customers", customers.find_customers, lambda a: customers.find_customers(a, "customer_no", "C")),
        ("add_staff", staff.add_staff,
         lambda a: staff.add_staff(a, f"new-{a.username}"[:32], "New", TEST_PASSWORD, ["clerk"])),
        ("list_staff", staff.list_staff, lambda a: staff.list_staff(a)),
        ("unlock_account", staff.unlock_account, lambda a: staff.unlock_account(a, "target")),
        ("reset_password", staff.reset_password, lambda a: staff.reset_password(a, "target", "temporary-pass-77")),
        ("set_active", staff.set_active, lambda a: staff.set_active(a, "target", True)),
        ("record_screen_lock", staff.record_screen_lock, lambda a: staff.record_screen_lock(a)),
        ("set_language", staff.set_language, lambda a: staff.set_language(a, "en")),
        ("logout", staff.logout, lambda a: staff.logout(a)),
    ]


@pytest.fixture
def customer_data():
    fake = Faker("zh_CN")
    fake.seed_instance(7)
    return demo.fake_customer(fake, random.Random(7), clock.today())


@pytest.fixture
def existing_customer(office, admin, customer_data):
    staff.add_staff(admin, "seed-clerk", "Seed", TEST_PASSWORD, ["clerk"])
    staff.add_staff(admin, "target", "Target", TEST_PASSWORD, ["clerk"])
    seeder = staff.authenticate("seed-clerk", TEST_PASSWORD)
    return customers.create_customer(seeder, dict(customer_data)).customer_no


def _denials() -> list[AuditEntry]:
    return list(AuditEntry.select().where(AuditEntry.action == "DENIED").order_by(AuditEntry.seq))


def _check_matrix(actor: Actor, customer_no: str, data: dict) -> list[str]:
    granted = permissions_of(actor.roles)
    problems = []
    for name, fn, call in _calls(customer_no, data):
        declared = fn.__permission__
        if declared is not EXPECTED_PERMISSION[name]:
            problems.append(f"{name} declares {declared}, expected {EXPECTED_PERMISSION[name]}")
        before = _denials()
        try:
            call(actor)
            allowed = True
        except PermissionDenied as exc:
            allowed = False
            assert actor.username in str(exc) and declared.value in str(exc)
        new = _denials()[len(before):]
        if allowed != (declared in granted):
            problems.append(f"{sorted(actor.roles)} {name}: {'allowed' if allowed else 'denied'}, "
                            f"expected {'allowed' if declared in granted else 'denied'}")
        if allowed:
            if new:
                problems.append(f"{name}: allowed but a DENIED entry was written")
            continue
        # (c) every denial leaves exactly one DENIED entry saying who, what and which permission.
        if len(new) != 1:
            problems.append(f"{name}: denial wrote {len(new)} DENIED entries")
            continue
        entry = new[0]
        details = json.loads(entry.details)
        if (entry.outcome, entry.actor, entry.actor_id, entry.session_id) != (
                "denied", actor.username, actor.staff_id, actor.session_id):
            problems.append(f"{name}: DENIED entry has wrong who/outcome: {entry.__data__}")
        if details != {"service": fn.__name__, "permission": declared.value}:
            problems.append(f"{name}: DENIED entry details {details}")
    return problems


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(role, make_staff, existing_customer, customer_data):
    actor = make_staff(f"u-{role}".replace("_", "-"), role)
    assert actor.roles == frozenset({role})
    problems = _check_matrix(actor, existing_customer, customer_data)
    assert problems == []


def test_permission_matrix_for_a_person_with_several_roles(make_staff, existing_customer, customer_data):
    actor = make_staff("multi", "auditor", "records_officer")
    assert _check_matrix(actor, existing_customer, customer_data) == []


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_auditor_and_admin_cannot_view_customers(role, make_staff, existing_customer):
    actor = make_staff(f"no-pii-{role}", role)
    attempts = [
        lambda: customers.get_customer(actor, existing_customer),
        lambda: customers.reveal_fields(actor, existing_customer, ["full_name"], "just curious here"),
        lambda: customers.find_customers(actor, "customer_no", existing_customer),
        lambda: customers.find_customers(actor, "full_name", "张三"),
    ]
    before = len(_denials())
    for attempt in attempts:
        with pytest.raises(PermissionDenied):
            attempt()
    new = _denials()[before:]
    assert len(new) == len(attempts)
    assert all(e.outcome == "denied" and e.actor == actor.username for e in new)
    assert not AuditEntry.select().where(AuditEntry.action.in_(["VIEW", "REVEAL", "SEARCH"]),
                                         AuditEntry.actor == actor.username).exists()


def test_roles_are_checked_against_the_database_not_the_actor(make_staff, admin):
    clerk = make_staff("clerk", "clerk")
    forged = replace(clerk, roles=frozenset({"admin"}))
    with pytest.raises(PermissionDenied):
        staff.add_staff(forged, "mallory", "Mallory", TEST_PASSWORD, ["admin"])
    assert "mallory" not in [s.username for s in staff.list_staff(admin)]
    assert _denials()[-1].actor == "clerk"


def test_an_actor_for_a_deleted_or_unknown_account_has_no_permissions(office, admin):
    ghost = replace(admin, staff_id=9999, username="ghost")
    with pytest.raises(PermissionDenied):
        staff.list_staff(ghost)
    assert _denials()[-1].actor == "ghost"


def test_a_service_needs_an_actor_first(office):
    with pytest.raises(TypeError):
        staff.list_staff("admin")
    with pytest.raises(TypeError):
        customers.get_customer(None, "C2026000001")
