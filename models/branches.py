"""Branches (departments) and the person each names as responsible for customer records (seed §2.3).

A customer belongs to the branch named in its `branch` field; the dashboard and the periodic
report group their figures by branch and name its records person.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import peewee as pw

from models import audit, clock, validation
from models.db import BaseModel, write
from models.errors import FieldError, NotFound, ValidationError
from models.fields import FIELDS_BY_NAME
from models.permissions import Actor, Perm, service
from models.staff import Staff, normalise_username

NAME_MAX = FIELDS_BY_NAME["branch"].max_length
CODE_MAX = 16


class Branch(BaseModel):
    code = pw.CharField(max_length=CODE_MAX, unique=True)
    name = pw.CharField(max_length=NAME_MAX, unique=True)  # as written in Customer.branch
    records_person = pw.ForeignKeyField(Staff, null=True, backref="+", on_delete="SET NULL")
    active = pw.BooleanField(default=True)
    created_at = pw.DateTimeField()

    class Meta:
        table_name = "branch"


@dataclass(frozen=True)
class BranchView:
    branch_id: int
    code: str
    name: str
    records_person: str  # username, empty when nobody is named
    records_person_name: str
    active: bool


def _check(code: str, name: str) -> tuple[str, str]:
    errors = []
    code_text = code.strip().upper()
    name_text = " ".join(name.split())
    if not (1 <= len(code_text) <= CODE_MAX) or not all(c.isalnum() or c in "-_" for c in code_text) \
            or not code_text.isascii():
        errors.append(FieldError("code", f"must be 1 to {CODE_MAX} letters, digits, '-' or '_'", "bad_format"))
    if not (2 <= len(name_text) <= NAME_MAX) or validation.forbidden_characters(name_text):
        errors.append(FieldError("name", f"must be 2 to {NAME_MAX} characters", "bad_format"))
    if errors:
        raise ValidationError(errors)
    return code_text, name_text


def _person(username: str) -> Staff | None:
    if not username.strip():
        return None
    row = Staff.get_or_none(Staff.username == normalise_username(username))
    if row is None or not row.active:
        raise ValidationError([FieldError("records_person", "must be the username of an active staff member",
                                          "unknown")])
    return row


def _view(row: dict) -> BranchView:
    return BranchView(row["id"], row["code"], row["name"], row["person"] or "", row["person_name"] or "",
                      row["active"])


def _views(query) -> list[BranchView]:
    return [_view(r) for r in query.select(
        Branch.id, Branch.code, Branch.name, Branch.active, Staff.username.alias("person"),
        Staff.display_name.alias("person_name"))
        .join(Staff, pw.JOIN.LEFT_OUTER, on=(Branch.records_person == Staff.id)).dicts()]


@service(Perm.STAFF_MANAGE)
def save_branch(actor: Actor, code: str, name: str, records_person: str = "", branch_id: int | None = None,
                active: bool = True) -> BranchView:
    """Add a branch, or change one (`branch_id`): its code, name and records person."""
    code_text, name_text = _check(code, name)
    with write():
        person = _person(records_person)
        clash = Branch.select().where((Branch.code == code_text) | (Branch.name == name_text))
        if branch_id is not None:
            clash = clash.where(Branch.id != branch_id)
        for other in clash:
            field = "code" if other.code == code_text else "name"
            raise ValidationError([FieldError(field, "is already used by another branch", "duplicate")])
        values = {"code": code_text, "name": name_text, "records_person": person.id if person else None,
                  "active": active}
        if branch_id is None:
            branch_id = Branch.insert(**values, created_at=clock.now().astimezone(dt.timezone.utc)
                                      .replace(tzinfo=None)).execute()
            action = "BRANCH_CREATE"
        else:
            if not Branch.update(**values).where(Branch.id == branch_id).execute():
                raise NotFound("no such branch")
            action = "BRANCH_UPDATE"
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action=action, object_type="branch", object_id=str(branch_id),
                     details={"code": code_text, "records_person": person.id if person else None,
                              "active": active})
    return _views(Branch.select().where(Branch.id == branch_id))[0]


@service(Perm.HOME)
def list_branches(actor: Actor, include_inactive: bool = False) -> list[BranchView]:
    """The branches and their records persons (everyone may see who is responsible)."""
    query = Branch.select().order_by(Branch.code)
    if not include_inactive:
        query = query.where(Branch.active == True)  # noqa: E712 (peewee expression)
    return _views(query)


def _by_name() -> dict[str, BranchView]:
    return {view.name: view for view in _views(Branch.select())}


def all_tables() -> list[type[BaseModel]]:
    return [Branch]


DEMO_BRANCHES = (("BJ-CY", "北京朝阳支公司", "supervisor"), ("SH-PD", "上海浦东支公司", "officer"),
                 ("GZ-TH", "广州天河支公司", "supervisor"), ("SZ-NS", "深圳南山支公司", "officer"),
                 ("CD-WH", "成都武侯支公司", ""))


def add_demo_branches(admin: Actor) -> None:
    """The demo office's branches (one still without a records person, as the dashboard will show)."""
    for code, name, person in DEMO_BRANCHES:
        save_branch(admin, code, name, person)
