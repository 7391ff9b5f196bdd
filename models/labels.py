"""Labels: the records officer's label set, and labelling customers (a change in their history)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import peewee as pw

from models import audit, clock, history, normalise, validation
from models.db import BaseModel, write
from models.errors import FieldError, NotFound, ValidationError
from models.permissions import Actor, Perm, service

# Label colours are theme variables, never colour codes.
LABEL_COLOURS = ("primary", "accent", "state-ok", "state-warning", "state-danger", "state-muted")


class Label(BaseModel):
    name = pw.CharField(max_length=30, unique=True)
    colour = pw.CharField(max_length=20, default="primary")
    description = pw.CharField(max_length=200, default="")
    active = pw.BooleanField(default=True)
    created_at = pw.DateTimeField()

    class Meta:
        table_name = "label"


class CustomerLabel(BaseModel):
    customer_id = pw.CharField(max_length=36)
    label = pw.ForeignKeyField(Label, backref="customers", on_delete="CASCADE")

    class Meta:
        table_name = "customer_label"
        primary_key = pw.CompositeKey("customer_id", "label")
        indexes = ((("label", "customer_id"), False),)


@dataclass(frozen=True)
class LabelView:
    label_id: int
    name: str
    colour: str
    description: str
    active: bool


def _view(row: Label) -> LabelView:
    return LabelView(row.id, row.name, row.colour, row.description, row.active)


def _clean_label(name: str, colour: str, description: str) -> tuple[str, str, str]:
    errors = []
    name = name.strip()
    if not name or len(name) > 30 or validation.forbidden_characters(name):
        errors.append(FieldError("name", "must be 1 to 30 visible characters", "bad_format"))
    if colour not in LABEL_COLOURS:
        errors.append(FieldError("colour", "must be one of " + ", ".join(LABEL_COLOURS), "bad_choice"))
    description = description.strip()
    if len(description) > 200 or validation.forbidden_characters(description):
        errors.append(FieldError("description", "must be at most 200 visible characters", "bad_format"))
    if errors:
        raise ValidationError(errors)
    return name, colour, description


@service(Perm.HOME)
def list_labels(actor: Actor, include_inactive: bool = False) -> list[LabelView]:
    query = Label.select().order_by(Label.name)
    if not include_inactive:
        query = query.where(Label.active == True)  # noqa: E712 (peewee expression)
    return [_view(r) for r in query]


@service(Perm.LABEL_MANAGE)
def create_label(actor: Actor, name: str, colour: str = "primary", description: str = "") -> LabelView:
    name, colour, description = _clean_label(name, colour, description)
    with write():
        if Label.select().where(Label.name == name).exists():
            raise ValidationError([FieldError("name", "is already a label", "duplicate")])
        row = Label.create(name=name, colour=colour, description=description,
                           created_at=clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None))
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="LABEL_CREATE", object_type="label", object_id=str(row.id))
    return _view(row)


@service(Perm.LABEL_MANAGE)
def update_label(actor: Actor, label_id: int, name: str, colour: str, description: str,
                 active: bool = True) -> LabelView:
    name, colour, description = _clean_label(name, colour, description)
    with write():
        row = Label.get_or_none(Label.id == label_id)
        if row is None:
            raise NotFound("no such label")
        if Label.select().where((Label.name == name) & (Label.id != label_id)).exists():
            raise ValidationError([FieldError("name", "is already a label", "duplicate")])
        Label.update(name=name, colour=colour, description=description, active=active).where(
            Label.id == label_id).execute()
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="LABEL_UPDATE", object_type="label", object_id=str(label_id))
    return _view(Label.get_by_id(label_id))


def _labels_of(customer_ids: list[str]) -> dict[str, list[LabelView]]:
    """Labels per customer id, for rows the caller already may see."""
    out: dict[str, list[LabelView]] = {cid: [] for cid in customer_ids}
    if not customer_ids:
        return out
    query = (CustomerLabel.select(CustomerLabel.customer_id, Label).join(Label)
             .where(CustomerLabel.customer_id.in_(customer_ids)).order_by(Label.name))
    for link in query:
        out[link.customer_id].append(_view(link.label))
    return out


def _set_labels(actor: Actor, customer_id: str, label_ids: list[int]) -> tuple[list[int], list[int]]:
    """Replace a customer's labels inside the caller's transaction; returns (added, removed)."""
    wanted = set(label_ids)
    known = {r.id for r in Label.select(Label.id).where(Label.id.in_(list(wanted)))} if wanted else set()
    if known != wanted:
        raise ValidationError([FieldError("labels", "names a label that does not exist", "bad_choice")])
    current = {r.label_id for r in CustomerLabel.select().where(CustomerLabel.customer_id == customer_id)}
    added, removed = sorted(wanted - current), sorted(current - wanted)
    if removed:
        CustomerLabel.delete().where((CustomerLabel.customer_id == customer_id)
                                     & (CustomerLabel.label.in_(removed))).execute()
    for label_id in added:
        CustomerLabel.create(customer_id=customer_id, label=label_id)
    if added or removed:
        history._record_event(actor, customer_id, "labelled", ("labels",),
                              {"added": added, "removed": removed})
    return added, removed


@service(Perm.CHANGE_REQUEST)
def label_customer(actor: Actor, customer_no: str, label_ids: list[int]) -> list[LabelView]:
    """Set a customer's labels (a change recorded in the customer's history and the audit log)."""
    from models.customers import Customer

    with write():
        row = Customer.get_or_none(Customer.customer_no == normalise.normalise_customer_number(customer_no))
        if row is None:
            raise NotFound("no customer with that customer number")
        added, removed = _set_labels(actor, row.id, label_ids)
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="CUSTOMER_LABEL", object_type="customer", object_id=row.customer_no,
                     fields=("labels",), details={"added": added, "removed": removed})
    return _labels_of([row.id])[row.id]
