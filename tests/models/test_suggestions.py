"""Staff suggestions: anyone submits, supervisors respond and decide, a list for the review meeting."""

from __future__ import annotations

import datetime as dt

import pytest

from models import clock, suggestions
from models.audit import AuditEntry
from models.errors import NotFound, PermissionDenied, ValidationError

BODY = "复核退回时请同时写明需要补充的材料，减少来回沟通。"


def test_every_role_may_suggest_and_sees_only_their_own(clerk, auditor, admin, supervisor):
    mine = suggestions.submit_suggestion(clerk, "退回原因模板", BODY)
    suggestions.submit_suggestion(auditor, "Audit export naming", "Name export files after the period covered.")
    suggestions.submit_suggestion(admin, "Training reminders", "Remind staff a month before training lapses.")
    assert [s.suggestion_id for s in suggestions.my_suggestions(clerk)] == [mine.suggestion_id]
    assert mine.status == "open" and mine.author == "clerk"
    assert len(suggestions.list_suggestions(supervisor)) == 3
    entry = AuditEntry.select().where(AuditEntry.action == "SUGGESTION_SUBMIT").first()
    assert entry.object_id == str(mine.suggestion_id) and BODY not in entry.details


def test_only_supervisors_see_all_and_respond(clerk, supervisor):
    made = suggestions.submit_suggestion(clerk, "退回原因模板", BODY)
    with pytest.raises(PermissionDenied):
        suggestions.list_suggestions(clerk)
    with pytest.raises(PermissionDenied):
        suggestions.respond(clerk, made.suggestion_id, "adopted", "我同意")
    answered = suggestions.respond(supervisor, made.suggestion_id, "adopted", "下月起在复核界面加入模板。")
    assert (answered.status, answered.responded_by) == ("adopted", "supervisor")
    assert suggestions.my_suggestions(clerk)[0].response == "下月起在复核界面加入模板。"
    entry = AuditEntry.select().where(AuditEntry.action == "SUGGESTION_RESPOND").get()
    assert '"adopted"' in entry.details


@pytest.mark.parametrize("title, body, field", [
    ("", BODY, "title"), ("a", BODY, "title"), ("x" * 81, BODY, "title"),
    ("退回原因模板", "太短", "body"), ("退回原因模板", "x" * 2001, "body"),
    ("退回原因\x1b]52;c;", BODY, "title"),
])
def test_bad_suggestions_are_refused_naming_the_field(clerk, title, body, field):
    with pytest.raises(ValidationError) as caught:
        suggestions.submit_suggestion(clerk, title, body)
    assert field in caught.value.by_field()
    assert suggestions.Suggestion.select().count() == 0


def test_bad_responses_are_refused(clerk, supervisor):
    made = suggestions.submit_suggestion(clerk, "退回原因模板", BODY)
    with pytest.raises(ValidationError) as caught:
        suggestions.respond(supervisor, made.suggestion_id, "maybe", "")
    assert set(caught.value.by_field()) == {"status", "response"}
    with pytest.raises(NotFound):
        suggestions.respond(supervisor, 999, "declined", "不适用")


def test_meeting_list_holds_the_periods_suggestions_and_every_open_one(clerk, supervisor, frozen_clock):
    old = suggestions.submit_suggestion(clerk, "旧建议已处理", BODY)
    suggestions.respond(supervisor, old.suggestion_id, "declined", "暂不采纳，明年再议。")
    waiting = suggestions.submit_suggestion(clerk, "旧建议未处理", BODY)
    frozen_clock.advance(dt.timedelta(days=60))
    new = suggestions.submit_suggestion(clerk, "新的建议标题", BODY)
    today = clock.today()
    listed = {s.suggestion_id for s in suggestions.meeting_list(supervisor, today - dt.timedelta(days=30), today)}
    assert listed == {waiting.suggestion_id, new.suggestion_id}
    with pytest.raises(ValidationError):
        suggestions.meeting_list(supervisor, today, today - dt.timedelta(days=1))
    assert suggestions.open_count() == 2
    ordered = [s.status for s in suggestions.list_suggestions(supervisor)]
    assert ordered == ["open", "open", "declined"]
