"""The frame of one engine call, around the step it runs.

Its store transaction (journaled steps reach the audit log once it commits; a read that finds
something due runs again in a write transaction), its retries (hashes made between transactions,
see ``slow_work``), the charge of its client against the limits, and the mail it wrote, delivered
after the commit: at once, or later inside ``deferred_mail()``. ``regflow.engine.Engine`` frames
every call with these.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import TypeVar

from regflow.definitions.model import RetryPolicy
from regflow.ground.exceptions import TransientError
from regflow.ground.ports import Clock, PasswordHasher, Store, Transaction
from regflow.mail.relay import MailRelay
from regflow.runtime import audit, limits, slow_work
from regflow.runtime.retrying import retrying

T = TypeVar("T")


class WriteNeeded(Exception):
    """A read found a timer, an expiry or a migration due: the write transaction applies it."""

# Mail written while a ``deferred_mail()`` block runs is delivered when the block's owner says
# (a web request: after its response went out), not inside the call that wrote it.
_deferred: ContextVar[list[str] | None] = ContextVar("regflow_deferred_mail", default=None)


@contextmanager
def deferred_mail() -> Iterator[list[str]]:
    """Inside the block, mail that ``after_commit`` is given is collected in the list yielded,
    not delivered (``Engine.deferred_mail``)."""
    pending: list[str] = []
    mark = _deferred.set(pending)
    try:
        yield pending
    finally:
        _deferred.reset(mark)


def after_commit(relay: MailRelay, mails: list[str]) -> None:
    """Deliver what a committed call wrote, now, or later inside ``deferred_mail()``."""
    pending = _deferred.get()
    if pending is not None:
        pending.extend(mails)
    elif mails:
        relay.deliver(mails)


def client(secret: bytes, tx: Transaction, now: datetime, client: str | None, kind: str,
           rates: tuple[limits.Rate, ...]) -> str:
    """The caller's client as counted (a keyed digest), charged one ``kind`` hit; in-process
    callers (no client) are not limited per client."""
    if client is None:
        return ""
    who = limits.digest(secret, f"client:{client}")
    limits.charge(rates, tx, now, kind, who, who)
    return who


def retry(hasher: PasswordHasher, clock: Clock, rng: random.Random,
          policy: RetryPolicy | Callable[[], RetryPolicy],
          once: Callable[[], tuple[T, list[str]]],
          on_exhausted: Callable[[TransientError], tuple[T, list[str]]] | None = None,
          ) -> tuple[T, list[str]]:
    """Run ``once`` by the retry policy, each slow work it asks for done between its runs."""
    with slow_work.call(hasher):  # hashes are made between transactions
        return retrying(slow_work.outside(once), policy, clock, rng,
                        slow_work.outside(on_exhausted) if on_exhausted is not None else None)


@contextmanager
def transaction(store: Store, *, write: bool = True) -> Iterator[Transaction]:
    """A store transaction whose journaled steps reach the audit log once it commits
    (``write=False``: one that only reads)."""
    with audit.collecting() as steps_done:
        with store.transaction(write=write) as tx:
            yield tx
        audit.emit(steps_done)


def reading(once: Callable[[bool], T], *, read_first: bool = True) -> T:
    """``once(False)``, in a transaction that writes nothing, then ``once(True)`` if it raised
    ``WriteNeeded`` (at once without ``read_first``)."""
    if not read_first:
        return once(True)
    try:
        return once(False)
    except WriteNeeded:
        return once(True)
