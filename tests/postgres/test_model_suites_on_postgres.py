"""The model suites again, against a real PostgreSQL server.

In CI (CI=true) an unreachable server is a failure; elsewhere the suite is skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _server_url() -> str:
    return os.environ.get("RK_TEST_DATABASE_FOR_SUITE") or DEFAULT_URL


def _reachable(url: str) -> str | None:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure to connect is reported, not raised
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.mark.postgres
def test_model_suites_pass_on_postgresql():
    url = _server_url()
    problem = _reachable(url)
    if problem:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL at {url} is unreachable in CI: {problem}")
        pytest.skip(f"no PostgreSQL server at {url}: {problem}")
    env = {**os.environ, "RK_TEST_DATABASE": url}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/models", "-q", "-p", "no:cacheprovider", "-x"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
