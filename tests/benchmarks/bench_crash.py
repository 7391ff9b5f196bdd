"""Crash safety at size (issue 9, security test T19): at least 200 kill -9 iterations at random points
during writes, approvals, imports, destruction and backups, each followed by the integrity check,
the audit chain, the all-or-nothing checks and the resumption of interrupted work
(tests/stress/crash.py). RK_BENCH_CRASH_ITERATIONS (default 200) sets the number.
"""

from __future__ import annotations

import os

from tests.benchmarks.figures import record
from tests.stress.crash import IMPORT_ROWS, run_crashes

ITERATIONS = int(os.environ.get("RK_BENCH_CRASH_ITERATIONS", "200"))


def test_kill_9_iterations(tmp_path):
    report = run_crashes(tmp_path, ITERATIONS, seed=int(os.environ.get("RK_BENCH_CRASH_SEED", "9")))
    print("\n" + report.summary())
    kills = sum(report.kills.values())
    record("kill -9 iterations checked (SQLite)", report.iterations, "", goal=(">=", 200),
           note=", ".join(f"{op} {n}" for op, n in sorted(report.kills.items()))
           + f"; {sum(report.finished_before_kill.values())} victims finished first")
    record("problems after kill -9 (integrity, audit, all-or-nothing, resumption)", len(report.problems), "",
           goal=("==", 0), note=f"{kills} kills; imported {report.imported}/{IMPORT_ROWS} after resuming; "
                                f"destroyed {report.destroyed}; {report.backups_verified} backups verified")
    record("complete backups left without their BACKUP audit entry", report.unaudited_backups, "",
           note="killed between the manifest and the audit entry; the backup itself verifies")
    assert report.problems == [], report.summary()
