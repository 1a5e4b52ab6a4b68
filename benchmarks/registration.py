"""Complete registrations per second (start, e-mail, code, details → ``provisioning``).

``registration``: one process, on SQLite and on PostgreSQL, with the fast test hasher and with
the argon2id defaults (m=19 MiB, t=2, p=1), in-process (``Engine`` calls, no HTTP; see
``benchmarks.http_bench`` for the same over HTTP and with several processes).
"""

from __future__ import annotations

from typing import Any

from benchmarks import fixtures

# Customers per store: a registration takes one seat of 10 per customer.
POOL = 150


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
