"""Intake and review: drafts, validation on submit, duplicates, four-eyes, return, resubmission diff, approval."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pytest

from models import audit, clock, customers, demo, documents, history, home, intake, keystore, labels
from models.audit import AuditEntry
from models.customers import Customer
from models.db import is_sqlite
from models.errors import Conflict, NotFound, PermissionDenied, ValidationError
from models.intake import IntakeRevision, IntakeSubmission
from models.keystore import DataKey

SENTINEL_NAME = "哨兵甲乙丙"
SENTINEL_STREET = "Sentinelstrasse 4711 QXZ"
SENTINEL_EMAIL = "sentinel.qxz4711@example.com"
SENTINEL_EMPLOYER = "哨兵有限公司QXZ"


def valid_id(birth: str = "1990-03-07", sex: str = "female", seed: int = 1) -> str:
    return demo.resident_id(random.Random(seed), dt.date.fromisoformat(birth), sex)


def form(**overrides) -> dict[str, str]:
    """A complete, valid intake form as a clerk types it (strings only)."""
    values = {
        "full_name": "王小丽", "gender": "female", "date_of_birth": "1990-03-07", "id_type": "resident_id",
        "id_number": valid_id(), "nationality": "中国", "mobile": "13800138000", "mobile_international": "no",
        "other_phone": "", "email": "", "preferred_channel": "sms", "province": "北京市", "city": "北京",
        "district": "朝阳区", "street": "建国路88号", "postcode": "100022", "occupation": "教师",
        "occupation_class": "1", "employer": "", "category": "prospect", "source_channel": "counter",
        "branch": "北京朝阳支公司", "policy_numbers": "", "paper_location": "柜3-屉2-夹15", "notes": "",
        "consent_date": "2026-11-20", "consent_scope": "投保、核保、理赔及客户服务", "consent_marketing": "no",
        "guardian_name": "",
    }
    values.update(overrides)
    return values


def errors_of(exc: pytest.ExceptionInfo) -> dict[str, str]:
    return {e.field: e.code for e in exc.value.errors}


def actions(action: str) -> list[AuditEntry]:
    return list(AuditEntry.select().where(AuditEntry.action == action).order_by(AuditEntry.seq))


@pytest.fixture
def clerk2(make_staff):
    return make_staff("clerk2", "clerk")


@pytest.fixture
def reviewer2(make_staff):
    return make_staff("reviewer2", "reviewer")


# --- shorthand ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, typed, expected", [
    ("gender", "f", "female"), ("gender", "M", "male"), ("gender", "2", "female"), ("gender", "女", "female"),
    ("id_type", "1", "resident_id"), ("id_type", "pa", "passport"), ("id_type", "身份证", "resident_id"),
    ("occupation_class", "3", "3"), ("category", "act", "active"), ("category", "p", "prospect"),
    ("mobile_international", "y", "yes"), ("consent_marketing", "否", "no"), ("consent_marketing", "N", "no"),
    ("full_name", "f", "f"), ("gender", "x", "x"), ("preferred_channel", "s", "s"),  # sms or ... no: unique only
])
def test_expand_shorthand(name, typed, expected):
    if name == "preferred_channel":
        # "s" is a prefix of "sms" only
        expected = "sms"
    assert intake.expand_shorthand(name, typed) == expected


def test_ambiguous_prefix_is_left_alone():
    assert intake.expand_shorthand("id_type", "h") == "hkmo_permit"
    assert intake.expand_shorthand("source_channel", "") == ""
    assert intake.expand_shorthand("preferred_channel", "p") == "p"  # phone or post


def test_split_labels():
    assert intake.split_labels(" VIP，高净值, VIP ;; 老客户") == ["VIP", "高净值", "老客户"]


# --- drafts ------------------------------------------------------------------------------------


def test_first_save_creates_a_submission_with_its_own_key(clerk):
    saved = intake.save_draft(clerk, None, {"full_name": "王"})
    row = IntakeSubmission.get_by_id(saved.submission_id)
    assert saved.created and row.status == "draft" and row.created_by_id == clerk.staff_id
    assert DataKey.get_or_none(DataKey.key_id == row.key_id) is not None
    again = intake.save_draft(clerk, saved.submission_id, {"full_name": "王小丽"}, "VIP")
    assert not again.created and again.submission_id == saved.submission_id
    opened = intake.open_submission(clerk, saved.submission_id)
    assert opened.values == {"full_name": "王小丽"} and opened.labels == "VIP" and opened.status == "draft"
    assert len(actions("INTAKE_DRAFT_CREATE")) == 1  # saves themselves are not audited one by one
    assert len(actions("INTAKE_OPEN")) == 1


def test_draft_is_ciphertext_bound_to_its_row(clerk):
    a = intake.save_draft(clerk, None, {"full_name": SENTINEL_NAME, "street": SENTINEL_STREET})
    row = IntakeSubmission.get_by_id(a.submission_id)
    assert SENTINEL_NAME.encode() not in bytes(row.draft) and SENTINEL_STREET.encode() not in bytes(row.draft)
    b = intake.save_draft(clerk, None, {"full_name": "other"})
    # A draft moved onto another submission fails its integrity check.
    IntakeSubmission.update(draft=row.draft).where(IntakeSubmission.id == b.submission_id).execute()
    with pytest.raises(Exception, match="integrity"):
        intake.open_submission(clerk, b.submission_id)


def test_draft_rejects_unknown_fields_and_huge_values(clerk):
    with pytest.raises(ValidationError) as exc:
        intake.save_draft(clerk, None, {"password": "x"})
    assert errors_of(exc) == {"password": "unknown_field"}
    with pytest.raises(ValidationError) as exc:
        intake.save_draft(clerk, None, {"notes": "x" * 5000})
    assert errors_of(exc) == {"notes": "too_long"}
    assert IntakeSubmission.select().count() == 0


def test_only_the_owner_saves_opens_or_discards(clerk, clerk2):
    saved = intake.save_draft(clerk, None, {"full_name": "王"})
    with pytest.raises(PermissionDenied):
        intake.save_draft(clerk2, saved.submission_id, {"full_name": "李"})
    with pytest.raises(PermissionDenied):
        intake.open_submission(clerk2, saved.submission_id)
    with pytest.raises(PermissionDenied):
        intake.discard_draft(clerk2, saved.submission_id)
    assert len(actions("DENIED")) == 3
    assert intake.open_submission(clerk, saved.submission_id).values == {"full_name": "王"}


def test_unfinished_lists_and_counts(clerk, clerk2, reviewer):
    first = intake.save_draft(clerk, None, {"full_name": "王小丽"})
    intake.save_draft(clerk, None, {"full_name": "张三"})
    intake.save_draft(clerk2, None, {"full_name": "李四"})
    listed = intake.list_unfinished(clerk)
    assert {s.masked_name for s in listed} == {"王*", "张*"}  # one star whatever the length (346100a)
    assert intake._unfinished_counts(clerk.staff_id) == {"draft": 2, "returned": 0}
    intake.submit(clerk, first.submission_id, form(full_name="王小丽"))
    assert intake._unfinished_counts(clerk.staff_id) == {"draft": 1, "returned": 0}
    assert intake._queue_count(reviewer.staff_id) == 1
    assert [s.status for s in intake.list_submitted(clerk)] == ["submitted"]


def test_discard_shreds_the_draft_its_documents_and_key(clerk, office):
    saved = intake.save_draft(clerk, None, {"full_name": "王"})
    (office.settings.inbox_dir / "scan.pdf").write_bytes(b"%PDF-1.7\nhello\n%%EOF\n")
    documents.attach_document(clerk, "submission", saved.submission_id, "scan.pdf", "id_card_copy")
    key_id = IntakeSubmission.get_by_id(saved.submission_id).key_id
    intake.discard_draft(clerk, saved.submission_id)
    assert IntakeSubmission.select().count() == 0
    assert documents.Document.select().count() == 0 and documents.DocumentChunk.select().count() == 0
    assert DataKey.get_or_none(DataKey.key_id == key_id) is None
    assert actions("INTAKE_DRAFT_DISCARD")[0].details == json.dumps({"documents": 1}, separators=(",", ":"))


def test_a_submitted_form_cannot_be_edited_or_discarded(clerk):
    summary = intake.submit(clerk, None, form())
    with pytest.raises(Conflict):
        intake.save_draft(clerk, summary.submission_id, {"full_name": "改"})
    with pytest.raises(Conflict):
        intake.discard_draft(clerk, summary.submission_id)
    with pytest.raises(Conflict):
        intake.open_submission(clerk, summary.submission_id)


# --- validation on submit ----------------------------------------------------------------------


def test_valid_form_is_submitted_as_revision_one(clerk):
    saved = intake.save_draft(clerk, None, {"full_name": "王小丽"})
    summary = intake.submit(clerk, saved.submission_id, form(gender="f", category="p", consent_marketing="y"))
    assert summary.status == "submitted" and summary.revision == 1
    row = IntakeSubmission.get_by_id(saved.submission_id)
    assert row.draft is None and row.id_bidx is not None and row.mobile_bidx is not None
    rev = IntakeRevision.get(IntakeRevision.submission == row.id)
    values = intake._revision_values(rev, row.key_id, keystore.load_data_key(row.key_id))
    assert values["gender"] == "female" and values["category"] == "prospect" and values["consent_marketing"] is True
    entry = actions("INTAKE_SUBMIT")[0]
    assert "full_name" in entry.fields and "王小丽" not in entry.fields + entry.details
    assert json.loads(entry.details) == {"documents": 0, "labels": 0, "resubmission": False, "revision": 1}


@pytest.mark.parametrize("overrides, field, code", [
    ({"id_number": valid_id()[:-1] + ("0" if valid_id()[-1] != "0" else "1")}, "id_number", "bad_check_digit"),
    ({"id_number": "11010519900307"}, "id_number", "bad_format"),
    ({"id_number": "1101051990030712345"}, "id_number", "bad_format"),
    ({"id_number": "110105209903070016"}, "id_number", "bad_check_digit"),
    ({"date_of_birth": "1991-03-07"}, "id_number", "dob_mismatch"),
    ({"gender": "male"}, "id_number", "sex_mismatch"),
    ({"date_of_birth": "2030-01-01", "id_type": "passport", "id_number": "E12345678"}, "date_of_birth",
     "future_date"),
    ({"consent_date": "2027-01-01"}, "consent_date", "future_date"),
    ({"date_of_birth": "1990-02-30"}, "date_of_birth", "bad_date"),
    ({"full_name": "王\u202e丽"}, "full_name", "control_chars"),
    ({"street": "建国路\x1b[31m88号"}, "street", "control_chars"),
    ({"full_name": "王" * 61}, "full_name", "too_long"),
    ({"notes": "备" * 501}, "notes", "too_long"),
    ({"mobile": "12345"}, "mobile", "bad_format"),
    ({"full_name": ""}, "full_name", "required"),
    ({"category": "terminated"}, "category", "bad_choice"),
    ({"gender": "x"}, "gender", "bad_choice"),
])
def test_bad_forms_are_refused_and_nothing_is_lost(clerk, overrides, field, code):
    saved = intake.save_draft(clerk, None, form(**overrides))
    with pytest.raises(ValidationError) as exc:
        intake.submit(clerk, saved.submission_id, form(**overrides))
    assert errors_of(exc).get(field) == code, errors_of(exc)
    for error in exc.value.errors:  # messages never repeat the value
        for value in overrides.values():
            assert len(value) < 3 or value not in error.message
    row = IntakeSubmission.get_by_id(saved.submission_id)
    assert row.status == "draft" and row.revision == 0 and IntakeRevision.select().count() == 0
    assert intake.open_submission(clerk, saved.submission_id).values == form(**overrides)


def test_legacy_15_digit_id_is_stored_as_18_digits(clerk, reviewer):
    legacy = "110105900307002"  # 1990-03-07, sequence 002: female
    summary = intake.submit(clerk, None, form(id_number=legacy))
    view = intake.open_review(reviewer, summary.submission_id)
    assert len(view.values["id_number"]) == 18 and view.values["id_number"].startswith("11010519900307002")


def test_full_width_digits_are_accepted(clerk, reviewer):
    number = valid_id()
    wide = "".join(chr(ord(c) + 0xFEE0) for c in number)
    summary = intake.submit(clerk, None, form(id_number=wide, mobile="１３８００１３８０００", postcode="１０００２２"))
    view = intake.open_review(reviewer, summary.submission_id)
    assert view.values["id_number"] == number and view.values["mobile"] == "13800138000"


def test_guardian_needed_under_14(clerk):
    birth = "2015-06-01"
    values = form(date_of_birth=birth, id_number=valid_id(birth, "female"))
    with pytest.raises(ValidationError) as exc:
        intake.submit(clerk, None, values)
    assert errors_of(exc) == {"guardian_name": "guardian_required"}
    assert intake.submit(clerk, None, {**values, "guardian_name": "王大明"}).status == "submitted"


def test_unknown_or_retired_labels_are_refused(clerk, office, make_staff):
    officer = make_staff("officer", "records_officer")
    vip = labels.create_label(officer, "VIP")
    old = labels.create_label(officer, "旧标签")
    labels.update_label(officer, old.label_id, "旧标签", "primary", "", active=False)
    with pytest.raises(ValidationError) as exc:
        intake.submit(clerk, None, form(), "VIP, 不存在")
    assert errors_of(exc) == {"labels": "bad_choice"}
    with pytest.raises(ValidationError):
        intake.submit(clerk, None, form(), "旧标签")
    assert intake.submit(clerk, None, form(), "VIP").status == "submitted"
    assert json.loads(IntakeRevision.get().label_ids) == [vip.label_id]


# --- duplicates --------------------------------------------------------------------------------


def test_duplicates_found_among_customers_and_pending_submissions(clerk, clerk2):
    existing = customers.create_customer(clerk, form(category="active"))
    draft = intake.save_draft(clerk2, None, {"id_type": "resident_id", "id_number": valid_id(seed=2),
                                             "mobile": "139 0013 9000"})
    hits = intake.check_duplicates(clerk, None, {"id_type": "1", "id_number": valid_id().lower(),
                                                 "mobile": "+86 139-0013-9000"})
    found = {(h.field, h.where, h.reference) for h in hits}
    assert ("id_number", "customer", existing.customer_no) in found
    assert ("mobile", "submission", intake.ref_of(draft.submission_id)) in found
    assert ("id_number", "submission", intake.ref_of(draft.submission_id)) not in found
    # The submission being typed is not its own duplicate.
    own = intake.check_duplicates(clerk2, draft.submission_id, {"id_type": "resident_id",
                                                                "id_number": valid_id(seed=2)})
    assert own == []
    entry = actions("INTAKE_DUPLICATE_CHECK")[0]
    assert valid_id() not in entry.details and "13900139000" not in entry.details
    assert json.loads(entry.details)["id_hmac"]


def test_incomplete_or_invalid_ids_are_not_looked_up(clerk):
    customers.create_customer(clerk, form())
    assert intake.check_duplicates(clerk, None, {"id_type": "resident_id", "id_number": valid_id()[:12]}) == []


def test_submit_refuses_an_id_that_is_already_a_customer(clerk):
    existing = customers.create_customer(clerk, form())
    with pytest.raises(ValidationError) as exc:
        intake.submit(clerk, None, form())
    assert errors_of(exc) == {"id_number": "duplicate"}
    assert existing.customer_no in exc.value.errors[0].message


# --- review: four-eyes, return, resubmit, diff, approve --------------------------------------------


def test_nobody_reviews_their_own_submission(make_staff, reviewer):
    both = make_staff("both", "clerk", "reviewer")
    summary = intake.submit(both, None, form())
    assert intake.review_queue(both) == []
    for attempt in (lambda: intake.open_review(both, summary.submission_id),
                    lambda: intake.approve_submission(both, summary.submission_id, 1),
                    lambda: intake.return_submission(both, summary.submission_id, 1, {}, "no")):
        with pytest.raises(PermissionDenied):
            attempt()
    denied = actions("DENIED")
    assert len(denied) == 3 and all(json.loads(d.details) == {"reason": "four_eyes"} for d in denied)
    assert Customer.select().count() == 0
    assert [i.ref for i in intake.review_queue(reviewer)] == [summary.ref]


def test_clerks_cannot_review_and_reviewers_cannot_type_forms(clerk, reviewer):
    summary = intake.submit(clerk, None, form())
    with pytest.raises(PermissionDenied):
        intake.approve_submission(clerk, summary.submission_id, 1)
    with pytest.raises(PermissionDenied):
        intake.review_queue(clerk)
    with pytest.raises(PermissionDenied):
        intake.save_draft(reviewer, None, {"full_name": "x"})


def test_queue_is_oldest_first_with_submitter_and_resubmission(clerk, clerk2, reviewer, frozen_clock):
    first = intake.submit(clerk, None, form())
    frozen_clock.advance(dt.timedelta(hours=1))
    second = intake.submit(clerk2, None, form(id_number=valid_id(seed=3), full_name="李四"))
    frozen_clock.advance(dt.timedelta(hours=1))
    intake.return_submission(reviewer, first.submission_id, 1, {"street": "门牌号不清楚"})
    intake.submit(clerk, first.submission_id, form(street="建国路88号院3号楼"))
    queue = intake.review_queue(reviewer)
    assert [(q.ref, q.submitted_by, q.revision, q.resubmission) for q in queue] == [
        (second.ref, "clerk2", 1, False), (first.ref, "clerk", 2, True)]
    assert queue[0].masked_name == "李*"


def test_return_needs_a_reason_and_checks_it(clerk, reviewer):
    summary = intake.submit(clerk, None, form())
    with pytest.raises(ValidationError) as exc:
        intake.return_submission(reviewer, summary.submission_id, 1, {}, "  ")
    assert errors_of(exc) == {"note": "required"}
    with pytest.raises(ValidationError) as exc:
        intake.return_submission(reviewer, summary.submission_id, 1, {"street": "x" * 201, "bogus": "y"})
    assert errors_of(exc) == {"street": "too_long", "bogus": "unknown_field"}
    with pytest.raises(ValidationError) as exc:
        intake.return_submission(reviewer, summary.submission_id, 1, {"street": "a\x07b"})
    assert errors_of(exc) == {"street": "control_chars"}
    assert IntakeSubmission.get_by_id(summary.submission_id).status == "submitted"


def test_whole_journey_return_resubmit_diff_approve(clerk, reviewer, make_staff, office):
    officer = make_staff("officer", "records_officer")
    vip = labels.create_label(officer, "VIP")
    saved = intake.save_draft(clerk, None, {"full_name": "王小丽"})
    (office.settings.inbox_dir / "id.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    doc = documents.attach_document(clerk, "submission", saved.submission_id, "id.png", "id_card_copy")
    first = intake.submit(clerk, saved.submission_id, form(street="建国路88号"), "VIP")

    view = intake.open_review(reviewer, first.submission_id)
    assert view.diff is None and view.values["street"] == "建国路88号" and view.labels == ("VIP",)
    assert [d.document_id for d in view.documents] == [doc.document_id]
    intake.return_submission(reviewer, first.submission_id, 1, {"street": "请写明门牌号", "documents": "身份证背面"},
                             "请补充后重新提交")
    assert intake._unfinished_counts(clerk.staff_id) == {"draft": 0, "returned": 1}

    returned = intake.open_submission(clerk, first.submission_id)
    assert returned.status == "returned" and returned.values["street"] == "建国路88号"
    assert returned.returned.fields == {"street": "请写明门牌号", "documents": "身份证背面"}
    assert returned.returned.note == "请补充后重新提交" and returned.returned.reviewer == "reviewer"
    assert returned.labels == "VIP"
    intake.save_draft(clerk, first.submission_id, {**returned.values, "street": "建国路88号院3号楼"}, "VIP")
    assert intake.open_submission(clerk, first.submission_id).values["street"] == "建国路88号院3号楼"
    second = intake.submit(clerk, first.submission_id, {**returned.values, "street": "建国路88号院3号楼"}, "")
    assert second.revision == 2

    view = intake.open_review(reviewer, first.submission_id)
    changed = {d.field: (d.old, d.new) for d in view.diff if d.changed}
    assert changed == {"street": ("建国路88号", "建国路88号院3号楼"), "labels": ("VIP", "")}
    assert view.previous_reasons.fields["street"] == "请写明门牌号"
    assert [(h.number, h.submitted_by, h.outcome, h.reviewed_by) for h in view.history] == [
        (1, "clerk", "returned", "reviewer"), (2, "clerk", "pending", "")]
    assert [h.reason_fields for h in intake.revision_history(reviewer, first.submission_id)] == [
        ("street", "documents"), ()]

    with pytest.raises(Conflict):
        intake.approve_submission(reviewer, first.submission_id, 1)
    decision = intake.approve_submission(reviewer, first.submission_id, 2, "核对无误")
    assert decision.status == "approved" and decision.customer_no.startswith("C2026")
    with pytest.raises(Conflict):
        intake.approve_submission(reviewer, first.submission_id, 2)

    customer = Customer.get(Customer.customer_no == decision.customer_no)
    row = IntakeSubmission.get_by_id(first.submission_id)
    assert customer.key_id == row.key_id  # the submission's key became the customer's
    assert customer.category == "prospect" and customer.responsible_clerk_id == clerk.staff_id
    assert customer.next_verification_due == dt.date(2027, 5, 25)
    assert row.customer_id == customer.id and row.customer_no == decision.customer_no
    record = customers.get_customer(reviewer, decision.customer_no)
    assert record.values["full_name"] == "王*"
    assert labels._labels_of([customer.id])[customer.id] == []  # revision 2 dropped the label
    docs = documents.list_documents(reviewer, "customer", customer.id)
    assert [d.document_id for d in docs] == [doc.document_id]
    kinds = [e.kind for e in history._history_of(customer.id)]
    assert "created" in kinds and "intake_approved" in kinds
    approve = actions("INTAKE_APPROVE")[0]
    assert json.loads(approve.details)["customer_no"] == decision.customer_no
    for action in ("INTAKE_SUBMIT", "INTAKE_VIEW", "INTAKE_RETURN", "INTAKE_APPROVE", "DOCUMENT_ATTACH",
                   "CUSTOMER_CREATE"):
        assert actions(action), action
    assert audit.verify_chain().ok


def test_approval_sets_labels_and_active_category(clerk, reviewer, make_staff):
    officer = make_staff("officer", "records_officer")
    vip = labels.create_label(officer, "VIP")
    summary = intake.submit(clerk, None, form(category="active"), "VIP")
    decision = intake.approve_submission(reviewer, summary.submission_id, 1)
    customer = Customer.get(Customer.customer_no == decision.customer_no)
    assert customer.category == "active" and customer.next_verification_due == dt.date(2027, 11, 25)
    assert [label.label_id for label in labels._labels_of([customer.id])[customer.id]] == [vip.label_id]
    assert IntakeSubmission.get_by_id(summary.submission_id).status == "approved"
    assert intake._queue_count(reviewer.staff_id) == 0


def test_second_submission_of_the_same_person_cannot_be_approved(clerk, clerk2, reviewer):
    a = intake.submit(clerk, None, form())
    b = intake.submit(clerk2, None, form(mobile="13900139000"))
    view = intake.open_review(reviewer, b.submission_id)
    assert [(h.field, h.where, h.reference) for h in view.duplicates] == [("id_number", "submission", a.ref)]
    intake.approve_submission(reviewer, a.submission_id, 1)
    with pytest.raises(ValidationError) as exc:
        intake.approve_submission(reviewer, b.submission_id, 1)
    assert errors_of(exc) == {"id_number": "duplicate"}
    assert IntakeSubmission.get_by_id(b.submission_id).status == "submitted"
    assert Customer.select().count() == 1


def test_approval_revalidates(clerk, reviewer, frozen_clock):
    summary = intake.submit(clerk, None, form())
    row = IntakeSubmission.get_by_id(summary.submission_id)
    rev = IntakeRevision.get(IntakeRevision.submission == row.id)
    key = keystore.load_data_key(row.key_id)
    values = intake._revision_values(rev, row.key_id, key)
    values["mobile"] = "123"  # as if the rules had tightened since it was submitted
    IntakeRevision.update(values=intake._seal(key, row.key_id, intake.REVISION_TABLE, rev.id, "values", values)
                          ).where(IntakeRevision.id == rev.id).execute()
    with pytest.raises(ValidationError):
        intake.approve_submission(reviewer, summary.submission_id, 1)
    assert Customer.select().count() == 0


def test_lapsed_training_blocks_viewing_and_approving(clerk, reviewer, admin, frozen_clock):
    from models import training

    summary = intake.submit(clerk, None, form())
    training.record_training(admin, "reviewer", "数据保护培训", "2025-01-10", "2026-01-10")
    with pytest.raises(PermissionDenied):
        intake.open_review(reviewer, summary.submission_id)
    with pytest.raises(PermissionDenied):
        intake.approve_submission(reviewer, summary.submission_id, 1)
    assert [json.loads(d.details)["reason"] for d in actions("DENIED")] == ["training_expired"] * 2
    assert not actions("INTAKE_VIEW") and Customer.select().count() == 0
    training.record_training(admin, "reviewer", "数据保护培训", "2026-11-01")
    assert intake.approve_submission(reviewer, summary.submission_id, 1).status == "approved"


def test_returned_reasons_are_encrypted(clerk, reviewer):
    summary = intake.submit(clerk, None, form())
    intake.return_submission(reviewer, summary.submission_id, 1, {"street": "哨兵理由QXZ"}, "哨兵备注QXZ")
    rev = IntakeRevision.get()
    assert "哨兵".encode() not in bytes(rev.reasons) and rev.reason_fields == "street"
    assert "哨兵" not in actions("INTAKE_RETURN")[0].details


def test_home_counts(clerk, reviewer):
    intake.save_draft(clerk, None, {"full_name": "王"})
    summary = intake.submit(clerk, None, form())
    entries = {e.entry_id: e for e in home.home_menu(clerk)}
    assert entries["intake"].count == 1 and entries["intake"].screen
    assert {e.entry_id: e for e in home.home_menu(reviewer)}["review"].count == 1
    intake.return_submission(reviewer, summary.submission_id, 1, {"street": "门牌号"})
    assert {e.entry_id: e for e in home.home_menu(clerk)}["intake"].count == 2
    assert {e.entry_id: e for e in home.home_menu(reviewer)}["review"].count == 0


def test_not_found(clerk, reviewer):
    with pytest.raises(NotFound):
        intake.open_submission(clerk, "nope")
    draft = intake.save_draft(clerk, None, {"full_name": "王"})
    with pytest.raises(NotFound):
        intake.open_review(reviewer, draft.submission_id)  # a draft is not the reviewer's business


# --- nothing typed is left in clear on disk ---------------------------------------------------------


def test_no_typed_value_in_any_file_of_the_data_directory(clerk, reviewer, settings):
    if not is_sqlite():
        pytest.skip("the raw-bytes check reads the SQLite files")
    sentinel_id = valid_id("1987-09-13", "male", seed=7)
    values = form(full_name=SENTINEL_NAME, street=SENTINEL_STREET, email=SENTINEL_EMAIL,
                  employer=SENTINEL_EMPLOYER, id_number=sentinel_id, date_of_birth="1987-09-13", gender="male",
                  mobile="13712345678")
    saved = intake.save_draft(clerk, None, {k: values[k] for k in ("full_name", "street", "id_number")})
    intake.save_draft(clerk, saved.submission_id, values)
    intake.check_duplicates(clerk, saved.submission_id, values)
    summary = intake.submit(clerk, saved.submission_id, values)
    intake.return_submission(reviewer, summary.submission_id, 1, {"street": "门牌号"})
    intake.save_draft(clerk, saved.submission_id, values)
    sentinels = [SENTINEL_NAME, SENTINEL_STREET, SENTINEL_EMAIL, SENTINEL_EMPLOYER, sentinel_id, "13712345678"]
    files = [p for p in Path(settings.home).rglob("*") if p.is_file()]
    assert any(p.name.endswith("-wal") for p in files)
    for path in files:
        raw = path.read_bytes()
        for value in sentinels:
            for encoding in ("utf-8", "utf-16-le", "gb18030"):
                assert value.encode(encoding) not in raw, (path.name, value, encoding)
