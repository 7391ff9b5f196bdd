"""The audit browser: filter correctness, keyset paging, entry details, export an outsider can verify."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from models import audit, audit_browse, checkpoints, clock, training
from models.audit import AuditEntry
from models.audit_browse import AuditFilter, make_filter
from models.errors import NotFound, PermissionDenied, ValidationError
from tests.models.test_audit import disable_guards, tamper_update

ACTORS = ("wang", "li", "zhang")


@pytest.fixture
def log(office, frozen_clock):
    """Entries over five days by three staff members, with denials, failures and customer numbers."""
    for day in range(5):
        for i in range(12):
            who = ACTORS[i % 3]
            action = ("REVEAL", "VIEW", "SEARCH", "LOGIN")[i % 4]
            outcome = "denied" if i == 5 else "failed" if action == "LOGIN" and i % 8 == 3 else "ok"
            audit.append(actor_id=None, actor=who, action=action, outcome=outcome,
                         object_type="customer" if action in ("REVEAL", "VIEW") else "",
                         object_id=f"C2026{(day * 12 + i) % 7:06d}" if action in ("REVEAL", "VIEW") else "",
                         details={"day": day, "i": i})
        frozen_clock.advance(dt.timedelta(days=1))
    return office


def everything() -> list[dict]:
    return list(AuditEntry.select().order_by(AuditEntry.seq.desc()).dicts())


def walk(auditor, flt: AuditFilter, limit: int) -> list[int]:
    """Every seq the filter finds, by walking older pages from the newest one."""
    page = audit_browse.browse(auditor, flt, limit=limit)
    seqs = [r.seq for r in page.rows]
    assert not page.has_newer
    while page.has_older:
        page = audit_browse.browse(auditor, flt, before_seq=page.rows[-1].seq, limit=limit)
        assert page.has_newer
        seqs += [r.seq for r in page.rows]
    return seqs


def local_day(ts: str) -> dt.date:
    return dt.datetime.fromisoformat(ts).astimezone().date()


FILTERS = [
    ({"staff": "WANG"}, lambda r: r["actor"] == "wang"),
    ({"action": "reveal"}, lambda r: r["action"] == "REVEAL"),
    ({"outcome": "denied"}, lambda r: r["outcome"] == "denied"),
    ({"outcome": "failed"}, lambda r: r["outcome"] == "failed"),
    ({"customer_no": "c2026000003"}, lambda r: r["object_id"] == "C2026000003"),
    ({"staff": "li", "action": "VIEW"}, lambda r: r["actor"] == "li" and r["action"] == "VIEW"),
    ({"action": "REVEAL", "customer_no": "C2026000001", "staff": "wang"},
     lambda r: (r["action"], r["object_id"], r["actor"]) == ("REVEAL", "C2026000001", "wang")),
]


@pytest.mark.parametrize("typed, keep", FILTERS)
def test_each_filter_finds_exactly_the_matching_entries(log, auditor, typed, keep):
    flt = make_filter(**typed)
    expected = [r["seq"] for r in everything() if keep(r)]
    assert expected, "the fixture must hold matching entries"
    assert walk(auditor, flt, limit=7) == expected


def test_a_time_range_finds_exactly_the_days_entries(log, auditor):
    rows = everything()
    days = sorted({local_day(r["ts"]) for r in rows})
    start, end = days[1], days[3]
    flt = make_filter(since=start.isoformat(), until=end.isoformat(), action="SEARCH")
    expected = [r["seq"] for r in rows if start <= local_day(r["ts"]) <= end and r["action"] == "SEARCH"]
    assert expected and walk(auditor, flt, limit=4) == expected
    assert walk(auditor, make_filter(since="2001-01-01", until="2001-01-31"), limit=5) == []
    later = days[-1] + dt.timedelta(days=30)
    assert walk(auditor, make_filter(since=later.isoformat()), limit=5) == []


def test_paging_back_to_newer_pages_returns_the_same_pages(log, auditor):
    flt = make_filter(staff="zhang")
    pages = [audit_browse.browse(auditor, flt, limit=5)]
    while pages[-1].has_older:
        pages.append(audit_browse.browse(auditor, flt, before_seq=pages[-1].rows[-1].seq, limit=5))
    back = pages[-1]
    for expected in reversed(pages[:-1]):
        back = audit_browse.browse(auditor, flt, after_seq=back.rows[0].seq, limit=5)
        assert [r.seq for r in back.rows] == [r.seq for r in expected.rows]
    assert not back.has_newer


def test_page_at_jumps_to_an_entry(log, auditor):
    page = audit_browse.page_at(auditor, AuditFilter(), 30, limit=10)
    assert [r.seq for r in page.rows] == list(range(30, 20, -1))
    assert page.has_newer and page.has_older and page.log_size == AuditEntry.select().count()


@pytest.mark.parametrize("typed, field", [
    ({"since": "2026-02-30"}, "since"), ({"until": "yesterday"}, "until"),
    ({"since": "2026-05-02", "until": "2026-05-01"}, "until"), ({"staff": "wang li"}, "staff"),
    ({"action": "REVEAL;DROP"}, "action"), ({"customer_no": "C2026-000001'"}, "customer_no"),
    ({"outcome": "maybe"}, "outcome"),
])
def test_bad_filter_input_names_the_field(typed, field):
    with pytest.raises(ValidationError) as caught:
        make_filter(**typed)
    assert field in caught.value.by_field()


def test_opening_a_filter_is_audited_and_paging_is_not(log, auditor):
    before = AuditEntry.select().count()
    page = audit_browse.browse(auditor, make_filter(staff="li"), limit=3)
    assert AuditEntry.select().count() == before + 1
    entry = AuditEntry.select().order_by(AuditEntry.seq.desc()).get()
    assert (entry.action, json.loads(entry.details)) == ("AUDIT_BROWSE", {"staff": "li"})
    audit_browse.browse(auditor, make_filter(staff="li"), before_seq=page.rows[-1].seq, limit=3)
    assert AuditEntry.select().count() == before + 1


def test_only_auditors_and_supervisors_browse(log, clerk, admin, supervisor):
    for who in (clerk, admin):
        with pytest.raises(PermissionDenied):
            audit_browse.browse(who, AuditFilter())
    assert audit_browse.browse(supervisor, AuditFilter()).rows


def test_entry_detail_shows_everything_and_its_chain_position(log, auditor):
    detail = audit_browse.entry_detail(auditor, 7)
    row = AuditEntry.get_by_id(7)
    assert (detail.seq, detail.action, detail.hash, detail.prev_hash) == (7, row.action, row.hash, row.prev_hash)
    stored = json.loads(row.details)
    assert dict(detail.details) == {k: v if isinstance(v, str) else json.dumps(v) for k, v in stored.items()}
    assert detail.links_to_previous and detail.content_matches
    assert detail.log_size == AuditEntry.select().count()
    assert detail.checkpoint_seq is not None and detail.checkpoint_seq >= 7
    assert audit_browse.entry_detail(auditor, 1).links_to_previous
    with pytest.raises(NotFound):
        audit_browse.entry_detail(auditor, 10**9)


def test_entry_detail_shows_a_tampered_entry(log, auditor):
    disable_guards()
    tamper_update(9, outcome="ok", purpose="edited")
    detail = audit_browse.entry_detail(auditor, 9)
    assert not detail.content_matches and detail.links_to_previous
    # Only entry 9's content changed: entry 10 still links to 9's stored hash.
    assert audit_browse.entry_detail(auditor, 10).links_to_previous
    tamper_update(10, prev_hash="0" * 64)
    assert not audit_browse.entry_detail(auditor, 10).links_to_previous


def test_known_actions(log, auditor):
    assert {"REVEAL", "VIEW", "SEARCH", "LOGIN"} <= set(audit_browse.known_actions(auditor))


# --- export ---------------------------------------------------------------------------


def test_an_export_verifies_on_its_own_with_the_public_key(log, auditor, tmp_path):
    result = audit_browse.export_range(auditor, tmp_path / "all.jsonl")
    assert result.first_seq == 1 and result.entries == result.last_seq
    assert result.checkpoints >= 1
    check = audit_browse.verify_export(result.path, checkpoints.public_key_hex())
    assert check.ok and check.key_confirmed and check.entries == result.entries and check.checkpoints >= 1
    assert (result.path.stat().st_mode & 0o077) == 0
    exported = AuditEntry.select().where(AuditEntry.action == "AUDIT_EXPORT").get()
    assert json.loads(exported.details) == {"first_seq": 1, "last_seq": result.last_seq - 1, "to_newest": True}
    assert exported.seq == result.last_seq  # the export holds its own entry, and the head checkpoint on it


def test_a_range_export_starts_from_its_anchor(log, auditor, tmp_path):
    result = audit_browse.export_range(auditor, tmp_path / "part.jsonl", first_seq=10, last_seq=25)
    lines = [json.loads(line) for line in result.path.read_text().splitlines()]
    assert lines[0]["anchor_prev_hash"] == AuditEntry.get_by_id(10).prev_hash
    assert [l["seq"] for l in lines if l["type"] == "entry"] == list(range(10, 26))
    assert audit_browse.verify_export(result.path).ok


def test_a_period_export(log, auditor, tmp_path):
    days = sorted({local_day(r["ts"]) for r in everything()})
    result = audit_browse.export_range(auditor, tmp_path / "day.jsonl", since=days[2], until=days[2])
    lines = [json.loads(line) for line in result.path.read_text().splitlines() if '"entry"' in line]
    assert lines and all(local_day(l["ts"]) == days[2] for l in lines)
    with pytest.raises(ValidationError):
        audit_browse.export_range(auditor, tmp_path / "none.jsonl", since=dt.date(2001, 1, 1),
                                  until=dt.date(2001, 1, 2))


def _rewrite(path, change) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(change(lines)) + "\n")


@pytest.mark.parametrize("change, words", [
    (lambda ls: [l.replace('"outcome": "denied"', '"outcome": "ok"', 1) for l in ls], "does not match its hash"),
    (lambda ls: ls[:5] + ls[6:], "missing or out of order"),
    (lambda ls: ls[:-3], "end marker is missing"),
    (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], "missing or out of order"),
    (lambda ls: [*ls[:-1], ls[-1].replace('"entries": ', '"entries": 1')], "end marker"),
])
def test_an_altered_export_fails_verification(log, auditor, tmp_path, change, words):
    result = audit_browse.export_range(auditor, tmp_path / "x.jsonl")
    _rewrite(result.path, change)
    check = audit_browse.verify_export(result.path)
    assert not check.ok and words in check.reason, check


def test_a_rewritten_export_is_caught_by_the_signed_checkpoint(log, auditor, tmp_path):
    """Recomputing every hash in the file does not help: the signed checkpoint no longer matches."""
    result = audit_browse.export_range(auditor, tmp_path / "x.jsonl")
    lines = [json.loads(l) for l in result.path.read_text().splitlines()]
    prev = lines[0]["anchor_prev_hash"]
    for item in lines:
        if item["type"] == "entry":
            if item["seq"] == 3:
                item["actor"] = "nobody"
            item["prev_hash"], item["hash"] = prev, audit.chain_hash(prev, item)
            prev = item["hash"]
        elif item["type"] == "end":
            item["last_hash"] = prev
    result.path.write_text("\n".join(json.dumps(l, ensure_ascii=False) for l in lines) + "\n")
    check = audit_browse.verify_export(result.path, checkpoints.public_key_hex())
    assert not check.ok and "checkpoint" in check.reason


def test_a_signature_from_another_key_fails(log, auditor, tmp_path):
    result = audit_browse.export_range(auditor, tmp_path / "x.jsonl")
    check = audit_browse.verify_export(result.path, "11" * 32)
    assert not check.ok and "bad signature" in check.reason


def test_exporting_needs_current_training(log, admin, auditor, tmp_path):
    training.record_training(admin, "auditor", "DP", clock.today() - dt.timedelta(days=400))
    with pytest.raises(training.TrainingExpired):
        audit_browse.export_range(auditor, tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()
