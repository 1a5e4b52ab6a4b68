"""Migrations keep time (issue 18, point 4): a flow that moves to a newer definition version has
the timers of its new state armed as the migration declares — the old deadline carried, or
armed anew from the migration instant — never dropped; the declaration is checked when it is
loaded; the path runner follows a migrated flow like any other. On every store, in-process, and
with separate processes (the new deploy's web process and worker) on SQLite and PostgreSQL.

The scenario of the issue: registration v2 renames ``provisioning`` to ``setting_up`` and its
timer event ``provisioned`` to ``set_up``; a v1 flow waiting in ``provisioning`` (its login
created at T, ready at T+10 min) must reach ``ready`` at T+10 min, not expire at T+60 min.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from flows import EngineFactory, login_of, register, stored_flow
from freezegun.api import FrozenDateTimeFactory
from pg import drop_schema, postgres_url

import regflow
import regflow.engine
from regflow.definitions.library import FlowLibrary
from regflow.definitions.model import MigrationDef, TimerMigrationDef
from regflow.definitions.registry import Registry
from regflow.ground.exceptions import DefinitionError
from regflow.ground.ports import Transaction
from regflow.ground.records import FlowRecord
from regflow.ground.screens import Snapshot
from regflow.machines import builtin_library, builtin_registry
from regflow.runtime.migrations import Rearmed, migrate, rearm
from regflow.testing import Path as FlowPath
from regflow.testing import (
    PathFailed,
    Player,
    ScenarioError,
    Step,
    builtin_scenario,
    flow_source,
    load_scenario,
    make_engine,
    run_path,
)
from regflow.testing.approval import replay
from regflow.testing.engines import engine_meta

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the conftest's START: the flow is created then
MINUTE = timedelta(minutes=1)
EMAIL = "taro@example.jp"
V1 = resources.files("regflow.machines").joinpath("registration.toml").read_text("utf-8")
CARRY = 'timers.provisioning = { events = { provisioned = "set_up" } }'
RESTART = 'timers.provisioning = "restart"'


def v2(timers: str = CARRY, *, event: str = "set_up") -> str:
    """Registration v2: ``provisioning`` renamed ``setting_up`` (its timer event ``event``), with
    the migration from v1 and its ``timers`` line."""
    text = (V1.replace("version = 1", "version = 2", 1)
            .replace("[states.provisioning]", "[states.setting_up]")
            .replace('target = "provisioning"', 'target = "setting_up"')
            .replace('event = "provisioned"', f'event = "{event}"')
            .replace("on.provisioned = ", f"on.{event} = "))
    assert text.count("setting_up") == 2
    assert f'event = "{event}"' in text
    return text + f'\n[migrations.1]\nstates = {{ provisioning = "setting_up" }}\n{timers}\n'


def v2_table(timers: str = CARRY, *, event: str = "set_up") -> dict[str, Any]:
    return tomllib.loads(v2(timers, event=event))


def deploy(engine: regflow.Engine, timers: str = CARRY) -> None:
    """Load v2 next to v1, then retire v1: v1 flows migrate when next loaded."""
    engine.flows.add(v2_table(timers), root="registration")
    engine.flows.retire("registration", 1)


def provisioning(make_engine: EngineFactory) -> tuple[regflow.Engine, Snapshot]:
    """An engine with the shipped library and a v1 flow that entered provisioning at T."""
    engine = make_engine(flows=builtin_library())
    snap = register(engine, "abcd8-01", EMAIL)
    assert (snap.state, snap.version) == ("provisioning", 1)
    assert stored_flow(engine, snap.id).timers == [("provisioned", T + 10 * MINUTE)]
    return engine, snap


def journal(engine: regflow.Engine, flow_id: str) -> list[tuple[str, str, str, str, datetime]]:
    return [(j.event, j.from_state, j.to_state, j.actor, j.at) for j in engine.history(flow_id)][-2:]


# ---- the scenario, in-process on every store ----------------------------------------------


def test_carry_keeps_the_old_deadline(make_engine: EngineFactory, frozen: FrozenDateTimeFactory) -> None:
    """Touched at T+3 min, the flow moves to setting_up with its deadline kept: ready at T+10,
    its login ready then, never expired (it expired at T+60 when the timer was dropped)."""
    engine, snap = provisioning(make_engine)
    deploy(engine)
    frozen.tick(3 * MINUTE)
    moved = engine.get(snap)
    assert (moved.state, moved.version, moved.status) == ("setting_up", 2, "active")
    record = stored_flow(engine, snap.id)
    assert record.timers == [("set_up", T + 10 * MINUTE)]
    assert record.expires_at == T + 60 * MINUTE  # the person's deadline: a migration is no activity
    frozen.move_to(T + 10 * MINUTE)
    assert engine.sweep() == 1
    done = engine.get(snap)
    assert (done.state, done.status) == ("ready", "completed")
    assert journal(engine, snap.id) == [
        ("migrate", "provisioning", "setting_up", "system", T + 3 * MINUTE),
        ("set_up", "setting_up", "ready", "timer", T + 10 * MINUTE)]
    assert login_of(engine, EMAIL).ready_at == T + 10 * MINUTE
    frozen.move_to(T + 66 * MINUTE)
    assert engine.sweep() == 0
    assert engine.get(snap).status == "completed"


@pytest.mark.parametrize("late", [0, 20], ids=["at-the-deadline", "20-min-late"])
def test_the_sweep_migrates_a_flow_nobody_touched(make_engine: EngineFactory,
                                                  frozen: FrozenDateTimeFactory, late: int) -> None:
    """The worker finds the flow by its old deadline, migrates it then and applies the carried
    timer at its own deadline (T+10), even when it comes late."""
    engine, snap = provisioning(make_engine)
    deploy(engine)
    frozen.move_to(T + (10 + late) * MINUTE)
    assert engine.sweep() == 1
    assert journal(engine, snap.id) == [
        ("migrate", "provisioning", "setting_up", "system", T + (10 + late) * MINUTE),
        ("set_up", "setting_up", "ready", "timer", T + 10 * MINUTE)]
    assert engine.get(snap).status == "completed"


def test_restart_arms_from_the_migration_instant(make_engine: EngineFactory,
                                                 frozen: FrozenDateTimeFactory) -> None:
    """``arm = "restart"``: migrated at T+3, setting_up's 10 minutes run from then (T+13); the
    expiry moves to at least the migration instant + the flow's expiry."""
    engine, snap = provisioning(make_engine)
    deploy(engine, RESTART)
    frozen.tick(3 * MINUTE)
    assert engine.get(snap).state == "setting_up"
    record = stored_flow(engine, snap.id)
    assert record.timers == [("set_up", T + 13 * MINUTE)]
    assert record.expires_at == T + 63 * MINUTE
    frozen.move_to(T + 13 * MINUTE - timedelta(seconds=1))
    assert engine.sweep() == 0
    assert engine.get(snap).state == "setting_up"
    frozen.tick(timedelta(seconds=1))
    assert engine.sweep() == 1
    assert engine.get(snap).state == "ready"
    assert journal(engine, snap.id)[-1] == ("set_up", "setting_up", "ready", "timer", T + 13 * MINUTE)


