"""Exhaustive path tests (SPEC 3, 4.3): every generated path of every built-in flow replays on
the memory store and on SQLite under a frozen clock, with I1–I5 checked after every step and
each step's expected state asserted; the paths cover every transition, guard outcome and timer
(except what a scenario declares unreachable, with its reason); generation is deterministic;
``regflow paths`` prints the JSON of SPEC 4.3. The invitation example of docs/testing.md —
a flow that is not built in — runs here too, exactly as a user runs it.

The coverage line of every flow is printed at the end of the run (the plugin's summary).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner

import regflow
from regflow.cli import main
from regflow.machines import BUILTIN_FLOWS
from regflow.records import Login
from regflow.testing import (
    InvariantViolation,
    PathFailed,
    ScenarioError,
    check_invariants,
    generate_paths,
    load_scenario,
    make_engine,
    regflow_paths,
    run_path,
)
from regflow.testing.plugin import paths_of

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "docs" / "examples"
STORES = ("memory", "sqlite")


def _example() -> Any:
    """docs/examples/test_invitation.py, imported as the user's own test module."""
    spec = importlib.util.spec_from_file_location("invitation_example_test", EXAMPLES / "test_invitation.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


test_invitation = _example().test_invitation  # collected here: the user's five lines, proven


@pytest.mark.parametrize("path", [p for flow in BUILTIN_FLOWS for p in regflow_paths(flow)])
@pytest.mark.parametrize("store", STORES)
def test_every_path_replays(path: regflow.testing.Path, store: str, regflow_engine: Any,
                            tmp_path: Path) -> None:
    """The path's steps reach their expected states, I1–I5 hold after each, it covers what it says."""
    db = "memory://" if store == "memory" else f"sqlite:///{tmp_path / 'regflow.db'}"
    run_path(regflow_engine(path, db), path)


@pytest.mark.parametrize("flow", BUILTIN_FLOWS)
def test_coverage_is_complete(flow: str) -> None:
    """Every transition, both outcomes of every guard and every timer at −1 s / 0 / +1 s are
    reached; what is not is exactly what the scenario declares unreachable."""
    found = paths_of(flow)
    coverage = found.coverage
    assert coverage.complete, coverage.line(flow)
    assert set(coverage.uncovered) == set(found.scenario.unreachable), coverage.line(flow)
    for kind in ("transitions", "guard_outcomes", "timers"):
        covered, total = coverage.count(kind)
        declared = sum(1 for i in coverage.items if i.kind == kind and i.id in found.scenario.unreachable)
        assert covered + declared == total, (kind, coverage.line(flow))


def test_no_built_in_flow_declares_unreachable_items() -> None:
    """Every branch and guard outcome of the built-in flows can be reached (password_reset's
    two send-limit branches on its first screen, which no path could take, were removed)."""
    declared = {flow: sorted(paths_of(flow).scenario.unreachable) for flow in BUILTIN_FLOWS}
    assert {flow: items for flow, items in declared.items() if items} == {}


@pytest.mark.parametrize("flow", BUILTIN_FLOWS)
def test_generation_is_deterministic(flow: str) -> None:
    """Two generations print the same JSON."""
    assert generate_paths(flow).to_json() == paths_of(flow).to_json()


def test_generation_is_deterministic_across_processes() -> None:
    """The CLI prints the same bytes under different hash seeds (no set order leaks out)."""
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        command = [sys.executable, "-c", "from regflow.cli import main; main()", "paths", "sign_in"]
        done = subprocess.run(command, env=env, capture_output=True, check=True, cwd=ROOT)
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0])["coverage"] == {"transitions": [29, 29], "guard_outcomes": [40, 40],
                                                  "timers": [6, 6]}


