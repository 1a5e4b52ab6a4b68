"""Issue 18 (2): a flow that cannot be stepped is set aside, not fatal.

A due flow on a definition version the sweeping process does not have (a rolling deploy,
``FlowLibrary.retire``), or whose timer action raises, used to stop every pass: ``regflow
worker`` exited with ``flow_version_unavailable``, ``engine.sweep()`` and the web relay's pass
raised, and the flows and mail behind it waited for ever. Now it is moved later in the due index
with a growing wait, named once in the logs (by ``flow_ref``), and the pass goes on.
"""

from __future__ import annotations

import email
import email.policy
import logging
import os
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import pytest
from flows import EngineFactory, enqueue_mails
from freezegun.api import FrozenDateTimeFactory

import regflow
from regflow import Engine, FlowLibrary, ManualClock, Registry
from regflow.adapters.mailers import MemoryMailer
from regflow.adapters.memory import MemoryStore
from regflow.bootstrap import make_hasher
from regflow.ground.exceptions import StoreError
from regflow.ground.records import FlowRecord
from regflow.machines import builtin_library
from regflow.runtime.audit import flow_ref
from regflow.runtime.sweeping import Sweeper, SweepReport, describe, wait_before_retry
from regflow.web.server import Relay

MINUTE = timedelta(minutes=1)
EXPIRY = timedelta(minutes=60)  # registration's flow_expiry
HEALTHY = 5
TIMEOUT = 120
CLI = [sys.executable, "-c", "from regflow.cli import main; main()"]
# A worker process of the next deploy: registration v2 is loaded, and it runs ``shift`` seconds
# later than now (the wait of a flow set aside is then over).
NEXT_DEPLOY = """
import sys, tomllib
from datetime import timedelta
from importlib import resources
import regflow.ground.clock, regflow.machines
shift = timedelta(seconds=float(sys.argv.pop(1)))
real_now = regflow.ground.clock.SystemClock.now
regflow.ground.clock.SystemClock.now = lambda self: real_now(self) + shift
builtin = regflow.machines.builtin_library
def with_v2(registry=None):
    library = builtin(registry)
    text = resources.files("regflow.machines").joinpath("registration.toml").read_text("utf-8")
    library.add({**tomllib.loads(text), "version": 2}, root="registration")
    return library
regflow.machines.builtin_library = with_v2
from regflow.cli import main
main()
"""
# A flow whose timer runs an action of the user's, which may raise.
TICKER = {
    "name": "ticker", "version": 1, "initial": "wait", "expiry": "24h",
    "states": {"wait": {"after": [{"after": "60", "event": "tick"}],
                        "on": {"tick": {"target": "done", "actions": ["tick_action"]}}},
               "done": {"final": True}},
}


# ---- helpers -------------------------------------------------------------------------------------


def with_registration_v2(library: FlowLibrary | None = None) -> FlowLibrary:
    """The built-in flows plus registration v2 (same states, no migration from v1): what the
    next deploy loads while workers of the current one run v1 only."""
    library = library if library is not None else builtin_library()
    text = resources.files("regflow.machines").joinpath("registration.toml").read_text("utf-8")
    library.add({**tomllib.loads(text), "version": 2}, root="registration")
    return library


def stored(engine: Engine, flow_id: str) -> FlowRecord:
    """The flow as stored (nothing applied)."""
    with engine.store.transaction() as tx:
        record = tx.flows.load(flow_id)
    assert record is not None
    return record


def add_contract(engine: Engine) -> None:
    """The demo contract (seats abcd8-01..03)."""
    engine.contracts.add(customer_id="281234", phone="03-1234-5678", licenses=3,
                         accounts=["abcd8-01", "abcd8-02", "abcd8-03"])


@attrs.frozen
class Scenario:
    """The issue's scenario in a store: a due flow on registration v2, due before five due
    registrations on v1, and one queued mail."""

    poison: str
    healthy: list[str]
    mail: str


