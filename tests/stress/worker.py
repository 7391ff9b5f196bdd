"""One staff member's session as a separate process, working flat out until its time is up.

    python -m tests.stress.worker --home H [--url U] --user clerk3 --role clerk --seconds 60 --seed 3 --out F

Clerks submit intake forms, file change requests, search and reveal; reviewers approve from the
review queue; supervisors approve or reject change requests; everyone searches and reveals between.
Every call goes through the services exactly as the screens make it. Each outcome is counted:
`ok`, an expected refusal (`conflict`, `stale`, `duplicate`: another session got there first, which
the version checks must catch) or `error` (anything else — a "database is locked" among them).
The result is written as JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import traceback
from collections import defaultdict
from pathlib import Path

TRANSIENT_MARKERS = ("database is locked", "database is busy", "busy with other work", "deadlock detected",
                     "could not serialize",
                     "could not obtain lock", "lock timeout")


def _classify(exc: BaseException) -> str:
    from models.change_requests import ChangeConflict, StaleForm
    from models.errors import Conflict, ValidationError

    if isinstance(exc, StaleForm):
        return "stale"
    if isinstance(exc, (ChangeConflict, Conflict)):
        return "conflict"
    if isinstance(exc, ValidationError) and exc.errors and all(e.code == "duplicate" for e in exc.errors):
        return "duplicate"
    return "error"


class Session:
    def __init__(self, args):
        from faker import Faker

        from models import office, staff
        from tests.stress.office import PASSWORD, settings_for

        self.rng = random.Random(args.seed)
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(args.seed)
        office.open_office(settings_for(Path(args.home), args.url or ""))
        self.actor = staff.authenticate(args.user, PASSWORD)
        self.role = args.role
        self.seeds = json.loads((Path(args.home) / "stress-seeds.json").read_text())
        self.outcomes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.latency_ms: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.mobile_counter = 0

    # --- operations -------------------------------------------------------------------------

    def intake_submit(self) -> str:
        from models import intake
        from tests.stress.office import form_values

        intake.submit(self.actor, None, form_values(self.fake, self.rng))
        return "ok"

    def change_request(self) -> str:
        from models import change_requests, customers

        number = self.rng.choice(self.seeds)["customer_no"]
        version = customers.get_customer(self.actor, number).version
        self.mobile_counter += 1
        mobile = f"139{self.rng.randrange(10 ** 8):08d}"
        change_requests.submit_change_request(self.actor, number, version, {"mobile": mobile},
                                              source="clerk_correction", reason="客户来电更正手机号码")
        return "ok"

    def search(self) -> str:
        from models import customers

        seed = self.rng.choice(self.seeds)
        kind = self.rng.choice(("mobile", "full_name", "id_number", "customer_no"))
        customers.find_customers(self.actor, kind, seed[kind])
        return "ok"

    def reveal(self) -> str:
        from models import customers

        number = self.rng.choice(self.seeds)["customer_no"]
        customers.reveal_fields(self.actor, number, ["mobile", "id_number"], "stress: call the customer back")
        return "ok"

    def review(self) -> str:
        from models import intake

        queue = intake.review_queue(self.actor)
        if not queue:
            return "idle"
        item = self.rng.choice(queue[:8])  # reviewers tend to take from the oldest few
        intake.approve_submission(self.actor, item.submission_id, item.revision)
        return "ok"

    def decide_change(self) -> str:
        from models import change_requests

        queue = change_requests.approval_queue(self.actor, limit=20)
        if not queue:
            return "idle"
        item = self.rng.choice(queue)
        if self.rng.random() < 0.85:
            change_requests.approve_change_request(self.actor, item.request_id, "")
            return "ok"
        change_requests.reject_change_request(self.actor, item.request_id, "客户未能确认")
        return "rejected"

    MIX = {
        "clerk": (("intake_submit", 30), ("change_request", 25), ("search", 25), ("reveal", 20)),
        "reviewer": (("review", 60), ("search", 25), ("reveal", 15)),
        "supervisor": (("decide_change", 60), ("search", 25), ("reveal", 15)),
    }

    def run(self, seconds: float) -> None:
        names, weights = zip(*self.MIX[self.role])
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            op = self.rng.choices(names, weights)[0]
            start = time.perf_counter()
            try:
                outcome = getattr(self, op)()
            except Exception as exc:  # every failure is counted; the run goes on
                outcome = _classify(exc)
                if outcome == "error" and len(self.errors) < 50:
                    self.errors.append(f"{op}: {type(exc).__name__}: {str(exc)[:300]} | "
                                       + " < ".join(f"{f.name}:{f.lineno}" for f in
                                                    traceback.extract_tb(exc.__traceback__)[-4:]))
            if outcome == "idle":
                time.sleep(0.02)  # an empty queue: look again shortly, as a person would
                continue
            self.outcomes[op][outcome] += 1
            self.latency_ms[op].append((time.perf_counter() - start) * 1000)

    def report(self) -> dict:
        return {"user": self.actor.username, "role": self.role,
                "outcomes": {op: dict(counts) for op, counts in self.outcomes.items()},
                "latency_ms": dict(self.latency_ms), "errors": self.errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", required=True)
    parser.add_argument("--url", default="")
    parser.add_argument("--user", required=True)
    parser.add_argument("--role", required=True, choices=sorted(Session.MIX))
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True)
    parser.add_argument("--start-at", type=float, default=0.0, help="time.time() at which to begin (all at once)")
    args = parser.parse_args(argv)
    session = Session(args)
    if args.start_at:
        time.sleep(max(0.0, args.start_at - time.time()))
    session.run(args.seconds)
    Path(args.out).write_text(json.dumps(session.report(), ensure_ascii=False))
    from models import office

    office.close_office()
    return 0


if __name__ == "__main__":
    sys.exit(main())
