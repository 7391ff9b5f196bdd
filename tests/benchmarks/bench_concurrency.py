"""Concurrency at full size (issue 9, security test T18): 16 staff sessions as real processes for
60 seconds on SQLite and on PostgreSQL — intake submissions and approvals, change requests and their
approval, searches and reveals — then every invariant checked (tests/stress/concurrency.py).

Figures: successful calls per second beside one session alone for the same time (the baseline in
the same run), p95 latency, calls refused as conflicts (the version checks at work), and the goals
that must hold exactly: no error reaches a caller ("database is locked" included), no lost update,
a gapless audit chain that verifies. RK_BENCH_CONC_PROCESSES (16) and RK_BENCH_CONC_SECONDS (60)
change the size; RK_BENCH_DATABASE (default postgresql://postgres@127.0.0.1:5432/test) the server.
"""

from __future__ import annotations

import os

import pytest

from tests.benchmarks.figures import record
from tests.postgres.test_model_suites_on_postgres import _reachable
from tests.stress.concurrency import run_concurrency

PROCESSES = int(os.environ.get("RK_BENCH_CONC_PROCESSES", "16"))
SECONDS = float(os.environ.get("RK_BENCH_CONC_SECONDS", "60"))
BASELINE_SECONDS = float(os.environ.get("RK_BENCH_CONC_BASELINE_SECONDS", "20"))
SERVER = os.environ.get("RK_BENCH_DATABASE", "postgresql://postgres@127.0.0.1:5432/test")


def _run(tmp_path, engine: str, server: str) -> None:
    alone = run_concurrency(tmp_path / "alone", processes=3, seconds=BASELINE_SECONDS, server_url=server)
    # three processes (clerk, reviewer, supervisor) is the smallest crew that exercises every call;
    # its rate per process is the one-session baseline
    per_session = alone.ok_ops / BASELINE_SECONDS / 3
    report = run_concurrency(tmp_path / "many", processes=PROCESSES, seconds=SECONDS, server_url=server)
    print("\n" + alone.summary() + "\n" + report.summary())
    throughput = report.ok_ops / SECONDS
    record(f"{engine}: successful calls/s, {PROCESSES} processes × {SECONDS:.0f} s", throughput, "calls/s",
           baseline=per_session, baseline_label="one session alone")
    p95 = max((f["p95"] for f in report.latency.values()), default=0.0)
    record(f"{engine}: slowest call type, p95 latency under load", p95, "ms",
           note=", ".join(f"{op} {f['p95']:.0f}" for op, f in sorted(report.latency.items())))
    record(f"{engine}: errors reaching a caller (database is locked, deadlock, …)", report.count("error"), "",
           goal=("==", 0), note=f"{report.all_ops} calls")
    record(f"{engine}: lost updates, gaps or bad links in the audit chain", len(report.problems), "",
           goal=("==", 0), note=f"{report.audit_entries} audit entries; {report.approved_changes} changes "
                                f"applied; {report.customers_created} customers created")
    record(f"{engine}: concurrent decisions refused as conflicts (version checks)", report.count("conflict")
           + report.count("stale"), "", note="another session decided first: refused, never overwritten")
    assert report.problems == [] and report.count("error") == 0, report.summary()


def test_concurrency_sqlite(tmp_path):
    _run(tmp_path, "SQLite", "")


def test_concurrency_postgresql(tmp_path):
    problem = _reachable(SERVER)
    if problem:
        pytest.skip(f"no PostgreSQL server at {SERVER}: {problem}")
    _run(tmp_path, "PostgreSQL", SERVER)
