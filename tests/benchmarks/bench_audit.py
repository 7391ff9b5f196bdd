"""The audit log at a million entries on SQLite: filtered keyset pages, verification, export, the
dashboard, and what a signed checkpoint adds to each append.

Run with `make bench` (prints the figures). The log is written straight into the table with real
chain hashes (the services would take far longer to produce a million entries), then signed once.
RK_BENCH_AUDIT_ENTRIES sets another size; RK_BENCH_KEEP=1 keeps /tmp/rk-bench-audit for the next run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import statistics
import time
from pathlib import Path

import pytest

HOME = Path("/tmp/rk-bench-audit")
PASSWORD = "correct horse battery"
ENTRIES = int(os.environ.get("RK_BENCH_AUDIT_ENTRIES", "1000000"))
RUNS = 21
ACTIONS = (("VIEW", 40), ("SEARCH", 25), ("REVEAL", 10), ("LOGIN", 10), ("CUSTOMER_CREATE", 5),
           ("CHANGE_REQUEST", 4), ("LOGOUT", 5), ("DENIED", 1))


def _settings():
    from models.settings import Settings

    return Settings(home=HOME, argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1)


def _fill(count: int) -> float:
    """Write `count` chained entries over the past year in batches; returns seconds taken."""
    from models import audit
    from models.audit import AuditEntry

    rng = random.Random(7)
    names, weights = zip(*ACTIONS)
    staff_names = [f"staff{i:02d}" for i in range(50)]
    head = AuditEntry.select().order_by(AuditEntry.seq.desc()).first()
    seq, prev = (head.seq, head.hash) if head else (0, audit.GENESIS)
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=365)
    step = dt.timedelta(days=365) / count
    started = time.perf_counter()
    batch = []
    for i in range(count):
        seq += 1
        action = rng.choices(names, weights)[0]
        customer = action in ("VIEW", "REVEAL", "CUSTOMER_CREATE", "CHANGE_REQUEST")
        entry = {
            "seq": seq, "ts": (start + step * i).isoformat(timespec="milliseconds"), "actor_id": None,
            "actor": rng.choice(staff_names), "session_id": f"{rng.getrandbits(64):016x}", "action": action,
            "object_type": "customer" if customer else "", "object_id": f"C2026{rng.randrange(100000):06d}"
            if customer else "", "fields": "mobile" if action == "REVEAL" else "", "purpose": "",
            "outcome": "denied" if action == "DENIED" else ("failed" if action == "LOGIN" and rng.random() < 0.1
                                                           else "ok"),
            "details": "{}",
        }
        entry["prev_hash"], entry["hash"] = prev, audit.chain_hash(prev, entry)
        prev = entry["hash"]
        batch.append(entry)
        if len(batch) == 20000:
            _insert(batch)
            batch = []
    if batch:
        _insert(batch)
    return time.perf_counter() - started


def _insert(rows: list[dict]) -> None:
    from models.audit import AuditEntry
    from models.db import db

    with db.atomic():
        for first in range(0, len(rows), 2000):  # SQLite allows at most 32766 parameters a statement
            AuditEntry.insert_many(rows[first:first + 2000]).execute()


@pytest.fixture(scope="module")
def office():
    from models import checkpoints, migrations, office as office_mod, staff
    from models.audit import AuditEntry

    marker = HOME / "bench-ready.json"
    if marker.exists() and json.loads(marker.read_text())["entries"] == ENTRIES:
        office_mod.open_office(_settings())
    else:
        shutil.rmtree(HOME, ignore_errors=True)
        office_mod.create_office_files(_settings())
        office_mod.open_office(_settings(), check_schema=False)
        migrations.migrate()
        staff.create_first_admin("admin", PASSWORD)
        admin = staff.authenticate("admin", PASSWORD)
        staff.add_staff(admin, "auditor", "Auditor", PASSWORD, ["auditor", "supervisor"])
        seconds = _fill(ENTRIES)
        checkpoints.write_checkpoint(force_interval=True)
        print(f"\nwrote {ENTRIES:,} chained entries in {seconds:.0f} s; database "
              f"{(HOME / 'recordkeeper.db').stat().st_size / 2**20:,.0f} MiB")
        marker.write_text(json.dumps({"entries": ENTRIES}))
    staff.Staff.update(must_change_password=False).execute()
    actor = staff.authenticate("auditor", PASSWORD)
    yield actor, AuditEntry.select().count()
    office_mod.close_office()
    if not os.environ.get("RK_BENCH_KEEP"):
        shutil.rmtree(HOME, ignore_errors=True)


def _median_ms(call, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def test_filtered_keyset_pages(office):
    from models import audit_browse
    from models.audit_browse import AuditFilter, make_filter

    actor, size = office
    today = dt.date.today()
    old_day = today - dt.timedelta(days=200)
    cases = {
        "no filter": AuditFilter(),
        "action REVEAL": make_filter(action="REVEAL"),
        "one staff member": make_filter(staff="staff07"),
        "one customer": make_filter(customer_no="C2026012345"),
        "refused only": make_filter(outcome="denied"),
        "one day, 200 days ago": make_filter(since=old_day.isoformat(), until=old_day.isoformat()),
        "staff + action": make_filter(staff="staff07", action="REVEAL"),
        "customer + action": make_filter(customer_no="C2026012345", action="VIEW"),
        "failed logins, a month": make_filter(action="LOGIN", outcome="failed",
                                              since=(today - dt.timedelta(days=30)).isoformat()),
    }
    print(f"\naudit log: {size:,} entries; pages of {audit_browse.PAGE_SIZE}, median of {RUNS} runs")
    print(f"{'filter':<26} {'first page':>11} {'page at 90%':>12} {'rows':>6}")
    for name, flt in cases.items():
        first = audit_browse._page(flt, None, None, audit_browse.PAGE_SIZE)
        first_ms = _median_ms(lambda: audit_browse._page(flt, None, None, audit_browse.PAGE_SIZE))
        deep_seq = max(2, size // 10)  # 90% of the way back from the newest entry
        deep_ms = _median_ms(lambda: audit_browse._page(flt, deep_seq, None, audit_browse.PAGE_SIZE))
        print(f"{name:<26} {first_ms:>9.1f} ms {deep_ms:>9.1f} ms {len(first.rows):>6}")
        from tests.benchmarks.figures import record

        record(f"audit log page at 90% depth, {name} ({size:,} entries)", deep_ms, "ms", baseline=first_ms,
               baseline_label="first page")
    service_ms = _median_ms(lambda: audit_browse.browse(actor, cases["staff + action"]), runs=11)
    older = audit_browse.browse(actor, cases["no filter"])
    older_ms = _median_ms(lambda: audit_browse.browse(actor, cases["no filter"], before_seq=older.rows[-1].seq))
    print(f"through the service: a new filter {service_ms:.1f} ms (with its audit entry and checkpoint), "
          f"the next page {older_ms:.1f} ms")


def test_verification_export_and_dashboard(office, tmp_path):
    from models import audit, audit_browse, dashboard

    actor, size = office
    started = time.perf_counter()
    result = audit.verify_chain()
    seconds = time.perf_counter() - started
    assert result.ok, result
    print(f"\nverify {result.entries:,} entries against {result.checkpoints} checkpoints: {seconds:.1f} s "
          f"({result.entries / seconds:,.0f} entries/s)")
    from tests.benchmarks.figures import record

    record(f"audit chain verification, {result.entries:,} entries", result.entries / seconds, "entries/s")
    started = time.perf_counter()
    exported = audit_browse.export_range(actor, tmp_path / "part.jsonl", first_seq=max(1, size - 100_000),
                                         last_seq=size)
    export_s = time.perf_counter() - started
    started = time.perf_counter()
    check = audit_browse.verify_export(exported.path)
    check_s = time.perf_counter() - started
    assert check.ok, check
    print(f"export {exported.entries:,} entries: {export_s:.1f} s ({exported.path.stat().st_size / 2**20:.0f} MiB); "
          f"outside verification {check_s:.1f} s")
    today = dt.date.today()
    for days in (7, 30, 365):
        started = time.perf_counter()
        dashboard.build(today - dt.timedelta(days=days - 1), today)
        print(f"dashboard over {days} days: {(time.perf_counter() - started) * 1000:,.0f} ms")


def test_what_a_checkpoint_adds_to_an_append(office, monkeypatch):
    from models import audit, checkpoints

    def appends(count: int) -> float:
        started = time.perf_counter()
        for _ in range(count):
            audit.append(actor_id=None, actor="bench", action="BENCH")
        return (time.perf_counter() - started) / count * 1e6

    signing = checkpoints.note_append
    signed, unsigned = [], []
    for _ in range(7):  # alternate, so other load on the machine falls on both alike
        monkeypatch.setattr(checkpoints, "note_append", signing)
        signed.append(appends(40))
        monkeypatch.setattr(checkpoints, "note_append", lambda: None)
        unsigned.append(appends(40))
    started = time.perf_counter()
    for _ in range(200):
        checkpoints.write_checkpoint()
    alone = (time.perf_counter() - started) / 200 * 1e6
    from tests.benchmarks.figures import record

    record("audit append (own transaction, fsync) with its signed checkpoint", statistics.median(signed), "µs",
           baseline=statistics.median(unsigned), baseline_label="without the checkpoint")
    print(f"\nappend (its own transaction, fsync) with its signed head checkpoint: {statistics.median(signed):,.0f} µs, "
          f"without: {statistics.median(unsigned):,.0f} µs; one checkpoint write alone: {alone:,.0f} µs")
