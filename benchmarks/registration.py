"""Complete registrations per second (start, e-mail, code, details → ``provisioning``).

``registration``: one process, on SQLite and on PostgreSQL, with the fast test hasher and with
the argon2id defaults (m=19 MiB, t=2, p=1). ``scaling``: PostgreSQL with 1, 2 and 4 processes
(fast hasher), each on its own customers, released together; I1–I4 are checked afterwards.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import Any

from benchmarks import fixtures
from benchmarks.harness import cpu_delta, cpu_snapshot, load_average

# Customers per store: a registration takes one seat of 10 per customer.
POOL = 150
PER_PROCESS = 40  # customers (400 seats) per scaling process and run
PASSES = 2  # 1, 2, 4 processes, then again: load from elsewhere hits each about alike


def _run_registrations(url: str, hasher: str, seconds: float, tag: str) -> dict[str, Any]:
    engine = fixtures.registration_engine(url, hasher)
    try:
        fixtures.add_customers(engine, range(POOL))
        # A warm-up registration (caches, connection, prepared code paths), not counted.
        fixtures.register(engine, POOL - 1, fixtures.SEATS_PER_CUSTOMER - 1, f"{tag}-warm@example.jp")
        count, elapsed = fixtures.register_for(engine, range(POOL - 1), seconds, tag)
        checked = fixtures.invariants(engine)
    finally:
        engine.store.close()
    return {"per_s": round(count / elapsed, 1), "count": count, "seconds": round(elapsed, 2),
            "invariants_ok": checked["ok"]}


def registration(cfg: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "complete_at": "provisioning (the login exists; ready by itself 10 minutes later)",
        "hashers": {"fast": "argon2id t=1 m=8KiB p=1 (tests only)",
                    "argon2": "argon2id t=2 m=19MiB p=1 (the defaults)"},
    }
    seconds = cfg.seconds * 8
    with fixtures.scratch_dir() as folder:
        result["sqlite"] = {
            hasher: _run_registrations(fixtures.sqlite_url(folder, f"reg-{hasher}.db"), hasher,
                                       seconds, f"s{hasher}")
            for hasher in ("fast", "argon2")
        }
    reason = fixtures.postgres_unavailable()
    if reason is not None:
        result["postgresql"] = {"skipped": reason}
        return result
    result["postgresql"] = {}
    for hasher in ("fast", "argon2"):
        with fixtures.postgres_schema(f"reg_{hasher}") as url:
            result["postgresql"][hasher] = _run_registrations(url, hasher, seconds, f"p{hasher}")
    return result


def _worker(url: str, customers: range, seconds: float, tag: str, ready: Any, go: Any,
            out: Any) -> None:
    """One scaling process: connect, warm up, wait for the start, register for ``seconds``."""
    engine = fixtures.registration_engine(url, "fast")
    try:
        last = customers[-1]
        fixtures.register(engine, last, fixtures.SEATS_PER_CUSTOMER - 1, f"{tag}-warm@example.jp")
        ready.release()
        go.wait()
        cpu = time.process_time()
        count, elapsed = fixtures.register_for(engine, customers[:-1], seconds, tag)
        out.put((count, elapsed, time.process_time() - cpu, None))
    except BaseException as exc:  # reported (and ready), so the parent does not wait forever
        out.put((0, 0.0, 0.0, f"{type(exc).__name__}: {exc}"))
        ready.release()
    finally:
        engine.store.close()


def _parallel(url: str, processes: int, first: int, per_process: int, seconds: float,
              tag: str) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    ready, go, out = context.Semaphore(0), context.Event(), context.Queue()
    workers = []
    for index in range(processes):
        start = first + index * per_process
        customers = range(start, start + per_process)
        worker = context.Process(target=_worker, args=(
            url, customers, seconds, f"{tag}w{index}", ready, go, out))
        worker.start()
        workers.append(worker)
    for _ in workers:
        ready.acquire(timeout=120)
    before = cpu_snapshot()
    go.set()
    results = [out.get(timeout=seconds + 120) for _ in workers]
    used = cpu_delta(before, cpu_snapshot())
    for worker in workers:
        worker.join(timeout=30)
    errors = [error for _, _, _, error in results if error]
    if errors:
        raise RuntimeError(f"scaling worker failed: {errors}")
    count = sum(r[0] for r in results)
    elapsed = max(r[1] for r in results)
    client = sum(r[2] for r in results)
    run: dict[str, Any] = {"per_s": round(count / elapsed, 1), "count": count,
                           "seconds": round(elapsed, 2), "per_process": [r[0] for r in results]}
    if used and count:
        cores = used["machine_all"] / elapsed  # CPU seconds the machine had per second
        run["cpu"] = {
            # Where the machine's CPU went while the processes ran, in ms per registration.
            "client_ms_per_reg": round(client / count * 1000, 2),
            "postgres_ms_per_reg": round(used["postgres"] / count * 1000, 2),
            "other_ms_per_reg": round(max(0.0, used["machine_busy"] - client - used["postgres"])
                                      / count * 1000, 2),
            "machine_busy_pct": round(used["machine_busy"] / used["machine_all"] * 100, 1),
            "cores": round(cores, 2),
        }
    return run


def _merged(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """The passes of one process count together: rate over all, CPU weighted by count."""
    count = sum(p["count"] for p in passes)
    seconds = sum(p["seconds"] for p in passes)
    merged: dict[str, Any] = {"per_s": round(count / seconds, 1) if seconds else 0.0,
                              "count": count, "seconds": round(seconds, 2),
                              "passes_per_s": [p["per_s"] for p in passes]}
    with_cpu = [p for p in passes if "cpu" in p and p["count"]]
    if with_cpu and count:
        keys = with_cpu[0]["cpu"].keys()
        weight = sum(p["count"] for p in with_cpu)
        merged["cpu"] = {key: round(sum(p["cpu"][key] * p["count"] for p in with_cpu) / weight, 2)
                         for key in keys}
    return merged


def _ceiling(one: dict[str, float] | None, many: dict[str, float] | None,
             processes: int) -> float | None:
    """What ``processes`` could show over one on this machine with nothing else running: one
    process runs its steps one after the other (its CPU and the server's never overlap), many
    at best keep every core busy, each registration costing the CPU measured with many."""
    if not one or not many:
        return None
    cost_one = one["client_ms_per_reg"] + one["postgres_ms_per_reg"]
    cost_many = many["client_ms_per_reg"] + many["postgres_ms_per_reg"]
    if cost_many <= 0:
        return None
    return round(min(processes, (os.cpu_count() or 1) * cost_one / cost_many), 2)


def scaling(cfg: Any) -> dict[str, Any]:
    reason = fixtures.postgres_unavailable()
    if reason is not None:
        return {"skipped": reason}
    seconds = cfg.seconds * 5
    per_process = PER_PROCESS
    passes: dict[str, list[dict[str, Any]]] = {"1": [], "2": [], "4": []}
    load = load_average()
    with fixtures.postgres_schema("scaling") as url:
        engine = fixtures.registration_engine(url, "fast")
        try:
            fixtures.add_customers(engine, range(per_process * (1 + 2 + 4) * PASSES))
            first = 0
            for number in range(PASSES):
                for processes in (1, 2, 4):
                    passes[str(processes)].append(_parallel(
                        url, processes, first, per_process, seconds, f"x{number}p{processes}"))
                    first += processes * per_process
            checked = fixtures.invariants(engine)
        finally:
            engine.store.close()
    runs = {key: _merged(found) for key, found in passes.items()}
    registered = sum(run["count"] for run in runs.values()) + 7 * PASSES  # + warm-ups
    one, four = runs["1"]["per_s"], runs["4"]["per_s"]
    ceiling = _ceiling(runs["1"].get("cpu"), runs["4"].get("cpu"), 4)
    result: dict[str, Any] = {
        "hasher": "fast",
        "load_average_at_start": load,
        "processes": runs,
        "per_s_1": one, "per_s_2": runs["2"]["per_s"], "per_s_4": four,
        "ratio": round(four / one, 3) if one else None,
        "ratio_ceiling": ceiling,
        "invariants": {"ok": checked["ok"] and checked["logins"] == registered,
                       "problems": checked["problems"], "logins": checked["logins"],
                       "registrations": registered},
        "target": ">= 1.6",
    }
    result["met"] = result["ratio"] is not None and result["ratio"] >= 1.6
    return result

