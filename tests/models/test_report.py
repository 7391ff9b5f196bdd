"""The periodic compliance report: Markdown and HTML with the figures, chain status and anomalies."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from models import branches, clock, customers, report, suggestions, training
from models.audit import AuditEntry
from models.customers import Customer
from models.errors import PermissionDenied, ValidationError
from tests.models.test_audit import SENTINEL, _sentinel_customer, disable_guards, tamper_update


@pytest.fixture
def period():
    today = clock.today()
    return today - dt.timedelta(days=29), today


def test_the_report_holds_the_figures_the_chain_and_the_anomalies(office, admin, clerk, supervisor, period,
                                                                  tmp_path):
    number = customers.create_customer(clerk, _sentinel_customer()).customer_no
    customers.reveal_fields(clerk, number, ["mobile"], "客户来电核实身份")
    Customer.update(next_verification_due=clock.today() - dt.timedelta(days=2)).execute()
    training.record_training(admin, "clerk", "DP", clock.today() - dt.timedelta(days=400))
    suggestions.submit_suggestion(clerk, "退回原因模板", "复核退回时请写明需要补充的材料。")
    files = report.write_report(supervisor, *period, directory=tmp_path)
    assert files.chain_ok and files.anomalies >= 2
    markdown = files.markdown.read_text()
    page = files.html.read_text()
    for text in (markdown, page):
        assert "Audit chain" in text and "Intact:" in text
        assert "Anomalies" in text and "overdue for periodic verification" in text
        assert "training expired" in text and "退回原因模板" in text
        assert "Reveals per staff member" in text and "REVEAL" in text
        for value in SENTINEL.values():
            assert value not in text, "personal data in the report"
    assert markdown.startswith("# Compliance report") and "| clerk | 1 |" in markdown
    assert page.startswith("<!DOCTYPE html>") and 'class="bar"' in page
    for path in (files.markdown, files.html):
        assert path.stat().st_mode & 0o077 == 0
    entry = AuditEntry.select().where(AuditEntry.action == "REPORT_WRITE").get()
    assert json.loads(entry.details)["chain_ok"] is True
    assert AuditEntry.select().where(AuditEntry.action == "AUDIT_VERIFY").count() == 1


def test_a_broken_chain_is_reported_as_failed(office, auditor, period, tmp_path):
    disable_guards()
    tamper_update(1, actor="mallory")
    files = report.write_report(auditor, *period, directory=tmp_path)
    assert not files.chain_ok
    assert "FAILED at entry 1" in files.markdown.read_text()
    assert "The audit chain failed verification at entry 1" in files.html.read_text()


def test_text_from_data_is_escaped_in_html_and_markdown(office, admin, supervisor, period, tmp_path):
    branches.save_branch(admin, "X1", "<script>alert(1)</script>|分公司")
    files = report.write_report(supervisor, *period, directory=tmp_path)
    page = files.html.read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "\\|分公司" in files.markdown.read_text()


def test_headings_are_translated_with_the_callers_function(office, supervisor, period, tmp_path):
    files = report.write_report(supervisor, *period, directory=tmp_path, translate=lambda s: f"«{s}»")
    assert "## «Audit chain»" in files.markdown.read_text()


def test_the_report_goes_to_the_export_folder_by_default(office, supervisor, period):
    files = report.write_report(supervisor, *period)
    assert files.markdown.parent == office.settings.export_dir
    assert files.markdown.name == f"compliance-report-{period[0]:%Y%m%d}-{period[1]:%Y%m%d}.md"


def test_period_and_permission_checks(office, clerk, supervisor, period):
    with pytest.raises(ValidationError):
        report.write_report(supervisor, period[1], period[0])
    with pytest.raises(ValidationError):
        report.write_report(supervisor, period[1] - dt.timedelta(days=800), period[1])
    with pytest.raises(PermissionDenied):
        report.write_report(clerk, *period)


def test_verification_progress_is_reported(office, supervisor, period, tmp_path):
    seen = []
    report.write_report(supervisor, *period, directory=tmp_path, progress=lambda done, total: seen.append(done))
    verified = AuditEntry.select().where(AuditEntry.action == "AUDIT_VERIFY").get()
    assert seen and seen[-1] == verified.seq - 1  # every entry before the verification's own
