"""Pilot fixtures: an office with one account per role, and a helper to wait on conditions."""

from __future__ import annotations

import pytest

from models import demo, staff
from tests.conftest import TEST_PASSWORD


@pytest.fixture
def demo_office(office, admin):
    """The office fixture plus the demo accounts and a few customers."""
    demo.add_demo_accounts(admin, TEST_PASSWORD)
    demo.add_demo_customers(staff.authenticate("clerk", TEST_PASSWORD), 5)
    return office


async def wait_for(pilot, condition, timeout: float = 10.0) -> None:
    """Let the app run until `condition()` holds (never a fixed sleep)."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)
