"""What the benchmarks run on: the two-state flow, engines on each store, contracts with seats,
a registration driver, PostgreSQL schemas, and the I1–I4 check.

Only regflow's public surface is used (``Engine``, ``FlowLibrary``, ``Registry``, the store
ports and ``regflow.bootstrap``), as an embedding application would.

Every engine runs with the default ``Limits`` across flows: no benchmark reaches them (each
registration has an address of its own, and in-process calls name no client), so their cost
— a count per code mail — is measured as a service would pay it.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import regflow
from regflow.bootstrap import make_hasher, open_store
from regflow.definitions.library import FlowLibrary
from regflow.ground.records import FlowRecord
from regflow.runtime.context import new_id

POSTGRES_SERVER = os.environ.get("REGFLOW_BENCH_POSTGRES",
                                 "postgresql://postgres@127.0.0.1:5432/test")

# ---- the two-state flow with one guard -------------------------------------------------------

registry = regflow.Registry()


@registry.guard
def ok(ctx: Any) -> bool:
    """The one guard: always holds."""
    return True


BENCH_FLOW: dict[str, Any] = {
    "name": "bench", "version": 1, "initial": "a",
    "states": {
        "a": {"screen": {"actions": ["submit"]},
              "on": {"submit": [{"guard": "ok", "target": "b"}, {"message": "no"}]}},
        "b": {"screen": {"actions": ["submit"]},
              "on": {"submit": [{"guard": "ok", "target": "a"}, {"message": "no"}]}},
    },
}
# The same flow with a timer in ``a``, for the sweep: a due ``tick`` moves a flow to ``b``.
TIMED_FLOW: dict[str, Any] = {
    "name": "bench_timed", "version": 1, "initial": "a",
    "states": {
        "a": {"screen": {"actions": ["submit"]}, "after": [{"after": "10m", "event": "tick"}],
              "on": {"submit": "b", "tick": "b"}},
        "b": {"screen": {"actions": ["submit"]}, "on": {"submit": "a"}},
    },
}


def bench_library() -> FlowLibrary:
    library = FlowLibrary(registry)
    library.add(BENCH_FLOW)
    library.add(TIMED_FLOW)
    return library


def bench_engine(url: str) -> regflow.Engine:
    """An engine running the bench flows on the store at ``url`` (system clock, memory mail)."""
    from regflow.adapters.mailers import MemoryMailer

    return regflow.Engine(open_store(url), MemoryMailer(), hasher=make_hasher("fast"),
                          flows=bench_library())


# The flow token of every bulk-inserted flow (``Engine.start`` gives each its own; one for all
# costs the same to check): sends to them pass ``token=BULK_TOKEN``.
BULK_TOKEN = secrets.token_urlsafe(32)
_BULK_TOKEN_DIGEST = hashlib.sha256(BULK_TOKEN.encode()).hexdigest()  # what the store keeps


def flow_record(flow: str, state: str, now: datetime, *, expires_in: float = 3600,
                timers: list[tuple[str, datetime]] | None = None) -> FlowRecord:
    """A stored flow as ``Engine.start`` would leave it, for bulk setup (token ``BULK_TOKEN``)."""
    return FlowRecord(
        id=new_id(), flow=flow, version=1, state=state, status="active",
        data={"_lang": "ja", "_messages": []}, timers=timers or [],
        expires_at=now + timedelta(seconds=expires_in), created_at=now, updated_at=now,
        token_digest=_BULK_TOKEN_DIGEST,
    )


def insert_flows(store: Any, records: list[FlowRecord], chunk: int = 2000) -> None:
    """Insert records through the store port, ``chunk`` per transaction."""
    for i in range(0, len(records), chunk):
        with store.transaction() as tx:
            for record in records[i:i + chunk]:
                tx.flows.insert(record)


# ---- stores ------------------------------------------------------------------------------------


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A temporary folder for SQLite files, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="regflow-bench-") as folder:
        yield Path(folder)


def sqlite_url(folder: Path, name: str) -> str:
    return f"sqlite:///{folder / name}"


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None."""
    try:
        import psycopg
    except ImportError:
        return "psycopg 3 is not installed"
    try:
        with psycopg.connect(POSTGRES_SERVER, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {POSTGRES_SERVER} unreachable: {str(exc).strip().splitlines()[0]}"
    return None


def postgres_version() -> str | None:
    if postgres_unavailable() is not None:
        return None
    import psycopg

    with psycopg.connect(POSTGRES_SERVER, connect_timeout=3) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else None


@contextmanager
def postgres_schema(tag: str) -> Iterator[str]:
    """A store URL on a fresh schema ``bench_<tag>_<random>``, dropped afterwards."""
    import psycopg

    schema = f"bench_{tag}_{secrets.token_hex(4)}"
    try:
        yield f"{POSTGRES_SERVER}?schema={schema}"
    finally:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def postgres_connection() -> Iterator[Any]:
    """An autocommit connection to the benchmark's PostgreSQL server."""
    import psycopg

    with psycopg.connect(POSTGRES_SERVER, autocommit=True, connect_timeout=3) as conn:
        yield conn


def schema_of(url: str) -> str:
    """The ``schema`` of a store URL made by ``postgres_schema``."""
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(url).query)["schema"][0]


