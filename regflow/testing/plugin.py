"""The pytest plugin of regflow (entry point ``pytest11: regflow``).

- ``regflow_paths(flow, scenario, registry=...)``: a flow's generated paths as parameters;
- ``frozen_clock``: time frozen by freezegun (moved by the runner to each path's start);
- ``regflow_engine``: makes fresh engines for a path — ``regflow_engine(path)`` on memory,
  ``regflow_engine(path, "sqlite:///...")`` on another store — on the frozen clock, their
  guards recorded, their stores closed after the test;
- at the end of the run, one coverage line per flow whose paths were generated, with how many
  of its paths were replayed.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from regflow.engine import Engine
from regflow.testing.engines import make_engine
from regflow.testing.model import Path, PathSet
from regflow.testing.paths import generate_paths
from regflow.testing.runner import REPLAYED
from regflow.testing.scenario import DEFAULT_START

GENERATED: dict[str, PathSet] = {}  # flow -> its paths, as generated in this session
_CACHE: dict[tuple[Any, ...], PathSet] = {}


def _key(value: Any) -> Any:
    if isinstance(value, str | pathlib.Path):
        return str(pathlib.Path(value).resolve()) if pathlib.Path(value).suffix else str(value)
    return id(value)


def paths_of(flow: Any = None, scenario: Any = None, *, registry: Any = None) -> PathSet:
    """``generate_paths``, once per flow, scenario and registry in a session."""
    key = (_key(flow), _key(scenario), id(registry))
    if key not in _CACHE:
        _CACHE[key] = generate_paths(flow, scenario, registry=registry)
    found = _CACHE[key]
    GENERATED[found.flow] = found
    return found


def regflow_paths(flow: Any = None, scenario: Any = None, *, registry: Any = None) -> list[Any]:
    """The paths as ``pytest.param(path, id=path.id)``."""
    return [pytest.param(p, id=p.id) for p in paths_of(flow, scenario, registry=registry)]


@pytest.fixture
def frozen_clock() -> Iterator[Any]:
    """Time frozen with freezegun; yields its factory (``tick``, ``move_to``)."""
    from freezegun import freeze_time

    freezer = freeze_time(DEFAULT_START.replace(tzinfo=None), tz_offset=0)
    factory = freezer.start()
    try:
        yield factory
    finally:
        freezer.stop()


@pytest.fixture
def regflow_engine(frozen_clock: Any) -> Iterator[Callable[..., Engine]]:
    """``make(path, db="memory://", **options)``: a fresh engine for the path's flow on
    ``db``, reading the frozen clock (``clock=regflow.ManualClock()`` for a manual one)."""
    built: list[Engine] = []

    def make(target: Path | PathSet, db: str = "memory://", **options: Any) -> Engine:
        options.setdefault("clock", frozen_clock)
        engine = make_engine(target, db, **options)
        built.append(engine)
        return engine

    yield make
    for engine in built:
        engine.store.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One coverage line per flow whose paths were generated in this run."""
    if not GENERATED:
        return
    terminalreporter.section("regflow path coverage")
    for flow, found in sorted(GENERATED.items()):
        replayed = len(REPLAYED.get(flow, set()) & {p.id for p in found})
        terminalreporter.write_line(f"{found.coverage.line(flow)}; {replayed}/{len(found)} paths replayed")
