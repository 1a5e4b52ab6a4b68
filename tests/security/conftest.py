"""The ``server`` fixture of the attack tests: ``regflow serve`` as a real process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from live import Server, serving


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """``regflow serve`` on a fresh SQLite file, and on a fresh PostgreSQL schema."""
    with serving(str(request.param), tmp_path) as running:
        yield running