def test_a_renamed_timer_without_declaration_is_armed_anew(make_engine: EngineFactory,
                                                           frozen: FrozenDateTimeFactory) -> None:
    """A deploy that loads v2 alone (v1 is not there to check against) and declares nothing for
    the renamed timer: the default arms it from the migration instant — never dropped."""
    engine, snap = provisioning(make_engine)
    alone = FlowLibrary(builtin_registry())
    alone.add(v2_table(""), root="registration")
    deployed = regflow.Engine(engine.store, engine.mailer, hasher=engine.services.hasher, flows=alone)
    frozen.tick(3 * MINUTE)
    assert deployed.get(snap).state == "setting_up"
    assert stored_flow(deployed, snap.id).timers == [("set_up", T + 13 * MINUTE)]
    frozen.move_to(T + 13 * MINUTE)
    assert deployed.sweep() == 1
    assert deployed.get(snap).status == "completed"


def test_the_same_timer_event_is_carried_by_default(make_engine: EngineFactory,
                                                    frozen: FrozenDateTimeFactory) -> None:
    """Only the state renamed, its timer event kept: carried without any declaration."""
    engine, snap = provisioning(make_engine)
    engine.flows.add(v2_table("", event="provisioned"), root="registration")
    engine.flows.retire("registration", 1)
    frozen.tick(3 * MINUTE)
    assert engine.get(snap).state == "setting_up"
    assert stored_flow(engine, snap.id).timers == [("provisioned", T + 10 * MINUTE)]