def build_scenario(url: str, due_since: timedelta, **options: Any) -> Scenario:
    """Write the scenario into the store at ``url``, every flow due for ``due_since`` (real
    time), the poison flow first."""
    clock = ManualClock(datetime.now(UTC) - EXPIRY - due_since)
    current = Engine.from_url(url, mail="memory", hasher="fast", clock=clock, **options)
    following = Engine.from_url(url, mail="memory", hasher="fast", clock=clock,
                                flows=with_registration_v2(), **options)
    try:
        add_contract(current)
        poison = following.start("registration", {"account": "abcd8-01"})
        assert poison.version == 2
        healthy = []
        for number in range(HEALTHY):
            clock.advance(1)
            flow = current.start("registration", {"account": f"abcd8-0{number % 3 + 1}"})
            assert flow.version == 1
            healthy.append(flow.id)
        [mail] = enqueue_mails(current, 1, at=clock.now())
        return Scenario(poison.id, healthy, mail)
    finally:
        current.store.close()
        following.store.close()


def run_cli(*args: str, code: list[str] = CLI) -> subprocess.CompletedProcess[str]:
    """Run the command line in its own process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGFLOW_")}
    done = subprocess.run([*code, *args], capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def set_aside_line(stderr: str, ref: str) -> str:
    """The command's own line for the flow set aside; beside it, stderr holds exactly one more
    line: the WARNING log record of ``regflow.worker`` for the same flow (commands log to stderr
    at WARNING by default), naming it by ref too."""
    lines = stderr.splitlines()
    [line] = [text for text in lines if text.startswith("regflow: flow_set_aside: ")]
    [logged] = [text for text in lines if text != line]
    assert f" WARNING regflow.worker: flow {ref} (registration v2) set aside until " in logged
    return line


def eml_ids(folder: Path) -> list[str]:
    """The Message-ID of every ``.eml`` file in the folder."""
    return [str(email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["Message-ID"])
            for p in sorted(folder.glob("*.eml"))]


# ---- the command line, in real processes ----------------------------------------------------------


def test_worker_once_sets_the_poison_flow_aside_and_goes_on(db_url: str, tmp_path: Path) -> None:
    """The issue's scenario: ``regflow worker --once`` expires the five flows, delivers the mail
    and sets the v2 flow aside (its stderr line and log record name it by ref, exit 3); a second
    pass leaves it alone while it waits; a worker of the next deploy, once the wait is over, steps it."""
    scenario = build_scenario(db_url, due_since=timedelta(seconds=30))
    outbox = tmp_path / "outbox"
    worker = ["worker", "--once", "--db", db_url, "--mail", f"outbox:{outbox}", "--hasher", "fast"]
    before = datetime.now(UTC)
    done = run_cli(*worker)
    after = datetime.now(UTC)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "timers applied to 5 flow(s); 1 mail(s) delivered; 1 flow(s) set aside\n"
    ref = flow_ref(scenario.poison)
    line = set_aside_line(done.stderr, ref)
    assert line.startswith(f"regflow: flow_set_aside: flow {ref} (registration v2) set aside until ")
    assert line.endswith(f": flow_version_unavailable: flow {ref} runs on registration v2, which is "
                         "not loaded, and v1 declares no migration from it")
    assert scenario.poison not in done.stderr + done.stdout
    assert eml_ids(outbox) == [scenario.mail]

    check = Engine.from_url(db_url, mail="memory", hasher="fast", flows=with_registration_v2())
    try:
        for flow_id in scenario.healthy:
            assert stored(check, flow_id).status == "expired"
        poison = stored(check, scenario.poison)
        assert (poison.status, poison.state, poison.version, poison.rev) == (
            "active", "enter_email", 2, 0)  # set aside without a change
        assert [e.event for e in check.history(scenario.poison)] == ["start"]
        assert list(check.store.due_flows(after, 10)) == []  # waits a minute
        assert list(check.store.due_flows(before + MINUTE - timedelta(seconds=1), 10)) == []
        assert list(check.store.due_flows(after + MINUTE, 10)) == [scenario.poison]

        again = run_cli(*worker)  # at once: nothing is due, nothing said
        assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
        assert stored(check, scenario.poison).rev == 0

        stepped = run_cli(*worker, code=[sys.executable, "-c", NEXT_DEPLOY, "120"])
        assert (stepped.returncode, stepped.stderr) == (0, "")
        assert stepped.stdout == "timers applied to 1 flow(s); 0 mail(s) delivered\n"
        poison = stored(check, scenario.poison)
        assert (poison.status, poison.version) == ("expired", 2)
        [_, step] = check.history(scenario.poison)
        assert (step.to_state, step.actor, step.at) == ("expired", "timer", poison.updated_at)
        assert list(check.store.due_flows(after + timedelta(days=1), 10)) == []
    finally:
        check.store.close()


def test_sweep_command_reports_set_aside_flows(db_url: str, tmp_path: Path) -> None:
    """``regflow sweep`` on the same scenario: the counts, one line per flow set aside, exit 3;
    run again at once, nothing is left to do and the exit status is 0."""
    scenario = build_scenario(db_url, due_since=timedelta(seconds=30))
    args = ["sweep", "--db", db_url, "--mail", f"outbox:{tmp_path / 'outbox'}", "--hasher", "fast"]
    done = run_cli(*args)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "Applied due timers to 5 flow(s); delivered 1 mail(s); set aside 1 flow(s).\n"
    line = set_aside_line(done.stderr, flow_ref(scenario.poison))
    assert f"flow {flow_ref(scenario.poison)} (registration v2) set aside until " in line
    again = run_cli(*args)
    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout == "Applied due timers to 0 flow(s); delivered 0 mail(s).\n"


def test_worker_loop_goes_on_past_a_poison_flow(db_url: str, tmp_path: Path) -> None:
    """``regflow worker`` (the loop) does not exit: it sets the flow aside, says so once, and
    goes on expiring flows and delivering mail."""
    scenario = build_scenario(db_url, due_since=timedelta(seconds=30))
    outbox = tmp_path / "outbox"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGFLOW_")}
    process = subprocess.Popen(
        [*CLI, "worker", "--interval", "0.1", "--purge-every", "0", "--db", db_url,
         "--mail", f"outbox:{outbox}", "--hasher", "fast"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    check = Engine.from_url(db_url, mail="memory", hasher="fast", flows=with_registration_v2())
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and not (
                len(eml_ids(outbox) if outbox.exists() else []) == 1
                and all(stored(check, f).status == "expired" for f in scenario.healthy)):
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
        time.sleep(0.5)  # a few more passes: the flow set aside is not taken again
        assert process.poll() is None
    finally:
        process.terminate()
        out, err = process.communicate(timeout=TIMEOUT)
        check.store.close()
    assert eml_ids(outbox) == [scenario.mail]
    assert out.splitlines()[0] == "timers applied to 5 flow(s); 1 mail(s) delivered; 1 flow(s) set aside"
    line = set_aside_line(err, flow_ref(scenario.poison))  # said once, in the first pass
    assert line.startswith(f"regflow: flow_set_aside: flow {flow_ref(scenario.poison)} (registration v2)")


# ---- the engine ---------------------------------------------------------------------------------


def v1_and_v2_engines(make_engine: EngineFactory) -> tuple[Engine, Engine]:
    """Two engines on one store: one loads registration v1 only, the other v1 and v2."""
    current = make_engine()
    following = Engine(current.store, current.mailer, hasher=make_hasher("fast"),
                       flows=with_registration_v2())
    return current, following


def test_sweep_sets_the_poison_flow_aside_and_goes_on(
        make_engine: EngineFactory, frozen: FrozenDateTimeFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    """``engine.sweep()`` no longer raises: it counts the five flows it expired, and
    ``sweep_pass()`` names the one it set aside, with a one-minute wait, logged by ref."""
    current, following = v1_and_v2_engines(make_engine)
    poison = following.start("registration", {"account": "abcd8-01"})
    frozen.tick(1)
    healthy = [current.start("registration", {"account": "abcd8-02"}).id for _ in range(HEALTHY)]
    frozen.tick(EXPIRY)
    with caplog.at_level(logging.DEBUG, logger="regflow.worker"):
        report = current.sweep_pass()
    now = datetime.now(UTC)
    assert report.changed == HEALTHY
    [aside] = report.set_aside
    assert (aside.flow_id, aside.flow_ref, aside.definition, aside.retry_at, aside.times) == (
        poison.id, flow_ref(poison.id), "registration v2", now + MINUTE, 1)
    assert aside.reason.startswith("flow_version_unavailable: flow ")
    assert all(stored(current, f).status == "expired" for f in healthy)
    assert stored(current, poison.id).rev == 0
    [record] = [r for r in caplog.records if r.name == "regflow.worker"]
    assert (record.name, record.levelno) == ("regflow.worker", logging.WARNING)
    assert record.getMessage() == (f"flow {aside.flow_ref} (registration v2) set aside until "
                                   f"{aside.retry_at.isoformat()}: {aside.reason}")
    assert poison.id not in str(record.__dict__)
    assert current.sweep() == 0  # waiting: not taken again, no exception


def test_set_aside_waits_double_up_to_an_hour(
        make_engine: EngineFactory, frozen: FrozenDateTimeFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    """The wait is one minute, then as long as the flow has been overdue: 1, 1, 2, 4 … 32 min,
    then an hour each time; no sweep takes it before; the WARNING is said once per process."""
    current, following = v1_and_v2_engines(make_engine)
    poison = following.start("registration", {"account": "abcd8-01"})
    frozen.tick(EXPIRY)
    waits = []
    with caplog.at_level(logging.DEBUG, logger="regflow.worker"):
        for times in range(1, 10):
            [aside] = current.sweep_pass().set_aside
            assert aside.times == times
            wait = aside.retry_at - datetime.now(UTC)
            waits.append(int(wait.total_seconds()))
            frozen.tick(wait - timedelta(seconds=1))
            assert current.sweep_pass() == SweepReport(0)
            frozen.tick(timedelta(seconds=1))
    assert waits == [60, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    levels = [r.levelno for r in caplog.records if r.name == "regflow.worker"]
    assert levels == [logging.WARNING] + [logging.DEBUG] * 8
    assert stored(current, poison.id).rev == 0


def test_a_fresh_process_backs_off_as_well(make_engine: EngineFactory,
                                          frozen: FrozenDateTimeFactory) -> None:
    """Engines made afresh for each pass (``worker --once`` from cron) wait as long: the wait
    comes from how long the flow has been overdue, stored, not from a count in memory."""
    current, following = v1_and_v2_engines(make_engine)
    following.start("registration", {"account": "abcd8-01"})
    frozen.tick(EXPIRY)
    waits = []
    for _ in range(5):
        fresh = Engine(current.store, current.mailer, hasher=make_hasher("fast"))
        [aside] = fresh.sweep_pass().set_aside
        assert aside.times == 1
        waits.append(int((aside.retry_at - datetime.now(UTC)).total_seconds()))
        frozen.tick(aside.retry_at - datetime.now(UTC))
    assert waits == [60, 60, 120, 240, 480]


def test_the_poison_flow_waits_behind_the_healthy_ones(make_engine: EngineFactory,
                                                       frozen: FrozenDateTimeFactory) -> None:
    """One flow per pass: the poison flow, due first, is taken once and set aside; the next
    passes take the healthy flows, not it again."""
    current, following = v1_and_v2_engines(make_engine)
    poison = following.start("registration", {"account": "abcd8-01"})
    frozen.tick(1)
    for _ in range(HEALTHY):
        current.start("registration", {"account": "abcd8-02"})
    frozen.tick(EXPIRY)
    reports = [current.sweep_pass(1) for _ in range(HEALTHY + 2)]
    assert [r.set_aside[0].flow_id if r.set_aside else r.changed for r in reports] == [
        poison.id, 1, 1, 1, 1, 1, 0]


def test_retired_version_is_set_aside_until_it_is_loaded_again(
        caplog: pytest.LogCaptureFixture) -> None:
    """``FlowLibrary.retire`` with no migration declared: the v1 flow is set aside; loaded
    again, it is stepped at the next sweep after its wait (and the log says so)."""
    toy = {"name": "toy", "version": 1, "initial": "a", "expiry": "10m",
           "states": {"a": {"screen": {"actions": ["go"]}, "on": {"go": "done"}},
                      "done": {"final": True}}}
    library = FlowLibrary(Registry())
    library.add(toy)
    clock = ManualClock()
    engine = Engine(MemoryStore(), MemoryMailer(), hasher=make_hasher("fast"), flows=library,
                    clock=clock)
    old = engine.start("toy")
    library.add({**toy, "version": 2})
    newer = engine.start("toy")
    library.retire("toy", 1)
    clock.advance(11 * 60)
    with caplog.at_level(logging.INFO, logger="regflow.worker"):
        report = engine.sweep_pass()
        assert report.changed == 1  # the v2 flow expired
        assert [a.flow_id for a in report.set_aside] == [old.id]
        assert report.set_aside[0].reason.endswith("and v2 declares no migration from it")
        library.add(toy)  # back again
        assert engine.sweep_pass() == SweepReport(0)
        clock.advance(60)
        assert engine.sweep_pass() == SweepReport(1)
    assert stored(engine, old.id).status == "expired"
    assert stored(engine, newer.id).status == "expired"
    assert [r.getMessage() for r in caplog.records if r.name == "regflow.worker"][1:] == [
        f"flow {flow_ref(old.id)} stepped again after being set aside 1 time(s)"]


def test_a_raising_timer_action_is_set_aside_without_its_data(
        make_engine: EngineFactory, frozen: FrozenDateTimeFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    """A user's action raising on a timer: the flow is set aside with the error's type and
    place, never its text (which may quote the flow's data); the others are swept."""
    registry = Registry()
    broken = [True]

    @registry.action
    def tick_action(ctx: Any) -> None:
        if broken[0]:
            raise RuntimeError(f"cannot tick for {ctx.flow.data.get('email')}: secret")

    library = builtin_library(registry)
    library.add(TICKER)
    engine = make_engine(flows=library)
    ticking = engine.start("ticker")
    with engine.store.transaction() as tx:
        record = tx.flows.load(ticking.id)
        assert record is not None
        record.data["email"] = "taro@example.jp"
        assert tx.flows.update(record, record.rev)
    expiring = engine.start("registration", {"account": "abcd8-01"})
    frozen.tick(EXPIRY)
    with caplog.at_level(logging.DEBUG, logger="regflow"):
        report = engine.sweep_pass()
    assert report.changed == 1
    assert stored(engine, expiring.id).status == "expired"
    [aside] = report.set_aside
    assert aside.definition == "ticker v1"
    assert aside.reason.startswith("RuntimeError in tick_action (test_poison_flows.py:")
    logged = " ".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert "taro" not in logged
    assert "secret" not in logged
    assert ticking.id not in logged
    broken[0] = False
    frozen.tick(aside.retry_at - datetime.now(UTC))  # as long as it was overdue: 59 min
    assert engine.sweep_pass() == SweepReport(1)
    assert stored(engine, ticking.id).status == "completed"


def test_a_failing_store_still_ends_the_pass() -> None:
    """Only a store that fails even to set the flow aside ends the pass, with its own error
    (the flow's error is its context)."""
    clock = ManualClock()
    engine = Engine(MemoryStore(), MemoryMailer(), hasher=make_hasher("fast"), clock=clock,
                    flows=with_registration_v2())
    add_contract(engine)
    engine.start("registration", {"account": "abcd8-01"})
    engine.flows.retire("registration", 2)  # the flow's version is gone; v1 has no migration
    clock.advance((EXPIRY + MINUTE).total_seconds())

    class Failing:
        """The engine's store, but its transactions fail (due_flows still answers)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(engine.store, name)

        def transaction(self) -> Any:
            raise StoreError("the database went away")

    def catch_up(flow_id: str) -> bool:
        return engine._catch_up(flow_id, None, None, checked=False)[1]

    with pytest.raises(StoreError, match="went away") as raised:
        Sweeper().sweep(Failing(), clock, catch_up, 10)  # type: ignore[arg-type]
    assert isinstance(raised.value.__context__, regflow.VersionUnavailable)


def test_describe_and_wait_before_retry() -> None:
    """Reasons: a regflow error's id and text (its flow id as ref); another error's type and
    place only. Waits: the overdue time within [1 min, 1 h], else 1 min doubling per time."""
    assert describe(regflow.VersionUnavailable("flow abc is gone"), "abc") == (
        f"flow_version_unavailable: flow {flow_ref('abc')} is gone")
    try:
        raise KeyError("taro@example.jp")
    except KeyError as exc:
        reason = describe(exc, "abc")
    assert reason.startswith("KeyError in test_describe_and_wait_before_retry (test_poison_flows.py:")
    wrapped = StoreError("OperationalError: value (taro@example.jp) too long")
    wrapped.__cause__ = ValueError("x")
    assert describe(wrapped, "abc") == "store_error: StoreError from ValueError"
    assert wait_before_retry(1, timedelta(0)) == MINUTE
    assert wait_before_retry(5, timedelta(minutes=7)) == timedelta(minutes=7)
    assert wait_before_retry(1, timedelta(days=3)) == timedelta(hours=1)
    assert [wait_before_retry(n, None) for n in (1, 2, 3, 7, 8, 60)] == [
        MINUTE, 2 * MINUTE, 4 * MINUTE, timedelta(hours=1), timedelta(hours=1),
        timedelta(hours=1)]


# ---- the web relay and the mail relay ------------------------------------------------------------


def test_web_relay_goes_on_past_a_poison_flow(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """The web process's relay: its pass expires the five flows and delivers the mail; its
    background loop keeps running and never logs a failed pass."""
    scenario = build_scenario(db_url, due_since=timedelta(seconds=30))
    engine = Engine.from_url(db_url, mail="memory", hasher="fast")
    try:
        with caplog.at_level(logging.INFO, logger="regflow"):
            assert Relay(engine).run_once() == (HEALTHY, 1)
            assert Relay(engine).run_once() == (0, 0)
        assert [(r.name, r.levelno) for r in caplog.records if r.name == "regflow.worker"] == [
            ("regflow.worker", logging.WARNING)]
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        engine.store.close()

    scenario = build_scenario(db_url, due_since=timedelta(seconds=30))  # more of the same
    engine = Engine.from_url(db_url, mail="memory", hasher="fast")
    relay = Relay(engine, interval=0.05).start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and not all(
                stored(engine, f).status == "expired" for f in scenario.healthy):
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        relay.stop()
    try:
        assert all(stored(engine, f).status == "expired" for f in scenario.healthy)
        assert stored(engine, scenario.poison).status == "active"
        assert engine.relay.mailer.messages  # type: ignore[attr-defined]
        assert not [r for r in caplog.records if "relay pass failed" in r.getMessage()]
    finally:
        engine.store.close()


def test_one_failing_mail_does_not_stop_delivery(make_engine: EngineFactory) -> None:
    """A mail the mailer cannot send (here: it raises on that one message) is marked failed
    with its reason; the mails before and after it in the pass are delivered."""
    engine = make_engine()
    enqueue_mails(engine, 3)

    class Picky:
        """Refuses the second mail."""

        def __init__(self) -> None:
            self.sent: list[EmailMessage] = []

        def send(self, message: EmailMessage) -> None:
            if message["To"] == "user001@example.jp":
                raise UnicodeEncodeError("ascii", "x", 0, 1, "cannot encode")
            self.sent.append(message)

    picky = Picky()
    engine.relay.mailer = picky
    assert engine.deliver() == 2
    assert sorted(str(m["To"]) for m in picky.sent) == ["user000@example.jp", "user002@example.jp"]
    with engine.store.transaction() as tx:
        assert tx.outbox.due(datetime(9999, 1, 1, tzinfo=UTC), 10) == []
    assert engine.deliver() == 0
