"""Concurrent sessions as real processes, short enough for CI (the long run is bench_concurrency).

A few clerks, a reviewer and a supervisor work flat out on one office — intake submissions and
approvals, change requests and their approval, searches and reveals — on SQLite and on PostgreSQL.
Afterwards: no call failed with anything but an expected refusal (no "database is locked", no
deadlock), the database is intact, the audit chain verifies without gaps with one entry per
successful call, and no update was lost (security test T18). See tests/stress/concurrency.py.
"""

from __future__ import annotations

import os

import pytest

from tests.postgres.test_model_suites_on_postgres import _reachable, _server_url
from tests.stress.concurrency import run_concurrency

PROCESSES = int(os.environ.get("RK_CI_CONCURRENCY_PROCESSES", "5"))
SECONDS = float(os.environ.get("RK_CI_CONCURRENCY_SECONDS", "20"))


def _check(report) -> None:
    print("\n" + report.summary())
    assert report.problems == [], report.summary()
    assert report.locked_errors == 0 and report.count("error") == 0
    for op in ("intake_submit", "review", "change_request", "decide_change", "search", "reveal"):
        assert report.outcomes.get(op, {}).get("ok", 0) > 0, f"no successful {op}: the run proves nothing"


def test_concurrent_sessions_on_sqlite(tmp_path):
    _check(run_concurrency(tmp_path, processes=PROCESSES, seconds=SECONDS))


@pytest.mark.postgres
def test_concurrent_sessions_on_postgresql(tmp_path):
    url = _server_url()
    problem = _reachable(url)
    if problem:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL at {url} is unreachable in CI: {problem}")
        pytest.skip(f"no PostgreSQL server at {url}: {problem}")
    _check(run_concurrency(tmp_path, processes=PROCESSES, seconds=SECONDS, server_url=url))
