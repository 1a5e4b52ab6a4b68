"""The floors a persisted step is judged against: regflow's own statements, replayed raw.

At the start of a run regflow performs one benchmark step (``submit`` on the two-state flow)
while its statements are recorded — on SQLite with ``sqlite3``'s ``set_trace_callback`` on the
store's connection, on PostgreSQL by wrapping psycopg's ``Cursor.execute`` for that one step.
The floor then sends exactly those statements, in that order, inside the same ``BEGIN`` …
``COMMIT``, on regflow's own schema and indexes (the same database, a second flow of its own),
through the driver alone: ``sqlite3`` with its statement cache (SQL prepared once per
connection), psycopg with ``prepare=True``. Whatever regflow sends, the floor follows.

A replayed step must do the same work, not a cheaper no-op: the flow's id, its state (the two
states swap each step) and its ``rev`` (the version check: ``rev = R+1 … WHERE rev = R``) are
carried forward; every ``UPDATE`` must change one row. On SQLite the trace gives the statement
with its values written in; they are turned back into ``?`` parameters (the floor binds every
literal, regflow's constants too).

``pgbench`` (TPC-B, one client) is run beside, when it is installed, as the anchor everyone
knows for "one client, synchronous commit, this machine".
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import attrs

import regflow

Step = Callable[[], None]


@attrs.frozen
class Recorded:
    """The statements of one regflow step, with what changes from one step to the next."""

    statements: tuple[tuple[str, tuple[Any, ...]], ...]
    flow_id: str
    from_state: str
    to_state: str
    rev: int  # the flow's rev before the traced step

    def summary(self) -> list[str]:
        """The statements' text, in order."""
        return [" ".join(sql.split()) for sql, _ in self.statements]


# ---- SQLite ------------------------------------------------------------------------------------

_LITERAL = re.compile(r"""
    (?P<string>'(?:[^']|'')*')
  | (?P<quoted>"(?:[^"]|"")*")
  | (?P<blob>[xX]'[0-9a-fA-F]*')
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<number>(?<![A-Za-z0-9_.])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
""", re.VERBOSE)


def parametrized(expanded: str) -> tuple[str, tuple[Any, ...]]:
    """``UPDATE t SET a = 'x', b = 3`` → (``UPDATE t SET a = ?, b = ?``, ("x", 3)): the
    statement as it was prepared, from the text ``sqlite3``'s trace gives (values written in)."""
    params: list[Any] = []

    def swap(match: re.Match[str]) -> str:
        kind, text = match.lastgroup, match.group()
        if kind == "string":
            params.append(text[1:-1].replace("''", "'"))
        elif kind == "blob":
            params.append(bytes.fromhex(text[2:-1]))
        elif kind == "number":
            params.append(float(text) if any(c in text for c in ".eE") else int(text))
        else:
            return text
        return "?"

    return _LITERAL.sub(swap, expanded), tuple(params)


def sqlite_connection(engine: regflow.Engine) -> sqlite3.Connection:
    """The ``sqlite3`` connection of the engine's store (this thread's)."""
    db = getattr(engine.store, "_db", None)
    found = db.connection() if db is not None and hasattr(db, "connection") else None
    if not isinstance(found, sqlite3.Connection):
        found = next((v for v in vars(engine.store).values() if isinstance(v, sqlite3.Connection)),
                     None)
    if found is None:
        raise RuntimeError("cannot find the SQLite connection of the store to trace it")
    return found


def _flow_row(engine: regflow.Engine, flow_id: str) -> tuple[str, int]:
    conn = sqlite_connection(engine)
    row = conn.execute('SELECT "state", "rev" FROM "flows" WHERE "id" = ?', (flow_id,)).fetchone()
    return str(row[0]), int(row[1])


