"""``http`` and ``scaling``: whole registrations over HTTP against ``regflow serve`` on PostgreSQL.

``http``: one ``regflow serve`` process (and one ``regflow worker``), 16 concurrent clients,
with the fast test hasher and with argon2 (the defaults), each run bounded in time and in seats;
beside it the HTTP floor (``benchmarks.http_floor``). Afterwards I1–I4 over the whole store, and
the logins must be exactly the registrations completed.

``scaling``: the same load (fast hasher) against 1, 2 and 4 ``regflow serve`` processes on one
database (the clients spread over them), with the CPU the machine spent per registration and
what its cores allow at that cost (the CPU ceiling), measured in the same run.
"""

from __future__ import annotations

from typing import Any

from benchmarks import fixtures
from benchmarks.harness import load_average
from benchmarks.http_load import CLIENTS, SERVER_THREADS, floor_run, regflow_run

SEATS_PER_RUN = 1500  # 150 customers: more than a run can use in its time box


def _checked(engine: Any, url: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """I1–I4, the logins exactly the registrations made, and every registration's start
    counted for a client of its own: the address its ``X-Forwarded-For`` named, as the
    per-client limits must see users behind a proxy (were they counted as the proxy, every
    start and event would share one limit and wait on one lock)."""
    found = fixtures.invariants(engine)
    made = sum(r["registrations"] + r["warm_up_registrations"] for r in runs)
    with fixtures.postgres_connection() as conn:
        row = conn.execute(f'SELECT COUNT(DISTINCT client) FROM "{fixtures.schema_of(url)}".limit_hits '
                           "WHERE kind = 'start'").fetchone()
    clients = int(row[0]) if row else 0
    return {"ok": found["ok"] and found["logins"] == made and clients == made,
            "problems": found["problems"], "logins": found["logins"], "registrations": made,
            "clients_counted": clients}


def _bound(run: dict[str, Any]) -> str:
    """Where the machine's CPU went per registration, largest first (generated wording)."""
    cpu = run.get("cpu_ms_per_registration")
    if not cpu:
        return "unknown (no CPU accounting on this system)"
    parts = {"regflow serve and worker": cpu["servers"], "PostgreSQL": cpu["postgres"],
             "the load clients": cpu["client"], "other processes": cpu["other"]}
    ordered = sorted(parts.items(), key=lambda kv: -kv[1])
    waits = run.get("database_waits") or {}
    return ", ".join(f"{name} {ms:.1f} ms" for name, ms in ordered) + \
        f" of CPU per registration; machine busy {run.get('machine_busy_pct')} %" + \
        (f"; of the servers' database connections, {waits['statements_running']} ran a statement "
         f"and {waits['waiting_on_locks']} waited on a lock at a time, on average"
         if waits.get("samples") else "")


def _scaling_bound(run: dict[str, Any], one: dict[str, Any], servers: int) -> str:
    """What held the most processes back, in generated words: the machine's cores when it was
    busy (and what took them), else the database's locks when connections waited on them."""
    busy = float(run.get("machine_busy_pct") or 0.0)
    cpu = run.get("cpu_ms_per_registration") or {}
    waits = run.get("database_waits") or {}
    parts = [f"with {servers} processes: {_bound(run)}"]
    if busy >= 90:
        parts.append("the cores were the limit")
        if cpu.get("other") and cpu.get("machine") and cpu["other"] >= 0.1 * cpu["machine"]:
            parts.append(f"other processes of the machine took {cpu['other']:.1f} of the "
                         f"{cpu['machine']:.1f} ms per registration")
    elif waits.get("samples") and waits["waiting_on_locks"] >= 0.5 * max(waits["statements_running"], 0.01):
        parts.append("the processes waited on locks in the database: " + ", ".join(
            f"{kind} {n}" for kind, n in waits["lock_waits_by_kind"].items()))
    else:
        parts.append("neither the cores nor the database's locks were the limit")
    if one.get("cpu_ms_per_registration") and cpu.get("servers"):
        parts.append(f"the servers' CPU per registration went from "
                     f"{one['cpu_ms_per_registration']['servers']:.1f} ms with 1 process to "
                     f"{cpu['servers']:.1f} ms")
    return "; ".join(parts)


def _extra(fast: dict[str, Any], argon2: dict[str, Any]) -> float | None:
    a, f = argon2.get("cpu_ms_per_registration"), fast.get("cpu_ms_per_registration")
    return round(a["servers"] - f["servers"], 1) if a and f else None


def http(cfg: Any) -> dict[str, Any]:
    reason = fixtures.postgres_unavailable()
    if reason is not None:
        return {"skipped": reason}
    seconds = cfg.seconds * 10
    runs: dict[str, dict[str, Any]] = {}
    with fixtures.postgres_schema("http") as url:
        engine = fixtures.registration_engine(url, "fast")
        try:
            fixtures.add_customers(engine, range(2 * SEATS_PER_RUN // fixtures.SEATS_PER_CUSTOMER))
            for index, hasher in enumerate(("fast", "argon2")):
                seats = range(index * SEATS_PER_RUN, (index + 1) * SEATS_PER_RUN)
                runs[hasher] = regflow_run(url, servers=1, hasher=hasher, seconds=seconds,
                                           seats=seats, tag=f"h{hasher}",
                                           solo=seconds / 3 if hasher == "fast" else 0.0)
                runs[hasher]["bound"] = _bound(runs[hasher])
            checked = _checked(engine, url, list(runs.values()))
        finally:
            engine.store.close()
    floor = floor_run(seconds / 2, range(99_990))  # steady within seconds: nothing behind it
    fast = runs["fast"]
    return {
        "clients": CLIENTS, "server_threads": SERVER_THREADS,
        "registrations_per_s": fast["registrations_per_s"], "p50_ms": fast["p50_ms"],
        "p95_ms": fast["p95_ms"], "p99_ms": fast["p99_ms"],
        "errors": sum(r["errors"] + r.get("solo", {}).get("errors", 0) for r in runs.values()),
        "fast": fast, "argon2": runs["argon2"], "floor": floor,
        "floor_ratio": round(fast["requests_per_s"] / floor["requests_per_s"], 3)
        if floor["requests_per_s"] else None,
        # What argon2 (the defaults) adds to the servers' CPU per registration over the fast hasher.
        "argon2_extra_server_ms": _extra(fast, runs["argon2"]),
        "invariants": checked,
        "target": "0 errors, I1–I4 hold",
        "met": checked["ok"] and all(r["errors"] + r.get("solo", {}).get("errors", 0) == 0
                                     for r in runs.values()),
    }


def scaling(cfg: Any) -> dict[str, Any]:
    reason = fixtures.postgres_unavailable()
    if reason is not None:
        return {"skipped": reason}
    seconds = cfg.seconds * 8
    load = load_average()
    counts = tuple(getattr(cfg, "scaling_processes", (1, 2, 4)))
    runs: dict[str, dict[str, Any]] = {}
    with fixtures.postgres_schema("scaling") as url:
        engine = fixtures.registration_engine(url, "fast")
        try:
            fixtures.add_customers(engine, range(len(counts) * SEATS_PER_RUN
                                                 // fixtures.SEATS_PER_CUSTOMER))
            for index, servers in enumerate(counts):
                seats = range(index * SEATS_PER_RUN, (index + 1) * SEATS_PER_RUN)
                runs[str(servers)] = regflow_run(url, servers=servers, hasher="fast",
                                                 seconds=seconds, seats=seats, tag=f"x{servers}")
            checked = _checked(engine, url, list(runs.values()))
        finally:
            engine.store.close()
    most = str(counts[-1])
    one, four = runs["1"]["registrations_per_s"], runs[most]["registrations_per_s"]
    ceiling = runs[most].get("cpu_ceiling_per_s")
    errors = sum(r["errors"] for r in runs.values())
    result: dict[str, Any] = {
        "hasher": "fast", "clients": CLIENTS, "load_average_at_start": load,
        "processes": runs,
        **{f"per_s_{n}": runs[str(n)]["registrations_per_s"] for n in counts},
        "ratio_of": f"{most} processes / 1",
        "ratio": round(four / one, 3) if one else None,
        # What the most processes could show over 1 here: the machine's cores at the CPU cost
        # per registration measured with them, over what 1 process did.
        "ratio_ceiling": round(min(float(most), ceiling / one), 2) if ceiling and one else None,
        "cpu_ceiling_per_s": ceiling,
        "errors": errors,
        "invariants": checked,
        "target": ">= 1.6",
        "bound": _scaling_bound(runs[most], runs[str(counts[0])], int(most)),
    }
    result["met"] = result["ratio"] is not None and result["ratio"] >= 1.6 and errors == 0 \
        and checked["ok"]
    return result
