"""The `recordkeeper` command: the TUI, and sub-commands for work that is not interactive.

Sub-commands call the same services as the screens and authenticate the acting staff member.
"""

from __future__ import annotations

import argparse
import getpass
import shutil
import sys
from dataclasses import replace


from models.errors import (
    AuthenticationFailed, ConfigurationError, KeyFileError, NotFound, PermissionDenied, RecordKeeperError,
    SchemaError, ValidationError,
)
from models.settings import Settings, load_settings
from tui import browse_commands, retention_commands

DEMO_MARKER = ".recordkeeper-demo-office"
DEMO_OFFICE_NAME = "示范保险档案室 Demo Records"
EXIT_CONFIG = 2
EXIT_SCHEMA = 3
EXIT_DENIED = 4
EXIT_NO_TERMINAL = 5


def _err(message: str) -> None:
    print(f"recordkeeper: {message}", file=sys.stderr)


class Progress:
    """A one-line text progress bar on stderr (for long CLI work)."""

    def __init__(self, label: str):
        self.label = label
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        line = f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
        if self.tty:
            print("\r" + line, end="" if done < total else "\n", file=sys.stderr, flush=True)
        elif done == total:
            print(line, file=sys.stderr)


def _read_secret(prompt: str, from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise ValidationError([])
        return line.rstrip("\r\n")
    return getpass.getpass(prompt)


def _open(settings: Settings):
    from models import office

    return office.open_office(settings)


def _login(username: str, from_stdin: bool):
    from models import staff

    return staff.authenticate(username, _read_secret(f"password for {username}: ", from_stdin))


# --- sub-commands ------------------------------------------------------------------------


def cmd_init(settings: Settings, args) -> int:
    from models import migrations, office, staff

    if settings.master_key_path.exists() or (not settings.uses_postgres and settings.database_path.exists()):
        _err(f"an office already exists in {settings.home}")
        return 1
    if not args.admin:
        args.admin = input("first administrator's username: ").strip()
    password = _read_secret("password (12+ characters): ", args.password_stdin)
    if not args.password_stdin and getpass.getpass("repeat password: ") != password:
        _err("the passwords do not match")
        return 1
    office.create_office_files(settings)
    office.open_office(settings, check_schema=False)
    migrations.migrate()
    admin = staff.create_first_admin(args.admin, password)
    print(f"office created in {settings.home}")
    print(f"administrator: {admin.username}")
    print(f"back up the master key {settings.master_key_path} separately from the database")
    return 0


def cmd_demo(settings: Settings, args) -> int:
    from models import demo, migrations, office, staff

    home = settings.home
    if home.exists() and any(home.iterdir()):
        if not (home / DEMO_MARKER).exists():
            _err(f"{home} holds an office that is not a demo; set RECORDKEEPER_HOME to an empty directory")
            return 1
        if not args.reset:
            print(f"using the existing demo office in {home} (add --reset for a new one)")
            if not args.no_launch:
                return launch(settings)
            return 0
        office.close_office()
        shutil.rmtree(home)
    office.create_office_files(settings)
    (home / DEMO_MARKER).write_text("demo office: safe to delete\n")
    settings = replace(settings, office_name=DEMO_OFFICE_NAME)  # shown on the login screen
    settings.config_path.write_text(f'office_name = "{DEMO_OFFICE_NAME}"\n', encoding="utf-8")
    office.open_office(settings, check_schema=False)
    migrations.migrate()
    password = demo.demo_password()
    staff.create_first_admin("admin", password, "管理员 Admin")
    admin = staff.authenticate("admin", password)
    demo.add_demo_accounts(admin, password)
    from models import branches, suggestions, training

    branches.add_demo_branches(admin)
    training.add_demo_training(admin)
    suggestions.add_demo_suggestions(*(staff.authenticate(n, password) for n in ("clerk", "reviewer", "supervisor")))
    clerk = staff.authenticate("clerk", password)
    browse_commands.add_demo_customers(clerk, staff.authenticate("officer", password), args.customers,
                                       Progress("customers"))
    from models import retention

    retention.add_demo_terminations(staff.authenticate("officer", password))
    from models import change_requests, verification

    verification.add_demo_checks(clerk)
    change_requests.add_demo_requests(clerk)
    (home / "demo-password.txt").write_text(password + "\n")
    print(f"demo office in {home}")
    print("accounts: admin, clerk, reviewer, supervisor, officer, auditor")
    print(f"password: {password}")
    if args.no_launch:
        return 0
    return launch(settings)


def cmd_staff(settings: Settings, args) -> int:
    from models import staff

    _open(settings)
    actor = _login(args.as_user, args.password_stdin)
    if args.staff_command == "list":
        for s in staff.list_staff(actor):
            state = "locked" if s.locked else ("active" if s.active else "disabled")
            print(f"{s.username:<16} {','.join(s.roles):<32} {state}")
        return 0
    if args.staff_command == "add":
        password = _read_secret(f"temporary password for {args.username}: ", args.password_stdin)
        created = staff.add_staff(actor, args.username, args.name or args.username, password,
                                  [r.strip() for r in args.roles.split(",") if r.strip()])
        print(f"added {created.username} ({','.join(created.roles)}); password change required at first login")
        return 0
    if args.staff_command == "unlock":
        staff.unlock_account(actor, args.username)
        print(f"unlocked {args.username}")
        return 0
    if args.staff_command == "reset-password":
        password = _read_secret(f"temporary password for {args.username}: ", args.password_stdin)
        staff.reset_password(actor, args.username, password)
        print(f"password reset for {args.username}; change required at next login")
        return 0
    from tui import supervision_commands

    handled = supervision_commands.cmd_staff(actor, args)  # disable, enable, roles
    return 1 if handled is None else handled


def cmd_audit(settings: Settings, args) -> int:
    from tui import supervision_commands

    return supervision_commands.cmd_audit(settings, args)  # verify, export, verify-export, public-key


def cmd_report(settings: Settings, args) -> int:
    from tui import supervision_commands

    return supervision_commands.cmd_report(settings, args)


def cmd_migrate(settings: Settings, args) -> int:
    from models import migrations, office

    if getattr(args, "to", None):
        from tui import engine_commands

        return engine_commands.cmd_migrate_to(settings, args)  # copy the office to PostgreSQL
    office.open_office(settings, check_schema=False)
    applied = migrations.migrate(progress=lambda n, title: print(f"applied migration {n}: {title}"))
    print("database is up to date" if not applied else f"{len(applied)} migration(s) applied")
    return 0


def launch(settings: Settings) -> int:
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        # ssh without a terminal (`ssh host cmd`, sftp, scp) lands here through ForceCommand.
        _err("the application needs an interactive terminal (ssh -t); nothing was run")
        return EXIT_NO_TERMINAL
    from tui.app import RecordKeeperApp

    app = RecordKeeperApp(settings, open_office=lambda: _open_for_app(settings))
    app.run()
    return app.return_code or 0


def _open_for_app(settings: Settings) -> tuple[int, str] | None:
    """Open the office for the app (after its login screen is drawn); the exit code and message if it cannot."""
    try:
        _open(settings)
    except ConfigurationError as exc:
        return EXIT_CONFIG, f"recordkeeper: bad setting {exc}"
    except KeyFileError as exc:
        return EXIT_CONFIG, f"recordkeeper: {exc}"
    except SchemaError as exc:
        return EXIT_SCHEMA, f"recordkeeper: {exc}"
    except RecordKeeperError as exc:
        return 1, f"recordkeeper: {exc}"
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recordkeeper", description="Insurance customer records.")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("init", help="create the data directory, keys, database and first admin")
    p.add_argument("--admin", help="first administrator's username")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p = sub.add_parser("demo", help="build a demo office and open it")
    p.add_argument("--customers", type=int, default=500)
    p.add_argument("--no-launch", action="store_true")
    p.add_argument("--reset", action="store_true", help="throw away an existing demo office first")
    p = sub.add_parser("staff", help="manage staff accounts (as an admin)")
    p.add_argument("--as", dest="as_user", default="admin", help="acting admin (default: admin)")
    p.add_argument("--password-stdin", action="store_true",
                   help="read passwords from standard input, one per line: yours, then the new one")
    staff_sub = p.add_subparsers(dest="staff_command", required=True)
    q = staff_sub.add_parser("add")
    q.add_argument("username")
    q.add_argument("--name", default="")
    q.add_argument("--roles", required=True, help="comma-separated: clerk,reviewer,supervisor,"
                                                  "records_officer,auditor,admin")
    staff_sub.add_parser("list")
    q = staff_sub.add_parser("unlock")
    q.add_argument("username")
    q = staff_sub.add_parser("reset-password")
    q.add_argument("username")
    p = sub.add_parser("audit", help="audit log tools")
    audit_sub = p.add_subparsers(dest="audit_command", required=True)
    audit_sub.add_parser("verify", help="replay the hash chain; exit 1 naming the first bad entry")
    from tui import supervision_commands

    supervision_commands.add_parsers(sub, audit_sub, staff_sub)  # audit export, report, staff disable/roles
    p = sub.add_parser("migrate", help="bring the database schema up to date, or copy the office to PostgreSQL")
    p.add_argument("--to", metavar="URL", help="copy this SQLite office into an empty postgresql://… database")
    retention_commands.add_parsers(sub)
    browse_commands.add_parsers(sub)  # import, export --customer
    return parser


COMMANDS = {"init": cmd_init, "demo": cmd_demo, "staff": cmd_staff, "audit": cmd_audit, "migrate": cmd_migrate,
            **retention_commands.COMMANDS, **browse_commands.COMMANDS}

COMMANDS["report"] = cmd_report


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    # Plain `recordkeeper` (every SSH login) needs no parser: building every sub-command's costs start-up time.
    args = build_parser().parse_args(arguments) if arguments else None
    try:
        settings = load_settings()
        if args is None or args.command is None:
            return launch(settings)
        return COMMANDS[args.command](settings, args)
    except ConfigurationError as exc:
        _err(f"bad setting {exc}")
        return EXIT_CONFIG
    except KeyFileError as exc:
        _err(str(exc))
        return EXIT_CONFIG
    except SchemaError as exc:
        _err(str(exc))
        return EXIT_SCHEMA
    except AuthenticationFailed as exc:
        _err(str(exc))
        return EXIT_DENIED
    except PermissionDenied as exc:
        _err(f"not allowed: {exc}")
        return EXIT_DENIED
    except ValidationError as exc:
        _err(f"invalid input: {exc}" if exc.errors else "no input")
        return 1
    except NotFound as exc:
        _err(str(exc))
        return 1
    except RecordKeeperError as exc:
        _err(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())


