"""Profiles of the spots where regflow loses against its anchors (cProfile, stdlib only).

    python -m benchmarks.profile                    # every target
    python -m benchmarks.profile step_sqlite        # one

Each target writes ``benchmarks/profiles/<target>.txt``: the wall time per operation without
the profiler, the SQL statements per operation (database targets), and the cProfile tables by
own time and by cumulative time. cProfile inflates call-heavy code (peewee's SQL builder,
attrs, logging) more than C calls; read the tables for where the time goes, the first line
for how much there is.
"""

from __future__ import annotations

import cProfile
import io
import logging
import os
import pstats
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks import fixtures, floors
from benchmarks.dispatch import WARM_SENDS, raw_transitions

OUT = Path(__file__).parent / "profiles"


class _SqlCounter(logging.Handler):
    """Counts peewee's statements by their first word, and keeps them in order."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.counts: Counter[str] = Counter()
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.msg
        sql = str(msg[0] if isinstance(msg, tuple) and msg else msg)
        words = sql.split()
        self.counts[words[0] if words else "?"] += 1
        self.statements.append(sql if len(sql) <= 160 else sql[:157] + "...")


@contextmanager
def counting_sql() -> Iterator[_SqlCounter]:
    logger = logging.getLogger("peewee")
    handler = _SqlCounter()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _profile(name: str, step: Callable[[], object], ops: int, *, unit: str = "op",
             sql: Callable[[], object] | None = None, note: str = "") -> None:
    for _ in range(max(1, ops // 20)):  # warm up
        step()
    before, cpu_before = time.perf_counter(), time.process_time()
    for _ in range(ops):
        step()
    wall = (time.perf_counter() - before) / ops
    cpu = (time.process_time() - cpu_before) / ops
    statements: list[str] = []
    lines = [f"# {name}: {ops} × {unit}, {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"without the profiler: {wall * 1e6:,.1f} µs wall, {cpu * 1e6:,.1f} µs CPU of this "
             f"process per {unit} (load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} "
             f"on {os.cpu_count()} cores)"]
    if note:
        lines.append(note)
    if sql is not None:
        with counting_sql() as counter:
            sql()
        lines.append(f"SQL statements per {unit} (peewee's log; the outermost BEGIN and COMMIT "
                     f"are the driver's and not logged): {len(counter.statements)}: " +
                     ", ".join(f"{k} ×{v}" for k, v in counter.counts.most_common()))
        statements = counter.statements
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(ops):
        step()
    profiler.disable()
    for order, count in (("tottime", 30), ("cumulative", 45)):
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.strip_dirs().sort_stats(order).print_stats(count)
        body = text.getvalue()
        body = body[body.index("   ncalls"):] if "   ncalls" in body else body
        lines += ["", f"## by {order} (top {count})", body.rstrip()]
    if sql is not None:
        lines += ["", f"## the statements of one {unit}, in order"]
        lines += [f"{i:3d}  {text}" for i, text in enumerate(statements, 1)]
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{name}: {wall * 1e6:,.1f} µs wall, {cpu * 1e6:,.1f} µs CPU per {unit} "
          f"→ {OUT / (name + '.txt')}")


def dispatch_memory() -> None:
    engine = fixtures.bench_engine("memory://")
    flow = engine.start("bench")
    _profile("dispatch_memory", lambda: engine.send(flow, "submit"), 20_000, unit="send")
    _profile("dispatch_memory_transitions", raw_transitions(), 100_000, unit="event")


def step_sqlite() -> None:
    """regflow's send on SQLite, and the raw-SQL floor replaying its traced statements."""
    with fixtures.scratch_dir() as folder:
        engine = fixtures.bench_engine(fixtures.sqlite_url(folder, "regflow.db"))
        flow, other = engine.start("bench"), engine.start("bench")
        for _ in range(WARM_SENDS):
            engine.send(flow, "submit")
            engine.send(other, "submit")
        _profile("step_sqlite", lambda: engine.send(flow, "submit"), 3_000, unit="send",
                 sql=lambda: engine.send(flow, "submit"))
        recorded = floors.trace_sqlite(engine, flow)
        state, rev = floors.sqlite_state(engine, other.id)
        floor, close = floors.sqlite_floor(str(folder / "regflow.db"), recorded, other.id, state,
                                           rev, floors.sqlite_pragmas(engine))
        _profile("step_sqlite_floor", floor, 3_000, unit="transaction",
                 note="the statements: " + " | ".join(recorded.summary()))
        close()
        engine.store.close()


