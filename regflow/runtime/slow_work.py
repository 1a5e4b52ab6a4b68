"""Password hashing outside the store's transactions.

A step that needs a password hash (registration, a reset) or a verification (sign-in, and the
same work for an unknown address) would otherwise hash inside its transaction: argon2 takes tens
of milliseconds, and on SQLite a write transaction (``BEGIN IMMEDIATE``) keeps every other
writer waiting meanwhile — three processes of sign-ins starved each other for seconds.

So the engine's hasher (``SlowWorkHasher``) never hashes inside an engine call: when a guard or
action asks for a hash or a verification it has not got, it raises ``SlowWork``; the call's
transaction rolls back, the engine does the work outside any transaction, and runs the step
again, which now finds the answer (``outside``). Guards are pure functions of the stored state
and the input, so the second run asks the same questions; if the state changed meanwhile (another
password), it asks a new one and the loop goes round once more (at most ``MAX_ROUNDS``).

Outside an engine call (a test, a world operation, a migration script) the hasher hashes at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import attrs

from regflow.ground.exceptions import TransientError
from regflow.ground.ports import PasswordHasher

T = TypeVar("T")
MAX_ROUNDS = 8  # each round answers what the last run asked; the state would have to change
#                 under the step eight times in a row to exhaust them


class SlowWork(Exception):
    """A step asked for a hash it has not got: leave the transaction, do it, run the step again."""

    def __init__(self, memo: Memo, request: tuple[str, ...]) -> None:
        super().__init__(request[0])
        self.memo, self.request = memo, request

    def perform(self) -> None:
        """Do the work asked for (outside any transaction) and remember its answer."""
        self.memo.perform(self.request)


@attrs.define
class Memo:
    """What one engine call has computed, by request."""

    hasher: PasswordHasher
    hashes: dict[str, str] = attrs.field(factory=dict)  # password -> its hash
    verified: dict[tuple[str, str], bool] = attrs.field(factory=dict)  # (hash, password) -> match

    def perform(self, request: tuple[str, ...]) -> None:
        """Compute a request: ("hash", password) or ("verify", hash, password)."""
        if request[0] == "hash":
            self.hashes[request[1]] = self.hasher.hash(request[1])
        else:
            self.verified[(request[1], request[2])] = self.hasher.verify(request[1], request[2])


_memo: ContextVar[Memo | None] = ContextVar("regflow_slow_work", default=None)


@attrs.define
class SlowWorkHasher:
    """The PasswordHasher guards and actions see: inside an engine call, answers only from the
    call's memo (raising ``SlowWork`` for the rest); outside one, the real hasher."""

    real: PasswordHasher

    def hash(self, password: str) -> str:
        """The memo's hash of ``password`` (one per password per call), or SlowWork."""
        memo = _memo.get()
        if memo is None:
            return self.real.hash(password)
        found = memo.hashes.get(password)
        if found is None:
            raise SlowWork(memo, ("hash", password))
        return found

    def verify(self, hashed: str, password: str) -> bool:
        """The memo's answer for this hash and password, or SlowWork."""
        memo = _memo.get()
        if memo is None:
            return self.real.verify(hashed, password)
        found = memo.verified.get((hashed, password))
        if found is None:
            raise SlowWork(memo, ("verify", hashed, password))
        return found


@contextmanager
def call(hasher: PasswordHasher) -> Iterator[None]:
    """One engine call: its memo, shared by the call's retries (nested calls keep the outer)."""
    if _memo.get() is not None:
        yield
        return
    token = _memo.set(Memo(hasher.real if isinstance(hasher, SlowWorkHasher) else hasher))
    try:
        yield
    finally:
        _memo.reset(token)


def outside(run: Callable[..., T]) -> Callable[..., T]:
    """``run`` again after doing, outside its transaction, the slow work it asked for."""
    def again(*args: Any) -> T:
        for _ in range(MAX_ROUNDS):
            try:
                return run(*args)
            except SlowWork as need:
                need.perform()
        raise TransientError("the stored state kept changing under a step that needs a hash")
    return again
