"""Three processes on one database (issue 18, part 3): does one process's load starve another?

- **registrar**: whole registrations with the real hasher (argon2id, the defaults), in a loop;
- **guesser**: sign-ins with a wrong password for addresses that have no login — no login
  needed, the cheapest attack there is; each costs the same argon2 verification as a real one;
- **reader**: ``engine.get`` of one waiting flow, in a loop: what a page refresh or a front end
  polling does. Its latency is what the benchmark reports, with every process's worst.

Before issue 18 every call was a ``BEGIN IMMEDIATE`` transaction with argon2 inside it, so on
SQLite the reader waited for the writers' hashing: its worst ``get`` took seconds and callers
saw ``database is locked``. Now hashes are made between transactions and reads that find
nothing due use a plain ``BEGIN``. The floor is the reader alone on the same file.

Each process counts the errors that reached it (none may); the run is repeated on PostgreSQL
when it is there.
"""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import regflow
from benchmarks import fixtures
from benchmarks.harness import percentile

ROLES = ("registrar", "guesser", "reader")
TARGET_WORST_GET_MS = 250.0  # the reader's worst get beside two hashing writers


def _engine(url: str) -> regflow.Engine:
    return fixtures.registration_engine(url, "argon2")


def _role(role: str, url: str, seconds: float, ready: Any, go: Any, out: Any) -> None:
    """One process: prepare, wait for the start, run ``role`` for ``seconds``; report samples."""
    samples: list[float] = []
    errors: list[str] = []
    engine = _engine(url)
    try:
        if role == "reader":
            snap = engine.start("sign_in", {"account": fixtures.seats_of(0)[0]})
        elif role == "registrar":
            number = iter(range(1, 400))
        ready.release()
        go.wait()
        end = time.perf_counter() + seconds
        count = 0
        while time.perf_counter() < end:
            began = time.perf_counter()
            try:
                if role == "reader":
                    engine.get(snap)
                elif role == "guesser":
                    guess = engine.start("sign_in", {"account": fixtures.seats_of(0)[1]})
                    engine.send(guess, "submit", {"email": f"nobody{count}@example.jp",
                                                  "password": "Wrong-pass-99"})
                else:
                    customer = next(number)
                    fixtures.register(engine, customer, 0, f"c{customer}@example.jp")
            except Exception as exc:  # counted: none may reach a caller
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
            samples.append((time.perf_counter() - began) * 1000)
            count += 1
        out.put((role, samples, errors, None))
    except BaseException as exc:  # reported (and ready), so the parent does not wait forever
        out.put((role, samples, errors, f"{type(exc).__name__}: {exc}"))
        ready.release()
    finally:
        engine.store.close()


def _summary(samples: list[float], errors: list[str]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {"calls": len(samples), "errors": len(errors), "first_errors": errors[:3],
            "p50_ms": round(percentile(ordered, 0.5), 2) if ordered else None,
            "p99_ms": round(percentile(ordered, 0.99), 2) if ordered else None,
            "worst_ms": round(ordered[-1], 2) if ordered else None}


def _run(url: str, roles: tuple[str, ...], seconds: float) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    ready, go, out = context.Semaphore(0), context.Event(), context.Queue()
    workers = [context.Process(target=_role, args=(role, url, seconds, ready, go, out))
               for role in roles]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.acquire(timeout=120)
    go.set()
    found = [out.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    failures = [f"{role}: {failure}" for role, _, _, failure in found if failure]
    if failures:
        raise RuntimeError(f"contention process failed: {failures}")
    return {role: _summary(samples, errors) for role, samples, errors, _ in found}


def _database(url: str, seconds: float) -> dict[str, Any]:
    engine = _engine(url)
    try:
        fixtures.add_customers(engine, range(400))
    finally:
        engine.store.close()
    alone = _run(url, ("reader",), seconds)["reader"]
    loaded = _run(url, ROLES, seconds)
    reader = loaded["reader"]
    errors = sum(part["errors"] for part in loaded.values())
    return {
        "reader_alone": alone,
        "three_processes": loaded,
        "worst_get_ms": reader["worst_ms"],
        "worst_get_alone_ms": alone["worst_ms"],
        "errors_reaching_callers": errors,
        "met": errors == 0 and reader["worst_ms"] is not None
        and reader["worst_ms"] <= TARGET_WORST_GET_MS,
    }


def contention(cfg: Any) -> dict[str, Any]:
    """The reader's latency, alone and beside two hashing writers, on SQLite and PostgreSQL."""
    seconds = cfg.seconds * 5
    result: dict[str, Any] = {"hasher": "argon2 (the defaults)",
                              "target": f"reader's worst get <= {TARGET_WORST_GET_MS:g} ms, "
                                        "no error reaching a caller"}
    with fixtures.scratch_dir() as folder:
        result["sqlite"] = _database(fixtures.sqlite_url(folder, "contention.db"), seconds)
    reason = fixtures.postgres_unavailable()
    if reason is not None:
        result["postgresql"] = {"skipped": reason}
    else:
        with fixtures.postgres_schema("contention") as url:
            result["postgresql"] = _database(url, seconds)
    result["met"] = result["sqlite"]["met"] and result["postgresql"].get("met", True)
    return result