# ---- the rules of rearm, on a small flow ---------------------------------------------------------

WAIT = {"name": "wait", "version": 2, "initial": "a", "expiry": "60m", "states": {
    "a": {"after": [{"after": "10m", "event": "first"}, {"after": "30m", "event": "second"}],
          "on": {"first": "a", "second": "done"}},
    "done": {"final": True}}}


def test_rearm_carries_by_event_and_arms_the_rest_from_now() -> None:
    """Each new timer takes the deadline of the old one of its event (or mapped to it); one
    without arms from now and pushes the expiry to now + expiry; a past expiry stays past."""
    definition = FlowLibrary(Registry()).add(WAIT)
    now = T + 50 * MINUTE
    old = [("tick", T + 52 * MINUTE)]
    mapped = MigrationDef(timers={"a": TimerMigrationDef(events={"tick": "second"})})
    assert rearm(definition, mapped, "a", old, T + 60 * MINUTE, now) == Rearmed(
        (now + 10 * MINUTE, T + 52 * MINUTE), now + 60 * MINUTE)
    assert rearm(definition, MigrationDef(), "a", [("second", T + 52 * MINUTE), ("first", T + 51 * MINUTE)],
                 T + 60 * MINUTE, now).deadlines == (T + 51 * MINUTE, T + 52 * MINUTE)
    assert rearm(definition, MigrationDef(), "a", [("first", T + 51 * MINUTE), ("second", T + 52 * MINUTE)],
                 T + 60 * MINUTE, now).expires_at == T + 60 * MINUTE  # all carried: kept
    restart = MigrationDef(timers={"a": TimerMigrationDef(arm="restart")})
    assert rearm(definition, restart, "a", [("first", T + 51 * MINUTE)], T + 45 * MINUTE,
                 now) == Rearmed((now + 10 * MINUTE, now + 30 * MINUTE), T + 45 * MINUTE)


def test_an_ended_flow_migrates_without_timers(make_engine: EngineFactory,
                                               frozen: FrozenDateTimeFactory) -> None:
    """A completed v1 flow read after the deploy keeps its end: no timer, no expiry."""
    engine, snap = provisioning(make_engine)
    frozen.move_to(T + 10 * MINUTE)
    assert engine.get(snap).state == "ready"
    deploy(engine)
    after = engine.get(snap)
    assert (after.state, after.status, after.version) == ("ready", "completed", 2)
    record = stored_flow(engine, snap.id)
    assert (record.timers, record.expires_at, record.next_due_at) == ([], None, None)


def test_an_active_flow_mapped_to_a_final_state_ends_there() -> None:
    """A version that drops a waiting state by mapping it to ``cancelled``: its flows end, with
    no timer left and nothing due."""
    library = FlowLibrary(Registry())
    library.add({**WAIT, "version": 1})
    clock = regflow.ManualClock(T)
    engine = regflow.Engine.from_url("memory://", hasher="fast", clock=clock, flows=library)
    flow = engine.start("wait")
    library.add({**WAIT, "migrations": {"1": {"states": {"a": "cancelled"}}}})
    library.retire("wait", 1)
    clock.advance(60)
    after = engine.get(flow)
    assert (after.state, after.status, after.timers, after.expires_at) == ("cancelled", "cancelled", (), None)


