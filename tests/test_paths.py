"""Exhaustive path tests (SPEC 3, 4.3): every generated path of every built-in flow replays on
the memory store and on SQLite under a frozen clock, with I1–I5 checked after every step and
each step's expected state asserted; the paths cover every transition, every guard outcome of
every branch and every timer and the inactivity expiry of every active state (except what a
scenario declares unreachable, with its reason); generation is deterministic; ``regflow paths``
prints the JSON of SPEC 4.3. The invitation example of docs/testing.md — a flow that is not
built in — runs here too, exactly as a user runs it.

The clock advances of the timer steps are the definition's declared durations, whatever the
engine stores (checked against an engine that arms its timers 60 s late); the expected numbers
below are those of the definition files (registration.toml: code_ttl 30m, provisioning_delay
10m, flow_expiry 60m; sign_in.toml: code_ttl 10m, flow_expiry 60m).

The coverage line of every flow is printed at the end of the run (the plugin's summary), from
the paths replayed in the run only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner

import regflow
from regflow.cli import main
from regflow.engine import Engine
from regflow.ground.records import Login
from regflow.machines import BUILTIN_FLOWS
from regflow.runtime import steps as engine_steps
from regflow.testing import (
    InvariantViolation,
    PathFailed,
    ScenarioError,
    check_invariants,
    generate_paths,
    load_scenario,
    make_engine,
    plugin,
    regflow_paths,
    run_path,
)
from regflow.testing.engines import engine_meta, flow_source
from regflow.testing.model import Step, items_of, walk_branches
from regflow.testing.plugin import paths_of
from regflow.testing.runner import Player

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "regflow" / "examples"
STORES = ("memory", "sqlite")
MINUTE = 60
# The declared durations, as the definition files write them (registration.toml, sign_in.toml).
DECLARED = {
    "registration": {"enter_code.after[0]": 30 * MINUTE, "provisioning.after[0]": 10 * MINUTE,
                     "expiry": 60 * MINUTE},
    "sign_in": {"second_factor.after[0]": 10 * MINUTE, "expiry": 60 * MINUTE},
}


def _example() -> Any:
    """regflow/examples/test_invitation.py, imported as the user's own test module."""
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
    assert json.loads(outputs[0])["coverage"] == {"transitions": [29, 29], "guard_outcomes": [46, 46],
                                                  "timers": [9, 9]}


