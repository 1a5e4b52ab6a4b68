"""The pytest plugin of regflow (entry point ``pytest11: regflow``).

- ``regflow_paths(flow, scenario, registry=...)``: a flow's generated paths as parameters;
- ``regflow_frozen_clock``: time frozen by freezegun (moved by the runner to each path's start);
  ``frozen_clock`` is the same fixture under its former name, kept for existing tests;
- ``regflow_engine``: makes fresh engines for a path — ``regflow_engine(path)`` on memory,
  ``regflow_engine(path, "sqlite:///...")`` on another store — on the frozen clock, their
  guards recorded, their stores closed after the test;
- at the end of the run, one coverage line per flow whose paths were generated, with how many
  of its paths were replayed.

Loading the plugin costs nothing: it imports only pytest here; freezegun and the engine are
imported by the fixtures and helpers that use them.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from regflow.engine import Engine
    from regflow.testing.pathset import PathSet

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
        from regflow.testing.paths import generate_paths

        _CACHE[key] = generate_paths(flow, scenario, registry=registry)
    found = _CACHE[key]
    GENERATED[found.flow] = found
    return found


def regflow_paths(flow: Any = None, scenario: Any = None, *, registry: Any = None) -> list[Any]:
    """The paths as ``pytest.param(path, id=path.id)``."""
    return [pytest.param(p, id=p.id) for p in paths_of(flow, scenario, registry=registry)]


def regflow_approved(flow: Any, scenario: Any = None, *, registry: Any = None,
                     approved: Any = None) -> list[Any]:
    """The approved paths of a flow (``approval.approved_of``) as ``pytest.param(path, id=…)``,
    for ``check_path(regflow_engine(path), path)``."""
    from regflow.testing.approval import approved_of

    return [pytest.param(p, id=p.id)
            for p in approved_of(flow, scenario, registry=registry, approved=approved)]


@pytest.fixture
def regflow_frozen_clock() -> Iterator[Any]:
    """Time frozen with freezegun; yields its factory (``tick``, ``move_to``)."""
    from freezegun import freeze_time

    from regflow.testing.scenario import DEFAULT_START

    freezer = freeze_time(DEFAULT_START.replace(tzinfo=None), tz_offset=0)
    factory = freezer.start()
    try:
        yield factory
    finally:
        freezer.stop()


@pytest.fixture
def frozen_clock(regflow_frozen_clock: Any) -> Any:
    """``regflow_frozen_clock`` under its former name (kept for existing tests; a fixture of
    your own named ``frozen_clock`` takes precedence over it)."""
    return regflow_frozen_clock


@pytest.fixture
def regflow_engine(regflow_frozen_clock: Any) -> Iterator[Callable[..., Engine]]:
    """``make(path, db="memory://", **options)``: a fresh engine for the path's flow on
    ``db``, reading the frozen clock (``clock=regflow.ManualClock()`` for a manual one)."""
    from regflow.testing.engines import make_engine

    built: list[Engine] = []

    def make(target: Any, db: str = "memory://", **options: Any) -> Engine:
        options.setdefault("clock", regflow_frozen_clock)
        engine = make_engine(getattr(target, "path", target), db, **options)  # an ApprovedPath too
        built.append(engine)
        return engine

    yield make
    for engine in built:
        engine.store.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One coverage line per flow whose paths were generated in this run: the items of the
    paths replayed successfully in the run (a path generated but not replayed, or failed,
    covers nothing), how many were replayed and the ids of those that were not."""
    if not GENERATED:
        return
    from regflow.testing.replay import REPLAYED

    terminalreporter.section("regflow path coverage")
    for flow, found in sorted(GENERATED.items()):
        replayed = REPLAYED.get(flow, set()) & {p.id for p in found}
        coverage = found.coverage_of(replayed)
        line = f"{coverage.line(flow, limit=8)}; {len(replayed)}/{len(found)} paths replayed"
        left = [p.id for p in found if p.id not in replayed]
        terminalreporter.write_line(line + (f"; not replayed: {', '.join(left)}" if left else ""))
