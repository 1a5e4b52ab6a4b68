"""Exhaustive path tests for flows — the built-in ones and your own (SPEC 3, 4.3).

::

    from regflow.testing import generate_paths, make_engine, run_path

    paths = generate_paths("registration")          # a built-in flow and its built-in scenario
    print(paths.coverage.line("registration"))      # transitions 25/25, guard outcomes 28/28, ...
    for path in paths:
        run_path(make_engine(path), path)           # replays it, checking I1–I5 after every step

For your own flow, give the definition file and a scenario (its world and witnesses), and the
``Registry`` of your guards and actions (or name it in the scenario). Under pytest, the
plugin (entry point ``regflow``) adds the fixtures ``regflow_engine`` and ``frozen_clock``;
``regflow_paths(...)`` gives the paths as parameters. See docs/testing.md.
"""

from __future__ import annotations

from typing import Any

from regflow.testing.engines import FlowSource, flow_source, make_engine
from regflow.testing.invariants import InvariantViolation, check_invariants, invariant_faults
from regflow.testing.model import Coverage, Item, Path, PathSet, Step, items_of
from regflow.testing.paths import ExplorationError, generate_paths
from regflow.testing.runner import PathFailed, Player, run_path
from regflow.testing.scenario import (
    Scenario,
    ScenarioError,
    Witness,
    builtin_scenario,
    load_registry,
    load_scenario,
)
from regflow.testing.world import DEFAULT_PASSWORD, OPS, FrozenClock


def regflow_paths(flow: Any = None, scenario: Any = None, *, registry: Any = None) -> list[Any]:
    """The paths of a flow as ``pytest.param`` values (ids such as ``registration-07``), for
    ``@pytest.mark.parametrize("path", regflow_paths(...))``; see ``generate_paths``."""
    from regflow.testing.plugin import regflow_paths as params

    return params(flow, scenario, registry=registry)


__all__ = [
    "DEFAULT_PASSWORD",
    "OPS",
    "Coverage",
    "ExplorationError",
    "FlowSource",
    "FrozenClock",
    "InvariantViolation",
    "Item",
    "Path",
    "PathFailed",
    "PathSet",
    "Player",
    "Scenario",
    "ScenarioError",
    "Step",
    "Witness",
    "builtin_scenario",
    "check_invariants",
    "flow_source",
    "generate_paths",
    "invariant_faults",
    "items_of",
    "load_registry",
    "load_scenario",
    "make_engine",
    "regflow_paths",
    "run_path",
]