def trace_sqlite(engine: regflow.Engine, flow: Any, event: str = "submit") -> Recorded:
    """Record the statements of ``engine.send(flow, event)`` on its SQLite store."""
    flow_id = flow.id
    state, rev = _flow_row(engine, flow_id)
    conn = sqlite_connection(engine)
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        engine.send(flow, event)
    finally:
        conn.set_trace_callback(None)
    after, _ = _flow_row(engine, flow_id)
    return Recorded(tuple(parametrized(sql) for sql in seen), flow_id, state, after, rev)


class _Replay:
    """What a replayed step binds: the recorded values with id, states and rev carried on."""

    def __init__(self, recorded: Recorded, flow_id: str, state: str, rev: int) -> None:
        self.recorded, self.flow_id, self.state, self.rev = recorded, flow_id, state, rev
        if state not in (recorded.from_state, recorded.to_state):
            raise ValueError(f"the floor's flow is in {state!r}, not a traced state")

    def params(self) -> Iterator[tuple[str, tuple[Any, ...]]]:
        r = self.recorded
        other = r.to_state if self.state == r.from_state else r.from_state
        swap: dict[Any, Any] = {r.flow_id: self.flow_id, r.from_state: self.state,
                                r.to_state: other}
        for sql, params in r.statements:
            yield sql, tuple(self._value(p, swap) for p in params)
        self.state, self.rev = other, self.rev + 1

    def _value(self, value: Any, swap: dict[Any, Any]) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            if value == self.recorded.rev:
                return self.rev
            if value == self.recorded.rev + 1:
                return self.rev + 1
            return value
        return swap.get(value, value) if isinstance(value, str) else value


def sqlite_floor(path: str, recorded: Recorded, flow_id: str, state: str, rev: int,
                 pragmas: dict[str, Any]) -> tuple[Step, Callable[[], None]]:
    """The recorded statements on flow ``flow_id`` of the SQLite file ``path`` (regflow's own
    database), through ``sqlite3`` alone; returns (one step, close)."""
    if recorded.rev in (0, 1) or not recorded.statements:
        raise ValueError("trace a step of a flow with rev >= 2 (its rev must stand out)")
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                           cached_statements=256)
    for name, value in pragmas.items():
        conn.execute(f"PRAGMA {name} = {value}")
    replay = _Replay(recorded, flow_id, state, rev)
    execute = conn.execute

    def step() -> None:
        for sql, params in replay.params():
            cursor = execute(sql, params)
            head = sql[:6].upper()
            if head == "SELECT":
                cursor.fetchall()
            elif head == "UPDATE" and cursor.rowcount != 1:
                raise AssertionError(f"the floor's UPDATE changed {cursor.rowcount} rows")

    return step, conn.close


def sqlite_pragmas(engine: regflow.Engine) -> dict[str, Any]:
    """The per-connection settings of the store's connection, for the floor's."""
    conn = sqlite_connection(engine)
    return {name: conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("synchronous", "foreign_keys", "cache_size", "temp_store", "busy_timeout")}


def sqlite_state(engine: regflow.Engine, flow_id: str) -> tuple[str, int]:
    return _flow_row(engine, flow_id)


# ---- PostgreSQL --------------------------------------------------------------------------------

@contextlib.contextmanager
def _recording_psycopg(into: list[tuple[str, tuple[Any, ...]]]) -> Iterator[None]:
    import psycopg

    execute = psycopg.Cursor.execute

    def recorded(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if isinstance(query, str):
            into.append((query, tuple(params or ())))
        else:
            into.append((query.as_string(self), tuple(params or ())))
        return execute(self, query, params, **kwargs)

    psycopg.Cursor.execute = recorded  # type: ignore[method-assign]
    try:
        yield
    finally:
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]


def _pg_row(url_schema: str | None, conninfo: str, flow_id: str) -> tuple[str, int]:
    import psycopg

    with psycopg.connect(conninfo, **_search_path(url_schema)) as conn:
        row = conn.execute('SELECT "state", "rev" FROM "flows" WHERE "id" = %s', (flow_id,)).fetchone()
    if row is None:
        raise RuntimeError(f"no flow {flow_id}")
    return str(row[0]), int(row[1])