# ---- registrations -----------------------------------------------------------------------------

PASSWORD = "Kx7#mPq2wZ"
PHONE = "03-1234-5678"
SEATS_PER_CUSTOMER = 10
_CODE = re.compile(r"(?<![0-9])[0-9]{8}(?![0-9])")


def customer_id(number: int) -> str:
    """The ``number``-th customer id (6 digits starting 28: 10,000 of them)."""
    if not 0 <= number < 10_000:
        raise ValueError("customer ids run out at 10,000")
    return f"28{number:04d}"


def seats_of(number: int) -> list[str]:
    return [f"b{number:04d}-{seat:02d}" for seat in range(SEATS_PER_CUSTOMER)]


def add_customers(engine: regflow.Engine, numbers: range) -> None:
    """Contracts for customers ``numbers``, each with 10 seats and 10 licenses."""
    rows = [(customer_id(n), PHONE, SEATS_PER_CUSTOMER, seats_of(n)) for n in numbers]
    contracts: Any = engine.contracts  # the StoreContracts of Engine.from_url
    for i in range(0, len(rows), 200):
        contracts.add_many(rows[i:i + 200])


def registration_engine(url: str, hasher: str) -> regflow.Engine:
    """An engine with the built-in flows, as an application would build it."""
    return regflow.Engine.from_url(url, mail="memory", hasher=hasher)


def code_in(message: Any) -> str:
    part = message.get_body(("plain",))
    found = _CODE.findall(str(part.get_content()))
    if len(found) != 1:
        raise AssertionError(f"expected one code in the mail, found {found}")
    return str(found[0])


def register(engine: regflow.Engine, number: int, seat: int, email: str) -> None:
    """One whole registration on seat ``seat`` of customer ``number``: start, e-mail, code,
    details. It is complete once it reaches ``provisioning`` (the login exists; it becomes
    ready by itself 10 minutes later)."""
    mailer: Any = engine.mailer
    snap = engine.start("registration", {"account": seats_of(number)[seat]})
    snap = engine.send(snap, "submit", {"email": email})
    if snap.state != "enter_code":
        raise AssertionError(f"after the e-mail: {snap.state} {snap.screen.messages}")
    code = code_in(mailer.messages[-1])
    mailer.messages.clear()
    snap = engine.send(snap, "submit", {"code": code})
    if snap.state != "details":
        raise AssertionError(f"after the code: {snap.state} {snap.screen.messages}")
    snap = engine.send(snap, "submit", {
        "password": PASSWORD, "password_confirm": PASSWORD, "customer_id": customer_id(number),
        "display_name": "山田 太郎", "tel": PHONE})
    if snap.state != "provisioning":
        raise AssertionError(f"after the details: {snap.state} {snap.screen.messages}")


def register_for(engine: regflow.Engine, customers: range, seconds: float,
                 tag: str) -> tuple[int, float]:
    """Register on the seats of ``customers`` in turn for about ``seconds``: (count, elapsed).

    Stops early (and says so by the count) when the seats run out.
    """
    start = time.perf_counter()
    count = 0
    for number in customers:
        for seat in range(SEATS_PER_CUSTOMER):
            register(engine, number, seat, f"{tag}-{number}-{seat}@example.jp")
            count += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return count, elapsed
    return count, time.perf_counter() - start


def invariants(engine: regflow.Engine) -> dict[str, Any]:
    """I1–I4 over the whole store: problems found (none when good) and the login count."""
    from regflow.definitions.validation import email_key

    with engine.store.transaction() as tx:
        customers = tx.contracts.customers()
        logins = {c.customer_id: tx.logins.of_customer(c.customer_id) for c in customers}
    everyone = [login for mine in logins.values() for login in mine]
    problems: list[str] = []
    keys = [login.email_key for login in everyone]
    if len(keys) != len(set(keys)):
        problems.append("I1: an e-mail key is used twice")
    if any(login.email_key != email_key(login.email) for login in everyone):
        problems.append("I1: an e-mail key is not its address's")
    seats = [login.account for login in everyone if login.account is not None]
    if len(seats) != len(set(seats)):
        problems.append("I2: a seat is linked twice")
    for customer in customers:
        mine = logins[customer.customer_id]
        if len(mine) > customer.licenses:
            problems.append(f"I3: {customer.customer_id} has {len(mine)} logins")
        if mine and Counter(login.role for login in mine)["admin"] != 1:
            problems.append(f"I4: {customer.customer_id} has not exactly one admin")
    return {"logins": len(everyone), "problems": problems, "ok": not problems}


def utcnow() -> datetime:
    return datetime.now(UTC)
