"""The engine's own promises: ports only, one shared machine, versions, retry, catalogs."""

from __future__ import annotations

import ast
import random
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

import regflow
from regflow import Engine, ManualClock, Registry
from regflow.adapters.mailers import MemoryMailer
from regflow.adapters.memory import MemoryStore
from regflow.bootstrap import make_hasher
from regflow.definitions.library import FlowLibrary
from regflow.definitions.model import RetryPolicy
from regflow.ground.catalog import Catalog, packaged
from regflow.machines import builtin_library
from regflow.runtime.retrying import backoff

PACKAGE = Path(regflow.__file__).parent
EDGES = ("adapters", "frontends", "web", "cli")  # the outer ring: may import anything


def test_core_imports_no_adapter() -> None:
    """No module outside adapters/, front ends and the bootstrap imports an adapter."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in EDGES or rel.name == "bootstrap.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [f"{rel}: {n}" for n in names
                          if n.startswith(("regflow.adapters", "regflow.frontends", "peewee",
                                           "playhouse", "argon2", "flask"))]
    assert offenders == []


def test_importing_regflow_loads_no_adapter() -> None:
    """``import regflow`` (and the engine) leaves every adapter unloaded."""
    code = ("import sys, regflow, regflow.engine; "
            "print(sorted(m for m in sys.modules if m.startswith(('regflow.adapters', 'peewee'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_all_is_sorted_and_importable() -> None:
    """``regflow.__all__`` is sorted and every name in it exists."""
    assert regflow.__all__ == sorted(regflow.__all__)
    for name in regflow.__all__:
        assert getattr(regflow, name) is not None


def engine_with(library: FlowLibrary | None = None, clock: ManualClock | None = None) -> Engine:
    engine = Engine(MemoryStore(), MemoryMailer(), hasher=make_hasher("fast"),
                    clock=clock or ManualClock(), flows=library)
    engine.contracts.add(customer_id="281234", phone="03-1234-5678", licenses=3,
                         accounts=["abcd8-01", "abcd8-02", "abcd8-03"])
    return engine


def test_one_shared_machine_per_definition_version() -> None:
    """Every flow runs on the one cached Machine of its version, which holds no models."""
    engine = engine_with()
    first = engine.compiled("registration")
    for account in ("abcd8-01", "abcd8-02", "abcd8-03"):
        snap = engine.start("registration", {"account": account})
        engine.send(snap, "submit", {"email": f"{account}@example.jp"})
    assert engine.compiled("registration") is first
    assert first.machine.models == []
    assert first.machine.auto_transitions is False


TOY = {
    "name": "toy", "version": 1, "initial": "a",
    "states": {"a": {"screen": {"actions": ["submit"]}, "on": {"submit": "b"}},
               "b": {"screen": {"actions": ["submit"]}, "on": {"submit": "done"}},
               "done": {"final": True}},
}


def test_flows_in_flight_keep_their_version() -> None:
    """A flow started on v1 keeps running on v1 after v2 is loaded; new flows start on v2."""
    library = FlowLibrary(Registry())
    library.add(TOY)
    engine = engine_with(library)
    old = engine.start("toy")
    v2 = {**TOY, "version": 2,
          "states": {**TOY["states"], "b": {"screen": {"actions": ["submit"]}, "on": {"submit": "a"}}}}
    library.add(v2)
    new = engine.start("toy")
    assert (old.version, new.version) == (1, 2)
    old = engine.send(old, "submit")
    old = engine.send(old, "submit")
    assert (old.state, old.status) == ("done", "completed")  # v1's b → done
    new = engine.send(new, "submit")
    new = engine.send(new, "submit")
    assert new.state == "a"  # v2's b → a


def test_same_version_with_other_content_is_refused() -> None:
    """Loading a different definition under an existing name and version is an error."""
    library = FlowLibrary(Registry())
    library.add(TOY)
    with pytest.raises(regflow.DefinitionError, match="version 1 is already loaded"):
        library.add({**TOY, "initial": "b"})


def test_backoff_is_capped_full_jitter() -> None:
    """Waits are uniform in [0, min(max, initial * factor**n)]."""
    policy = RetryPolicy()
    rng = random.Random(7)
    for attempt, ceiling in ((1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6), (5, 2.0), (9, 2.0)):
        waits = [backoff(policy, attempt, rng) for _ in range(200)]
        assert min(waits) >= 0
        assert max(waits) <= ceiling
        assert max(waits) > ceiling * 0.8
    assert backoff(RetryPolicy(jitter="none"), 3, rng) == pytest.approx(0.8)


def test_transient_step_retries_and_keeps_form() -> None:
    """A transient failure is retried by the policy, then shown as transient_error with data kept."""
    calls: list[str] = []

    class Flaky:
        def provision(self, login: Any, *, key: str) -> None:
            calls.append(key)
            raise regflow.TransientError("directory unavailable")

    clock = ManualClock()
    engine = Engine(MemoryStore(), MemoryMailer(), hasher=make_hasher("fast"), clock=clock,
                    provisioner=Flaky(), rng=random.Random(1))
    engine.contracts.add(customer_id="281234", phone="0312345678", licenses=1, accounts=["s-1"])
    snap = engine.start("registration", {"account": "s-1"})
    snap = engine.send(snap, "submit", {"email": "a@example.jp"})
    code = _code(engine)
    snap = engine.send(snap, "submit", {"code": code})
    details = {"password": "Kx9!kx9!kx", "password_confirm": "Kx9!kx9!kx", "customer_id": "281234",
               "display_name": "Aoi", "tel": "03-1234-5678"}
    snap = engine.send(snap, "submit", details)
    assert snap.state == "details"
    assert [m.id for m in snap.screen.messages] == ["transient_error"]
    assert {f.name: f.value for f in snap.screen.fields}["display_name"] == "Aoi"
    assert {f.name: f.value for f in snap.screen.fields}["password"] is None
    assert len(calls) == 3
    assert len(set(calls)) == 1
    assert len(clock.slept) == 2
    assert clock.slept[0] <= 0.2
    assert clock.slept[1] <= 0.4
    with engine.store.transaction() as tx:
        assert tx.logins.count("281234") == 0
    assert engine.history(snap.id)[-1].outcome == "transient_error"


def _code(engine: Engine) -> str:
    import re

    mailer = engine.mailer
    assert isinstance(mailer, MemoryMailer)
    body = mailer.messages[-1].get_body(("plain",))
    assert body is not None
    match = re.search(r"\b[0-9]{8}\b", body.get_content())
    assert match is not None
    return match.group()


def _message_ids() -> set[str]:
    """Every message id the built-in flows and validators can show."""
    ids = {"field_required", "field_type", "transient_error", "flow_expired", "event_refused",
           "account_unknown"}
    for name in builtin_library().names():
        raw = tomllib.loads(resources.files("regflow.machines").joinpath(f"{name}.toml").read_text())
        for state in raw["states"].values():
            for branches in state.get("on", {}).values():
                for branch in branches if isinstance(branches, list) else [branches]:
                    if isinstance(branch, dict) and "message" in branch:
                        ids.add(branch["message"])
    source = (PACKAGE / "definitions" / "validation.py").read_text()
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Invalid"
                and isinstance(node.args[0], ast.Constant)):
            ids.add(node.args[0].value)
    return ids


def test_catalogs_have_the_same_keys() -> None:
    """Japanese and English hold the same keys: a key without a translation fails here."""
    assert set(packaged("ja")) == set(packaged("en"))


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_message_and_screen_has_a_text(lang: str) -> None:
    """Every message id, screen title, field and action of the built-in flows has a text."""
    catalog = Catalog(lang)
    missing = [i for i in _message_ids() if catalog.find(f"message.{i}") is None]
    for defn in (builtin_library().latest(n) for n in builtin_library().names()):
        for sname, state in defn.states.items():
            if catalog.find(f"screen.{defn.name}.{sname}.title", f"screen.{sname}.title") is None:
                missing.append(f"screen {defn.name}.{sname}")
            for action in state.screen.actions if state.screen else ():
                if catalog.find(f"action.{defn.name}.{sname}.{action.event}",
                                f"action.{action.event}") is None:
                    missing.append(f"action {action.event}")
        missing += [f"field {f}" for f in defn.fields if catalog.find(f"field.{f}") is None]
    assert missing == []


def test_retired_version_migrates_by_declaration() -> None:
    """After v1 is retired, a v1 flow moves to v2 by the declared migration, journaled."""
    library = FlowLibrary(Registry())
    library.add(TOY)
    engine = engine_with(library)
    old = engine.start("toy")
    old = engine.send(old, "submit")
    assert (old.version, old.state) == (1, "b")
    v2 = {**TOY, "version": 2, "migrations": {"1": {"states": {"b": "b2"}}},
          "states": {"a": TOY["states"]["a"],
                     "b2": {"screen": {"actions": ["submit"]}, "on": {"submit": "done"}},
                     "done": {"final": True}}}
    v2["states"]["a"] = {"screen": {"actions": ["submit"]}, "on": {"submit": "b2"}}
    library.add(v2)
    library.retire("toy", 1)
    moved = engine.get(old)
    assert (moved.version, moved.state) == (2, "b2")
    assert engine.send(old, "submit").state == "done"
    steps = [(j.event, j.from_state, j.to_state, j.actor) for j in engine.history(old.id)]
    assert ("migrate", "b", "b2", "system") in steps


def test_retired_version_without_migration_is_refused() -> None:
    """Without a declared migration, a flow on a retired version is refused with a clear error."""
    library = FlowLibrary(Registry())
    library.add(TOY)
    engine = engine_with(library)
    old = engine.start("toy")
    library.add({**TOY, "version": 2})
    library.retire("toy", 1)
    with pytest.raises(regflow.VersionUnavailable, match="declares no migration"):
        engine.get(old)
    with pytest.raises(regflow.VersionUnavailable):
        engine.send(old, "submit")


def test_migration_to_an_unknown_state_fails_at_load() -> None:
    """A migration naming a state the new version lacks is a definition fault with its path."""
    library = FlowLibrary(Registry())
    with pytest.raises(regflow.DefinitionError, match=r"toy.migrations.1.states.b: unknown state"):
        library.add({**TOY, "version": 2, "migrations": {"1": {"states": {"b": "nowhere"}}}})


@pytest.mark.parametrize(("utc", "shown"), [
    ("2026-03-02T00:10:00+00:00", "09:10"),          # on the minute: as it is
    ("2026-03-02T00:10:00.000001+00:00", "09:11"),   # a microsecond past: the next minute
    ("2026-03-02T00:10:30+00:00", "09:11"),
    ("2026-03-02T14:59:59+00:00", "00:00"),          # 23:59:59 JST: midnight
])
def test_a_shown_time_is_never_earlier_than_its_instant(utc: str, shown: str) -> None:
    """``shown_minute`` (issue 12, point 3) rounds up to the minute in the zone."""
    from datetime import datetime

    from regflow.ground.clock import shown_minute

    assert shown_minute(datetime.fromisoformat(utc), "Asia/Tokyo") == shown
