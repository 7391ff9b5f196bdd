"""Sub-commands for retention, destruction, backups and restores (`recordkeeper retention …` and friends).

They call the same services as the screens; retention and destruction authenticate the acting staff
member, backup and restore run as the service account (like `migrate`) and are audited as "system".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.settings import Settings


def _cli():
    from tui import cli

    return cli


def _actor(settings: Settings, args):
    cli = _cli()
    cli._open(settings)
    return cli._login(args.as_user, args.password_stdin)


def _add_login(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as", dest="as_user", required=True, help="the acting staff member's username")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def add_parsers(sub) -> None:
    p = sub.add_parser("retention", help="retention sweep and rules, terminations, legal holds")
    _add_login(p)
    rs = p.add_subparsers(dest="retention_command", required=True)
    q = rs.add_parser("sweep", help="customers past retention and not held; file a request; execute approved ones")
    q.add_argument("--request", metavar="REASON", help="file one destruction request for every eligible customer")
    q.add_argument("--execute", action="store_true",
                   help="execute every approved request and resume interrupted runs (irreversible)")
    q.add_argument("--limit", type=int, default=1000, help="list at most this many (default 1000)")
    q = rs.add_parser("rules", help="show the retention rules; an admin may change a period")
    q.add_argument("--set", metavar="RULE=YEARS", action="append", default=[],
                   help="e.g. terminated_short=7 (never below the legal minimum)")
    q = rs.add_parser("terminate", help="record that a customer's last contract ended")
    q.add_argument("customer_no")
    q.add_argument("--on", dest="terminated_on", required=True, metavar="YYYY-MM-DD")
    term = q.add_mutually_exclusive_group(required=True)
    term.add_argument("--long", dest="long_policy", action="store_true", help="a policy ran longer than one year")
    term.add_argument("--short", dest="long_policy", action="store_false", help="every policy was a year or less")
    q = rs.add_parser("hold", help="place a legal hold")
    q.add_argument("customer_no")
    q.add_argument("--reason", required=True,
                   help="open_claim, dispute, regulator_request, aml_investigation or other")
    q.add_argument("--note", default="")
    q = rs.add_parser("release", help="release a legal hold (supervisor)")
    q.add_argument("hold_id")
    q.add_argument("--note", required=True)
    rs.add_parser("holds", help="list active legal holds")

    p = sub.add_parser("destruction", help="destruction requests, approval, execution, the register")
    _add_login(p)
    ds = p.add_subparsers(dest="destruction_command", required=True)
    q = ds.add_parser("register", help="the destruction register; --certificate writes one request's certificate")
    q.add_argument("--request", default="", help="only this request")
    q.add_argument("--certificate", metavar="REQUEST", help="write the certificate of destruction of a request")
    q.add_argument("--out", type=Path, help="certificate file (default: the export folder)")
    ds.add_parser("list", help="destruction requests")
    q = ds.add_parser("show", help="a request and its customers")
    q.add_argument("request")
    for name, text in (("approve", "approve a request (supervisor, not the requester)"),
                       ("reject", "reject a request (supervisor, not the requester)")):
        q = ds.add_parser(name, help=text)
        q.add_argument("request")
        q.add_argument("--note", required=True)
    q = ds.add_parser("withdraw", help="withdraw your own request before it is decided")
    q.add_argument("request")
    q = ds.add_parser("execute", help="execute an approved request or resume an interrupted one (irreversible)")
    q.add_argument("request")

    p = sub.add_parser("backup", help="back up the database; the key store goes to its own folder")
    p.add_argument("dest", nargs="?", type=Path, help="folder for database backups (default: DATA/backups)")
    p.add_argument("--keys-dest", type=Path, help="folder for key-store backups (default: DATA/keys/backups)")
    p.add_argument("--keep", type=int, help="keep only the newest N database backups")
    p.add_argument("--keys-days", type=int, default=30, help="delete key-store backups older than this (1-30)")
    p.add_argument("--verify", type=Path, metavar="FILE", help="check one backup against its manifest instead")

    p = sub.add_parser("restore", help="restore a backup; replays the destruction ledger before anyone is served")
    p.add_argument("file", type=Path, help="a database backup (.db or .pgdump)")
    p.add_argument("--force", action="store_true", help="restore into place (stop RecordKeeper first)")
    p.add_argument("--to", type=Path, help="new data directory (without --force; default DATA/restored/TIME)")
    p.add_argument("--keys", type=Path, help="also restore this key-store backup")
    p.add_argument("--ledger", type=Path, action="append", default=[],
                   help="another copy of the destruction ledger to merge (e.g. from the newest backup)")


def _fmt_date(value) -> str:
    return value.isoformat() if value else "—"


def cmd_retention(settings: Settings, args) -> int:
    from models import destruction, retention

    actor = _actor(settings, args)
    command = args.retention_command
    if command == "sweep":
        result = destruction.retention_sweep(actor, limit=args.limit)
        print(f"as of {result.as_of}: {result.eligible_total} eligible, {result.held_past_retention} past retention "
              f"but on legal hold, {result.already_requested} already in a request")
        for entry in result.eligible:
            print(f"{entry.customer_no:<14} {entry.category:<11} {entry.why()}")
        if args.request:
            if not result.eligible:
                print("nothing to request")
            else:
                numbers = [e.customer_no for e in destruction.retention_sweep(actor, limit=10000).eligible]
                request = destruction.file_request(actor, numbers, args.request)
                print(f"filed {request.request_no} for {request.customer_count} customers; "
                      "a supervisor other than you must approve it")
        if args.execute:
            for done in destruction.execute_approved(actor, progress=_cli().Progress("destroying")):
                print(f"{done.request_no}: {done.destroyed} destroyed, {done.excluded} kept"
                      + ("" if done.wal_truncated else " (a WAL could not be truncated: run again when idle)"))
        return 0
    if command == "rules":
        for change in args.set:
            code, _sep, years = change.partition("=")
            made = retention.set_rule_years(actor, code.strip(), years)
            print(f"{code}: {made.previous_years} → {made.rule.years} years; "
                  f"{made.customers_recomputed} retention dates recomputed")
        for rule in retention.list_rules(actor):
            print(f"{rule.code:<17} {rule.years:>2} years (minimum {rule.minimum_years}, from {rule.starts_from})  "
                  f"{rule.basis}")
        return 0
    if command == "terminate":
        info = retention.record_termination(actor, args.customer_no, args.terminated_on, args.long_policy)
        print(f"{info.customer_no}: terminated {info.terminated_on}, kept until {info.retention_until} ({info.basis})")
        return 0
    if command == "hold":
        hold = retention.place_hold(actor, args.customer_no, args.reason, args.note)
        print(f"hold {hold.hold_id} placed on {hold.customer_no} ({hold.reason})")
        return 0
    if command == "release":
        hold = retention.release_hold(actor, args.hold_id, args.note)
        print(f"hold {hold.hold_id} on {hold.customer_no} released")
        return 0
    if command == "holds":
        for hold in retention.list_holds(actor):
            print(f"{hold.hold_id}  {hold.customer_no:<14} {hold.reason:<18} {hold.placed_by:<12} {hold.placed_at:%Y-%m-%d}")
        return 0
    return 1


def cmd_destruction(settings: Settings, args) -> int:
    from models import destruction

    actor = _actor(settings, args)
    command = args.destruction_command
    if command == "register":
        if args.certificate:
            path = destruction.export_certificate(actor, args.certificate, args.out)
            print(f"certificate written to {path}")
            return 0
        print(f"{'customer':<14}{'category':<12}{'basis':<22}{'request':<14}{'requester':<12}{'approver':<12}"
              f"{'executor':<12}{'destroyed (UTC)':<18}records")
        for entry in destruction.destruction_register(actor, request_ref=args.request):
            counts = ", ".join(f"{k} {v}" for k, v in sorted(entry.counts.items()) if v)
            print(f"{entry.customer_no:<14}{entry.category:<12}{entry.rule_code + ' ' + str(entry.rule_years) + 'y':<22}"
                  f"{entry.request_no:<14}{entry.requested_by:<12}{entry.approved_by:<12}{entry.executed_by:<12}"
                  f"{entry.destroyed_at:%Y-%m-%d %H:%M}  {counts}")
        print(f"method: {destruction.METHOD}")
        return 0
    if command == "list":
        for request in destruction.list_requests(actor):
            print(f"{request.request_no:<14}{request.status:<11}{request.customer_count:>6} customers  "
                  f"by {request.requested_by:<12} decided by {request.decided_by or '—':<12} {request.reason}")
        return 0
    if command == "show":
        detail = destruction.request_detail(actor, args.request)
        request = detail.request
        print(f"{request.request_no}  {request.status}  requested by {request.requested_by}: {request.reason}")
        for item in detail.items:
            hold = "ON HOLD" if item.legal_hold else ""
            print(f"  {item.customer_no:<14}{item.category:<11}from {_fmt_date(item.start_date)} "
                  f"kept until {_fmt_date(item.retention_until)}  {item.rule_code} {item.rule_years}y  "
                  f"{item.step} {item.excluded_reason} {hold}")
        return 0
    if command in ("approve", "reject"):
        decided = destruction.decide_request(actor, args.request, command == "approve", args.note)
        print(f"{decided.request_no}: {decided.status}")
        return 0
    if command == "withdraw":
        print(f"{destruction.withdraw_request(actor, args.request).request_no}: withdrawn")
        return 0
    if command == "execute":
        result = destruction.execute_request(actor, args.request, progress=_cli().Progress("destroying"))
        print(f"{result.request_no}: {result.destroyed} destroyed, {result.excluded} kept"
              + "".join(f"; {n} {reason}" for reason, n in result.excluded_reasons.items()))
        if not result.wal_truncated:
            print("a write-ahead log could not be truncated (someone was reading); it will be at the next run")
        return 0
    return 1


def cmd_backup(settings: Settings, args) -> int:
    from models import backup

    cli = _cli()
    cli._open(settings)
    if args.verify:
        result = backup.verify_backup(args.verify)
        manifest = result.manifest
        if result.ok:
            print(f"backup OK: {result.kind}, taken {manifest['created_at']}, {manifest.get('counts', {}).get('customer', manifest.get('counts', {}).get('data_key', 0))} "
                  f"{'customers' if result.kind == 'database' else 'data keys'}")
            return 0
        print("backup FAILED: " + "; ".join(result.problems))
        return 1
    done = backup.take_backup(args.dest, args.keys_dest, keep=args.keep, keystore_days=args.keys_days,
                              progress=cli.Progress("backing up") if sys.stderr.isatty() else None)
    manifest = done.manifest
    print(f"database backup: {done.database_file} ({manifest['counts'].get('customer', 0)} customers, "
          f"schema {manifest['schema_version']}, sha256 {manifest['sha256'][:16]}…)")
    print(f"key-store backup: {done.keystore_file} (deleted after {args.keys_days} days; keep it on other media)")
    print(f"ledger copy: {done.ledger_copy}")
    if done.pruned:
        print(f"pruned {len(done.pruned)} old file(s)")
    if done.partial_removed:
        print(f"removed {len(done.partial_removed)} partial file(s) left by an interrupted backup")
    return 0


def cmd_restore(settings: Settings, args) -> int:
    from models import backup

    from models import office

    cli = _cli()
    office.open_office(settings, check_schema=False)  # a restore may be what brings the schema back
    result = backup.restore_backup(args.file, force=args.force, to=args.to, keystore_backup=args.keys,
                                   extra_ledgers=tuple(args.ledger),
                                   progress=cli.Progress("restoring") if sys.stderr.isatty() else None)
    where = "in place" if result.in_place else f"into {result.home}"
    print(f"restored the backup of {result.backup_created_at} {where}: {result.customers} customers")
    print(f"destruction ledger replayed: {result.replayed_keys} data key(s) and {result.replayed_customers} "
          f"customer(s) destroyed again, {result.finished_items} interrupted destruction(s) finished")
    if result.audit_entries_lost:
        print(f"{result.audit_entries_lost} audit entries written after the backup are not in the restored log; "
              f"their signed checkpoints were kept in {result.checkpoints_archived}")
    if result.customers_without_key:
        print(f"WARNING: {result.customers_without_key} customer(s) have no data key in the key store and cannot be "
              "read (restore a key-store backup taken after the database backup)")
    if not result.in_place:
        print(f"to use it: stop RecordKeeper and set RECORDKEEPER_HOME={result.home}")
    return 0


COMMANDS = {"retention": cmd_retention, "destruction": cmd_destruction, "backup": cmd_backup,
            "restore": cmd_restore}
