"""``bounds``: what a step spends its time on, profiled in the same run as the ratios.

For each step benchmark (memory, SQLite, PostgreSQL) regflow's send runs ``SENDS`` times
under cProfile, and the floor's step as often. Own time (cProfile's ``tottime``) is summed by
where the code lives — regflow, peewee, the database driver (``sqlite3`` / psycopg, and the
time spent waiting on the server), transitions, the rest of Python — and the costliest regflow
functions by cumulative time are kept. cProfile inflates call-heavy Python code more than C
calls, so the shares say where the time goes; the rates of the step rows say how much there is.
``python -m benchmarks.profile`` writes the full tables.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from collections.abc import Callable
from typing import Any

from benchmarks import fixtures, floors
from benchmarks.dispatch import WARM_SENDS, raw_transitions

GROUPS = (  # (name, path fragments), first match wins
    ("regflow", ("/regflow/",)),
    ("peewee", ("peewee",)),
    ("driver", ("sqlite3", "psycopg", "method 'execute'", "method 'commit'", "method 'fetch",
                "select.", "selectors", "socket")),
    ("transitions", ("/transitions/",)),
)


def _group(path: str, name: str) -> str:
    where = f"{path}:{name}"
    for group, fragments in GROUPS:
        if any(f in where for f in fragments):
            return group
    return "python"


def profiled(step: Callable[[], object], calls: int, top: int = 8) -> dict[str, Any]:
    """``step`` ``calls`` times: CPU µs per call without the profiler, then the profile's
    shares by group and its costliest regflow functions (cumulative)."""
    for _ in range(max(5, calls // 20)):
        step()
    cpu = time.process_time()
    wall = time.perf_counter()
    for _ in range(calls):
        step()
    cpu_us = (time.process_time() - cpu) / calls * 1e6
    wall_us = (time.perf_counter() - wall) / calls * 1e6
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        step()
    profiler.disable()
    # {(file, line, name): (calls, primitive calls, own time, cumulative time, callers)}
    stats: Any = getattr(pstats.Stats(profiler), "stats")  # noqa: B009 - untyped in typeshed
    total = sum(entry[2] for entry in stats.values()) or 1.0
    shares: dict[str, float] = {}
    for (path, _line, name), entry in stats.items():
        group = _group(path, name)
        shares[group] = shares.get(group, 0.0) + entry[2] / total
    # The regflow functions under which most time goes, leaving out the wrappers around the
    # whole send (retrying, the send itself: 90 % and more).
    own = [(entry[3], f"{path.rsplit('/regflow/', 1)[-1]}:{name}")
           for (path, _line, name), entry in stats.items()
           if "/regflow/" in path and entry[3] / total < 0.9]
    heaviest = [{"function": where, "cumulative_share": round(ct / total, 3)}
                for ct, where in sorted(own, reverse=True)[:top]]
    return {"calls": calls, "cpu_us": round(cpu_us, 1), "wall_us": round(wall_us, 1),
            "own_time_share": {k: round(v, 3) for k, v in sorted(shares.items(), key=lambda kv: -kv[1])},
            "heaviest_regflow": heaviest}


def _memory(calls: int) -> dict[str, Any]:
    engine = fixtures.bench_engine("memory://")
    flow = engine.start("bench")
    return {"regflow": profiled(lambda: engine.send(flow, "submit"), calls),
            "floor": profiled(raw_transitions(), calls * 5)}


def _sqlite(calls: int) -> dict[str, Any]:
    with fixtures.scratch_dir() as folder:
        engine = fixtures.bench_engine(fixtures.sqlite_url(folder, "regflow.db"))
        try:
            flow, other = engine.start("bench"), engine.start("bench")
            for _ in range(WARM_SENDS):
                engine.send(flow, "submit")
                engine.send(other, "submit")
            recorded = floors.trace_sqlite(engine, flow)
            state, rev = floors.sqlite_state(engine, other.id)
            floor, close = floors.sqlite_floor(str(folder / "regflow.db"), recorded, other.id,
                                               state, rev, floors.sqlite_pragmas(engine))
            try:
                return {"regflow": profiled(lambda: engine.send(flow, "submit"), calls),
                        "floor": profiled(floor, calls)}
            finally:
                close()
        finally:
            engine.store.close()


def _postgresql(calls: int) -> dict[str, Any]:
    with fixtures.postgres_schema("bounds") as url:
        schema = fixtures.schema_of(url)
        engine = fixtures.bench_engine(url)
        try:
            flow, other = engine.start("bench"), engine.start("bench")
            for _ in range(WARM_SENDS):
                engine.send(flow, "submit")
                engine.send(other, "submit")
            recorded = floors.trace_postgres(engine, flow, fixtures.POSTGRES_SERVER, schema)
            floor, close = floors.postgres_floor(fixtures.POSTGRES_SERVER, schema, recorded,
                                                 other.id)
            try:
                return {"regflow": profiled(lambda: engine.send(flow, "submit"), calls),
                        "floor": profiled(floor, calls)}
            finally:
                close()
        finally:
            engine.store.close()


def bounds(cfg: Any) -> dict[str, Any]:
    quick = cfg.rounds < 5
    result: dict[str, Any] = {
        "method": "cProfile own time by where the code lives; CPU µs per call without it",
        "dispatch_memory": _memory(500 if quick else 4_000),
        "step_sqlite": _sqlite(100 if quick else 1_000),
    }
    reason = fixtures.postgres_unavailable()
    result["step_postgresql"] = {"skipped": reason} if reason else _postgresql(50 if quick else 300)
    return result
