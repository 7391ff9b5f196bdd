"""Settings: defaults, RECORDKEEPER_HOME, the TOML file, environment overrides, and clear errors."""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

import pytest

from models.errors import ConfigurationError
from models.settings import Settings, default_home, load_settings


@pytest.fixture
def home(tmp_path) -> Path:
    path = tmp_path / "rk-home"
    path.mkdir()
    return path


def write_toml(home: Path, text: str) -> Path:
    path = home / "recordkeeper.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(home):
    settings = load_settings({"RECORDKEEPER_HOME": str(home)})
    assert settings == Settings(home=home)
    assert settings.database_url == "" and not settings.uses_postgres
    assert settings.idle_lock_minutes == 5.0
    assert settings.session_hours == 8.0
    assert settings.blind_index_bits == 12
    assert settings.argon2_time_cost == 3 and settings.argon2_memory_kib == 65536 and settings.argon2_parallelism == 4
    assert settings.theme == "recordkeeper"
    assert settings.cursor_blink is False


def test_paths_live_under_home(home):
    settings = load_settings({"RECORDKEEPER_HOME": str(home)})
    assert settings.home == home
    for path in (settings.database_path, settings.keystore_path, settings.master_key_path, settings.inbox_dir,
                 settings.export_dir, settings.config_path):
        assert home in path.parents
    assert settings.keystore_path.parent == settings.master_key_path.parent == settings.key_dir
    assert settings.keystore_path != settings.database_path


@pytest.mark.skipif(sys.platform != "linux", reason="platformdirs honours XDG_DATA_HOME on Linux")
def test_default_home_comes_from_platformdirs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_home() == tmp_path / "xdg" / "recordkeeper"
    assert load_settings({}).home == tmp_path / "xdg" / "recordkeeper"
    assert load_settings({"RECORDKEEPER_HOME": ""}).home == tmp_path / "xdg" / "recordkeeper"


def test_recordkeeper_home_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_settings({"RECORDKEEPER_HOME": "~/office"}).home == tmp_path / "office"


def test_toml_file_overrides_defaults(home):
    write_toml(home, """
idle_lock_minutes = 2
session_hours = 4.5
blind_index_bits = 16
theme = "recordkeeper-mono"
language = "en"
cursor_blink = true
office_name = "上海浦东支公司"
database_url = "postgresql://rk@db.example/records"
""")
    settings = load_settings({"RECORDKEEPER_HOME": str(home)})
    assert settings.idle_lock_minutes == 2.0 and isinstance(settings.idle_lock_minutes, float)
    assert settings.session_hours == 4.5
    assert settings.blind_index_bits == 16
    assert settings.theme == "recordkeeper-mono"
    assert settings.language == "en"
    assert settings.cursor_blink is True
    assert settings.office_name == "上海浦东支公司"
    assert settings.uses_postgres
    # Settings not in the file keep their defaults.
    assert settings.argon2_time_cost == Settings(home=home).argon2_time_cost


def test_environment_overrides_toml(home):
    write_toml(home, 'idle_lock_minutes = 2\ntheme = "recordkeeper-mono"\nlanguage = "en"\n')
    settings = load_settings({
        "RECORDKEEPER_HOME": str(home),
        "RECORDKEEPER_IDLE_LOCK_MINUTES": "7.5",
        "RECORDKEEPER_THEME": "recordkeeper-high-contrast",
        "RECORDKEEPER_DATABASE_URL": "postgresql://rk@localhost/rk",
        "RECORDKEEPER_ARGON2_MEMORY_KIB": "16384",
        "RECORDKEEPER_ARGON2_TIME_COST": "2",
        "RECORDKEEPER_ARGON2_PARALLELISM": "1",
    })
    assert settings.idle_lock_minutes == 7.5
    assert settings.theme == "recordkeeper-high-contrast"
    assert settings.language == "en"  # from the file, not overridden
    assert settings.database_url == "postgresql://rk@localhost/rk"
    assert (settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism) == (16384, 2, 1)


def test_load_settings_reads_the_process_environment_by_default(home, monkeypatch):
    monkeypatch.setenv("RECORDKEEPER_HOME", str(home))
    monkeypatch.setenv("RECORDKEEPER_LANGUAGE", "zh")
    settings = load_settings()
    assert settings.home == home and settings.language == "zh"


