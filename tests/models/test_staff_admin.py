"""Staff management by admins: roles, disable and enable, every change audited."""

from __future__ import annotations

import json

import pytest

from models import staff
from models.audit import AuditEntry
from models.errors import PermissionDenied, ValidationError


def test_set_roles_takes_effect_at_the_next_action_and_is_audited(admin, clerk):
    assert staff.current_roles(clerk) == {"clerk"}
    changed = staff.set_roles(admin, "clerk", ["clerk", "reviewer"])
    assert changed.roles == ("clerk", "reviewer")
    assert staff.current_roles(clerk) == {"clerk", "reviewer"}
    entry = AuditEntry.select().where(AuditEntry.action == "STAFF_ROLES").get()
    assert json.loads(entry.details) == {"before": ["clerk"], "after": ["clerk", "reviewer"]}
    assert entry.object_id == str(clerk.staff_id)


def test_set_roles_refuses_bad_roles_and_removing_ones_own_admin(admin, clerk):
    with pytest.raises(ValidationError):
        staff.set_roles(admin, "clerk", [])
    with pytest.raises(ValidationError):
        staff.set_roles(admin, "clerk", ["wizard"])
    with pytest.raises(ValidationError) as caught:
        staff.set_roles(admin, "admin", ["auditor"])
    assert "roles" in caught.value.by_field()
    with pytest.raises(PermissionDenied):
        staff.set_roles(clerk, "clerk", ["admin"])
    assert staff.current_roles(clerk) == {"clerk"}


def test_disabling_ends_the_session_and_enabling_does_not_revive_it(admin, clerk, frozen_clock):
    import datetime as dt

    from models import customers
    from tests.conftest import TEST_PASSWORD

    staff.set_active(admin, "clerk", False)
    assert staff.current_roles(clerk) == frozenset()
    with pytest.raises(PermissionDenied):
        customers.find_customers(clerk, "customer_no", "C")
    frozen_clock.advance(dt.timedelta(minutes=5))
    staff.set_active(admin, "clerk", True)
    assert staff.current_roles(clerk) == frozenset()
    assert staff.current_roles(staff.authenticate("clerk", TEST_PASSWORD)) == {"clerk"}
    actions = [e.action for e in AuditEntry.select().where(AuditEntry.object_type == "staff",
                                                           AuditEntry.object_id == str(clerk.staff_id))]
    assert actions[-2:] == ["STAFF_DISABLE", "STAFF_ENABLE"]