# ---- the declaration is checked ------------------------------------------------------------------


def faults_of(source: dict[str, Any], *, with_v1: bool = True) -> list[str]:
    library = builtin_library() if with_v1 else FlowLibrary(builtin_registry())
    with pytest.raises(DefinitionError) as caught:
        library.add(source, root="registration")
    return caught.value.faults


WHERE = "registration.migrations.1"


@pytest.mark.parametrize(("timers", "fault"), [
    ('timers.provisioning = { events = { provisioned = "ready" } }',
     f"{WHERE}.timers.provisioning.events.provisioned: 'setting_up' has no timer sending 'ready'"),
    ('timers.provisioning = "later"', f"{WHERE}.timers.provisioning.arm: 'carry' or 'restart', not 'later'"),
    ('timers.provisioning = { arm = "restart", events = { provisioned = "set_up" } }',
     f"{WHERE}.timers.provisioning.events: only 'carry' maps old timer events to new ones"),
    ('timers.waiting = "restart"',
     f"{WHERE}.timers.waiting: no state 'waiting' in version 2: map it in {WHERE}.states"),
    ("timers.provisioning = 5",
     f"{WHERE}.timers.provisioning: 'carry', 'restart' or a table with 'arm' and 'events'"),
    ('timers.provisioning = { arm = "carry", when = "now" }',
     f"{WHERE}.timers.provisioning: unknown field(s) 'when'"),
    ("timers.provisioning = { events = { provisioned = 1 } }",
     f"{WHERE}.timers.provisioning.events.provisioned: expected str, not int"),
])
def test_what_the_new_version_lacks_is_a_definition_fault(timers: str, fault: str) -> None:
    """Names on the new version's side, and the shape, are checked on every load."""
    assert faults_of(v2_table(timers), with_v1=False) == [fault]


@pytest.mark.parametrize(("migration", "fault"), [
    ('states = { provisioning = "setting_up", waiting = "setting_up" }\n' + CARRY,
     f"{WHERE}.states.waiting: version 1 has no state 'waiting'"),
    ('states = { provisioning = "setting_up" }\n'
     'timers.provisioning = { events = { provisioned = "set_up", ready = "set_up" } }',
     f"{WHERE}.timers.provisioning.events.ready: version 1's 'provisioning' has no timer sending 'ready'"),
    ("states = {}",
     f"{WHERE}.states: version 1's state 'provisioning' has no state to move to: map it to one of version 2"),
    ('states = { provisioning = "setting_up" }',
     f"{WHERE}.timers.provisioning: version 1's timer 'provisioned' corresponds to no timer of "
     "'setting_up', which has 'set_up': carry its deadline with events = { provisioned = \"set_up\" }, "
     'or arm them anew with arm = "restart"'),
])
def test_what_the_old_version_lacks_is_a_fault_while_both_are_loaded(migration: str, fault: str) -> None:
    """With v1 loaded (a deploy adding v2), the migration is checked against v1 too: its
    states and timer events, every v1 state placed, and a renamed timer declared."""
    text = v2().split("\n[migrations.1]\n")[0] + f"\n[migrations.1]\n{migration}\n"
    found = faults_of(tomllib.loads(text))
    assert fault in found, found


def test_checked_both_ways_whichever_version_comes_first() -> None:
    """Loading v1 after v2 checks v2's migration against it all the same."""
    library = FlowLibrary(builtin_registry())
    library.add(v2_table(""), root="registration")  # the renamed timer declared nowhere
    with pytest.raises(DefinitionError, match=r"timers.provisioning: version 1's timer 'provisioned'"):
        library.add(tomllib.loads(V1), root="registration")


# ---- the paths of issue 9 follow a migrated flow --------------------------------------------------


