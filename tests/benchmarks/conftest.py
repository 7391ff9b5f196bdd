"""`make bench`: every benchmark's figures in one table, printed at the end and written as JSON.

Benchmarks call `tests.benchmarks.figures.record(...)`; a benchmark test that records nothing still
appears with its outcome. RK_BENCH_JSON names the JSON file (default bench-results.json at the top
of the repository); `python -m tests.benchmarks.run_all --markdown` renders it for the README.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.benchmarks import figures

ROOT = Path(__file__).resolve().parents[2]
_outcomes: list[tuple[str, str, float]] = []
_recorded_by: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _note_figures(request):
    before = len(figures.FIGURES)
    yield
    _recorded_by[request.node.nodeid] = len(figures.FIGURES) - before
    for figure in figures.FIGURES[before:]:
        figure.source = figure.source or request.node.module.__name__.rsplit(".", 1)[-1]


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _outcomes.append((report.nodeid, report.outcome, report.duration))


def pytest_terminal_summary(terminalreporter):
    results = {nodeid: outcome for nodeid, outcome, _ in _outcomes}
    for nodeid, outcome in results.items():
        if not _recorded_by.get(nodeid):
            name = nodeid.split("::")[-1]
            figures.FIGURES.append(figures.Figure(name, 1.0 if outcome == "passed" else 0.0, "",
                                                  source=nodeid.split("::")[0].rsplit("/", 1)[-1],
                                                  note=f"benchmark {outcome} (no figures recorded)",
                                                  met=None if outcome == "passed" else False))
    if not figures.FIGURES:
        return
    path = Path(os.environ.get("RK_BENCH_JSON", ROOT / "bench-results.json"))
    figures.write_json(path, figures.FIGURES, {"tests": results})
    terminalreporter.write_sep("=", "benchmark figures")
    terminalreporter.write_line(figures.text_table(figures.FIGURES))
    unmet = [f for f in figures.FIGURES if f.met is False]
    terminalreporter.write_line(f"\n{len(figures.FIGURES)} figures, {len(unmet)} goals not met; written to {path}")
