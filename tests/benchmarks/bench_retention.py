"""Retention and destruction at size: the sweep, the home count, destruction throughput, backup, restore.

Measured on an office of RK_BENCH_RETENTION_CUSTOMERS generated customers (default 50 000; the
generator terminates about a tenth over ten years, so some are past retention), SQLite:
- the records officer's sweep (`retention_sweep`: count, first 1000 rows, audit entry) and the
  home-menu counts;
- executing an approved request of RK_BENCH_DESTROY customers (default 300): customers per
  second through all six committed steps, with the ledger fsync and the WAL truncation;
- `take_backup` and `verify_backup` (seconds, MB);
- an in-place restore of that backup, which replays the whole ledger, and the start-up check
  when there is nothing to replay.
Run with `make bench`; prints the figures.
"""

from __future__ import annotations

import os
import statistics
import time

import pytest

from models import backup, bulkgen, destruction, home, ledger, migrations, office as office_mod, staff
from models.customers import Customer
from tests.conftest import TEST_PASSWORD, make_settings

CUSTOMERS = int(os.environ.get("RK_BENCH_RETENTION_CUSTOMERS", "50000"))
DESTROY = int(os.environ.get("RK_BENCH_DESTROY", "300"))


def _timed(fn, runs: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


@pytest.fixture
def big_office(tmp_path, frozen_clock):
    settings = make_settings(tmp_path / "office")
    office_mod.create_office_files(settings)
    office_mod.open_office(settings, check_schema=False)
    migrations.migrate()
    admin_summary = staff.create_first_admin("admin", TEST_PASSWORD)
    admin = staff.authenticate(admin_summary.username, TEST_PASSWORD)
    for name, role in (("clerk", "clerk"), ("officer", "records_officer"), ("supervisor", "supervisor")):
        staff.add_staff(admin, name, name.title(), TEST_PASSWORD, (role,))
    clerk = staff.authenticate("clerk", TEST_PASSWORD)
    start = time.perf_counter()
    bulkgen.generate_customers(clerk, CUSTOMERS, with_labels=False)
    print(f"\ngenerated {CUSTOMERS} customers in {time.perf_counter() - start:.1f} s")
    yield settings
    office_mod.close_office()


def test_retention_figures(big_office):
    settings = big_office
    officer = staff.authenticate("officer", TEST_PASSWORD)
    supervisor = staff.authenticate("supervisor", TEST_PASSWORD)

    sweep_ms, sweep = _timed(lambda: destruction.retention_sweep(officer))
    counts_ms, _menu = _timed(lambda: home.home_menu(officer))
    print(f"sweep over {CUSTOMERS} customers: {sweep_ms:.1f} ms median "
          f"({sweep.eligible_total} eligible, {sweep.held_past_retention} held); home menu with counts {counts_ms:.1f} ms")

    numbers = [e.customer_no for e in sweep.eligible[:DESTROY]]
    request = destruction.file_request(officer, numbers, "benchmark: retention period over")
    destruction.decide_request(supervisor, request.request_no, True, "benchmark approval")
    before = backup.take_backup()  # before the destruction: the restore below must replay it all
    start = time.perf_counter()
    result = destruction.execute_request(officer, request.request_no)
    seconds = time.perf_counter() - start
    print(f"destroyed {result.destroyed} customers in {seconds:.2f} s: {result.destroyed / seconds:.0f} per second "
          f"(WAL truncated: {result.wal_truncated})")

    start = time.perf_counter()
    taken = backup.take_backup()
    backup_s = time.perf_counter() - start
    size_mb = taken.database_file.stat().st_size / 1e6
    start = time.perf_counter()
    assert backup.verify_backup(taken.database_file).ok
    verify_s = time.perf_counter() - start
    print(f"backup of {CUSTOMERS} customers: {backup_s:.2f} s, {size_mb:.0f} MB database + "
          f"{taken.keystore_file.stat().st_size / 1e6:.1f} MB key store; verify {verify_s:.2f} s")

    start = time.perf_counter()
    restored = backup.restore_backup(before.database_file, force=True, keystore_backup=before.keystore_file)
    restore_s = time.perf_counter() - start
    replayed = restored.replayed_customers + restored.finished_items
    print(f"in-place restore of the older backup: {restore_s:.2f} s, replaying {replayed} destructions "
          f"({restored.replayed_keys} keys)")
    assert replayed == result.destroyed
    assert not Customer.select().where(Customer.customer_no.in_(numbers)).exists()

    open_ms, _r = _timed(lambda: destruction.reconcile_on_open(), runs=9)
    print(f"start-up ledger check with {len(ledger.read_entries())} entries and nothing to replay: {open_ms:.2f} ms")
    from tests.benchmarks.figures import record

    record(f"retention sweep over {CUSTOMERS:,} customers (median)", sweep_ms, "ms")
    record("destruction throughput (all six committed steps, ledger fsync)", result.destroyed / seconds,
           "customers/s", note=f"{result.destroyed} customers")
    record(f"backup of {CUSTOMERS:,} customers", backup_s, "s", note=f"{size_mb:.0f} MB; verify {verify_s:.1f} s")
    record("in-place restore replaying the ledger", restore_s, "s", note=f"{replayed} destructions replayed")
