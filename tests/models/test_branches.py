"""Branches and their responsible records person (seed §2.3)."""

from __future__ import annotations

import pytest

from models import branches
from models.audit import AuditEntry
from models.errors import NotFound, PermissionDenied, ValidationError


def test_admin_adds_and_changes_a_branch_with_its_records_person(admin, clerk, supervisor):
    made = branches.save_branch(admin, "bj-cy", "北京朝阳支公司", "supervisor")
    assert (made.code, made.name, made.records_person) == ("BJ-CY", "北京朝阳支公司", "supervisor")
    changed = branches.save_branch(admin, "BJ-CY", "北京朝阳支公司", "clerk", branch_id=made.branch_id)
    assert changed.records_person == "clerk"
    assert [b.code for b in branches.list_branches(clerk)] == ["BJ-CY"]
    actions = [e.action for e in AuditEntry.select().where(AuditEntry.object_type == "branch")]
    assert actions == ["BRANCH_CREATE", "BRANCH_UPDATE"]


def test_a_branch_without_a_records_person_and_an_inactive_branch(admin):
    made = branches.save_branch(admin, "SH", "上海浦东支公司")
    assert made.records_person == ""
    branches.save_branch(admin, "SH", "上海浦东支公司", branch_id=made.branch_id, active=False)
    assert branches.list_branches(admin) == []
    assert [b.code for b in branches.list_branches(admin, include_inactive=True)] == ["SH"]


@pytest.mark.parametrize("code, name, person, field", [
    ("", "北京朝阳支公司", "", "code"),
    ("BJ CY", "北京朝阳支公司", "", "code"),
    ("X" * 17, "北京朝阳支公司", "", "code"),
    ("BJ", "北", "", "name"),
    ("BJ", "北京\u202e朝阳", "", "name"),
    ("BJ", "北京朝阳支公司", "nobody", "records_person"),
])
def test_bad_branches_are_refused_naming_the_field(admin, code, name, person, field):
    with pytest.raises(ValidationError) as caught:
        branches.save_branch(admin, code, name, person)
    assert field in caught.value.by_field()


def test_codes_and_names_are_unique(admin):
    branches.save_branch(admin, "BJ", "北京朝阳支公司")
    with pytest.raises(ValidationError) as caught:
        branches.save_branch(admin, "bj", "另一家")
    assert "code" in caught.value.by_field()
    with pytest.raises(ValidationError) as caught:
        branches.save_branch(admin, "BJ2", "北京朝阳支公司")
    assert "name" in caught.value.by_field()


def test_a_disabled_person_cannot_be_named_and_only_admins_manage(admin, clerk, make_staff):
    from models import staff

    make_staff("gone", "clerk")
    staff.set_active(admin, "gone", False)
    with pytest.raises(ValidationError):
        branches.save_branch(admin, "GZ", "广州天河支公司", "gone")
    with pytest.raises(PermissionDenied):
        branches.save_branch(clerk, "GZ", "广州天河支公司")
    with pytest.raises(NotFound):
        branches.save_branch(admin, "GZ", "广州天河支公司", branch_id=999)
