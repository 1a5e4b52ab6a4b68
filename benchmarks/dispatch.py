"""Events per second: ``Engine.send`` against the libraries underneath it.

``dispatch_memory``: the two-state flow with one guard on the memory store, against the same
machine driven by raw ``transitions`` the way regflow drives it (one shared ``Machine`` with
no model, a tiny per-call model triggered through ``machine.events[...]``), and against
python-statemachine (one long-lived machine instance, its own idiom) for reference.

``step_sqlite`` and ``step_postgresql``: the same flow on a SQLite file and on PostgreSQL,
against the raw-SQL floor of ``benchmarks.floors``: the very statements regflow sent for one
such step (traced at the start of the run), replayed through ``sqlite3`` / psycopg with
prepared statements, in one transaction, on regflow's own schema; ``pgbench`` beside.
"""

from __future__ import annotations

import contextlib
from typing import Any

from benchmarks import fixtures, floors
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


WARM_SENDS = 5  # before the trace: the flow's rev must not look like another small number


def _step_result(measured: Rates, recorded: floors.Recorded, target: float) -> dict[str, Any]:
    rates = measured.wall
    result: dict[str, Any] = {
        "regflow_eps": round(median(rates["regflow"])),
        "floor_eps": round(median(rates["floor"])),
        "ratio": round(paired_ratio(rates["regflow"], rates["floor"]), 3),
        **_details(measured, "floor"),
        "statements": recorded.summary(),
        "target": f">= {target}",
    }
    result["met"] = result["ratio"] >= target
    return result


def step_sqlite(cfg: Any) -> dict[str, Any]:
    with fixtures.scratch_dir() as folder:
        engine = fixtures.bench_engine(fixtures.sqlite_url(folder, "regflow.db"))
        try:
            flow = engine.start("bench")  # its id and flow token: each send checks the token
            for _ in range(WARM_SENDS):
                engine.send(flow, "submit")
            recorded = floors.trace_sqlite(engine, flow)
            other = engine.start("bench")  # the floor's own flow, in regflow's own tables
            for _ in range(WARM_SENDS):
                engine.send(other, "submit")
            state, rev = floors.sqlite_state(engine, other.id)
            floor, close = floors.sqlite_floor(str(folder / "regflow.db"), recorded, other.id,
                                               state, rev, floors.sqlite_pragmas(engine))
            try:
                measured = interleaved({"regflow": lambda: engine.send(flow, "submit"),
                                        "floor": floor},
                                       rounds=cfg.rounds, seconds=cfg.seconds * 1.5, batch=5)
            finally:
                close()
        finally:
            engine.store.close()
    return _step_result(measured, recorded, 0.5)


def step_postgresql(cfg: Any) -> dict[str, Any]:
    reason = fixtures.postgres_unavailable()
    if reason is not None:
        return {"skipped": reason}
    with fixtures.postgres_schema("step") as url:
        schema = fixtures.schema_of(url)
        engine = fixtures.bench_engine(url)
        try:
            flow = engine.start("bench")
            for _ in range(WARM_SENDS):
                engine.send(flow, "submit")
            recorded = floors.trace_postgres(engine, flow, fixtures.POSTGRES_SERVER, schema)
            other = engine.start("bench")
            for _ in range(WARM_SENDS):
                engine.send(other, "submit")
            floor, close = floors.postgres_floor(fixtures.POSTGRES_SERVER, schema, recorded,
                                                 other.id)
            try:
                measured = interleaved({"regflow": lambda: engine.send(flow, "submit"),
                                        "floor": floor},
                                       rounds=cfg.rounds, seconds=cfg.seconds * 1.5, batch=5)
            finally:
                close()
        finally:
            engine.store.close()
    result = _step_result(measured, recorded, 0.5)
    with fixtures.postgres_schema("pgbench") as url:
        schema = fixtures.schema_of(url)
        with fixtures.postgres_connection() as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        result["pgbench"] = floors.pgbench(fixtures.POSTGRES_SERVER, schema, cfg.seconds * 5)
    return result
