"""kill -9 at random moments during writes, approvals, imports, destruction and backups.

Each iteration starts a victim process (`python -m tests.stress.crash victim …`) that opens the
office, says "ready" and then works flat out at one kind of operation; after a random delay the
parent sends SIGKILL. Then, before anything else touches the files, `PRAGMA integrity_check` of the
database and the key store; then the office is opened (the start-up replay runs, as it would for
the next clerk) and every invariant is checked:

- the audit chain verifies and is gapless;
- all-or-nothing with the audit entry: one INTAKE_DRAFT_CREATE per submission, one INTAKE_SUBMIT
  per revision, one INTAKE_APPROVE per approved submission and one customer for each; one
  CHANGE_REQUEST per request, one CHANGE_APPROVE per approved request and the customer's version
  moved exactly that often; one CUSTOMER_IMPORT entry per imported chunk covering exactly the
  customers it carries; every destruction step that is recorded has happened (key gone, rows gone,
  register entry, DESTROY_DONE) and nothing happened that is not recorded; every backup with a
  manifest verifies;
- resumable work resumes: the next victim carries on the same import file and the same destruction
  requests, and at the end one more uninterrupted run finishes both (every row of the file imported
  exactly once, every approved customer destroyed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ("write", "approve", "import", "destroy", "backup")
IMPORT_ROWS = 12000
MAX_DELAY = {"write": 1.0, "approve": 1.2, "import": 3.0, "destroy": 1.2, "backup": 0.8}


@dataclass
class CrashReport:
    iterations: int = 0
    kills: Counter = field(default_factory=Counter)
    finished_before_kill: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    imported: int = 0
    destroyed: int = 0
    backups_verified: int = 0
    unaudited_backups: int = 0
    leftover_tmp_files: int = 0

    def summary(self) -> str:
        lines = [f"{self.iterations} kill -9 iterations in {self.seconds:.0f} s: "
                 + ", ".join(f"{op} {n}" for op, n in sorted(self.kills.items()))
                 + f"; victims that finished first: {sum(self.finished_before_kill.values())}; "
                 f"imported {self.imported} (file of {IMPORT_ROWS}), destroyed {self.destroyed}, backups verified "
                 f"{self.backups_verified} (complete but unaudited {self.unaudited_backups}, leftover .tmp "
                 f"{self.leftover_tmp_files})"]
        lines += [f"  PROBLEM {p}" for p in self.problems[:30]]
        return "\n".join(lines)


# --- the victim ---------------------------------------------------------------------------------


def _actors():
    from models import staff
    from tests.stress.office import PASSWORD

    return {name: staff.authenticate(name, PASSWORD) for name in ("clerk1", "reviewer1", "supervisor1", "officer1")}


def victim(home: Path, op: str, seed: int) -> None:
    from faker import Faker

    from models import backup, change_requests, customers, destruction, importer, intake, office
    from tests.stress.office import form_values, settings_for

    office.open_office(settings_for(home))
    actors = _actors()
    clerk, reviewer, supervisor, officer = (actors[n] for n in ("clerk1", "reviewer1", "supervisor1", "officer1"))
    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    seeds = json.loads((home / "stress-seeds.json").read_text())
    print("ready", flush=True)
    while True:
        if op == "write":
            draft = intake.save_draft(clerk, None, form_values(fake, rng))
            intake.submit(clerk, draft.submission_id, form_values(fake, rng))
            number = rng.choice(seeds)["customer_no"]
            version = customers.get_customer(clerk, number).version
            change_requests.submit_change_request(clerk, number, version, {"mobile": f"139{rng.randrange(10**8):08d}"},
                                                  source="clerk_correction", reason="客户来电更正手机号码")
        elif op == "approve":
            queue = intake.review_queue(reviewer)
            if not queue:
                intake.submit(clerk, None, form_values(fake, rng))
                continue
            intake.approve_submission(reviewer, queue[0].submission_id, queue[0].revision)
            pending = change_requests.approval_queue(supervisor, limit=5)
            if pending:
                try:
                    change_requests.approve_change_request(supervisor, pending[0].request_id)
                except change_requests.ChangeConflict:
                    change_requests.reject_change_request(supervisor, pending[0].request_id, "记录已变更")
            else:
                number = rng.choice(seeds)["customer_no"]
                version = customers.get_customer(clerk, number).version
                change_requests.submit_change_request(clerk, number, version,
                                                      {"mobile": f"138{rng.randrange(10**8):08d}"},
                                                      source="clerk_correction", reason="客户来电更正手机号码")
        elif op == "import":
            importer.import_customers(clerk, home / "legacy.csv", batch_rows=100, workers=0)
            print("finished", flush=True)
            return
        elif op == "destroy":
            destruction.execute_approved(officer)
            print("finished", flush=True)
            return
        elif op == "backup":
            backup.take_backup(home / "backups", home / "key-backups")


# --- setting up ---------------------------------------------------------------------------------


def prepare(home: Path, *, destroy_customers: int, requests: int) -> None:
    """The office, its staff and customers, an import file, and approved destruction requests."""
    from faker import Faker

    from models import bulkgen, clock, customers, demo, destruction, office, retention
    from tests.stress.office import build_office, settings_for

    build_office(home, clerks=1, reviewers=1, supervisors=1, officers=1, customers=30)
    office.open_office(settings_for(home))
    try:
        actors = _actors()
        fake, rng = Faker("zh_CN"), random.Random(77)
        fake.seed_instance(77)
        numbers = [customers.create_customer(actors["clerk1"], {**demo.fake_customer(fake, rng, clock.today()),
                                                               "category": "active"}).customer_no
                   for _ in range(destroy_customers)]
        for number in numbers:
            retention.record_termination(actors["officer1"], number, "2014-06-30", False)
        per_request = max(1, len(numbers) // max(1, requests))
        for start in range(0, len(numbers), per_request):
            request = destruction.file_request(actors["officer1"], numbers[start:start + per_request],
                                               "retention period over")
            destruction.decide_request(actors["supervisor1"], request.request_no, True, "checked the list")
        bulkgen.write_import_file(home / "legacy.csv", IMPORT_ROWS, seed=5)
    finally:
        office.close_office()


# --- checking -----------------------------------------------------------------------------------


def _integrity(home: Path) -> list[str]:
    problems = []
    for name in ("recordkeeper.db", "keys/keystore.db"):
        conn = sqlite3.connect(home / name, timeout=30)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
        if result != [("ok",)]:
            problems.append(f"{name}: integrity check {result[:3]}")
    return problems


def check(home: Path, report: CrashReport | None = None) -> list[str]:
    """Every invariant of the module docstring, on the office as the next clerk would open it."""
    from models import audit, backup, destruction, keystore, ledger, office
    from models.audit import AuditEntry
    from models.change_requests import ChangeRequest
    from models.customers import Customer
    from models.destruction import DestructionItem, DestructionRegister
    from models.importer import ImportBatch
    from models.intake import IntakeRevision, IntakeSubmission
    from tests.stress.office import settings_for

    problems = _integrity(home)
    office.open_office(settings_for(home))  # the start-up replay of the destruction ledger runs here
    try:
        chain = audit.verify_chain()
        total = AuditEntry.select().count()
        if not chain.ok or chain.entries != total:
            problems.append(f"audit chain: ok={chain.ok} at {chain.first_bad_seq} {chain.reason}; "
                            f"{chain.entries} of {total}")

        def entries(action: str, outcome: str = "ok", **where) -> int:
            query = AuditEntry.select().where((AuditEntry.action == action) & (AuditEntry.outcome == outcome))
            for column, value in where.items():
                query = query.where(getattr(AuditEntry, column) == value)
            return query.count()

        def same(what: str, audited: int, done: int) -> None:
            if audited != done:
                problems.append(f"{what}: {audited} audit entries for {done} done")

        same("drafts", entries("INTAKE_DRAFT_CREATE"), IntakeSubmission.select().count())
        same("submissions", entries("INTAKE_SUBMIT"), IntakeRevision.select().count())
        approved = IntakeSubmission.select().where(IntakeSubmission.status == "approved")
        same("intake approvals", entries("INTAKE_APPROVE"), approved.count())
        orphans = [s.id for s in approved if not Customer.select().where(Customer.id == s.customer_id).exists()
                   and not DestructionRegister.select().where(DestructionRegister.customer_id == s.customer_id)
                   .exists()]
        if orphans:
            problems.append(f"{len(orphans)} approved submissions without their customer")
        same("change requests", entries("CHANGE_REQUEST"), ChangeRequest.select().count())
        same("change approvals", entries("CHANGE_APPROVE"),
             ChangeRequest.select().where(ChangeRequest.status == "approved").count())
        same("change rejections", entries("CHANGE_REJECT"),
             ChangeRequest.select().where(ChangeRequest.status == "rejected").count())
        seeds = [s["customer_no"] for s in json.loads((home / "stress-seeds.json").read_text())]
        for row in Customer.select(Customer.id, Customer.customer_no, Customer.version).where(
                Customer.customer_no.in_(seeds)):  # only change requests move these customers' versions
            applied = ChangeRequest.select().where((ChangeRequest.customer_id == row.id)
                                                   & (ChangeRequest.status == "approved")).count()
            if row.version != 1 + applied:
                problems.append(f"{row.customer_no}: version {row.version} after {applied} approved changes")

        # imports: each committed chunk carries its audit entry and exactly its customers
        for batch in ImportBatch.select():
            chunks = AuditEntry.select().where((AuditEntry.action == "CUSTOMER_IMPORT")
                                               & (AuditEntry.object_id == batch.id))
            audited = sum(json.loads(e.details)["count"] for e in chunks)
            stored = Customer.select().where(Customer.import_batch == batch.id).count()
            if audited != stored:
                problems.append(f"import batch: {audited} customers audited, {stored} stored")

        # destruction: what is recorded has happened, and nothing more
        entries_by_customer = {e["customer_id"]: e for e in ledger.read_entries()}
        for item in DestructionItem.select():
            gone = not Customer.select().where(Customer.id == item.customer_id).exists()
            keys_left = [k for k in json.loads(item.key_ids or "[]")
                         if keystore.DataKey.select().where(keystore.DataKey.key_id == k).exists()]
            if item.customer_id in entries_by_customer and keys_left:
                problems.append(f"{item.customer_no}: in the ledger but its data key is still there")
            if item.step in ("key_destroyed", "rows_deleted", "registered", "done") and keys_left:
                problems.append(f"{item.customer_no}: step {item.step} but the data key is still there")
            if item.step in ("rows_deleted", "registered", "done") and not gone:
                problems.append(f"{item.customer_no}: step {item.step} but the rows are still there")
            if item.step == "done":
                if entries("DESTROY_DONE", object_id=item.customer_no) != 1:
                    problems.append(f"{item.customer_no}: done without exactly one DESTROY_DONE entry")
                if not DestructionRegister.select().where(DestructionRegister.customer_id == item.customer_id).exists():
                    problems.append(f"{item.customer_no}: done without a register entry")
            if item.step in ("pending", "intent") and gone:
                problems.append(f"{item.customer_no}: rows gone at step {item.step}")
            if item.step == "pending" and item.customer_id in entries_by_customer:
                problems.append(f"{item.customer_no}: in the ledger at step pending")
        if ledger.keystore_mark() != ledger.tail() or ledger.database_mark() != ledger.tail():
            problems.append("after the start-up replay the marks do not match the ledger")

        # backups: every one with a manifest verifies
        verified = unaudited = 0
        folder = home / "backups"
        for path in sorted(folder.glob("*.db")) if folder.exists() else []:
            if not backup.manifest_path(path).exists():
                continue  # killed before its manifest: not a backup, never offered for restore
            result = backup.verify_backup(path)
            if not result.ok:
                problems.append(f"backup {path.name}: {result.problems}")
            verified += 1
            stamp = path.name[len(backup.DB_PREFIX):-len(".db")]
            if not AuditEntry.select().where((AuditEntry.action == "BACKUP") & (AuditEntry.object_id == stamp)).exists():
                unaudited += 1
        if report is not None:
            report.backups_verified = verified
            report.unaudited_backups = unaudited
            report.leftover_tmp_files = sum(len(list(d.glob("*.tmp"))) for d in (folder, home / "key-backups")
                                            if d.exists())
            report.destroyed = DestructionItem.select().where(DestructionItem.step == "done").count()
            report.imported = Customer.select().where(Customer.import_batch.is_null(False)).count()
    finally:
        office.close_office()
    return problems


def finish(home: Path) -> list[str]:
    """One uninterrupted run of the resumable work: the import and every destruction complete."""
    from models import destruction, importer, office
    from models.customers import Customer
    from models.destruction import DestructionItem
    from tests.stress.office import settings_for

    problems = []
    office.open_office(settings_for(home))
    try:
        actors = _actors()
        importer.import_customers(actors["clerk1"], home / "legacy.csv", batch_rows=100, workers=0)
        destruction.execute_approved(actors["officer1"])
        imported = Customer.select().where(Customer.import_batch.is_null(False)).count()
        if imported != IMPORT_ROWS:
            problems.append(f"after resuming, {imported} of the file's {IMPORT_ROWS} rows imported")
        left = DestructionItem.select().where(DestructionItem.step.not_in(("done", "excluded"))).count()
        if left:
            problems.append(f"after resuming, {left} destruction items unfinished")
    finally:
        office.close_office()
    return problems


# --- the driver ---------------------------------------------------------------------------------


def _victim_process(home: Path, op: str, seed: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RK_TEST_DATABASE", None)
    return subprocess.Popen([sys.executable, "-m", "tests.stress.crash", "victim", str(home), op, str(seed)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_crashes(base: Path, iterations: int, *, seed: int = 2026, check_every: int = 1) -> CrashReport:
    """`iterations` kills spread over the five kinds of work, checked after each (or every `check_every`)."""
    rng = random.Random(seed)
    home = base / "office"
    started = time.monotonic()
    per_op = max(1, iterations // len(OPERATIONS))
    prepare(home, destroy_customers=max(150, per_op * 50), requests=max(2, per_op // 2))
    report = CrashReport()
    plan = [OPERATIONS[i % len(OPERATIONS)] for i in range(iterations)]
    rng.shuffle(plan)
    for n, op in enumerate(plan, start=1):
        proc = _victim_process(home, op, rng.randrange(10**6))
        line = proc.stdout.readline() if select.select([proc.stdout], [], [], 120)[0] else ""
        if line.strip() != "ready":
            proc.kill()
            _out, err = proc.communicate()
            report.problems.append(f"{op} victim did not start: {line!r} {err[-800:]}")
            continue
        time.sleep(rng.uniform(0.0, MAX_DELAY[op]))  # the random point of the kill
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            report.kills[op] += 1
        else:
            report.finished_before_kill[op] += 1
        _out, err = proc.communicate()
        if proc.returncode not in (0, -signal.SIGKILL):
            report.problems.append(f"{op} victim failed by itself ({proc.returncode}): {err[-1500:]}")
        report.iterations += 1
        if n % check_every == 0 or n == len(plan):
            found = check(home, report)
            report.problems += [f"after kill {n} ({op}): {p}" for p in found]
            if found:
                break
    report.problems += finish(home)
    report.problems += check(home, report)
    report.seconds = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("victim")
    v.add_argument("home")
    v.add_argument("op", choices=OPERATIONS)
    v.add_argument("seed", type=int)
    r = sub.add_parser("run")
    r.add_argument("base")
    r.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args(argv)
    if args.command == "victim":
        victim(Path(args.home), args.op, args.seed)
        return 0
    report = run_crashes(Path(args.base), args.iterations)
    print(report.summary())
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
