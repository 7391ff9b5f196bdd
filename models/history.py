"""A customer's history: every change to the record, who made it and when (field names, no values).

Intake approval, labelling, change requests and verification each append an event in the
same transaction as the change; the customer file shows them. Values stay in the audited,
encrypted records (revisions, change requests), never here.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Iterable

import peewee as pw

from models import clock
from models.db import BaseModel
from models.permissions import Actor


class CustomerEvent(BaseModel):
    customer_id = pw.CharField(max_length=36, index=True)
    at = pw.DateTimeField()
    actor_id = pw.IntegerField(null=True)
    actor = pw.CharField(max_length=64)
    kind = pw.CharField(max_length=32)  # created, labelled, changed, verified, category, hold, ...
    fields = pw.TextField(default="")  # comma-separated field names
    details = pw.TextField(default="{}")  # ids, codes and counts only

    class Meta:
        table_name = "customer_event"


@dataclass(frozen=True)
class HistoryEntry:
    at: dt.datetime
    actor: str
    kind: str
    fields: tuple[str, ...]
    details: dict


def _record_event(actor: Actor, customer_id: str, kind: str, fields: Iterable[str] = (),
                  details: dict | None = None) -> None:
    """Append one event inside the caller's write transaction."""
    CustomerEvent.create(
        customer_id=customer_id, at=clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None),
        actor_id=actor.staff_id, actor=actor.username, kind=kind, fields=",".join(fields),
        details=json.dumps(details or {}, sort_keys=True, ensure_ascii=False),
    )


def _history_of(customer_id: str) -> list[HistoryEntry]:
    """Events of one customer, newest first (the caller has checked permission and audited the view)."""
    rows = CustomerEvent.select().where(CustomerEvent.customer_id == customer_id).order_by(
        CustomerEvent.at.desc(), CustomerEvent.id.desc())
    return [HistoryEntry(r.at, r.actor, r.kind, tuple(filter(None, r.fields.split(","))), json.loads(r.details))
            for r in rows]
