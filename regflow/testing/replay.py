"""Replaying one generated path end to end (``run_path``): its world set up, each step played by a
``Player`` (``regflow.testing.runner``) and checked against its expected state and timers fired,
I1–I5 after every step, and at the end that the path covered the items it lists. ``REPLAYED``
records which paths were replayed successfully, by flow, for the pytest plugin's coverage summary.
"""

from __future__ import annotations

from regflow.engine import Engine
from regflow.testing.engines import engine_meta
from regflow.testing.invariants import check_invariants
from regflow.testing.model import Step
from regflow.testing.pathset import Path
from regflow.testing.runner import PathFailed, Player
from regflow.testing.world import clock_driver

REPLAYED: dict[str, set[str]] = {}  # flow -> ids of paths replayed successfully (for reports)

def run_path(engine: Engine, path: Path, *, clock: object | None = None,
             invariants: bool = True) -> list[Step]:
    """Replay ``path`` on a fresh ``engine``: set up its world, start the flow, run each step and
    assert its expected state (and timers fired), I1–I5 after every step (``invariants``), and
    — on an engine from ``make_engine`` — that the path covered every item it lists.

    The clock: ``clock`` (a ``regflow.ManualClock`` or a freezegun factory), else the one the
    engine was made with, else the engine's own ManualClock. Returns the observed steps."""
    meta = engine_meta(engine)
    driver = clock_driver(clock if clock is not None else meta.driver if meta is not None else engine.clock)
    player = Player(engine, path.flow, path.scenario, driver, meta.recorder if meta is not None else None,
                    check=invariants)
    player.setup_world()
    first = player.begin(path.context)
    seen, observed = set(first.items), []
    if invariants:
        check_invariants(engine, flow_id=player.flow_id)
    for n, step in enumerate(path.steps, 1):
        try:
            result = player.play(step)
        except AssertionError as exc:
            raise PathFailed(f"{path.id} step {n} ({step.describe()}): {exc}\n{_listing(path)}") from exc
        got = result.step
        if (step.expect, step.fired) != (got.expect, got.fired) and step.expect is not None:
            raise PathFailed(
                f"{path.id} step {n} ({step.describe()}): expected {step.expect!r}"
                + (f" with {list(step.fired)} fired" if step.fired is not None else "")
                + f", got {got.expect!r}"
                + (f" with {list(got.fired)} fired" if got.fired is not None else "")
                + f" (messages {list(result.messages)})\n{_listing(path)}")
        seen |= result.items
        observed.append(got)
    missing = [i for i in path.covers if i not in seen] if meta is not None else []
    if missing:
        raise PathFailed(f"{path.id} did not cover {missing}\n{_listing(path)}")
    REPLAYED.setdefault(path.flow, set()).add(path.id)
    return observed


def _listing(path: Path) -> str:
    lines = [f"  start {path.flow} {path.context}"]
    lines += [f"  {n}. {s.describe()} -> {s.expect}" for n, s in enumerate(path.steps, 1)]
    return "\n".join(lines)
