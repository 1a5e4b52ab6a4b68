"""Exhaustive path tests for flows — the built-in ones and your own.

Generate the paths, approve their observable outcomes once (a reviewed file), then check every
change against the approved file, and measure with mutants how much a change would be caught::

    regflow paths FLOW --approve        # write FLOW's approved paths; review and commit the file
    regflow paths FLOW --check          # replay them; exit 1 on any difference
    regflow mutate FLOW                 # how many changed behaviours the approved paths catch

The same in Python::

    from regflow.testing import approved_of, check_path, make_engine

    for path in approved_of("registration"):        # the shipped approved paths
        check_path(make_engine(path), path)         # replays it, comparing every step's outcome

For your own flow, give the definition file and a scenario (its world and witnesses), and the
``Registry`` of your guards and actions (or name it in the scenario). Under pytest, the
plugin (entry point ``regflow``) adds the fixtures ``regflow_engine`` and ``regflow_frozen_clock``
(also named ``frozen_clock``, its former name);
``regflow_approved(...)`` gives the approved paths as parameters (``regflow_paths(...)`` the
generated ones, for ``run_path``). See docs/testing.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regflow.testing.approval import ApprovedPath, approve, approved_of, check_path
    from regflow.testing.engines import FlowSource, flow_source, make_engine
    from regflow.testing.invariants import InvariantViolation, check_invariants, invariant_faults
    from regflow.testing.model import Item, Step, items_of
    from regflow.testing.paths import ExplorationError, generate_paths
    from regflow.testing.pathset import Coverage, Path, PathSet
    from regflow.testing.replay import run_path
    from regflow.testing.runner import PathFailed, Player
    from regflow.testing.scenario import (
        Scenario,
        ScenarioError,
        Witness,
        builtin_scenario,
        load_registry,
        load_scenario,
    )
    from regflow.testing.world import DEFAULT_PASSWORD, OPS, FrozenClock

# Loaded on first use (PEP 562): the pytest plugin imports this package, and a test run that
# never asks for regflow's fixtures pays nothing for them.
_LAZY: dict[str, str] = {
    "ApprovedPath": "regflow.testing.approval",
    "approve": "regflow.testing.approval",
    "approved_of": "regflow.testing.approval",
    "check_path": "regflow.testing.approval",
    "FlowSource": "regflow.testing.engines",
    "flow_source": "regflow.testing.engines",
    "make_engine": "regflow.testing.engines",
    "InvariantViolation": "regflow.testing.invariants",
    "check_invariants": "regflow.testing.invariants",
    "invariant_faults": "regflow.testing.invariants",
    "Coverage": "regflow.testing.pathset",
    "Item": "regflow.testing.model",
    "Path": "regflow.testing.pathset",
    "PathSet": "regflow.testing.pathset",
    "Step": "regflow.testing.model",
    "items_of": "regflow.testing.model",
    "ExplorationError": "regflow.testing.paths",
    "generate_paths": "regflow.testing.paths",
    "PathFailed": "regflow.testing.runner",
    "Player": "regflow.testing.runner",
    "run_path": "regflow.testing.replay",
    "Scenario": "regflow.testing.scenario",
    "ScenarioError": "regflow.testing.scenario",
    "Witness": "regflow.testing.scenario",
    "builtin_scenario": "regflow.testing.scenario",
    "load_registry": "regflow.testing.scenario",
    "load_scenario": "regflow.testing.scenario",
    "DEFAULT_PASSWORD": "regflow.testing.world",
    "FrozenClock": "regflow.testing.world",
    "OPS": "regflow.testing.world",
}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use."""
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'regflow.testing' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

def regflow_approved(flow: Any, scenario: Any = None, *, registry: Any = None,
                     approved: Any = None) -> list[Any]:
    """The approved paths of a flow as ``pytest.param`` values, for
    ``check_path(regflow_engine(path), path)``; see ``approved_of``."""
    from regflow.testing.plugin import regflow_approved as params

    return params(flow, scenario, registry=registry, approved=approved)


def regflow_paths(flow: Any = None, scenario: Any = None, *, registry: Any = None) -> list[Any]:
    """The paths of a flow as ``pytest.param`` values (ids such as ``registration-07``), for
    ``@pytest.mark.parametrize("path", regflow_paths(...))``; see ``generate_paths``."""
    from regflow.testing.plugin import regflow_paths as params

    return params(flow, scenario, registry=registry)


__all__ = [
    "DEFAULT_PASSWORD",
    "OPS",
    "ApprovedPath",
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
    "approve",
    "approved_of",
    "builtin_scenario",
    "check_invariants",
    "check_path",
    "flow_source",
    "generate_paths",
    "invariant_faults",
    "items_of",
    "load_registry",
    "load_scenario",
    "make_engine",
    "regflow_approved",
    "regflow_paths",
    "run_path",
]
