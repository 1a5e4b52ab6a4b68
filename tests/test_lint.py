"""Lint: each rule on a small crafted definition, the built-in flows clean, and ``regflow check``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner

from regflow import FlowDefinition, FlowLibrary, Registry
from regflow.cli import main
from regflow.definitions.lint import Fault, lint
from regflow.definitions.model import ActionDef, ScreenDef, TimerDef
from regflow.machines import BUILTIN_FLOWS, builtin_library

DATA = Path(__file__).parent / "data"


def registry() -> Registry:
    """Guards a, b, c and an action act."""
    reg = Registry()
    for name in ("a", "b", "c"):
        reg.guards[name] = lambda ctx: True
    reg.actions["act"] = lambda ctx: None
    return reg


def flow(**states: Any) -> FlowDefinition:
    """A definition named demo starting in ``start``, loaded (and so checked) as usual."""
    return FlowLibrary(registry()).add({"name": "demo", "version": 1, "initial": "start",
                                        "states": states})


def screen(*events: str) -> dict[str, Any]:
    return {"actions": list(events)}


DONE = {"final": True}


def found(defn: FlowDefinition) -> set[tuple[str, str]]:
    return {(f.path, f.code) for f in lint(defn)}


def test_unreachable_states_and_the_standard_finals() -> None:
    """A state no branch leads to is unreachable; so is a standard final named only from there."""
    defn = flow(start={"screen": screen("go"), "on": {"go": "done"}},
                lost={"screen": screen("go"), "on": {"go": "failed"}}, done=DONE)
    assert found(defn) == {("demo.states.lost", "unreachable_state"),
                           ("demo.states.failed", "unreachable_state")}
    assert "cannot be reached from 'start'" in lint(defn)[0].message


def test_a_branch_never_taken_does_not_make_its_target_reachable() -> None:
    """A target named only by a branch after an unguarded one is unreachable too."""
    defn = flow(start={"screen": screen("go"), "on": {"go": ["done", "other"]}},
                other={"screen": screen("go"), "on": {"go": "done"}}, done=DONE)
    assert found(defn) == {("demo.states.start.on.go[1]", "unreachable_branch"),
                           ("demo.states.other", "unreachable_state")}


def test_timers_reach_states() -> None:
    """A state reached only by a timer is reachable."""
    defn = flow(start={"after": [{"after": "5m", "event": "tick"}], "on": {"tick": "done"}}, done=DONE)
    assert lint(defn) == []


def test_dead_end() -> None:
    """A non-final state without events or timers is a dead end."""
    defn = flow(start={"screen": screen("go"), "on": {"go": "stuck"}}, stuck={"screen": {}})
    assert found(defn) == {("demo.states.stuck", "dead_end")}


def test_timer_and_events_on_a_final_state() -> None:
    """A final state's timers never fire and its branches are never taken."""
    defn = flow(start={"screen": screen("go"), "on": {"go": "done"}},
                done={"final": True, "after": [{"after": "1m", "event": "tick"}], "on": {"tick": "start"}})
    assert found(defn) == {("demo.states.done.after[0]", "timer_on_final"),
                           ("demo.states.done.on.tick", "event_on_final")}


def test_events_that_cannot_be_sent() -> None:
    """Branches of an event no screen offers and no timer sends; a timer event not armed here."""
    defn = flow(start={"screen": screen("go"), "on": {"go": "wait", "poke": "done"}},
                wait={"after": [{"after": "2m", "event": "tick"}], "on": {"tick": "again"}},
                again={"screen": screen("go"), "on": {"go": "done", "tick": "done"}}, done=DONE)
    faults = {f.path: f for f in lint(defn)}
    assert set(faults) == {"demo.states.start.on.poke", "demo.states.again.on.tick"}
    assert faults["demo.states.start.on.poke"].code == "event_never_sent"
    assert faults["demo.states.again.on.tick"].code == "timer_not_armed"
    assert str(faults["demo.states.again.on.tick"]) == (
        "demo.states.again.on.tick: 'tick' is a timer event, but no timer of this state sends it")


def test_screen_and_timer_events_without_branches() -> None:
    """What load refuses is still caught when a definition is built by hand."""
    defn = flow(start={"screen": screen("go"), "on": {"go": "done"}}, done=DONE)
    start = defn.states["start"]
    start = attrs.evolve(start, screen=ScreenDef(fields=("email", "phone"),
                                                 actions=(ActionDef("go"), ActionDef("nope"))),
                         after=(TimerDef(after="1m", event="ring"),))
    broken = attrs.evolve(defn, states={**defn.states, "start": start})
    assert found(broken) == {
        ("demo.states.start.screen.fields[0]", "unknown_field"),
        ("demo.states.start.screen.fields[1]", "unknown_field"),
        ("demo.states.start.screen.actions[1]", "action_without_branch"),
        ("demo.states.start.after[0]", "timer_without_branch"),
    }


def test_screen_action_that_is_a_timer_event() -> None:
    """The engine refuses a timer event from the screen, so offering it is a fault."""
    defn = flow(start={"screen": screen("go", "tick"), "after": [{"after": "1m", "event": "tick"}],
                       "on": {"go": "done", "tick": "done"}}, done=DONE)
    assert found(defn) == {("demo.states.start.screen.actions[1]", "action_is_timer_event")}


