"""Hostile input at every text field: markup, terminal escapes, bidi and zero-width characters, NUL,
lone surrogates, 100 000-character strings — as a fixed corpus and as hypothesis-generated text.

Every service that takes text from a person or a file either refuses it with a ValidationError (or
the generic login failure) whose message does not repeat the value, or stores it safely: a
customer field never holds a control, format, surrogate or private-use character; drafts keep what
was typed, encrypted, and give it back unchanged. Nothing crashes, on SQLite or PostgreSQL (where a
NUL reaching SQL would be a driver error). Security tests T21/T22 at the model layer; the terminal
side is tests/terminal/test_hostile_terminal.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import random

import pytest
from faker import Faker
from hypothesis import HealthCheck, given, settings, strategies as st

from models import (change_requests, clock, customers, demo, destruction, importer, intake, labels, retention,
                    staff, suggestions, validation)
from models.audit import AuditEntry
from models.errors import AuthenticationFailed, Conflict, RecordKeeperError, ValidationError
from models.fields import CUSTOMER_FIELDS, FIELDS_BY_NAME, Kind
from tests.conftest import TEST_PASSWORD

CORPUS = {
    "link markup": "[link=https://evil.example]点击[/link]",
    "click markup": "[@click=app.quit]退出[/]",
    "unbalanced close": "王伟[/]",
    "open tag": "[b 王伟",
    "variables": "$accent $x",
    "OSC 52 (BEL)": "王\x1b]52;c;ZXZpbA==\x07伟",
    "OSC 52 (ST)": "王\x1b]52;c;ZXZpbA==\x1b\\伟",
    "OSC 8 link": "\x1b]8;;https://evil.example\x1b\\王伟\x1b]8;;\x1b\\",
    "OSC 0 title": "\x1b]0;owned\x07王伟",
    "CSI": "\x1b[2J\x1b[31m王伟",
    "C1 CSI": "王\x9b2J伟",
    "DCS": "\x1bPq#0;2;0;0;0#0~~\x1b\\王伟",
    "RLO": "王\u202e伟abc",
    "zero width": "王\u200b\u200d\u2060伟",
    "BOM inside": "王\ufeff伟",
    "NUL": "王\x00伟",
    "DEL": "王伟\x7f",
    "BEL BS": "王\x07\x08伟",
    "lone surrogate": "王\ud800伟",
    "private use": "王\ue000伟",
    "line separator": "王\u2028伟",
    "100 000 CJK": "王" * 100_000,
    "100 000 ASCII": "A" * 100_000,
    "combining stack": "王" + "\u0301" * 40,
    "newlines": "王\r\n伟\n",
}

TEXT_FIELDS = [s.name for s in CUSTOMER_FIELDS if s.kind not in (Kind.BOOL,)]
PERSONAL_TEXT = ("full_name", "street", "employer", "notes", "email", "mobile", "id_number")


def valid_form(seed: int = 1) -> dict[str, str]:
    fake, rng = Faker("zh_CN"), random.Random(seed)
    fake.seed_instance(seed)
    values = {**demo.fake_customer(fake, rng, clock.today()), "category": "active"}
    return {k: ("yes" if v is True else "no" if v is False else str(v)) for k, v in values.items()}


def _unsafe(text: str, *, newline: bool = False) -> bool:
    return validation.forbidden_characters(text, allow_newline=newline)


def refused_or_done(call, value: str) -> str:
    """Run one service call: 'refused' (a clear refusal that does not echo the value) or 'stored'."""
    try:
        call()
    except ValidationError as exc:
        assert exc.errors, "a ValidationError must name at least one field"
        for error in exc.errors:
            assert error.message and error.code
            if len(value) >= 6:
                assert value not in error.message, "the message repeats the value"
        return "refused"
    except (AuthenticationFailed, Conflict) as exc:
        assert len(value) < 6 or value not in str(exc)
        return "refused"
    return "stored"


@pytest.fixture
def people(office, admin, make_staff):
    clerk = make_staff("clerk", "clerk")
    reviewer = make_staff("reviewer", "reviewer")
    supervisor = make_staff("supervisor", "supervisor")
    officer = make_staff("officer", "records_officer")
    number = customers.create_customer(clerk, {**valid_form(1), "consent_marketing": "no"}).customer_no
    return {"admin": admin, "clerk": clerk, "reviewer": reviewer, "supervisor": supervisor, "officer": officer,
            "number": number}


# --- the corpus ----------------------------------------------------------------------------------


@pytest.mark.parametrize("label", list(CORPUS))
def test_intake_drafts_keep_anything_typed_encrypted_or_refuse_it(people, label):
    value = CORPUS[label]
    clerk = people["clerk"]
    for name in TEXT_FIELDS:
        saved: list = []
        outcome = refused_or_done(lambda: saved.append(intake.save_draft(clerk, None, {name: value})), value)
        if outcome == "stored":
            form = intake.open_submission(clerk, saved[0].submission_id)
            assert form.values[name] == value, "a draft gives back exactly what was typed"
        else:
            assert len(value) > intake.MAX_DRAFT_VALUE or any("\ud800" <= c <= "\udfff" for c in value)


@pytest.mark.parametrize("label", list(CORPUS))
def test_intake_submission_refuses_or_stores_only_clean_text(people, label):
    value = CORPUS[label]
    clerk, reviewer = people["clerk"], people["reviewer"]
    for name in TEXT_FIELDS:
        form = {**valid_form(7), name: value}
        submitted: list = []
        if refused_or_done(lambda: submitted.append(intake.submit(clerk, None, form)), value) == "stored":
            decision = intake.approve_submission(reviewer, submitted[0].submission_id, 1)
            record = customers.reveal_fields(clerk, decision.customer_no, list(customers.PERSONAL_FIELDS),
                                             "check hostile input")
            for field_name, stored in record.values.items():
                if isinstance(stored, str):
                    assert not _unsafe(stored, newline=field_name in validation.NEWLINE_FIELDS), field_name
                    assert len(stored) <= FIELDS_BY_NAME[field_name].max_length, field_name


@pytest.mark.parametrize("label", list(CORPUS))
def test_change_requests_refuse_or_store_only_clean_text(people, label):
    value = CORPUS[label]
    clerk, number = people["clerk"], people["number"]
    for name in [n for n in change_requests.EDITABLE_FIELDS if FIELDS_BY_NAME[n].kind is not Kind.BOOL][:12]:
        version = customers.Customer.get(customers.Customer.customer_no == number).version
        filed: list = []
        outcome = refused_or_done(lambda: filed.append(change_requests.submit_change_request(
            clerk, number, version, {name: value}, source="clerk_correction", reason=value)), value)
        if outcome == "stored":
            proposed = change_requests.proposed_values(clerk, filed[0].request_id)
            assert all(not _unsafe(str(v), newline=True) for v in proposed.values())
            change_requests.withdraw_change_request(clerk, filed[0].request_id)
    for note in (value,):
        version = customers.Customer.get(customers.Customer.customer_no == number).version
        request = change_requests.submit_change_request(clerk, number, version, {"city": "杭州"},
                                                        source="clerk_correction", reason="客户来电更正城市")
        refused_or_done(lambda: change_requests.reject_change_request(people["supervisor"], request.request_id,
                                                                      note), value)
        if change_requests.ChangeRequest.get_by_id(request.request_id).status == "pending":
            change_requests.withdraw_change_request(clerk, request.request_id)


@pytest.mark.parametrize("label", list(CORPUS))
def test_search_terms_and_reveal_purposes(people, label):
    value = CORPUS[label]
    clerk, number = people["clerk"], people["number"]
    before = AuditEntry.select().count()
    for kind in customers.SEARCH_KINDS:
        refused_or_done(lambda: customers.find_customers(clerk, kind, value), value)
    refused_or_done(lambda: customers.reveal_fields(clerk, number, ["mobile"], value), value)
    for entry in AuditEntry.select().where(AuditEntry.seq > before):
        assert value not in entry.details and value not in entry.purpose or not _unsafe(value), \
            "a hostile search term or purpose reached the audit log"
        assert not _unsafe(entry.purpose) and not _unsafe(entry.details)


@pytest.mark.parametrize("label", list(CORPUS))
def test_labels_suggestions_holds_and_reasons(people, label):
    value = CORPUS[label]
    officer, clerk, number = people["officer"], people["clerk"], people["number"]
    refused_or_done(lambda: labels.create_label(officer, value, "primary", value), value)
    refused_or_done(lambda: labels.create_label(officer, "合法标签" + label[:4], "primary", value), value)
    for view in labels.list_labels(officer, include_inactive=True):
        assert not _unsafe(view.name) and not _unsafe(view.description)
    refused_or_done(lambda: suggestions.submit_suggestion(clerk, value, value), value)
    refused_or_done(lambda: suggestions.submit_suggestion(clerk, "建议标题", value), value)
    for view in suggestions.my_suggestions(clerk):
        assert not _unsafe(view.title) and not _unsafe(view.body, newline=True)
    refused_or_done(lambda: retention.place_hold(people["supervisor"], number, "dispute", value), value)
    refused_or_done(lambda: destruction.file_request(officer, [number], value), value)
    submitted = intake.submit(clerk, None, valid_form(11))
    refused_or_done(lambda: intake.return_submission(people["reviewer"], submitted.submission_id, 1,
                                                     {"full_name": value}, value), value)


@pytest.mark.parametrize("label", list(CORPUS))
def test_login_with_hostile_names_and_passwords_is_the_generic_failure(people, label):
    value = CORPUS[label]
    for username, password in ((value, TEST_PASSWORD), ("clerk", value), (value, value)):
        with pytest.raises(AuthenticationFailed) as failed:
            staff.authenticate(username, password)
        assert value not in str(failed.value)
    assert refused_or_done(lambda: staff.add_staff(people["admin"], value, value, TEST_PASSWORD, ("clerk",)),
                           value) == "refused"
    assert staff.authenticate("clerk", TEST_PASSWORD).username == "clerk"  # the account still works


def test_import_cells(people, tmp_path):
    """One row per hostile cell in every column: refused row by row (reasons without values) or stored clean."""
    columns = list(importer.CANONICAL_HEADER) + ["consent_date", "consent_scope"]
    good = valid_form(21)
    path = tmp_path / "hostile.csv"
    rows = 0
    rng = random.Random(3)
    with open(path, "w", encoding="utf-8", newline="", errors="surrogatepass") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for label, value in CORPUS.items():
            if "\x00" in value:
                continue  # a NUL byte makes the whole file unreadable: tested below
            for column in columns:
                row = {**good, "id_number": demo.resident_id(rng, dt.date(1980, 1, 1 + rows % 28), "male"),
                       column: value}
                writer.writerow([row.get(c, "") for c in columns])
                rows += 1
    rejects = tmp_path / "rejects.csv"
    report = importer.import_customers(people["clerk"], path, rejects_path=rejects)
    assert report.rows == rows and report.imported + report.rejected + report.skipped == rows
    text = rejects.read_text(encoding="utf-8-sig", errors="replace")
    for label, value in CORPUS.items():
        if len(value) >= 6:
            assert value not in text, f"the rejects file repeats a {label} value"
    assert not _unsafe(text.replace("\r", "").replace("\n", ""))
    imported = customers.Customer.select().where(customers.Customer.import_batch == report.batch_id)
    for row in imported:
        record = customers.reveal_fields(people["clerk"], row.customer_no, list(customers.PERSONAL_FIELDS),
                                         "check hostile import")
        for name, stored in record.values.items():
            if isinstance(stored, str):
                assert not _unsafe(stored, newline=name in validation.NEWLINE_FIELDS), name


def test_import_of_a_file_with_nul_bytes_is_a_clear_refusal(people, tmp_path):
    path = tmp_path / "nul.csv"
    path.write_bytes(",".join(importer.CANONICAL_HEADER).encode() + b"\n" + b"\x00" * 50 + b"\n")
    with pytest.raises(RecordKeeperError):
        importer.import_customers(people["clerk"], path)


# --- hypothesis: generated text, the corpus' pieces mixed in ------------------------------------------

FRAGMENTS = st.sampled_from([v[:40] for v in CORPUS.values()] + ["\x1b", "\x9b", "[", "]", "/", "=", "\x00"])
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
HOSTILE_TEXT = st.lists(st.one_of(FRAGMENTS, st.text(max_size=12), SURROGATES, st.just("王")), max_size=8) \
    .map("".join)
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


@SLOW
@given(name=st.sampled_from(TEXT_FIELDS), value=HOSTILE_TEXT)
def test_generated_text_in_any_intake_field(people, name, value):
    clerk = people["clerk"]
    submitted: list = []
    if refused_or_done(lambda: submitted.append(intake.submit(clerk, None, {**valid_form(5), name: value})),
                       value) == "stored":
        review = intake.open_review(people["reviewer"], submitted[0].submission_id)
        for shown in review.values.values():
            assert not _unsafe(str(shown), newline=True)
    saved: list = []
    if refused_or_done(lambda: saved.append(intake.save_draft(clerk, None, {name: value})), value) == "stored":
        assert intake.open_submission(clerk, saved[0].submission_id).values[name] == value


@SLOW
@given(kind=st.sampled_from(customers.SEARCH_KINDS), term=HOSTILE_TEXT, title=HOSTILE_TEXT, body=HOSTILE_TEXT)
def test_generated_text_in_search_labels_suggestions_and_login(people, kind, term, title, body):
    refused_or_done(lambda: customers.find_customers(people["clerk"], kind, term), term)
    refused_or_done(lambda: labels.create_label(people["officer"], title, "primary", body), title)
    refused_or_done(lambda: suggestions.submit_suggestion(people["clerk"], title, body), title)
    with pytest.raises(AuthenticationFailed):
        staff.authenticate(term, body)
