"""Bulk import into the million-customer office, beside a raw sqlite3 executemany of the same rows.

Run with `make bench` (prints the figures). Goal (issue 4): at least 10 000 customers per second
with validation, encryption, indexing and audit, and at least 0.2x the raw executemany. The
import runs in worker processes (one per core) beside the writing process.
RK_BENCH_IMPORT_ROWS sets the file's size (default 100 000).
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import time
import uuid

from tests.benchmarks.bench_browse import CUSTOMERS, HOME, clerk, million, record  # noqa: F401 (the shared office)

ROWS = int(os.environ.get("RK_BENCH_IMPORT_ROWS", "100000"))


def test_import_rate_beside_raw_executemany(million, tmp_path):  # noqa: F811
    from models import bulkgen, importer
    from models.customers import Customer

    path = tmp_path / "legacy.csv"
    before = Customer.select().count()
    bulkgen.write_import_file(path, ROWS, seed=before)  # new people on every run of a kept office
    actor = clerk()
    cpu_before = _cpu_seconds()
    report = importer.import_customers(actor, path, rejects_path=tmp_path / "rejects.csv")
    cpu = _cpu_seconds() - cpu_before
    rate = report.imported / report.seconds
    rows_rate = report.rows / report.seconds
    assert report.imported + report.skipped + report.rejected == ROWS
    assert Customer.select().count() == before + report.imported

    # The floor: the same rows (read back, with new ids and numbers) through one raw executemany.
    raw = sqlite3.connect(HOME / "recordkeeper.db", isolation_level=None)
    raw.execute("PRAGMA journal_mode=wal")
    raw.execute("PRAGMA synchronous=full")
    cursor = raw.execute("SELECT * FROM customer WHERE import_batch = ?", (report.batch_id,))
    names = [d[0] for d in cursor.description]
    rows = [list(r) for r in cursor.fetchall()]
    at_id, at_no = names.index("id"), names.index("customer_no")
    for number, row in enumerate(rows):
        row[at_id], row[at_no] = str(uuid.uuid4()), f"R{number:010d}"
    sql = f"INSERT INTO customer ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    started = time.perf_counter()
    raw.execute("BEGIN IMMEDIATE")
    raw.executemany(sql, rows)
    raw.execute("COMMIT")
    raw_seconds = time.perf_counter() - started
    raw.execute("BEGIN IMMEDIATE")
    raw.execute("DELETE FROM customer WHERE customer_no LIKE 'R%'")
    raw.execute("COMMIT")
    raw_rate = len(rows) / raw_seconds
    workers = importer.worker_count(ROWS)
    print(f"\nimport of {ROWS:,} rows into {before:,} customers ({workers} worker processes, "
          f"{os.cpu_count()} cores):")
    print(f"  service  {report.imported:,} imported, {report.skipped:,} skipped (already customers), "
          f"{report.rejected:,} rejected in {report.seconds:.1f} s = {rate:,.0f} customers/s "
          f"({rows_rate:,.0f} rows/s)")
    print(f"  raw sqlite3 executemany of the same {len(rows):,} rows: {raw_seconds:.1f} s = {raw_rate:,.0f} rows/s;"
          f" import/raw = {rate / raw_rate:.2f}x")
    marker = HOME / "bench-ready.json"
    if marker.exists():
        made = json.loads(marker.read_text())
        print(f"  (the office's {made['customers']:,} customers were generated in {made['seconds']:.0f} s)")
    cores = os.cpu_count() or 1
    print(f"  CPU time {cpu / report.rows * 1e6:,.0f} µs per row (all processes): {cores} idle cores would import "
          f"{cores * report.rows / cpu:,.0f} rows/s; load average during the run {os.getloadavg()[0]:.1f}")
    record("import, customers per second (service)", rate, "/s", goal=(">=", 10_000), baseline=raw_rate,
           baseline_label="raw sqlite3 executemany, rows/s", source=__name__,
           note=f"{cpu / report.rows * 1e6:,.0f} µs CPU per row; load {os.getloadavg()[0]:.1f}")
    record("import vs raw executemany", rate, "/s", goal=(">=", 0.2), goal_on="ratio", baseline=raw_rate,
           baseline_label="raw sqlite3 executemany, rows/s", source=__name__)
    assert rate >= 10_000
    assert rate >= 0.2 * raw_rate


def _cpu_seconds() -> float:
    """User and system time of this process and of its finished children (the import's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
