"""The one clock every service reads, so tests can freeze and advance time."""

from __future__ import annotations

import datetime as dt
import time

_frozen: dt.datetime | None = None
_monotonic_offset = 0.0


def now() -> dt.datetime:
    """Current UTC time (aware)."""
    if _frozen is not None:
        return _frozen
    return dt.datetime.now(dt.timezone.utc)


def today() -> dt.date:
    """Today's date in the office's local time."""
    if _frozen is not None:
        return _frozen.astimezone().date()
    return dt.date.today()


def monotonic() -> float:
    """Seconds on a clock that never goes back (tests may push it forward)."""
    return time.monotonic() + _monotonic_offset


def advance_monotonic(seconds: float) -> None:
    global _monotonic_offset
    _monotonic_offset += seconds


def freeze(at: dt.datetime | None) -> None:
    """Freeze the clock at `at` (None unfreezes). For tests and demos only."""
    global _frozen
    _frozen = at


def advance(delta: dt.timedelta) -> None:
    global _frozen
    _frozen = (_frozen or now()) + delta
