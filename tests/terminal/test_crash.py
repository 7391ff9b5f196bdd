"""kill -9 at random moments during writes, approvals, imports, destruction and backups — a short
run for CI (the long one is tests/benchmarks/bench_crash.py). After every kill: the database and the
key store pass their integrity check, the audit chain verifies, every operation is all-or-nothing
with its audit entry, and the import and the destruction requests resume to completion (security
test T19). The checks are in tests/stress/crash.py.
"""

from __future__ import annotations

import os

from tests.stress.crash import IMPORT_ROWS, run_crashes

ITERATIONS = int(os.environ.get("RK_CI_CRASH_ITERATIONS", "20"))


def test_kill_9_at_random_points_leaves_a_consistent_office(tmp_path):
    report = run_crashes(tmp_path, ITERATIONS, seed=int(os.environ.get("RK_CI_CRASH_SEED", "2026")))
    print("\n" + report.summary())
    assert report.problems == [], report.summary()
    assert sum(report.kills.values()) >= ITERATIONS * 0.6, "most victims must die mid-work, or this proves little"
    assert report.imported == IMPORT_ROWS and report.destroyed > 0 and report.backups_verified > 0
