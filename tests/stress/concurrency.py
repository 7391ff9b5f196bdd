"""N staff sessions as real processes on one office at once, then every invariant checked.

`run_concurrency()` builds an office (SQLite, or a fresh PostgreSQL schema), starts the workers of
`tests/stress/worker.py` together, waits, and checks afterwards:
- no call failed with anything but an expected refusal (no "database is locked", no deadlock);
- the database passes its integrity check (SQLite: main database and key store);
- the audit chain verifies, its sequence is gapless, and each successful call has exactly its entry;
- no lost update: each customer's version is 1 + its approved change requests, their versions are
  2…n with none twice, and the stored mobile is the one the last approved request proposed;
- every approved submission became exactly one customer.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tests.stress.office import StressOffice, build_office, drop_pg_schema, new_pg_schema

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ConcurrencyReport:
    engine: str
    processes: int
    seconds: float
    wall_seconds: float
    outcomes: dict[str, dict[str, int]]
    latency: dict[str, dict[str, float]]  # op -> p50, p95, max (ms)
    errors: list[str]
    problems: list[str] = field(default_factory=list)
    audit_entries: int = 0
    customers_created: int = 0
    approved_changes: int = 0

    @property
    def ok_ops(self) -> int:
        return sum(c.get("ok", 0) + c.get("rejected", 0) for c in self.outcomes.values())

    @property
    def all_ops(self) -> int:
        return sum(sum(c.values()) for c in self.outcomes.values())

    def count(self, outcome: str) -> int:
        return sum(c.get(outcome, 0) for c in self.outcomes.values())

    @property
    def locked_errors(self) -> int:
        from tests.stress.worker import TRANSIENT_MARKERS

        return sum(1 for e in self.errors if any(m in e.lower() for m in TRANSIENT_MARKERS))

    def summary(self) -> str:
        lines = [f"{self.engine}: {self.processes} processes for {self.seconds:.0f} s "
                 f"(wall {self.wall_seconds:.0f} s): {self.all_ops} calls, {self.ok_ops / self.seconds:.1f} "
                 f"successful per second; conflicts caught {self.count('conflict')}, stale forms "
                 f"{self.count('stale')}, duplicates {self.count('duplicate')}, errors {self.count('error')} "
                 f"(locked/deadlock {self.locked_errors}); audit entries {self.audit_entries}; customers created "
                 f"{self.customers_created}; change requests applied {self.approved_changes}"]
        for op, figures in sorted(self.latency.items()):
            lines.append(f"  {op:<15} n={sum(self.outcomes[op].values()):>5}  p50 {figures['p50']:7.1f} ms  "
                         f"p95 {figures['p95']:7.1f} ms  max {figures['max']:7.1f} ms  {dict(self.outcomes[op])}")
        lines += [f"  ERROR {e}" for e in self.errors[:10]]
        lines += [f"  PROBLEM {p}" for p in self.problems]
        return "\n".join(lines)


def _roles(processes: int) -> list[str]:
    reviewers = max(1, processes // 4)
    supervisors = max(1, processes // 4)
    clerks = max(1, processes - reviewers - supervisors)
    return ["clerk"] * clerks + ["reviewer"] * reviewers + ["supervisor"] * supervisors


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def run_concurrency(base: Path, *, processes: int, seconds: float, server_url: str = "",
                    customers: int = 40) -> ConcurrencyReport:
    """Run the workload and check the office; `server_url` (postgresql://…) runs it on PostgreSQL."""
    roles = _roles(processes)
    schema = ""
    database_url = ""
    if server_url:
        schema, database_url = new_pg_schema(server_url)
    try:
        stress = build_office(base / "office", database_url, clerks=roles.count("clerk"),
                              reviewers=roles.count("reviewer"), supervisors=roles.count("supervisor"),
                              customers=customers)
        results = _run_workers(stress, base, roles, seconds)
        report = _merge(results, "PostgreSQL" if server_url else "SQLite", processes, seconds)
        report.problems += _check_office(stress, report)
        return report
    finally:
        if schema:
            drop_pg_schema(server_url, schema)


def _run_workers(stress: StressOffice, base: Path, roles: list[str], seconds: float) -> tuple[list[dict], float]:
    out_dir = base / "results"
    out_dir.mkdir(exist_ok=True)
    counters: Counter = Counter()
    start_at = time.time() + 3 + 0.4 * len(roles)  # every process opened and logged in before any begins
    procs = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for index, role in enumerate(roles):
        counters[role] += 1
        user = f"{role}{counters[role]}"
        out = out_dir / f"{user}.json"
        log = open(out_dir / f"{user}.log", "w")
        procs.append((subprocess.Popen(
            [sys.executable, "-m", "tests.stress.worker", "--home", str(stress.home), "--url", stress.database_url,
             "--user", user, "--role", role, "--seconds", str(seconds), "--seed", str(1000 + index),
             "--out", str(out), "--start-at", str(start_at)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), out, log))
    results = []
    for proc, out, log in procs:
        try:
            proc.wait(timeout=seconds + 180)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if proc.returncode != 0 or not out.exists():
            results.append({"user": out.stem, "role": "?", "outcomes": {}, "latency_ms": {},
                            "errors": [f"worker {out.stem} exited {proc.returncode}: "
                                       + (out.with_suffix(".log").read_text()[-1500:])]})
        else:
            results.append(json.loads(out.read_text()))
    return results, time.time() - start_at


def _merge(run: tuple[list[dict], float], engine: str, processes: int, seconds: float) -> ConcurrencyReport:
    results, wall = run
    outcomes: dict[str, Counter] = defaultdict(Counter)
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    for result in results:
        for op, counts in result["outcomes"].items():
            outcomes[op].update(counts)
        for op, values in result["latency_ms"].items():
            latencies[op] += values
        errors += [f"{result['user']}: {e}" for e in result["errors"]]
    latency = {op: {"p50": statistics.median(v), "p95": _percentile(v, 0.95), "max": max(v)}
               for op, v in latencies.items() if v}
    return ConcurrencyReport(engine, processes, seconds, wall, {op: dict(c) for op, c in outcomes.items()},
                             latency, errors)


def _check_office(stress: StressOffice, report: ConcurrencyReport) -> list[str]:
    from models import audit, change_requests, customers, keystore, office as office_mod
    from models.audit import AuditEntry
    from models.change_requests import ChangeRequest
    from models.db import db, is_sqlite, keys_db
    from models.intake import IntakeSubmission

    problems: list[str] = []
    office_mod.open_office(stress.settings)
    try:
        if is_sqlite():
            for name, handle in (("database", db), ("key store", keys_db)):
                result = handle.execute_sql("PRAGMA integrity_check").fetchall()
                if result != [("ok",)]:
                    problems.append(f"{name} integrity check: {result[:3]}")
        chain = audit.verify_chain()
        count = AuditEntry.select().count()
        highest = AuditEntry.select(AuditEntry.seq).order_by(AuditEntry.seq.desc()).scalar() or 0
        report.audit_entries = count
        if not chain.ok:
            problems.append(f"audit chain broken at {chain.first_bad_seq}: {chain.reason}")
        if not (chain.entries == count == highest):
            problems.append(f"audit sequence has gaps: {count} entries, highest seq {highest}")

        def entries(action: str, outcome: str = "ok") -> int:
            return AuditEntry.select().where((AuditEntry.action == action) & (AuditEntry.outcome == outcome)).count()

        def done(op: str, outcome: str = "ok") -> int:
            return report.outcomes.get(op, {}).get(outcome, 0)

        for action, op, outcome in (("INTAKE_SUBMIT", "intake_submit", "ok"), ("INTAKE_APPROVE", "review", "ok"),
                                    ("CHANGE_REQUEST", "change_request", "ok"),
                                    ("CHANGE_APPROVE", "decide_change", "ok"),
                                    ("CHANGE_REJECT", "decide_change", "rejected"), ("REVEAL", "reveal", "ok"),
                                    ("SEARCH", "search", "ok")):
            if entries(action) != done(op, outcome):
                problems.append(f"{entries(action)} {action} audit entries for {done(op, outcome)} successful "
                                f"{op} calls")

        # No lost update: versions, the approved requests' versions, and the stored value itself.
        seeds = json.loads(stress.seed_file.read_text())
        applied_total = 0
        for seed in seeds:
            row = customers.Customer.select().where(customers.Customer.customer_no == seed["customer_no"]).get()
            approved = list(ChangeRequest.select().where((ChangeRequest.customer_id == row.id)
                                                         & (ChangeRequest.status == "approved"))
                            .order_by(ChangeRequest.applied_version))
            applied_total += len(approved)
            versions = [r.applied_version for r in approved]
            if row.version != 1 + len(approved) or versions != list(range(2, row.version + 1)):
                problems.append(f"{seed['customer_no']}: version {row.version} after approved versions {versions}")
                continue
            key = keystore.load_data_key(row.key_id)
            stored = customers.decrypt_fields(row.id, row.key_id, key, {"mobile": row.mobile}, ("mobile",))["mobile"]
            expected = (change_requests._open(key, approved[-1].key_id, approved[-1].id, "proposed",
                                              approved[-1].proposed)["mobile"] if approved else seed["mobile"])
            if stored != expected:
                problems.append(f"{seed['customer_no']}: the stored mobile is not the last approved proposal")
        report.approved_changes = applied_total

        approved_subs = list(IntakeSubmission.select().where(IntakeSubmission.status == "approved"))
        made = customers.Customer.select().count() - len(seeds)
        report.customers_created = made
        linked = {s.customer_id for s in approved_subs}
        if len(linked) != len(approved_subs) or made != len(approved_subs):
            problems.append(f"{len(approved_subs)} approved submissions but {made} new customers")
        if report.count("error"):
            problems.append(f"{report.count('error')} calls failed with an error")
    finally:
        office_mod.close_office()
    return problems