def _search_path(schema: str | None) -> dict[str, Any]:
    return {"options": f"-c search_path={schema}"} if schema else {}


def trace_postgres(engine: regflow.Engine, flow: Any, conninfo: str, schema: str | None,
                   event: str = "submit") -> Recorded:
    """Record the statements psycopg sends for ``engine.send(flow, event)``."""
    state, rev = _pg_row(schema, conninfo, flow.id)
    seen: list[tuple[str, tuple[Any, ...]]] = []
    with _recording_psycopg(seen):
        engine.send(flow, event)
    after, _ = _pg_row(schema, conninfo, flow.id)
    if not any(sql.strip().upper() == "COMMIT" for sql, _ in seen):
        seen.append(("COMMIT", ()))  # committed by the driver's commit(), not a statement
    if not any(sql.strip().upper().startswith("BEGIN") for sql, _ in seen):
        seen.insert(0, ("BEGIN", ()))
    return Recorded(tuple(seen), flow.id, state, after, rev)


def postgres_floor(conninfo: str, schema: str | None, recorded: Recorded,
                   flow_id: str) -> tuple[Step, Callable[[], None]]:
    """The recorded statements on flow ``flow_id`` through psycopg with prepared statements
    (autocommit, the ``BEGIN`` and ``COMMIT`` sent as regflow sends them)."""
    import psycopg

    state, rev = _pg_row(schema, conninfo, flow_id)
    conn = psycopg.connect(conninfo, autocommit=True, **_search_path(schema))
    replay = _Replay(recorded, flow_id, state, rev)

    def step() -> None:
        for sql, params in replay.params():
            if not params:
                conn.execute(sql)
                continue
            cursor = conn.execute(sql, params, prepare=True)
            head = sql.lstrip()[:6].upper()
            if head == "SELECT":
                cursor.fetchall()
            elif head == "UPDATE" and cursor.rowcount != 1:
                raise AssertionError(f"the floor's UPDATE changed {cursor.rowcount} rows")

    return step, conn.close


# ---- pgbench -----------------------------------------------------------------------------------

PGBENCH_CANDIDATES = ("pgbench", "/usr/lib/postgresql/15/bin/pgbench")
_TPS = re.compile(r"tps = ([0-9.]+) \((?:without initial connection time|excluding)")


def pgbench_path() -> str | None:
    for candidate in PGBENCH_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def pgbench(conninfo: str, schema: str, seconds: float) -> dict[str, Any]:
    """TPC-B with one client for ``seconds`` on a fresh scale-1 data set in ``schema`` (which
    the caller drops): transactions per second and the CPU seconds of the whole run."""
    path = pgbench_path()
    if path is None:
        return {"skipped": "pgbench is not installed"}
    env = os.environ | {"PGOPTIONS": f"-c search_path={schema}"}
    subprocess.run([path, "-i", "-s", "1", "-q", "-n", conninfo], env=env, check=True,
                   capture_output=True, text=True, timeout=120)
    done = subprocess.run([path, "-c", "1", "-j", "1", "-n", "-T", str(max(1, round(seconds))),
                           conninfo], env=env, check=True, capture_output=True, text=True,
                          timeout=seconds + 60)
    found = _TPS.search(done.stdout)
    if found is None:
        raise RuntimeError(f"pgbench printed no tps: {done.stdout[-400:]}")
    latency = re.search(r"latency average = ([0-9.]+) ms", done.stdout)
    return {"tps": round(float(found.group(1)), 1), "clients": 1, "scale": 1,
            "seconds": max(1, round(seconds)),
            "latency_ms": float(latency.group(1)) if latency else None,
            "script": "TPC-B (sort of), pgbench's built-in"}
