"""Timing helpers shared by the benchmarks: time-boxed loops, interleaved rounds, percentiles,
and the facts about the machine a run happened on.

Every comparison runs regflow and its anchor in the same process, one after the other inside
each round (the order rotated between rounds), so a slow phase of a noisy machine hits both; a
ratio is taken from the medians over the rounds.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import attrs


def timebox(fn: Callable[[], object], seconds: float, batch: int = 1) -> tuple[int, float, float]:
    """Call ``fn()`` over and over for about ``seconds``: (calls, elapsed seconds, CPU seconds
    this process used meanwhile)."""
    clock, cpu = time.perf_counter, time.process_time
    calls = 0
    start, cpu_start = clock(), cpu()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            fn()
        calls += batch
        now = clock()
        if now >= deadline:
            return calls, now - start, cpu() - cpu_start


@attrs.define
class Rates:
    """Calls per second of each contender, one value per round: per wall-clock second (what
    the benchmarks report) and per CPU second of this process (what another process's load on
    the machine barely moves; reported beside, as a check)."""

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]


def interleaved(contenders: dict[str, Callable[[], object]], *, rounds: int, seconds: float,
                batch: int = 1, warmup: float = 0.2) -> Rates:
    """Run the contenders in turns, round after round (the first to go rotating), so a burst
    of load from elsewhere hits one round of each rather than all of one."""
    names = list(contenders)
    for name in names:
        timebox(contenders[name], warmup, batch)
    rates = Rates({name: [] for name in names}, {name: [] for name in names})
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            with quiet_gc():
                calls, elapsed, cpu = timebox(contenders[name], seconds, batch)
            rates.wall[name].append(calls / elapsed)
            rates.cpu[name].append(calls / cpu if cpu > 0 else float("nan"))
    return rates


@contextlib.contextmanager
def quiet_gc() -> Iterator[None]:
    """Collect first, so no contender pays for another's garbage."""
    gc.collect()
    yield


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def percentile(samples: list[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0–100) of ``samples``."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def paired_ratio(numerators: list[float], denominators: list[float]) -> float:
    """The median of the per-round ratios: each round's pair ran back to back, under the same
    load, so this is steadier than the ratio of the medians on a busy machine."""
    return median([ratio(n, d) for n, d in zip(numerators, denominators, strict=True)])


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_snapshot() -> dict[str, float]:
    """CPU seconds so far: the whole machine (busy, all), and the PostgreSQL server's processes
    (their own and their reaped children's). Linux only; empty elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return {}
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    snapshot = {"machine_busy": (sum(fields[:8]) - idle) / _TICK, "machine_all": sum(fields[:8]) / _TICK,
                "postgres": 0.0}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as stat:
                text = stat.read()
        except OSError:
            continue
        name = text[text.find("(") + 1:text.rfind(")")]
        if name == "postgres" or name.startswith("postgres:"):
            rest = text[text.rfind(")") + 2:].split()
            snapshot["postgres"] += sum(int(v) for v in rest[11:15]) / _TICK  # u, s, cu, cs
    return snapshot


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {key: after[key] - before[key] for key in before if key in after}


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def machine(postgres_version: str | None) -> dict[str, Any]:
    """What the numbers were measured on."""
    try:
        kernel = subprocess.run(["uname", "-sr"], capture_output=True, text=True,
                                check=False).stdout.strip()
    except OSError:
        kernel = platform.platform()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "kernel": kernel,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version,
        "packages": {name: _version(name) for name in (
            "regflow", "transitions", "python-statemachine", "peewee", "psycopg", "argon2-cffi")},
        "executable": sys.executable,
        "load_average_at_start": load_average(),
    }