def test_the_json_of_spec_4_3() -> None:
    """``regflow paths FLOW``: flow, paths of steps (event + data, or advance) and covers, counts."""
    result = CliRunner().invoke(main, ["paths", "registration"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["flow"] == "registration"
    assert found["coverage"] == {"transitions": [25, 25], "guard_outcomes": [28, 28], "timers": [9, 9]}
    steps = [s for p in found["paths"] for s in p["steps"]]
    assert all({"event", "data", "expect"} <= set(s) or {"advance", "expect", "fired"} <= set(s)
               or "world" in s for s in steps)
    timers = {s["timer"] for s in steps if "timer" in s}
    assert {"enter_code.after[0]@-1s", "enter_code.after[0]@0s", "enter_code.after[0]@+1s",
            "provisioning.after[0]@-1s", "expiry@+1s"} <= timers
    assert all(p["covers"] for p in found["paths"])
    assert found["scenario"]["witnesses"]["contract_matches"]["false"] == [{"data": {"tel": "03-9999-9999"}}]
    summary = CliRunner().invoke(main, ["paths", "password_reset", "--summary", "--check"])
    assert summary.exit_code == 0
    assert summary.stdout.startswith(
        "password_reset: transitions 15/15, guard outcomes 14/14, timers 6/6 (100%)")


def test_a_users_flow_from_the_command_line() -> None:
    """A definition file needs its scenario; with it, the user's registry is found next to it."""
    flow = str(EXAMPLES / "invitation.yaml")
    refused = CliRunner().invoke(main, ["paths", flow])
    assert refused.exit_code == 2
    assert "give its --scenario FILE" in refused.output
    done = CliRunner().invoke(main, ["paths", flow, "--scenario", str(EXAMPLES / "invitation_scenario.yaml"),
                                     "--summary", "--check"])
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "invitation: transitions 6/6, guard outcomes 6/6, timers 3/3 (100%)"


def test_a_wrong_expectation_fails_the_replay() -> None:
    """A replay is a real test: a step reaching another state than expected fails it."""
    path, n = next((p, n) for p in paths_of("registration") for n, s in enumerate(p.steps)
                   if s.expect == "provisioning" and s.event == "submit")
    steps = list(path.steps)
    steps[n] = attrs.evolve(steps[n], expect="details")
    wrong = attrs.evolve(path, steps=tuple(steps))
    with pytest.raises(PathFailed, match="expected 'details', got 'provisioning'"):
        run_path(make_engine(wrong), wrong)
    claims = attrs.evolve(path, covers=(*path.covers, "details.submit[4]"))
    with pytest.raises(PathFailed, match=r"did not cover \['details.submit\[4\]'\]"):
        run_path(make_engine(claims), claims)


def test_the_invariants_are_checked() -> None:
    """I1 (a login kept under a key that is not its normalised address) and I3 (more logins
    than licenses) are found in the store."""
    path = paths_of("registration").paths[0]
    engine = make_engine(path)
    run_path(engine, path)
    check_invariants(engine)
    with engine.store.transaction() as tx:
        for n in range(3):
            tx.logins.insert(Login(
                id=f"extra-{n}", customer_id="281234", email=f"Extra{n}@Example.jp",
                email_key=f"Extra{n}@Example.jp",
                password_hash="x", display_name="x", role="member", two_factor=False,
                ready_at=engine.clock.now(), account=None, created_at=engine.clock.now()))
    with pytest.raises(InvariantViolation) as found:
        check_invariants(engine)
    assert any(f.startswith("I1: 'Extra0@Example.jp' is kept under") for f in found.value.faults)
    assert any(f.startswith("I3: customer 281234 has") for f in found.value.faults)


def test_scenario_faults_name_their_place() -> None:
    """Witness typos and names the flow does not know are reported with their path."""
    with pytest.raises(ScenarioError) as bad:
        load_scenario({"witnesses": {"code_matches": {"false": [{"dta": {}}], "maybe": {}}},
                       "world": {"logins": [{"email": "x@example.jp"}]}})
    assert bad.value.faults == [
        "scenario.world.logins[0]: add_login needs 'customer_id'",
        "scenario.witnesses.code_matches.false[0]: unknown key 'dta'",
        "scenario.witnesses.code_matches: 'true' or 'false', not 'maybe'",
    ]
    with pytest.raises(ScenarioError) as unknown:
        generate_paths("set_two_factor", {"witnesses": {"code_matches": {"true": {"data": {"code": "1"}}}},
                                          "unreachable": {"confirm.submit[3]": "?"}, "session": "a@b.jp"})
    assert unknown.value.faults == [
        "scenario.witnesses.code_matches: the flow asks no guard 'code_matches'",
        "scenario.unreachable: 'confirm.submit[3]' is no coverage item of set_two_factor",
    ]


def test_what_is_missing_is_said() -> None:
    """Without the event's data every submit is refused by the validators: the items stay
    uncovered, and a note says why."""
    scenario = load_scenario(EXAMPLES / "invitation_scenario.yaml")
    bare = attrs.evolve(scenario, data={})
    found = generate_paths(EXAMPLES / "invitation.yaml", bare)
    assert not found.coverage.complete
    assert "invited.submit[3]" in found.coverage.missing
    assert found.notes == ("invited.submit: the data was refused (field_required, field_required, "
                           "field_required); give it under the scenario's data",)
    assert "MISSING invited.submit[0]" in found.coverage.line("invitation")