@pytest.mark.parametrize(
    ("toml", "setting"),
    [
        ('idle_lock_minutes = "soon"', "idle_lock_minutes"),
        ("idle_lock_minutes = 0", "idle_lock_minutes"),
        ("idle_lock_minutes = 60", "idle_lock_minutes"),
        ("session_hours = 24", "session_hours"),
        ("blind_index_bits = 99", "blind_index_bits"),
        ("blind_index_bits = 4", "blind_index_bits"),
        ('blind_index_bits = "many"', "blind_index_bits"),
        ("argon2_time_cost = true", "argon2_time_cost"),
        ("argon2_memory_kib = 1024", "argon2_memory_kib"),
        ("argon2_parallelism = 0", "argon2_parallelism"),
        ("busy_timeout_ms = 5", "busy_timeout_ms"),
        ("max_document_mb = 1000", "max_document_mb"),
        ('theme = "pink"', "theme"),
        ('language = "fr"', "language"),
        ('cursor_blink = "maybe"', "cursor_blink"),
        ('office_name = ""', "office_name"),
        ("office_name = 42", "office_name"),
        ('database_url = "mysql://x"', "database_url"),
        ('database_url = "sqlite:///tmp/x.db"', "database_url"),
        ("colour_scheme = 1", "colour_scheme"),
        ('home = "/elsewhere"', "home"),
    ],
)
def test_bad_toml_value_names_the_setting(home, toml, setting):
    path = write_toml(home, toml + "\n")
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"RECORDKEEPER_HOME": str(home)})
    message = str(caught.value)
    assert message.startswith(setting + " "), message
    assert str(path) in message, "the message says which file holds the bad value"
    assert caught.value.setting.startswith(setting)


@pytest.mark.parametrize(
    ("env_name", "value", "setting"),
    [
        ("RECORDKEEPER_IDLE_LOCK_MINUTES", "soon", "idle_lock_minutes"),
        ("RECORDKEEPER_IDLE_LOCK_MINUTES", "99", "idle_lock_minutes"),
        ("RECORDKEEPER_DATABASE_URL", "mysql://x", "database_url"),
        ("RECORDKEEPER_THEME", "neon", "theme"),
        ("RECORDKEEPER_LANGUAGE", "de", "language"),
        ("RECORDKEEPER_ARGON2_MEMORY_KIB", "lots", "argon2_memory_kib"),
        ("RECORDKEEPER_ARGON2_TIME_COST", "0", "argon2_time_cost"),
        ("RECORDKEEPER_ARGON2_PARALLELISM", "1.5", "argon2_parallelism"),
    ],
)
def test_bad_environment_value_names_the_setting_and_the_variable(home, env_name, value, setting):
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"RECORDKEEPER_HOME": str(home), env_name: value})
    message = str(caught.value)
    assert message.startswith(setting + " ") and env_name in message, message


def test_bad_environment_value_wins_over_a_good_file(home):
    write_toml(home, "idle_lock_minutes = 3\n")
    with pytest.raises(ConfigurationError, match="idle_lock_minutes"):
        load_settings({"RECORDKEEPER_HOME": str(home), "RECORDKEEPER_IDLE_LOCK_MINUTES": "soon"})


def test_invalid_toml_names_the_file(home):
    path = write_toml(home, "idle_lock_minutes = = 3\n[unclosed\n")
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"RECORDKEEPER_HOME": str(home)})
    assert str(path) in str(caught.value) and "TOML" in str(caught.value)


def test_toml_that_is_not_utf8_is_a_configuration_error(home):
    (home / "recordkeeper.toml").write_bytes(b'office_name = "\xff\xfe"\n')
    with pytest.raises(ConfigurationError):
        load_settings({"RECORDKEEPER_HOME": str(home)})


def test_a_table_in_the_toml_is_an_unknown_setting(home):
    write_toml(home, "[database]\nurl = 'postgresql://x'\n")
    with pytest.raises(ConfigurationError, match="database"):
        load_settings({"RECORDKEEPER_HOME": str(home)})


def test_every_setting_has_a_rule(home):
    """Each field (but home) can be written in the TOML file with its default value."""
    defaults = Settings(home=home)
    lines = []
    for f in fields(Settings):
        if f.name == "home":
            continue
        value = getattr(defaults, f.name)
        lines.append(f"{f.name} = " + (("true" if value else "false") if isinstance(value, bool)
                                       else repr(value) if not isinstance(value, str) else f'"{value}"'))
    write_toml(home, "\n".join(lines) + "\n")
    assert load_settings({"RECORDKEEPER_HOME": str(home)}) == defaults


@pytest.mark.parametrize("toml", ["blind_index_bits = 12.9", "blind_index_bits = 12.0", "argon2_time_cost = 2.5"])
def test_a_float_for_an_integer_setting_is_refused_not_truncated(home, toml):
    write_toml(home, toml + "\n")
    with pytest.raises(ConfigurationError, match=toml.split()[0]):
        load_settings({"RECORDKEEPER_HOME": str(home)})
