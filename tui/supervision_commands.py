"""Sub-commands for supervision: `audit verify|export|verify-export|public-key`, `report`, and
`staff disable|enable|roles`. They call the same services as the screens."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from models.settings import Settings


def _cli():
    from tui import cli

    return cli


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-03-31") from None


def _add_login(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as", dest="as_user", required=True, help="the acting staff member's username")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def add_parsers(sub, audit_sub, staff_sub) -> None:
    q = audit_sub.add_parser("export", help="write a range of the log as JSON lines with its chain hashes")
    _add_login(q)
    q.add_argument("--from", dest="since", type=_date, help="first day (YYYY-MM-DD)")
    q.add_argument("--to", dest="until", type=_date, help="last day, inclusive (YYYY-MM-DD)")
    q.add_argument("--from-seq", type=int, help="first entry number")
    q.add_argument("--to-seq", type=int, help="last entry number")
    q.add_argument("--out", type=Path, help="the file to write (default: the export folder)")
    q = audit_sub.add_parser("verify-export", help="check an export file on its own (no office needed)")
    q.add_argument("file", type=Path)
    q.add_argument("--public-key", default="", help="the office's checkpoint key (hex) from `audit public-key`")
    audit_sub.add_parser("public-key", help="print the key that verifies this office's signed checkpoints")
    p = sub.add_parser("report", help="write the periodic compliance report (Markdown and HTML)")
    _add_login(p)
    p.add_argument("--from", dest="since", type=_date, required=True, help="first day (YYYY-MM-DD)")
    p.add_argument("--to", dest="until", type=_date, required=True, help="last day, inclusive (YYYY-MM-DD)")
    p.add_argument("--out", type=Path, help="the folder to write to (default: the export folder)")
    for name in ("disable", "enable"):
        q = staff_sub.add_parser(name, help=f"{name} an account ({'ends its sessions' if name == 'disable' else ''})")
        q.add_argument("username")
    q = staff_sub.add_parser("roles", help="replace an account's roles")
    q.add_argument("username")
    q.add_argument("--roles", required=True, help="comma-separated roles")


def cmd_audit(settings: Settings, args) -> int:
    cli = _cli()
    if args.audit_command == "verify-export":
        from models import audit_browse

        check = audit_browse.verify_export(args.file, args.public_key)
        if check.ok:
            print(f"export intact: entries {check.first_seq}–{check.last_seq} ({check.entries}), "
                  f"{check.checkpoints} signed checkpoint(s) match")
            if not check.key_confirmed:
                print("note: the checkpoint key was read from the file itself; pass --public-key to confirm it")
            return 0
        print(f"export NOT intact: {check.reason}")
        return 1
    if args.audit_command == "public-key":
        from models import checkpoints

        cli._open(settings)
        key = checkpoints.public_key_hex()
        print(f"{key}  (key id {checkpoints.key_id_of(key)})")
        return 0
    if args.audit_command == "export":
        from models import audit_browse

        cli._open(settings)
        actor = cli._login(args.as_user, args.password_stdin)
        result = audit_browse.export_range(actor, args.out, since=args.since, until=args.until,
                                           first_seq=args.from_seq, last_seq=args.to_seq,
                                           progress=cli.Progress("exporting") if sys.stderr.isatty() else None)
        print(f"wrote entries {result.first_seq}–{result.last_seq} ({result.entries}) and "
              f"{result.checkpoints} signed checkpoint(s) to {result.path}")
        return 0
    from models import audit

    cli._open(settings)
    result = audit.verify_chain(progress=cli.Progress("verifying") if sys.stderr.isatty() else None)
    if result.ok:
        print(f"audit log intact: {result.entries} entries, {result.checkpoints} signed checkpoint(s) match")
        if result.warning:
            print(f"warning: {result.warning}")
        return 0
    print(f"audit log TAMPERED: entry {result.first_bad_seq} — {result.reason} "
          f"({result.entries} entries before it verified)")
    return 1


def cmd_report(settings: Settings, args) -> int:
    from models import report
    from tui.i18n import _, detect_language, set_language

    cli = _cli()
    cli._open(settings)
    actor = cli._login(args.as_user, args.password_stdin)
    set_language(detect_language(actor.language or settings.language or None))
    files = report.write_report(actor, args.since, args.until, args.out, translate=_,
                                progress=cli.Progress("verifying") if sys.stderr.isatty() else None)
    print(f"wrote {files.markdown}")
    print(f"wrote {files.html}")
    print(f"audit chain {'intact' if files.chain_ok else 'FAILED VERIFICATION'}; {files.anomalies} anomalies")
    return 0 if files.chain_ok else 1


def cmd_staff(actor, args) -> int | None:
    """The staff sub-commands added here (None: not one of them)."""
    from models import staff

    if args.staff_command in ("disable", "enable"):
        changed = staff.set_active(actor, args.username, args.staff_command == "enable")
        print(f"{changed.username} is now {'active' if changed.active else 'disabled'}"
              + ("" if changed.active else "; open sessions end within 30 seconds"))
        return 0
    if args.staff_command == "roles":
        roles = [r.strip() for r in args.roles.split(",") if r.strip()]
        changed = staff.set_roles(actor, args.username, roles)
        print(f"{changed.username}: {','.join(changed.roles)}")
        return 0
    return None

