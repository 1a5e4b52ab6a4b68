"""The path generator: explores a flow on a private memory engine and keeps the paths that
together cover every transition, every guard outcome of every branch and every timer at its
deadline −1 s, exactly, and +1 s (the items are described in
``regflow.testing.model``).

The search runs the real engine (the definition's own guards and actions) and *observes*:
every guard answer is recorded, so coverage is measured, never assumed. A guard outcome is
counted per branch that asks it, by walking the branches in order with the step's recorded
answers (each branch's ``guard`` list then its ``unless`` list, stopping at the first that
fails), as the engine chose.

Time comes from the definition, not from the engine: the Player (``regflow.testing.runner``)
follows the journal and keeps each timer's deadline as the instant its state was entered (the
start, a branch with a ``target`` — the same state included — or a timer's own firing into
one) plus its declared duration (settings resolved), and the inactivity expiry as the instant
of the last user event the engine applied (an ``invalid`` answer too; a refused event not) plus
the declared expiry. An engine that stores another deadline gets the declared advances all
the same, and its boundary items are then not covered.

1. **Breadth first** over nodes — a node is the flow's state, its pending timers and the text
   and yes/no facts of its data. From each node it tries every event with the scenario's base
   data, with each witness of a guard asked there, and with each compatible pair of witnesses;
   and for each pending timer — and for the inactivity expiry in each state where it can fire
   (``<state>.expiry``) while that state's expiry items are open — three moves: an advance to
   one second before the deadline, then the state's ``submit`` with its base data (the state
   still works then; this move tests the ``@-1s`` item, covered when nothing fired); an advance
   to one second before then one more second (exactly at it: fired); an advance to one second
   after it (fired). A state without ``submit`` tests ``@-1s`` in the exactly-at move.
2. **Pumping** — counters (tries, sends, mismatches, failed passwords) are not part of a node.
   For what is still uncovered at a state, it repeats each loop seen there (a step that stays,
   or a step out and one back) up to the largest number in the settings + 2 times, trying the
   state's events after each round.
3. **Choosing** — of the paths that added coverage, a greedy set cover keeps the fewest that
   cover everything reached, in the order found (shortest first).

Backtracking uses the memory store's nested transactions as savepoints (a block that raises
is undone), plus the clock, the mailer's list, the flow's settings and the Player's deadlines
put back by hand.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

from regflow.definitions.model import FlowDefinition
from regflow.definitions.registry import Registry
from regflow.machines import BUILTIN_FLOWS
from regflow.testing.engines import flow_source
from regflow.testing.explorer import Explorer
from regflow.testing.moves import ExplorationError
from regflow.testing.pathset import PathSet
from regflow.testing.scenario import Scenario, ScenarioError, builtin_scenario, load_scenario

__all__ = ["ExplorationError", "generate_paths"]


def generate_paths(flow: str | pathlib.Path | FlowDefinition | Mapping[str, Any] | None = None,
                   scenario: Scenario | str | pathlib.Path | Mapping[str, Any] | None = None, *,
                   registry: Registry | None = None) -> PathSet:
    """Paths covering a flow: a built-in name (its scenario is built in too), a definition
    file, a mapping or a loaded definition, with a scenario (file, mapping or Scenario) and the
    registry of the user's own names (else the one the scenario names)."""
    if scenario is None:
        if not (isinstance(flow, str) and flow in BUILTIN_FLOWS):
            raise ScenarioError(["a flow that is not built in needs a scenario (its world and witnesses)"])
        scenario = builtin_scenario(flow)
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if registry is None:
        registry = scenario.load_registry()
    if flow is None:
        flow = scenario.definition_file() or scenario.flow
        if flow is None:
            raise ScenarioError(["scenario.flow: name the flow (a built-in name or a definition file)"])
    return Explorer(flow_source(flow, registry), scenario).explore()
