"""Close the dashboard clients the attack suites open, after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.functional.dashboard.helpers import OPEN


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()
