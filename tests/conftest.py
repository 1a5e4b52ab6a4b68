"""Shared fixtures: a frozen clock and engines on every store (memory, a real SQLite file, and a
fresh schema of the local PostgreSQL server, skipped with a one-line reason where there is none)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee  # noqa: F401 - loaded (with its C driver, psycopg) before any test freezes time
import pytest
from chromium import launched
from flows import EngineFactory
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from pg import drop_schema, postgres_url

import regflow

START = "2026-03-02 09:00:00"  # UTC; 18:00 in Asia/Tokyo
DEMO_CONTRACT: dict[str, Any] = {
    "customer_id": "281234",
    "phone": "03-1234-5678",
    "licenses": 3,
    "accounts": ["abcd8-01", "abcd8-02", "abcd8-03"],
}
STORES = ("memory", "sqlite", "postgresql")


@pytest.fixture
def frozen() -> Iterator[FrozenDateTimeFactory]:
    """Time frozen at START (UTC); tests move it with ``frozen.tick`` / ``frozen.move_to``."""
    freezer = freeze_time(START, tz_offset=0)
    factory = freezer.start()
    try:
        yield factory
    finally:
        freezer.stop()


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which store the engines of a test run on."""
    return str(request.param)


@pytest.fixture
def make_engine(store_kind: str, tmp_path: Path,
                frozen: FrozenDateTimeFactory) -> Iterator[EngineFactory]:
    """Build engines (inside the frozen time) on the test's store kind, demo contract added.

    Keyword arguments go to ``Engine.from_url`` (``settings=``, ``provisioner=``, ``clock=``...);
    ``mail`` is always ``memory`` and ``hasher`` defaults to ``fast``.
    """
    del frozen  # requested only so that engines are made while time is frozen
    built: list[regflow.Engine] = []
    schemas: list[str] = []
    numbers = itertools.count(1)

    def make(**options: Any) -> regflow.Engine:
        if store_kind == "memory":
            url = "memory://"
        elif store_kind == "postgresql":
            url = postgres_url()
            schemas.append(url)
        else:
            url = f"sqlite:///{tmp_path / f'regflow-{next(numbers)}.db'}"
        options.setdefault("hasher", "fast")
        engine = regflow.Engine.from_url(url, mail="memory", **options)
        engine.contracts.add(**DEMO_CONTRACT)
        built.append(engine)
        return engine

    yield make
    for engine in built:
        engine.store.close()
    for url in schemas:
        drop_schema(url)


@pytest.fixture
def engine(make_engine: EngineFactory) -> regflow.Engine:
    """An engine with the demo contract 281234 (3 licenses, seats abcd8-01..03)."""
    return make_engine()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One chromium for the test module (each test gets its own context or tab), or a one-line
    skip without it or without Playwright."""
    with launched() as browser:
        yield browser


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store URL several engines or processes can share: a SQLite file, or a fresh PostgreSQL
    schema (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'regflow.db'}"
        return
    url = postgres_url()
    try:
        yield url
    finally:
        drop_schema(url)