def migration_path(timers: str, wait: int) -> FlowPath:
    """Register, wait ``wait`` seconds in provisioning, deploy v2, then advance to one second
    before setting_up's timer and to it; the timer item of v2 is what the path covers."""
    scenario = builtin_scenario("registration")
    deadline = 600 if "restart" not in timers else 600 + wait
    steps = [
        Step(event="submit", data=scenario.data_for("enter_email", "submit"), expect="enter_code"),
        Step(event="submit", data=scenario.data_for("enter_code", "submit"), expect="details"),
        Step(event="submit", data=scenario.data_for("details", "submit"), expect="provisioning"),
        Step(advance=wait, expect="provisioning", fired=()),
        Step(world={"world": "migrate", "to": v2_table(timers)}),
        Step(advance=deadline - wait - 1, expect="setting_up", fired=(), timer="setting_up.after[0]@-1s"),
        Step(advance=1, expect="ready", fired=("set_up",), timer="setting_up.after[0]@0s"),
    ]
    return FlowPath(id="registration-migrated", flow="registration", context=scenario.context,
                    steps=tuple(steps), covers=("setting_up.after[0]@-1s", "setting_up.after[0]@0s"),
                    source=flow_source("registration"), scenario=scenario)


@pytest.mark.parametrize(("timers", "deadline"), [(CARRY, 600), (RESTART, 780)],
                         ids=["carry", "restart"])
def test_run_path_checks_a_migrated_flow(timers: str, deadline: int) -> None:
    """run_path replays a path that migrates in the middle: the advances land one second before
    and exactly at setting_up's deadline (v2's timer items covered) and I1–I5 hold after every
    step; the Player's own deadlines follow the declaration (carried, or 10 min from the
    migration 3 min in)."""
    path = migration_path(timers, wait=180)
    observed = run_path(make_engine(path), path)
    assert [s.expect for s in observed][-2:] == ["setting_up", "ready"]
    engine = make_engine(path)
    meta = engine_meta(engine)
    assert meta is not None
    player = Player(engine, "registration", path.scenario, meta.driver, meta.recorder)
    player.setup_world()
    player.begin(path.context)
    for step in path.steps[:3]:
        player.play(step)
    provisioned = meta.driver.now()
    for step in path.steps[3:5]:
        player.play(step)
    assert player.deadlines() == [("setting_up.after[0]", provisioned + timedelta(seconds=deadline))]
    assert player.timing.expires == provisioned + timedelta(seconds=3600 if timers == CARRY else 3780)


def test_run_path_catches_a_migration_that_drops_the_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the bug of issue 18 put back (the engine's migration keeps only timers whose event
    the new state has), the same path fails: setting_up is still waiting at its deadline."""
    def as_before(flows: FlowLibrary, tx: Transaction, record: FlowRecord, now: datetime) -> None:
        kept = list(record.timers)
        migrate(flows, tx, record, now)
        events = flows.latest(record.flow).states[record.state].timer_events
        record.timers = [(event, at) for event, at in kept if event in events]

    monkeypatch.setattr(regflow.engine, "migrate", as_before)
    path = migration_path(CARRY, wait=180)
    with pytest.raises(PathFailed, match=r"step 7 \(advance 1 s.*expected 'ready' with \['set_up'\] fired"):
        run_path(make_engine(path), path)


@pytest.mark.parametrize(("timers", "at"), [(CARRY, "09:10"), (RESTART, "09:13")], ids=["carry", "restart"])
def test_the_approved_outcome_of_the_migrate_step_shows_its_timers(timers: str, at: str) -> None:
    """What an approved file would keep for the migrate step: the new state, its timer as an
    instant (carried, or 10 min from the migration at 09:03) and the expiry."""
    path = migration_path(timers, wait=180)
    outcomes = list(replay(path.id, path.flow, path.context, list(path.steps), path.scenario,
                           make_engine(path)))
    migrated = outcomes[5]  # the start, three events, the wait, then the migrate step
    assert migrated["do"]["world"] == "migrate"
    assert migrated["state"] == "setting_up"
    assert migrated["timers"] == [{"event": "set_up", "at": f"2026-03-02T{at}:00Z"}]
    assert migrated["expires_at"] == ("2026-03-02T10:00:00Z" if timers == CARRY else "2026-03-02T10:03:00Z")


def test_a_scenario_may_not_migrate() -> None:
    """The generator explores one version: ``migrate`` in a witness is a scenario fault."""
    raw = {"flow": "registration", "witnesses": {"seat_free": {"false": {
        "before": [{"world": "migrate", "to": "registration_v2.toml"}]}}}}
    with pytest.raises(ScenarioError, match=r"'migrate' is a step of a replayed path"):
        load_scenario(raw)


# ---- real processes: the new deploy's web process and worker on SQLite and PostgreSQL -----------

CHILD = """
import sys
from datetime import datetime