def test_the_json_of_spec_4_3() -> None:
    """``regflow paths FLOW``: flow, paths of steps (event + data, or advance) and covers, counts."""
    result = CliRunner().invoke(main, ["paths", "registration"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["flow"] == "registration"
    # registration.toml: 30 branches (issue 12 added two "seat_linked" ends, email_taken's submit
    # and forgot_password and provisioning's ok), 34 guard outcomes
    assert found["coverage"] == {"transitions": [30, 30], "guard_outcomes": [34, 34], "timers": [15, 15]}
    steps = [s for p in found["paths"] for s in p["steps"]]
    assert all({"event", "data", "expect"} <= set(s) or {"advance", "expect", "fired"} <= set(s)
               or "world" in s for s in steps)
    timers = {s["timer"] for s in steps if "timer" in s}
    assert {"enter_code.after[0]@-1s", "enter_code.after[0]@0s", "enter_code.after[0]@+1s",
            "provisioning.after[0]@-1s", "enter_email.expiry@+1s", "details.expiry@-1s"} <= timers
    assert all(p["covers"] for p in found["paths"])
    assert found["scenario"]["witnesses"]["contract_matches"]["false"][0] == {"data": {"tel": "03-9999-9999"}}
    assert found["scenario"]["witnesses"]["contract_matches"]["false"][1]["keep"] is True
    summary = CliRunner().invoke(main, ["paths", "password_reset", "--summary"])
    assert summary.exit_code == 0
    assert summary.stdout.startswith(
        "password_reset: transitions 15/15, guard outcomes 14/14, timers 9/9 (100%)")


def test_a_users_flow_from_the_command_line() -> None:
    """A definition file needs its scenario; with it, the user's registry is found next to it."""
    flow = str(EXAMPLES / "invitation.yaml")
    refused = CliRunner().invoke(main, ["paths", flow])
    assert refused.exit_code == 2
    assert "give its --scenario FILE" in refused.output
    done = CliRunner().invoke(main, ["paths", flow, "--scenario", str(EXAMPLES / "invitation_scenario.yaml"),
                                     "--summary"])
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
        "scenario.witnesses.code_matches: the flow asks no guard 'code_matches' and has no "
        "transition of that name",
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



# ---- time from the definition ----------------------------------------------------------------


def _boundary_advances(found: Any) -> dict[str, set[int]]:
    """``{timer item: advances}`` of the timer steps taken while no time has passed since
    their state was entered from another state (or the flow started), so that the advances are
    the whole declared duration − 1 s (then 1 s) or + 1 s. The unlabelled advance just before
    an ``@0s`` step is the ``@-1s`` one of that move."""
    seen: dict[str, set[int]] = {}
    for path in found:
        state, fresh = None, True  # the start enters the initial state
        for n, step in enumerate(path.steps):
            label = step.timer
            following = path.steps[n + 1].timer if n + 1 < len(path.steps) else None
            if label is None and step.advance is not None and following and following.endswith("@0s"):
                label = following.removesuffix("@0s") + "@-1s"
            if step.advance is not None:
                if label is not None and fresh:
                    seen.setdefault(label, set()).add(int(step.advance))
                fresh = fresh and label is not None and label.endswith("@-1s") and not step.fired
            elif step.world is not None:
                fresh = False
            elif step.event is not None:
                moved = step.expect not in (state, "refused", "gone", "forbidden")
                fresh, state = moved, step.expect if moved else state
    return seen


def _expected_advances(flow: str) -> dict[str, set[int]]:
    """The advances the declared durations give: deadline − 1 s, then 1 s, and deadline + 1 s."""
    found = paths_of(flow)
    expiring = [i.id.rpartition(".expiry@")[0] for i in items_of(found.source.library().latest(flow))
                if i.id.endswith(".expiry@-1s")]
    labels = {**{k: v for k, v in DECLARED[flow].items() if k != "expiry"},
              **{f"{s}.expiry": DECLARED[flow]["expiry"] for s in expiring}}
    return {item: {value} for label, seconds in labels.items()
            for item, value in ((f"{label}@-1s", seconds - 1), (f"{label}@0s", 1),
                                (f"{label}@+1s", seconds + 1))}


def _same_where_both(got: dict[str, set[int]], expected: dict[str, set[int]]) -> bool:
    return {k: v for k, v in got.items() if k in expected} == {k: v for k, v in expected.items() if k in got}


@pytest.mark.parametrize("flow", ["registration", "sign_in"])
def test_timer_advances_are_the_declared_durations(flow: str) -> None:
    """Every boundary advance taken from the moment a state was entered is its declared
    duration − 1 s / 1 s more / + 1 s; the inactivity expiry's from the start likewise."""
    got = _boundary_advances(paths_of(flow))
    assert _same_where_both(got, _expected_advances(flow)), got
    assert {"provisioning.after[0]@-1s", "provisioning.after[0]@+1s", "enter_email.expiry@-1s",
            "enter_code.after[0]@-1s"} <= set(got) if flow == "registration" else \
        {"second_factor.after[0]@-1s", "credentials.expiry@-1s", "credentials.expiry@+1s"} <= set(got)


def test_a_wrong_engine_deadline_does_not_change_the_advances(monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine that arms every timer 60 s late, and sets the inactivity expiry 60 s late
    after each event: the generated advances are still the declared durations, so the paths
    show the timers not firing at their deadline (those items are no longer covered)."""
    entered, stepped = engine_steps.enter, Engine._step

    def late_timers(compiled: Any, ctx: Any, target: str) -> None:
        entered(compiled, ctx, target)
        ctx.flow.timers = [(event, at + timedelta(seconds=60)) for event, at in ctx.flow.timers]

    def late_expiry(self: Engine, compiled: Any, ctx: Any, *args: Any) -> None:
        stepped(self, compiled, ctx, *args)
        if ctx.flow.expires_at is not None:
            ctx.flow.expires_at += timedelta(seconds=60)

    monkeypatch.setattr(engine_steps, "enter", late_timers)
    monkeypatch.setattr(Engine, "_step", late_expiry)
    for flow in ("registration", "sign_in"):
        found = generate_paths(flow)
        got = _boundary_advances(found)
        assert got, flow
        assert _same_where_both(got, _expected_advances(flow)), (flow, got)
        advances = {s.advance for p in found for s in p.steps if s.timer is not None}
        assert not advances & {30 * MINUTE - 1 + 60, 10 * MINUTE - 1 + 60, 60 * MINUTE - 1 + 60}
    registration = generate_paths("registration")
    assert {"provisioning.after[0]@0s", "provisioning.after[0]@+1s", "enter_code.after[0]@0s",
            "details.expiry@0s"} <= set(registration.coverage.missing)


def test_one_second_before_the_deadline_the_state_still_works() -> None:
    """The @-1s move sends the state's submit with its base data: the code mailed is still
    accepted one second before it expires; the details are still taken a second before the
    flow would expire."""
    found = paths_of("registration")
    after = {}
    for path in found:
        for n, step in enumerate(path.steps[:-1]):
            if step.timer is not None and step.timer.endswith("@-1s"):
                after[step.timer] = path.steps[n + 1]
    assert after["enter_code.after[0]@-1s"] == Step(event="submit", data={"code": "$code"}, expect="details")
    assert after["details.expiry@-1s"].event == "submit"
    assert after["details.expiry@-1s"].expect == "provisioning"
    assert after["enter_email.expiry@-1s"].expect == "enter_code"
    assert "provisioning.after[0]@-1s" not in after or after["provisioning.after[0]@-1s"].timer is not None


def test_the_player_keeps_the_definitions_deadlines() -> None:
    """Deadlines by the definition: a timer from the instant its state was (re-)entered, the
    expiry from the last event the engine applied — an invalid answer counts, a refused event
    does not."""
    found = paths_of("registration")
    engine = make_engine(found)
    meta = engine_meta(engine)
    assert meta is not None
    player = Player(engine, "registration", found.scenario, meta.driver, meta.recorder)
    player.setup_world()
    t0 = meta.driver.now()
    code_ttl, expiry = timedelta(minutes=30), timedelta(minutes=60)

    def deadlines() -> tuple[list[tuple[str, Any]], Any]:
        return player.deadlines(), player.timing.expires

    player.begin(found.scenario.context)
    assert deadlines() == ([], t0 + expiry)
    player.play(Step(event="submit", data={"email": "new@example.jp"}))
    assert deadlines() == ([("enter_code.after[0]", t0 + code_ttl)], t0 + expiry)
    player.play(Step(advance=180))
    assert player.play(Step(event="resend_code")).step.expect == "enter_code"  # re-enters enter_code
    t1 = t0 + timedelta(seconds=180)
    assert deadlines() == ([("enter_code.after[0]", t1 + code_ttl)], t1 + expiry)
    player.play(Step(advance=60))
    assert player.play(Step(event="submit", data={"code": "12"})).outcome == "invalid"
    t2 = t1 + timedelta(seconds=60)
    assert deadlines() == ([("enter_code.after[0]", t1 + code_ttl)], t2 + expiry)
    player.play(Step(advance=60))
    assert player.play(Step(event="provisioned")).step.expect == "refused"
    assert player.timing.expires == t2 + expiry
    player.play(Step(advance=int(code_ttl.total_seconds())))  # the code's timer fires (no target)
    assert deadlines() == ([], t2 + expiry)


TICKER = {"name": "ticker", "version": 1, "initial": "waiting", "expiry": "1h", "states": {
    "waiting": {"screen": {"actions": ["submit"]}, "after": [{"after": "10m", "event": "tick"}],
                "on": {"tick": "waiting", "submit": "done"}},
    "done": {"final": True}}}


def test_a_timer_firing_into_its_state_rearms_it_at_its_own_deadline() -> None:
    """A 10 min timer whose branch re-enters its state: fired at 10:00 (seen at 10:01), it is
    armed again from 10:00; two more firings later, from 30:00. The expiry (1 h) stays where
    the start put it: a timer is no user event."""
    engine = make_engine(flow_source(TICKER))
    meta = engine_meta(engine)
    assert meta is not None
    player = Player(engine, "ticker", load_scenario({}), meta.driver, meta.recorder)
    player.setup_world()
    t0 = meta.driver.now()
    player.begin({})
    assert player.deadlines() == [("waiting.after[0]", t0 + timedelta(minutes=10))]
    assert player.play(Step(advance=10 * MINUTE + 1)).step.fired == ("tick",)
    assert player.deadlines() == [("waiting.after[0]", t0 + timedelta(minutes=20))]
    assert player.play(Step(advance=20 * MINUTE)).step.fired == ("tick", "tick")
    assert (player.deadlines(), player.timing.expires) == (
        [("waiting.after[0]", t0 + timedelta(minutes=40))], t0 + timedelta(hours=1))
    found = generate_paths(TICKER, {})
    assert [[s.to_dict() for s in p.steps] for p in found] == [
        [{"advance": 10 * MINUTE - 1, "timer": "waiting.after[0]@-1s", "expect": "waiting", "fired": []},
         {"event": "submit", "data": {}, "expect": "done"}],
        [{"advance": 10 * MINUTE - 1, "expect": "waiting", "fired": []},
         {"advance": 1, "timer": "waiting.after[0]@0s", "expect": "waiting", "fired": ["tick"]}],
        [{"advance": 10 * MINUTE + 1, "timer": "waiting.after[0]@+1s", "expect": "waiting",
          "fired": ["tick"]}],
    ]


# ---- items per state and per branch ----------------------------------------------------------


def test_the_inactivity_expiry_is_an_item_of_every_state_it_can_fire_in() -> None:
    """registration: 60 min of inactivity can end the flow on every active screen but the
    code's (its 30 min code timer falls due first) and provisioning (10 min)."""
    found = paths_of("registration")
    timers = [i.id for i in found.coverage.items if i.kind == "timers"]
    assert [t for t in timers if ".expiry@" in t or t.startswith("expiry")] == [
        f"{state}.expiry@{offset}" for state in ("enter_email", "email_taken", "details")
        for offset in ("-1s", "0s", "+1s")]
    assert {t for t in timers if ".expiry@" in t} <= set(found.coverage.covered)


def test_guard_outcomes_are_items_per_branch() -> None:
    """A guard asked by two branches is two pairs of items; an event with one branch has no
    index; an action's ``when`` guard stays as it was."""
    registration = {i.id for i in paths_of("registration").coverage.items if i.kind == "guard_outcomes"}
    # registration.toml: branch 0 of enter_email.submit and of details.submit is seat_linked
    assert {"details.submit[2]?contract_matches=true", "details.submit[2]?seat_free=false",
            "details.submit[3]?contract_matches=true", "details.submit[3]?contract_matches=false",
            "details.submit[1]?email_registered=true", "enter_email.submit[1]?email_registered=true",
            "enter_email.submit[1]?reveals_existing_email=false",
            "enter_email.submit[0]?seat_linked=true", "details.submit[0]?seat_linked=false"} <= registration
    assert not any("?" in i and "[" not in i.split("?")[0] for i in registration)  # every event branches
    assert "details.submit?contract_matches=true" not in registration
    sign_in = {i.id for i in paths_of("sign_in").coverage.items if i.kind == "guard_outcomes"}
    assert {f"credentials.submit[{n}]?needs_second_factor={o}"
            for n in (5, 6, 7) for o in ("true", "false")} <= sign_in
    assert {"credentials.continue_legacy?before_enforcement=true",
            "credentials.continue_legacy?before_enforcement=false"} <= sign_in
    invitation = generate_paths(EXAMPLES / "invitation.yaml", EXAMPLES / "invitation_scenario.yaml")
    assert [i.id for i in invitation.coverage.items if i.kind == "guard_outcomes"] == [
        f"invited.submit[{n}]?{g}={o}" for n, g in enumerate(("terms_accepted", "address_taken", "seat_left"))
        for o in ("true", "false")]


def test_a_branchs_guard_outcome_needs_every_earlier_branch_to_fail() -> None:
    """Walking sign_in's credentials.submit with one step's answers: each branch's conditions
    in order, stopping at the first that fails; a guard answered once counts for every later
    branch that asks it; what was not evaluated is not covered."""
    defn = paths_of("sign_in").source.library().latest("sign_in")
    first = {"login_locked": False, "password_matches": True, "login_ready": True,
             "seat_of_own_customer": True, "linked_elsewhere": False}
    reached, taken = walk_branches(defn, "credentials", "submit", {
        **first, "needs_second_factor": True, "send_limit_reached": False, "send_too_soon": False})
    head = ["credentials.submit[0]?login_locked=false", "credentials.submit[1]?password_matches=true",
            "credentials.submit[2]?login_ready=true", "credentials.submit[3]?seat_of_own_customer=true",
            "credentials.submit[4]?linked_elsewhere=false"]
    assert (reached, taken) == ([*head, "credentials.submit[5]?needs_second_factor=true",
                                 "credentials.submit[5]?send_limit_reached=false",
                                 "credentials.submit[6]?needs_second_factor=true",
                                 "credentials.submit[6]?send_too_soon=false",
                                 "credentials.submit[7]?needs_second_factor=true"], 7)
    reached, taken = walk_branches(defn, "credentials", "submit",
                                   {**first, "needs_second_factor": False, "needs_link": False})
    assert (reached, taken) == ([*head, "credentials.submit[5]?needs_second_factor=false",
                                 "credentials.submit[6]?needs_second_factor=false",
                                 "credentials.submit[7]?needs_second_factor=false",
                                 "credentials.submit[8]?needs_link=false"], 9)
    assert walk_branches(defn, "credentials", "submit", {"login_locked": True}) == (
        ["credentials.submit[0]?login_locked=true"], 0)
    assert walk_branches(defn, "credentials", "submit", {"login_locked": False}) == (
        ["credentials.submit[0]?login_locked=false"], None)


# ---- the summary counts what ran -------------------------------------------------------------


class _Reporter:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def section(self, title: str) -> None:
        self.lines.append(f"== {title}")

    def write_line(self, line: str) -> None:
        self.lines.append(line)


def test_the_summary_counts_only_replayed_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """A path generated but not replayed covers nothing in the summary, which names it."""
    found = paths_of("registration")
    late = next(p for p in found if "provisioning.after[0]@+1s" in p.covers)
    others = {p.id for p in found if p.id != late.id}
    monkeypatch.setattr(plugin, "GENERATED", {"registration": found})
    monkeypatch.setattr("regflow.testing.replay.REPLAYED", {"registration": others | {"registration-99"}})
    reporter = _Reporter()
    plugin.pytest_terminal_summary(reporter)
    line = reporter.lines[1]
    assert f"; {len(found) - 1}/{len(found)} paths replayed; not replayed: {late.id}" in line
    assert "(100%)" not in line
    assert "provisioning.after[0]@+1s" in line.split("MISSING")[1]
    monkeypatch.setattr("regflow.testing.replay.REPLAYED", {"registration": others | {late.id}})
    reporter = _Reporter()
    plugin.pytest_terminal_summary(reporter)
    whole = found.coverage.line("registration")
    assert reporter.lines[1] == f"{whole}; {len(found)}/{len(found)} paths replayed"
    assert "(100%)" in reporter.lines[1]


def test_items_named_the_old_way_are_pointed_to_their_new_names() -> None:
    """A scenario's ``unreachable`` written before guard outcomes were per branch and the
    expiry per state: the fault names the items it became."""
    with pytest.raises(ScenarioError) as old:
        generate_paths("registration", {"unreachable": {"details.submit?contract_matches=true": "?",
                                                        "expiry@0s": "?"}})
    assert old.value.faults == [
        "scenario.unreachable: 'details.submit?contract_matches=true' is no coverage item of registration "
        "(now one per branch or state: 'details.submit[2]?contract_matches=true', "
        "'details.submit[3]?contract_matches=true')",
        "scenario.unreachable: 'expiry@0s' is no coverage item of registration (now one per branch or "
        "state: 'enter_email.expiry@0s', 'email_taken.expiry@0s', 'details.expiry@0s')",
    ]
