"""One typed settings object: environment over an optional TOML file over defaults.

Loaded once at start-up and passed in; a bad value raises ConfigurationError naming it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

import platformdirs

from models.errors import ConfigurationError

APP_NAME = "recordkeeper"


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str = ""
    idle_lock_minutes: float = 5.0
    session_hours: float = 8.0
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    blind_index_bits: int = 12
    busy_timeout_ms: int = 10000
    max_document_mb: int = 20
    theme: str = "recordkeeper"
    language: str = ""
    cursor_blink: bool = False
    office_name: str = "RecordKeeper"
    verify_months_active: int = 12  # periodic verification interval (months) for active customers
    verify_months_prospect: int = 6
    verify_retry_days: int = 14  # an unreachable customer is tried again this many days later

    @property
    def database_path(self) -> Path:
        return self.home / "recordkeeper.db"

    @property
    def keystore_path(self) -> Path:
        return self.home / "keys" / "keystore.db"

    @property
    def key_dir(self) -> Path:
        return self.home / "keys"

    @property
    def master_key_path(self) -> Path:
        return self.home / "keys" / "master.key"

    @property
    def inbox_dir(self) -> Path:
        return self.home / "inbox"

    @property
    def export_dir(self) -> Path:
        return self.home / "export"

    @property
    def log_path(self) -> Path:
        return self.home / "recordkeeper.log"

    @property
    def config_path(self) -> Path:
        return self.home / "recordkeeper.toml"

    @property
    def uses_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))


# setting name -> (type, validator returning an error message or None)
_RULES = {
    "idle_lock_minutes": (float, lambda v: None if 0.1 <= v <= 15 else "must be between 0.1 and 15 minutes"),
    "session_hours": (float, lambda v: None if 0.5 <= v <= 12 else "must be between 0.5 and 12 hours"),
    "argon2_time_cost": (int, lambda v: None if 1 <= v <= 10 else "must be between 1 and 10"),
    "argon2_memory_kib": (int, lambda v: None if 8 * 1024 <= v <= 4 * 1024 * 1024
                          else "must be between 8192 and 4194304 KiB"),
    "argon2_parallelism": (int, lambda v: None if 1 <= v <= 16 else "must be between 1 and 16"),
    "blind_index_bits": (int, lambda v: None if 8 <= v <= 24 else "must be between 8 and 24 bits"),
    "busy_timeout_ms": (int, lambda v: None if 100 <= v <= 600000 else "must be between 100 and 600000"),
    "max_document_mb": (int, lambda v: None if 1 <= v <= 200 else "must be between 1 and 200 MB"),
    "theme": (str, lambda v: None if v in ("recordkeeper", "recordkeeper-high-contrast", "recordkeeper-mono")
              else "must be recordkeeper, recordkeeper-high-contrast or recordkeeper-mono"),
    "language": (str, lambda v: None if v in ("", "zh", "en") else "must be zh or en"),
    "cursor_blink": (bool, lambda v: None),
    "office_name": (str, lambda v: None if 0 < len(v) <= 60 else "must be 1 to 60 characters"),
    "verify_months_active": (int, lambda v: None if 1 <= v <= 60 else "must be between 1 and 60 months"),
    "verify_months_prospect": (int, lambda v: None if 1 <= v <= 60 else "must be between 1 and 60 months"),
    "verify_retry_days": (int, lambda v: None if 1 <= v <= 90 else "must be between 1 and 90 days"),
    "database_url": (str, lambda v: None if v == "" or v.startswith(("postgresql://", "postgres://"))
                     else "must be empty (SQLite) or a postgresql:// URL"),
}

_ENV = {
    "RECORDKEEPER_DATABASE_URL": "database_url",
    "RECORDKEEPER_IDLE_LOCK_MINUTES": "idle_lock_minutes",
    "RECORDKEEPER_THEME": "theme",
    "RECORDKEEPER_LANGUAGE": "language",
    "RECORDKEEPER_ARGON2_MEMORY_KIB": "argon2_memory_kib",
    "RECORDKEEPER_ARGON2_TIME_COST": "argon2_time_cost",
    "RECORDKEEPER_ARGON2_PARALLELISM": "argon2_parallelism",
}


def _coerce(name: str, raw: object, source: str) -> object:
    kind, check = _RULES[name]
    try:
        if kind is bool:
            if isinstance(raw, bool):
                value = raw
            elif str(raw).strip().lower() in ("1", "true", "yes", "on"):
                value = True
            elif str(raw).strip().lower() in ("0", "false", "no", "off"):
                value = False
            else:
                raise ValueError
        elif kind is int:
            if isinstance(raw, (bool, float)):
                raise ValueError
            value = int(raw)
        elif kind is float:
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
        else:
            if not isinstance(raw, str):
                raise ValueError
            value = raw
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} ({source})", f"must be a {kind.__name__}") from None
    problem = check(value)
    if problem:
        raise ConfigurationError(f"{name} ({source})", problem)
    return value


def default_home() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build the settings from RECORDKEEPER_HOME, its recordkeeper.toml and the environment."""
    env = os.environ if environ is None else environ
    home = Path(env.get("RECORDKEEPER_HOME") or default_home()).expanduser()
    settings = Settings(home=home)
    config_file = settings.config_path
    values: dict[str, object] = {}
    if config_file.exists():
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigurationError(str(config_file), f"is not valid TOML ({exc})") from None
        known = {f.name for f in fields(Settings)} - {"home"}
        for key, raw in data.items():
            if key not in known:
                raise ConfigurationError(f"{key} ({config_file})", "is not a known setting")
            values[key] = _coerce(key, raw, str(config_file))
    for env_name, key in _ENV.items():
        if env_name in env:
            values[key] = _coerce(key, env[env_name], env_name)
    return replace(settings, **values)
