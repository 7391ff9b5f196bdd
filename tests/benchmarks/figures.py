"""The benchmark table: every benchmark records its figures here; `make bench` prints them as one table
and writes them as JSON (tests/benchmarks/conftest.py).

    from tests.benchmarks.figures import record
    record("search by ID, median", 12.3, "ms", goal=("<=", 20), baseline=1.1,
           baseline_label="raw SQL lookup", source=__name__)

`goal` is (operator, number) against the value, or against value/baseline with `goal_on="ratio"`
(e.g. start-up at most 1.3× a bare Textual app). A figure without a goal is reported, not judged.
"""

from __future__ import annotations

import json
import operator
import os
import platform
import sqlite3
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    goal: str = ""
    goal_on: str = "value"  # "value" or "ratio"
    baseline: float | None = None
    baseline_label: str = ""
    ratio: float | None = None
    met: bool | None = None
    source: str = ""
    note: str = ""

    def goal_text(self) -> str:
        if not self.goal:
            return ""
        return f"{self.goal}×" if self.goal_on == "ratio" else f"{self.goal} {self.unit}".strip()


FIGURES: list[Figure] = []


def record(name: str, value: float, unit: str = "", *, goal: tuple[str, float] | None = None,
           goal_on: str = "value", baseline: float | None = None, baseline_label: str = "", source: str = "",
           note: str = "") -> Figure:
    """Add one figure to this run's table (and return it)."""
    ratio = value / baseline if baseline not in (None, 0) else None
    met = None
    goal_text = ""
    if goal is not None:
        op, target = goal
        goal_text = f"{op} {target:g}"
        subject = ratio if goal_on == "ratio" else value
        met = bool(_OPS[op](subject, target)) if subject is not None else None
    figure = Figure(name, float(value), unit, goal_text, goal_on, baseline, baseline_label, ratio, met,
                    source.rsplit(".", 1)[-1], note)
    FIGURES.append(figure)
    return figure


def _command(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict:
    """What the figures were measured on."""
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    memory_gb = None
    try:
        kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
        memory_gb = round(kib / 1024 / 1024, 1)
    except (OSError, StopIteration):
        pass
    postgres = ""
    url = os.environ.get("RK_BENCH_DATABASE") or os.environ.get("PG_TEST_URL") or \
        "postgresql://postgres@127.0.0.1:5432/test"
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3) as conn:
            postgres = conn.execute("SHOW server_version").fetchone()[0]
    except Exception:  # no server: say so in the table
        postgres = "not reachable"
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_gb,
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "postgresql": postgres,
            "tmp_filesystem": " ".join(_command(["df", "-h", "--output=fstype,size", "/tmp"]).splitlines()[-1:])}


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}" if value != int(value) else f"{int(value)}"


def table_rows(figures: list[Figure]) -> list[tuple[str, ...]]:
    rows = []
    for f in figures:
        status = "" if f.met is None else ("met" if f.met else "NOT MET")
        baseline = f"{_fmt(f.baseline)} ({f.baseline_label})" if f.baseline is not None else ""
        rows.append((f.name, f"{_fmt(f.value)} {f.unit}".strip(), f.goal_text(), baseline,
                     f"{f.ratio:.2f}" if f.ratio is not None else "", status, f.note))
    return rows


HEADER = ("figure", "value", "goal", "baseline (same run)", "ratio", "", "note")


def text_table(figures: list[Figure]) -> str:
    rows = [HEADER, *table_rows(figures)]
    from rich.cells import cell_len

    widths = [max(cell_len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell + " " * (widths[i] - cell_len(cell)) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(figures: list[Figure]) -> str:
    rows = table_rows(figures)
    out = ["| figure | value | goal | baseline (same run) | ratio | met | note |", "|---|---|---|---|---|---|---|"]
    out += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(out)


def write_json(path: Path, figures: list[Figure], extra: dict | None = None) -> None:
    import datetime as dt

    data = {"measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
            "figures": [asdict(f) for f in figures], **(extra or {})}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def load_json(path: Path) -> tuple[dict, list[Figure]]:
    data = json.loads(path.read_text())
    return data, [Figure(**f) for f in data["figures"]]


__all__ = ["FIGURES", "Figure", "markdown_table", "record", "text_table", "write_json"]
