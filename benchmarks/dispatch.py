"""Events per second: ``Engine.send`` against the libraries underneath it.

``dispatch_memory``: the two-state flow with one guard on the memory store, against the same
machine driven by raw ``transitions`` the way regflow drives it (one shared ``Machine`` with
no model, a tiny per-call model triggered through ``machine.events[...]``), and against
python-statemachine (one long-lived machine instance, its own idiom) for reference.

``dispatch_sqlite``: the same flow on a SQLite file, against the floor any durable engine on
peewee pays per event: load the row, a version-checked update and a journal insert in one
``BEGIN IMMEDIATE`` transaction (WAL, synchronous=NORMAL), with no secondary index.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from benchmarks import fixtures
from benchmarks.harness import Rates, interleaved, median, paired_ratio


class _Cursor:
    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


def raw_transitions() -> Any:
    """The bench flow as a bare shared transitions machine; returns a one-event callable."""
    from transitions import Machine

    def ok(event_data: Any) -> bool:
        return True

    machine = Machine(
        model=None, states=["a", "b"], initial="a", auto_transitions=False, send_event=True,
        transitions=[
            {"trigger": "submit", "source": "a", "dest": "b", "conditions": [ok]},
            {"trigger": "submit", "source": "b", "dest": "a", "conditions": [ok]},
        ],
    )
    event = machine.events["submit"]
    current = ["a"]

    def step() -> None:
        cursor = _Cursor(current[0])  # the state comes from "the stored row", as in regflow
        event.trigger(cursor)
        current[0] = cursor.state

    return step


def python_statemachine() -> Any:
    """The bench flow in python-statemachine; returns a one-event callable."""
    from statemachine import State, StateMachine

    class Bench(StateMachine):
        a = State(initial=True)
        b = State()
        submit = a.to(b, cond="ok") | b.to(a, cond="ok")

        def ok(self) -> bool:
            return True

    machine = Bench()
    return lambda: machine.send("submit")


def dispatch_memory(cfg: Any) -> dict[str, Any]:
    engine = fixtures.bench_engine("memory://")
    flow = engine.start("bench")  # its id and flow token: each send checks the token
    contenders = {
        "regflow": lambda: engine.send(flow, "submit"),
        "transitions": raw_transitions(),
    }
    with contextlib.suppress(ImportError):  # python-statemachine: the bench extra
        contenders["python_statemachine"] = python_statemachine()
    measured = interleaved(contenders, rounds=cfg.rounds, seconds=cfg.seconds, batch=50)
    rates = measured.wall
    result: dict[str, Any] = {
        "regflow_eps": round(median(rates["regflow"])),
        "transitions_eps": round(median(rates["transitions"])),
        "python_statemachine_eps": (round(median(rates["python_statemachine"]))
                                    if "python_statemachine" in rates else None),
        "ratio": round(paired_ratio(rates["regflow"], rates["transitions"]), 3),
        **_details(measured, "transitions"),
        "target": ">= 0.5",
    }
    result["met"] = result["ratio"] >= 0.5
    return result


def _details(measured: Rates, anchor: str) -> dict[str, Any]:
    """Per-round numbers, and the ratio per CPU second (a check on a busy machine)."""
    wall, cpu = measured.wall, measured.cpu
    return {
        "round_ratios": [round(r / a, 3) for r, a in zip(wall["regflow"], wall[anchor],
                                                          strict=True)],
        "ratio_cpu": round(paired_ratio(cpu["regflow"], cpu[anchor]), 3),
        "regflow_eps_cpu": round(median(cpu["regflow"])),
        f"{anchor}_eps_cpu": round(median(cpu[anchor])),
        "rounds": {name: [round(v) for v in values] for name, values in wall.items()},
    }


def sqlite_floor(path: Path) -> Any:
    """The peewee floor on its own SQLite file; returns a one-event callable."""
    import peewee as pw

    db = pw.SqliteDatabase(str(path), pragmas=(
        ("busy_timeout", 10000), ("journal_mode", "wal"), ("synchronous", "normal")))

    class Flow(pw.Model):
        id = pw.TextField(primary_key=True)
        state = pw.TextField()
        data = pw.TextField()
        rev = pw.IntegerField()

        class Meta:
            database = db
            table_name = "flows"

    class Journal(pw.Model):
        flow_id = pw.TextField()
        from_state = pw.TextField()
        to_state = pw.TextField()
        event = pw.TextField()
        at = pw.BigIntegerField()

        class Meta:
            database = db
            table_name = "journal"

    db.create_tables([Flow, Journal])
    Flow.insert(id="floor", state="a", data='{"_lang":"ja","_messages":[]}', rev=0).execute()
    clock = fixtures.utcnow

    def step() -> None:
        with db.atomic("IMMEDIATE"):
            row = Flow.get_by_id("floor")
            target = "b" if row.state == "a" else "a"
            saved = (Flow.update(state=target, rev=Flow.rev + 1)
                     .where((Flow.id == "floor") & (Flow.rev == row.rev)).execute())
            if saved != 1:
                raise AssertionError("version check failed")
            Journal.insert(flow_id="floor", from_state=row.state, to_state=target,
                           event="submit", at=int(clock().timestamp() * 1e6)).execute()

    return step


def dispatch_sqlite(cfg: Any) -> dict[str, Any]:
    with fixtures.scratch_dir() as folder:
        engine = fixtures.bench_engine(fixtures.sqlite_url(folder, "regflow.db"))
        flow = engine.start("bench")  # its id and flow token: each send checks the token
        contenders = {
            "regflow": lambda: engine.send(flow, "submit"),
            "floor": sqlite_floor(folder / "floor.db"),
        }
        measured = interleaved(contenders, rounds=cfg.rounds, seconds=cfg.seconds * 1.5,
                               batch=5)
        engine.store.close()
    rates = measured.wall
    result: dict[str, Any] = {
        "regflow_eps": round(median(rates["regflow"])),
        "floor_eps": round(median(rates["floor"])),
        "ratio": round(paired_ratio(rates["regflow"], rates["floor"]), 3),
        **_details(measured, "floor"),
        "target": ">= 0.75",
    }
    result["met"] = result["ratio"] >= 0.75
    return result
