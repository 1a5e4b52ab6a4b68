"""Does ``send`` slow down as flows accumulate? And what does a timer sweep cost?

Two stores per backend, one holding 1,000 flows of the bench flow and one 100,000 (inserted
through the store port, not ``start``, to keep setup short; each with an inactivity expiry
30–60 minutes ahead, so the due index is as full as the table). ``send`` goes to a random
stored flow; the two stores take turns, round by round, and each call is timed on its own.
``ratio`` = p50 at 100k / p50 at 1k, the worst of the backends.

The sweep: 1,000 more flows whose timer is due (``tick``, one second ago) are added to each
store, then one ``Engine.sweep(limit=1000)`` must apply all 1,000.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any

from benchmarks import fixtures
from benchmarks.harness import median, percentile, ratio

SIZES = (1_000, 100_000)
DUE = 1_000


def _populate(engine: Any, size: int, rng: random.Random) -> list[str]:
    now = fixtures.utcnow()
    records = [fixtures.flow_record("bench", "a", now, expires_in=rng.uniform(1800, 3600))
               for _ in range(size)]
    fixtures.insert_flows(engine.store, records)
    return [record.id for record in records]


def _add_due(engine: Any) -> None:
    now = fixtures.utcnow()
    records = [fixtures.flow_record("bench_timed", "a", now,
                                    timers=[("tick", now - timedelta(seconds=1))])
               for _ in range(DUE)]
    fixtures.insert_flows(engine.store, records)


def _backend(url_of: Any, sizes: tuple[int, ...], rounds: int, per_round: int,
             sweeps: int) -> dict[str, Any]:
    rng = random.Random(7)
    engines: dict[int, Any] = {}
    ids: dict[int, list[str]] = {}
    setup: dict[int, float] = {}
    for size in sizes:
        started = time.perf_counter()
        engines[size] = fixtures.bench_engine(url_of(size))
        ids[size] = _populate(engines[size], size, rng)
        setup[size] = round(time.perf_counter() - started, 1)
    samples: dict[int, list[float]] = {size: [] for size in sizes}
    cpu_samples: dict[int, list[float]] = {size: [] for size in sizes}
    clock, cpu = time.perf_counter_ns, time.process_time_ns
    for r in range(rounds):
        order = sizes if r % 2 == 0 else tuple(reversed(sizes))
        for size in order:
            engine, pool = engines[size], ids[size]
            targets = [rng.choice(pool) for _ in range(per_round)]
            for flow_id in targets:
                began, cpu_began = clock(), cpu()
                engine.send(flow_id, "submit", token=fixtures.BULK_TOKEN)
                samples[size].append((clock() - began) / 1000)
                cpu_samples[size].append((cpu() - cpu_began) / 1000)
    sweep_ms: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(sweeps):
        for size in sizes:
            _add_due(engines[size])
            before = time.perf_counter()
            applied = engines[size].sweep(limit=DUE)
            sweep_ms[size].append((time.perf_counter() - before) * 1000)
            if applied != DUE:
                raise AssertionError(f"sweep applied {applied} of {DUE} due flows")
    for engine in engines.values():
        engine.store.close()
    small, big = sizes
    result: dict[str, Any] = {"setup_s": {str(k): v for k, v in setup.items()},
                              "samples": len(samples[small])}
    for size in sizes:
        label = f"{size // 1000}k"
        result[f"p50_us_{label}"] = round(percentile(samples[size], 50), 1)
        result[f"p99_us_{label}"] = round(percentile(samples[size], 99), 1)
    result["ratio"] = round(ratio(percentile(samples[big], 50), percentile(samples[small], 50)), 3)
    # The same per CPU microsecond of this process: a check that load from elsewhere barely moves.
    result["cpu_p50_us_1k"] = round(percentile(cpu_samples[small], 50), 1)
    result[f"cpu_p50_us_{big // 1000}k"] = round(percentile(cpu_samples[big], 50), 1)
    result["ratio_cpu"] = round(ratio(percentile(cpu_samples[big], 50),
                                      percentile(cpu_samples[small], 50)), 3)
    result["sweep"] = {f"ms_{size // 1000}k": round(median(sweep_ms[size]), 1) for size in sizes}
    result["sweep"]["due"] = DUE
    result["sweep"]["flows_per_s_100k"] = round(DUE / median(sweep_ms[big]) * 1000)
    result["sweep"]["ratio"] = round(ratio(median(sweep_ms[big]), median(sweep_ms[small])), 3)
    return result


def growth(cfg: Any) -> dict[str, Any]:
    sizes = (SIZES[0], cfg.growth_big)
    result: dict[str, Any] = {"sizes": list(sizes)}
    result["memory"] = _backend(lambda size: "memory://", sizes, rounds=cfg.rounds,
                                per_round=2000, sweeps=2)
    with fixtures.scratch_dir() as folder:
        result["sqlite"] = _backend(
            lambda size: fixtures.sqlite_url(folder, f"growth-{size}.db"), sizes,
            rounds=cfg.rounds, per_round=300, sweeps=2)
    worst = max(("memory", "sqlite"), key=lambda name: result[name]["ratio"])
    result["ratio"] = result[worst]["ratio"]
    result["ratio_of"] = worst
    result["sweep"] = result["sqlite"]["sweep"] | {"store": "sqlite"}
    result["target"] = "<= 1.2"
    result["met"] = result["ratio"] <= 1.2
    return result