def test_guarded_event_without_alternative() -> None:
    """Every branch guarded and some outcome takes none; complementary guards are fine."""
    defn = flow(start={"screen": screen("go", "other"), "on": {
        "go": [{"guard": "a", "target": "done"}, {"guard": ["b", "c"], "message": "m"}],
        "other": [{"guard": "a", "target": "done"}, {"unless": "a", "message": "no"}],
    }}, done=DONE)
    faults = lint(defn)
    assert [(f.path, f.code) for f in faults] == [("demo.states.start.on.go", "no_alternative")]
    assert "when !a, !b, !c" in faults[0].message


def test_duplicate_and_unreachable_branches() -> None:
    """Same guards twice: the second is never taken; nor is anything after an unguarded branch."""
    defn = flow(start={"screen": screen("go"), "on": {"go": [
        {"guard": ["a", "b"], "target": "done"},
        {"guard": ["b", "a"], "actions": ["act"]},
        {"unless": "c", "message": "x"},
        {"target": "done"},
        {"guard": "c", "target": "done"},
        {"target": "start"},
    ]}}, done=DONE)
    assert found(defn) == {("demo.states.start.on.go[1]", "duplicate_branch"),
                           ("demo.states.start.on.go[4]", "unreachable_branch"),
                           ("demo.states.start.on.go[5]", "unreachable_branch")}
    messages = {f.path: f.message for f in lint(defn)}
    assert messages["demo.states.start.on.go[1]"] == "never taken: same guards as branch [0] of 'go'"
    assert messages["demo.states.start.on.go[4]"] == "never taken: branch [3] of 'go' before it has no guard"


def test_fault_reads_as_path_and_message() -> None:
    assert str(Fault("demo.states.x", "dead_end", "stuck")) == "demo.states.x: stuck"


@pytest.mark.parametrize("name", BUILTIN_FLOWS)
def test_builtin_flows_lint_clean(name: str) -> None:
    assert [str(f) for f in lint(builtin_library().latest(name))] == []


# ---- regflow check -------------------------------------------------------------------------

CLEAN = """name = "mini"
version = 1
initial = "ask"

[fields.email]
type = "email"

[states.ask]
screen = { fields = ["email"], actions = ["submit", "cancel"] }
on.cancel = "cancelled"

[[states.ask.on.submit]]
guard = "send_limit_reached"
message = "send_limit"

[[states.ask.on.submit]]
target = "done"
actions = ["remember_email"]

[states.done]
final = true
"""


def check(*args: str) -> Any:
    return CliRunner().invoke(main, ["check", *args])


def test_check_builtin_flows_exits_0() -> None:
    result = check()
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"{len(BUILTIN_FLOWS)} definition(s) checked: no faults." in result.stderr


def test_check_clean_file_with_builtin_names(tmp_path: Path) -> None:
    (tmp_path / "mini.toml").write_text(CLEAN)
    result = check(str(tmp_path / "mini.toml"))
    assert result.exit_code == 0, result.output
    assert f"{tmp_path / 'mini.toml'}: ok" in result.stderr


def test_check_file_with_lint_faults_exits_1(tmp_path: Path) -> None:
    text = CLEAN.replace('actions = ["submit", "cancel"]', 'actions = ["submit"]')
    text += '\n[states.limbo]\nscreen = { actions = ["cancel"] }\non.cancel = "cancelled"\n'
    (tmp_path / "mini.yaml").write_text("")  # an empty YAML file is not a definition
    (tmp_path / "mini.toml").write_text(text)
    result = check(str(tmp_path / "mini.toml"), str(tmp_path / "mini.yaml"))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "mini.states.ask.on.cancel: 'cancel' is neither an action of the state's screen nor sent by "
        "one of its timers",
        "mini.states.limbo: state 'limbo' cannot be reached from 'ask'",
        f"{tmp_path / 'mini.yaml'}: a definition is a table (mapping)",
    ]
    assert f"{tmp_path / 'mini.toml'}: 2 fault(s)" in result.stderr
    assert "3 fault(s) in 2 definition(s)." in result.stderr


def test_check_file_with_load_errors_exits_1_with_their_paths() -> None:
    result = check(str(DATA / "broken.toml"))
    assert result.exit_code == 1
    assert sorted(result.stdout.splitlines()) == [
        "broken.states.start.on.submit[0]: unknown guard 'contract_match'",
        "broken.states.start.screen.fields: unknown field 'phone'",
    ]


def test_check_unparseable_toml_exits_1_with_the_file_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[states.a\n')
    result = check(str(bad))
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{bad}: cannot parse: ")


def test_check_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = check(str(tmp_path / "none.toml"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_check_and_diagram_take_a_users_registry() -> None:
    """The docs' invitation flow (its own guards) is checked and drawn with --registry."""
    from pathlib import Path

    from click.testing import CliRunner

    from regflow.cli import main

    flow = Path(__file__).parent.parent / "regflow" / "examples" / "invitation.yaml"
    runner = CliRunner()
    without = runner.invoke(main, ["check", str(flow)])
    assert without.exit_code == 1
    assert "unknown guard" in without.stdout
    checked = runner.invoke(main, ["check", str(flow), "--registry", "invitation_steps:steps"])
    assert checked.exit_code == 0, checked.output
    drawn = runner.invoke(main, ["diagram", str(flow), "--registry", "invitation_steps:steps"])
    assert drawn.exit_code == 0
    assert "stateDiagram-v2" in drawn.stdout
