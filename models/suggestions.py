"""Staff suggestions for improving the records process (seed §6), answered by supervisors.

Any staff member submits a suggestion; supervisors see all of them, respond, and mark them
under review, adopted or declined; `meeting_list` gathers a period's suggestions for the
periodic review meeting. Suggestions are about the process: the form asks for no customer data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import peewee as pw

from models import audit, clock, validation
from models.db import BaseModel, write
from models.errors import FieldError, NotFound, ValidationError
from models.permissions import Actor, Perm, service
from models.staff import Staff

TITLE_MAX = 80
BODY_MAX = 2000
RESPONSE_MAX = 1000
STATUSES = ("open", "under_review", "adopted", "declined")
DECISIONS = ("under_review", "adopted", "declined")


class Suggestion(BaseModel):
    author = pw.ForeignKeyField(Staff, backref="+", on_delete="CASCADE")
    title = pw.CharField(max_length=TITLE_MAX)
    body = pw.TextField()
    status = pw.CharField(max_length=16, default="open", index=True)
    response = pw.TextField(default="")
    responded_by = pw.ForeignKeyField(Staff, null=True, backref="+", on_delete="SET NULL")
    responded_at = pw.DateTimeField(null=True)
    created_at = pw.DateTimeField(index=True)

    class Meta:
        table_name = "suggestion"


@dataclass(frozen=True)
class SuggestionView:
    suggestion_id: int
    author: str
    title: str
    body: str
    status: str
    response: str
    responded_by: str
    created_at: dt.datetime
    responded_at: dt.datetime | None


def _utcnow() -> dt.datetime:
    return clock.now().astimezone(dt.timezone.utc).replace(tzinfo=None)


def _text(value: str, field: str, low: int, high: int, *, multiline: bool, what: str) -> tuple[str, list[FieldError]]:
    text = value.strip() if multiline else " ".join(value.split())
    if len(text) < low or len(text) > high or validation.forbidden_characters(text, allow_newline=multiline):
        return text, [FieldError(field, f"{what} ({low} to {high} characters)", "bad_length")]
    return text, []


def _views(query) -> list[SuggestionView]:
    author, responder = Staff.alias(), Staff.alias()
    rows = (query.select(Suggestion, author.username.alias("author_name"), responder.username.alias("responder"))
            .join_from(Suggestion, author, on=(Suggestion.author == author.id))
            .join_from(Suggestion, responder, pw.JOIN.LEFT_OUTER, on=(Suggestion.responded_by == responder.id))
            .dicts())
    return [SuggestionView(r["id"], r["author_name"], r["title"], r["body"], r["status"], r["response"],
                           r["responder"] or "", r["created_at"], r["responded_at"]) for r in rows]


@service(Perm.SUGGEST)
def submit_suggestion(actor: Actor, title: str, body: str) -> SuggestionView:
    """Record a suggestion from the actor."""
    title_text, errors = _text(title, "title", 2, TITLE_MAX, multiline=False, what="give it a short title")
    body_text, more = _text(body, "body", 6, BODY_MAX, multiline=True, what="describe the suggestion")
    if errors + more:
        raise ValidationError(errors + more)
    with write():
        suggestion_id = Suggestion.insert(author=actor.staff_id, title=title_text, body=body_text,
                                          created_at=_utcnow()).execute()
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="SUGGESTION_SUBMIT", object_type="suggestion", object_id=str(suggestion_id))
    return _views(Suggestion.select().where(Suggestion.id == suggestion_id))[0]


@service(Perm.SUGGEST)
def my_suggestions(actor: Actor) -> list[SuggestionView]:
    """The actor's own suggestions with any response, newest first."""
    return _views(Suggestion.select().where(Suggestion.author == actor.staff_id)
                  .order_by(Suggestion.created_at.desc(), Suggestion.id.desc()))


@service(Perm.SUGGESTION_REVIEW)
def list_suggestions(actor: Actor, status: str = "") -> list[SuggestionView]:
    """Every suggestion (or those with one status), open ones first, newest first."""
    query = Suggestion.select()
    if status:
        if status not in STATUSES:
            raise ValidationError([FieldError("status", "must be one of " + ", ".join(STATUSES), "bad_choice")])
        query = query.where(Suggestion.status == status)
    order = pw.Case(Suggestion.status, [("open", 0), ("under_review", 1)], 2)
    return _views(query.order_by(order, Suggestion.created_at.desc(), Suggestion.id.desc()))


@service(Perm.SUGGESTION_REVIEW)
def respond(actor: Actor, suggestion_id: int, status: str, response: str) -> SuggestionView:
    """Answer a suggestion and mark it under review, adopted or declined."""
    errors = []
    if status not in DECISIONS:
        errors.append(FieldError("status", "choose under review, adopted or declined", "bad_choice"))
    response_text, more = _text(response, "response", 2, RESPONSE_MAX, multiline=True,
                                what="write a response")
    if errors + more:
        raise ValidationError(errors + more)
    with write():
        updated = (Suggestion.update(status=status, response=response_text, responded_by=actor.staff_id,
                                     responded_at=_utcnow()).where(Suggestion.id == suggestion_id).execute())
        if not updated:
            raise NotFound("no such suggestion")
        audit.append(actor_id=actor.staff_id, actor=actor.username, session_id=actor.session_id,
                     action="SUGGESTION_RESPOND", object_type="suggestion", object_id=str(suggestion_id),
                     details={"status": status})
    return _views(Suggestion.select().where(Suggestion.id == suggestion_id))[0]


def _in_period(start: dt.date, end: dt.date) -> list[SuggestionView]:
    """Suggestions made in [start, end] or answered then, or still waiting for an answer."""
    from models.audit_browse import local_midnight_utc

    low = local_midnight_utc(start).replace(tzinfo=None)
    high = local_midnight_utc(end + dt.timedelta(days=1)).replace(tzinfo=None)
    query = Suggestion.select().where(
        ((Suggestion.created_at >= low) & (Suggestion.created_at < high))
        | ((Suggestion.responded_at >= low) & (Suggestion.responded_at < high))
        | Suggestion.status.in_(("open", "under_review")))
    return _views(query.order_by(Suggestion.status, Suggestion.created_at))


@service(Perm.SUGGESTION_REVIEW)
def meeting_list(actor: Actor, start: dt.date, end: dt.date) -> list[SuggestionView]:
    """The suggestions to discuss at the periodic review meeting for [start, end]."""
    if end < start:
        raise ValidationError([FieldError("end", "must not be before the start", "before_start")])
    return _in_period(start, end)


def open_count() -> int:
    return Suggestion.select().where(Suggestion.status.in_(("open", "under_review"))).count()


def all_tables() -> list[type[BaseModel]]:
    return [Suggestion]


def add_demo_suggestions(clerk: Actor, reviewer: Actor, supervisor: Actor) -> None:
    """Two suggestions for the demo office, one already answered."""
    first = submit_suggestion(clerk, "退回原因使用模板", "复核退回时希望能选择常用原因模板，减少来回沟通。")
    submit_suggestion(reviewer, "纸质档案柜编号统一", "各网点纸质档案柜编号规则不一致，建议统一为“柜-屉-夹”。")
    respond(supervisor, first.suggestion_id, "under_review", "下次例会讨论，先收集常用原因。")


def _home_counts(actor: Actor) -> dict[str, int]:
    """For the home menu: suggestions waiting for an answer (for those who answer them)."""
    return {"suggestions": open_count()} if actor.has(Perm.SUGGESTION_REVIEW) else {}
