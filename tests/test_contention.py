"""Issue 18, part 3: no slow work inside a write transaction, reads that write nothing, and one
SQLite file shared by processes that hash passwords without starving a reader.

Before, every call was a ``BEGIN IMMEDIATE`` transaction with argon2 inside it: three processes on
one file gave a reader's ``get`` seconds of waiting (benchmarks/contention.py measures it; these
tests check the mechanisms and, with real processes, that the reader is not starved).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from flows import PASSWORD, EngineFactory, details, register, to_details
from freezegun.api import FrozenDateTimeFactory

import regflow
from regflow.ground.ports import Transaction


class Watched:
    """A store whose transactions are watched: which kind, and whether one is open."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.open = 0
        self.kinds: list[bool] = []  # write flag of each transaction, in order

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Transaction]:
        self.kinds.append(write)
        self.open += 1
        try:
            with self.store.transaction(write=write) as tx:
                yield tx
        finally:
            self.open -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


class Spy:
    """A hasher that says whether a store transaction was open at each call."""

    def __init__(self, real: Any, watched: Watched) -> None:
        self.real, self.watched = real, watched
        self.calls: list[tuple[str, bool]] = []  # (hash | verify, inside a transaction)

    def hash(self, password: str) -> str:
        self.calls.append(("hash", self.watched.open > 0))
        return str(self.real.hash(password))

    def verify(self, hashed: str, password: str) -> bool:
        self.calls.append(("verify", self.watched.open > 0))
        return bool(self.real.verify(hashed, password))


def _watched(make_engine: EngineFactory, **options: Any) -> tuple[regflow.Engine, Watched, Spy]:
    engine = make_engine(**options)
    watched = Watched(engine.store)
    engine.store = watched  # type: ignore[assignment]  # the engine's own transactions only
    spy = Spy(engine.services.hasher.real, watched)  # type: ignore[attr-defined]
    engine.services.hasher.real = spy  # type: ignore[attr-defined]
    return engine, watched, spy


def test_no_password_is_hashed_inside_a_transaction(make_engine: EngineFactory,
                                                    frozen: FrozenDateTimeFactory) -> None:
    """Registration (hash), sign-in right, wrong and for an unknown address (verify, the dummy
    verify), a reset (hash): every hash and verification happens with no transaction open, and
    each once per step (the step is run again, not the hash)."""
    engine, _, spy = _watched(make_engine)
    assert register(engine, "abcd8-01", "taro@example.jp").state == "provisioning"
    assert spy.calls == [("hash", False)]
    frozen.tick(timedelta(minutes=10))
    for email, password in (("taro@example.jp", PASSWORD), ("taro@example.jp", "Wrong-pass-1"),
                            ("nobody@example.jp", PASSWORD)):
        spy.calls.clear()
        snap = engine.start("sign_in", {"account": "abcd8-01"})
        engine.send(snap, "submit", {"email": email, "password": password})
        verifies = [c for c in spy.calls if c[0] == "verify"]
        assert verifies == [("verify", False)], (email, spy.calls)
        assert all(inside is False for _, inside in spy.calls)


def test_a_kept_password_is_hashed_outside_too(make_engine: EngineFactory) -> None:
    """FAQ 12's kept hash (made when the retries are spent) is made outside the transaction."""
    class Down:
        def provision(self, login: Any, *, key: str) -> None:
            raise regflow.TransientError("directory unavailable")

    engine, _, spy = _watched(make_engine, provisioner=Down())
    snap = to_details(engine, "taro@example.jp")
    spy.calls.clear()
    snap = engine.send(snap, "submit", details())
    assert [m.id for m in snap.screen.messages] == ["transient_error"]
    assert spy.calls
    assert all(inside is False for _, inside in spy.calls)


def test_a_read_of_an_idle_flow_writes_nothing(make_engine: EngineFactory,
                                               frozen: FrozenDateTimeFactory) -> None:
    """``get`` of a flow with nothing due is one read transaction; with a timer due, the read
    finds it and a write transaction applies it."""
    engine, watched, _ = _watched(make_engine)
    snap = register(engine, "abcd8-01", "taro@example.jp")
    watched.kinds.clear()
    assert engine.get(snap).state == "provisioning"
    assert watched.kinds == [False]
    engine.history(snap.id)
    assert watched.kinds == [False, False]
    watched.kinds.clear()
    frozen.tick(timedelta(minutes=10))
    assert engine.get(snap).state == "ready"
    assert watched.kinds == [False, True]


# ---- real processes on one SQLite file ------------------------------------------------------------


def _guesser(url: str, seconds: float, ready: Any, go: Any, out: Any) -> None:
    """Wrong passwords for addresses with no login, with the real hasher, for ``seconds``."""
    engine = regflow.Engine.from_url(url, mail="memory", hasher="argon2")
    errors: list[str] = []
    count = 0
    try:
        ready.release()
        go.wait()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                snap = engine.start("sign_in", {"account": "abcd8-02"})
                engine.send(snap, "submit", {"email": f"nobody{count}@example.jp",
                                             "password": "Wrong-pass-99"})
            except Exception as exc:  # reported: none may reach a caller
                errors.append(f"{type(exc).__name__}: {exc}")
            count += 1
    finally:
        engine.store.close()
        out.put((count, errors))


def test_a_reader_is_not_starved_by_hashing_writers(tmp_path: Path) -> None:
    """Two processes guess passwords on one SQLite file (argon2 each time) while this one reads a
    flow: the reads go on — before, one read waited out the whole run — and no caller sees an
    error (a busy database is retried, never ``database is locked``)."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = regflow.Engine.from_url(url, mail="memory", hasher="argon2")
    engine.contracts.add(customer_id="281234", phone="03-1234-5678", licenses=3,
                         accounts=["abcd8-01", "abcd8-02", "abcd8-03"])
    snap = engine.start("sign_in", {"account": "abcd8-01"})
    context = multiprocessing.get_context("spawn")
    ready, go, out = context.Semaphore(0), context.Event(), context.Queue()
    seconds = 3.0
    guessers = [context.Process(target=_guesser, args=(url, seconds, ready, go, out))
                for _ in range(2)]
    for process in guessers:
        process.start()
    for _ in guessers:
        assert ready.acquire(timeout=60)
    go.set()
    reads = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert engine.get(snap).state == "credentials"
        reads += 1
    results = [out.get(timeout=60) for _ in guessers]
    for process in guessers:
        process.join(timeout=30)
    engine.store.close()
    assert [errors for _, errors in results] == [[], []]
    assert all(count > 0 for count, _ in results)  # the guessers worked meanwhile
    assert reads > 100  # not starved (before: 1 read in the whole run); timing is in the benchmark