import regflow
from regflow.definitions.library import FlowLibrary
from regflow.machines import builtin_registry

url, definition, at, action, *flow = sys.argv[1:]
library = FlowLibrary(builtin_registry())  # the new deploy: registration v2 only
library.add(definition)
engine = regflow.Engine.from_url(url, mail="memory", hasher="fast", flows=library,
                                 clock=regflow.ManualClock(datetime.fromisoformat(at)))
try:
    if action == "sweep":  # what `regflow worker --once` does with the flows
        print(engine.sweep(), engine.deliver())
    else:  # a page read by the person
        print(engine.get(flow[0], token=flow[1]).state)
finally:
    engine.store.close()
"""


def child(url: str, definition: Path, at: datetime, action: str, *flow: str) -> str:
    """Run the v2 deploy in another process at ``at``; what it printed."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(CHILD), url, str(definition),
                           at.isoformat(), action, *flow],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A store URL: a SQLite file, or a fresh schema of the local PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'regflow.db'}"
        return
    url = postgres_url()
    yield url
    drop_schema(url)


@pytest.mark.parametrize("timers", [CARRY, RESTART], ids=["carry", "restart"])
def test_processes_of_the_new_deploy_keep_time(database: str, tmp_path: Path, timers: str) -> None:
    """A v1 process registers at T; the v2 deploy's processes take over: a page read at T+3 migrates
    the flow, the worker at T+10 (carry) or T+13 (restart) finds it due and makes it ready."""
    clock = regflow.ManualClock(T)
    old = regflow.Engine.from_url(database, mail="memory", hasher="fast", clock=clock,
                                  flows=builtin_library())
    try:
        old.contracts.add(customer_id="281234", phone="03-1234-5678", licenses=3,
                          accounts=["abcd8-01", "abcd8-02", "abcd8-03"])
        snap = register(old, "abcd8-01", EMAIL)
        assert snap.state == "provisioning", snap.screen.messages
    finally:
        old.store.close()
    definition = tmp_path / "registration_v2.toml"
    definition.write_text(v2(timers), encoding="utf-8")
    ready = T + (10 if timers == CARRY else 13) * MINUTE
    assert snap.flow_token is not None
    assert child(database, definition, T + 3 * MINUTE, "get", snap.id, snap.flow_token) == "setting_up"
    if timers == RESTART:
        assert child(database, definition, T + 10 * MINUTE, "sweep") == "0 0"
    assert child(database, definition, ready - timedelta(seconds=1), "sweep") == "0 0"
    assert child(database, definition, ready, "sweep") == "1 0"
    library = FlowLibrary(builtin_registry())
    library.add(definition)
    new = regflow.Engine.from_url(database, mail="memory", hasher="fast", flows=library,
                                  clock=regflow.ManualClock(T + 66 * MINUTE))
    try:
        after = new.get(snap)
        assert (after.state, after.status, after.version) == ("ready", "completed", 2)
        assert journal(new, snap.id) == [
            ("migrate", "provisioning", "setting_up", "system", T + 3 * MINUTE),
            ("set_up", "setting_up", "ready", "timer", ready)]
        assert login_of(new, EMAIL).ready_at == T + 10 * MINUTE  # as accepted at T
    finally:
        new.store.close()
