"""Exceptions the services raise; each carries a message fit for a user."""

from __future__ import annotations

from dataclasses import dataclass


class RecordKeeperError(Exception):
    """Base class for every error the services raise on purpose."""


@dataclass
class FieldError:
    """One field that failed validation, and why (English text; the UI translates codes)."""

    field: str
    message: str
    code: str = "invalid"


class ValidationError(RecordKeeperError):
    """One or more fields failed validation; nothing was written."""

    def __init__(self, errors: list[FieldError]):
        self.errors = list(errors)
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in self.errors))

    def by_field(self) -> dict[str, str]:
        return {e.field: e.message for e in self.errors}


class PermissionDenied(RecordKeeperError):
    """The acting staff member may not do this; the denial was audited."""


class AuthenticationFailed(RecordKeeperError):
    """Wrong username or password (the same message for every cause)."""


class IntegrityFailure(RecordKeeperError):
    """A ciphertext, key or audit entry failed its integrity check."""


class ConfigurationError(RecordKeeperError):
    """A setting is wrong; the message names the setting."""

    def __init__(self, setting: str, message: str):
        self.setting = setting
        super().__init__(f"{setting}: {message}")


class KeyFileError(RecordKeeperError):
    """The master key file or its directory is missing or unsafe; says how to fix it."""


class SchemaError(RecordKeeperError):
    """The database schema is newer or older than this program."""


class NotFound(RecordKeeperError):
    """The record asked for does not exist (or the actor may not know it exists)."""


class Conflict(RecordKeeperError):
    """The record changed since the caller read it."""