def _registrations(name: str, url: str, count: int) -> None:
    engine = fixtures.registration_engine(url, "fast")
    try:
        fixtures.add_customers(engine, range(count // fixtures.SEATS_PER_CUSTOMER + 3))
        seq = iter(range(10**6))

        def one() -> None:
            n = next(seq)
            number, seat = divmod(n, fixtures.SEATS_PER_CUSTOMER)
            fixtures.register(engine, number, seat, f"prof-{n}@example.jp")

        # warm-up + timed + sql + profiled registrations all need seats: count*2 + extra
        _profile(name, one, count // 3, unit="registration", sql=one,
                 note="a registration = start + 3 sends, ending in provisioning")
    finally:
        engine.store.close()


def registration_sqlite() -> None:
    with fixtures.scratch_dir() as folder:
        _registrations("registration_sqlite", fixtures.sqlite_url(folder, "reg.db"), 300)


def registration_postgresql() -> None:
    reason = fixtures.postgres_unavailable()
    if reason is not None:
        print(f"registration_postgresql: skipped ({reason})")
        return
    with fixtures.postgres_schema("profile") as url:
        _registrations("registration_postgresql", url, 300)


def growth_memory() -> None:
    import random

    from benchmarks.growth import _populate

    for size in (1_000, 100_000):
        rng = random.Random(3)
        engine = fixtures.bench_engine("memory://")
        ids = _populate(engine, size, rng)
        _profile(f"growth_memory_{size // 1000}k",
                 lambda: engine.send(rng.choice(ids), "submit",  # noqa: B023 - run at once
                                     token=fixtures.BULK_TOKEN),
                 20_000, unit="send")


def import_time() -> None:
    """``-X importtime`` of ``import regflow``: the modules costing most, cumulative."""
    subprocess.run([sys.executable, "-c", "import regflow"], check=True)
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import regflow"],
                         capture_output=True, text=True, check=True).stderr
    rows: list[tuple[int, int, str]] = []
    for line in out.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative, module = line.removeprefix("import time:").split("|")
        rows.append((int(cumulative), int(self_us), module.rstrip()))
    total = max(rows)[0]
    lines = [f"# import regflow: {total / 1000:.1f} ms under -X importtime (which adds its own "
             "overhead); modules by cumulative time", "", "cumulative_ms  self_ms  module"]
    lines += [f"{c / 1000:13.1f}  {s / 1000:7.1f}  {m}" for c, s, m in sorted(rows, reverse=True)[:60]]
    lines += ["", "by own time:", "self_ms  module"]
    lines += [f"{s / 1000:7.1f}  {m.strip()}" for _, s, m in sorted(rows, key=lambda r: -r[1])[:30]]
    OUT.mkdir(exist_ok=True)
    (OUT / "import_time.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"import_time: {total / 1000:.1f} ms → {OUT / 'import_time.txt'}")


TARGETS: dict[str, Callable[[], None]] = {
    "dispatch_memory": dispatch_memory,
    "step_sqlite": step_sqlite,
    "registration_sqlite": registration_sqlite,
    "registration_postgresql": registration_postgresql,
    "growth_memory": growth_memory,
    "import_time": import_time,
}


def main(argv: list[str]) -> int:
    chosen = argv or list(TARGETS)
    unknown = sorted(set(chosen) - set(TARGETS))
    if unknown:
        print(f"unknown target(s) {unknown}; choose from {list(TARGETS)}", file=sys.stderr)
        return 2
    for name in chosen:
        TARGETS[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
