"""`recordkeeper import` (bulk CSV import) and `recordkeeper export --customer` (the customer's data copy).

Both authenticate the acting staff member and call the same services as the screens.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

BULK_DEMO_FROM = 2000  # demo offices larger than this are generated in bulk (minutes, not hours, at a million)


def _err(message: str) -> None:
    print(f"recordkeeper: {message}", file=sys.stderr)


class ImportBar:
    """One line on stderr: a bar, rows done of rows expected, rows per second, time left, rejects."""

    def __init__(self, label: str = "importing"):
        self.label = label
        self.tty = sys.stderr.isatty()
        self.last_draw = 0.0

    def __call__(self, progress) -> None:
        now = time.monotonic()
        finished = progress.rows_done >= progress.rows_expected
        if not finished and now - self.last_draw < 0.2:
            return
        self.last_draw = now
        width = 24
        total = max(progress.rows_expected, 1)
        filled = min(width, int(width * progress.rows_done / total))
        rate = progress.rows_done / progress.seconds if progress.seconds > 0 else 0.0
        left = (progress.rows_expected - progress.rows_done) / rate if rate > 0 else 0.0
        eta = f"{int(left // 60)}:{int(left % 60):02d}"
        line = (f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {progress.rows_done:,}/{total:,} "
                f"{rate:,.0f}/s ETA {eta} rejected {progress.rejected:,}")
        if self.tty:
            print("\r" + line, end="\n" if finished else "", file=sys.stderr, flush=True)
        elif finished:
            print(line, file=sys.stderr)


def _login(args):
    from models import staff

    from tui.cli import _read_secret

    if not args.as_user:
        raise SystemExit("recordkeeper: say who is acting: --as USERNAME")
    return staff.authenticate(args.as_user, _read_secret(f"password for {args.as_user}: ", args.password_stdin))


def _mapping(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs or []:
        source, sep, target = pair.partition("=")
        if not sep or not source.strip():
            raise SystemExit(f"recordkeeper: --map needs HEADER=field (or HEADER= to ignore a column), not {pair!r}")
        mapping[source.strip()] = target.strip()
    return mapping


def cmd_import(settings, args) -> int:
    from models import importer

    if args.template:
        print(importer.template_header())
        return 0
    if not args.file:
        _err("name the CSV file to import (or --template for the header)")
        return 2
    from tui.cli import _open

    _open(settings)
    actor = _login(args)
    defaults = {name: value for name, value in (
        ("consent_date", args.consent_date), ("consent_scope", args.consent_scope), ("id_type", args.id_type),
        ("branch", args.branch), ("category", args.category)) if value}
    path = Path(args.file)
    rejects = Path(args.rejects) if args.rejects else path.with_name(path.stem + ".rejects.csv")
    try:
        report = importer.import_customers(
            actor, path, mapping=_mapping(args.map), encoding=args.encoding, defaults=defaults,
            rejects_path=rejects, check_only=args.check, workers=args.workers,
            progress=ImportBar("checking" if args.check else "importing"))
    except importer.ImportFileError as exc:
        _err(f"{path.name}: {exc}; nothing was imported")
        return 1
    verb = "would import" if report.check_only else "imported"
    print(f"{verb} {report.imported:,} of {report.rows:,} rows in {report.seconds:.1f}s "
          f"({report.imported / report.seconds if report.seconds else 0:,.0f}/s; encoding {report.encoding})")
    if report.skipped:
        print(f"skipped {report.skipped:,} already customers (same ID document)")
    if report.rejected or report.skipped:
        print(f"rejected {report.rejected:,}; row, field and reason of each in {report.rejects_path}")
    if not report.check_only:
        print(f"import batch {report.batch_id}")
    return 0 if report.rejected == 0 else 3


def cmd_export(settings, args) -> int:
    from models import datacopy

    from tui.cli import _open

    _open(settings)
    actor = _login(args)
    made = datacopy.export_customer_copy(actor, args.customer)
    print(f"the customer's copy of their data is in {made.folder}")
    print(f"  {made.json_path.name} (everything, JSON)")
    print(f"  {made.text_path.name} (readable summary)")
    if made.documents:
        print(f"  {made.documents} document file(s)")
    print("hand it to the customer, then delete the folder")
    return 0


def add_demo_customers(clerk, officer, count: int, progress) -> None:
    """The demo office's customers: through the services when few, the bulk generator when many."""
    from models import bulkgen, demo

    if count > BULK_DEMO_FROM:
        bulkgen.generate_customers(clerk, count, progress=progress)
    else:
        demo.add_demo_customers(clerk, count, progress=progress)
        bulkgen.add_demo_labels(officer, clerk)


def add_parsers(sub) -> None:
    p = sub.add_parser("import", help="import customers from a legacy system's CSV export")
    p.add_argument("file", nargs="?", help="the CSV file (UTF-8 or GB18030)")
    p.add_argument("--template", action="store_true", help="print the canonical header and exit")
    p.add_argument("--as", dest="as_user", default="", help="who is importing (needs the clerk role)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--encoding", default="auto", help="auto (default), utf-8 or gb18030")
    p.add_argument("--map", action="append", metavar="HEADER=field",
                   help="read the column HEADER as that field (HEADER= ignores the column); repeatable")
    p.add_argument("--consent-date", help="consent date for rows without one (what the legacy system recorded)")
    p.add_argument("--consent-scope", help="consent scope for rows without one")
    p.add_argument("--id-type", help="ID type for rows without one (default resident_id)")
    p.add_argument("--branch", help="branch for rows without one")
    p.add_argument("--category", help="category for rows without one (prospect, active, terminated)")
    p.add_argument("--rejects", help="where to write the rejects (default FILE.rejects.csv beside the file)")
    p.add_argument("--check", action="store_true", help="validate every row and write the rejects; import nothing")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    p = sub.add_parser("export", help="write a customer's copy of their personal data (PIPL art. 45)")
    p.add_argument("--customer", required=True, metavar="NUMBER", help="the customer number, e.g. C2026000123")
    p.add_argument("--as", dest="as_user", default="", help="who is making the copy")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


COMMANDS = {"import": cmd_import, "export": cmd_export}
