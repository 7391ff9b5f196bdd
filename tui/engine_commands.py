"""`recordkeeper migrate --to postgresql://…`: copy a SQLite office to PostgreSQL, with a progress bar."""

from __future__ import annotations

from models.settings import Settings


def cmd_migrate_to(settings: Settings, args) -> int:
    from models import engine_migrate, office
    from tui.cli import Progress, _err

    if settings.uses_postgres:
        _err("this office already runs on PostgreSQL (RECORDKEEPER_DATABASE_URL is set); nothing was copied")
        return 1
    office.open_office(settings)  # refuses unsafe keys and an out-of-date schema
    try:
        print(f"copying {settings.database_path} to {engine_migrate.redacted(args.to)}; "
              "the office cannot be written to until the copy is done")
        result = engine_migrate.copy_to_postgres(args.to, progress=Progress("rows"))
    finally:
        office.close_office()
    for table in result.tables:
        print(f"  {table.table:<28} {table.rows:>10} rows" + ("  (ciphertext checked)" if table.encrypted_columns
                                                                else ""))
    print(f"copied {result.rows} rows in {len(result.tables)} tables in {result.seconds:.1f} s; "
          f"schema version {result.schema_version}; audit chain of {result.audit_entries} entries verified "
          f"on the copy ({result.checkpoints} signed checkpoints agree)")
    print("next: stop every RecordKeeper session, then put the line")
    print(f'  database_url = "{result.target}"')
    print(f"in {settings.config_path} (or set RECORDKEEPER_DATABASE_URL) and start again; the key store stays in "
          f"{settings.key_dir}. Keep {settings.database_path.name} as a backup; do not use it again.")
    return 0
