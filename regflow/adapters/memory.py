"""MemoryStore: the Store port in process memory, for tests, demos and single-process runs.

A transaction holds the store's ``threading.RLock`` from start to end, so writers are serialised.
Every change appends an undo closure to a log; an exception inside the transaction runs the log
backwards (cost proportional to the changes, not to the store). Records are copied in and out,
so a caller mutating a record it holds changes nothing until it saves it. The table views live
in ``memory_tables``; this module keeps the data, the indexes and the undo log.
"""

from __future__ import annotations

import functools
import heapq
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar

from regflow import ports
from regflow.adapters import memory_tables as tables
from regflow.exceptions import StoreError
from regflow.records import (
    Code,
    Customer,
    Cutoffs,
    FlowRecord,
    IdempotencyRecord,
    JournalEntry,
    LimitHit,
    Login,
    OutboxMail,
    Session,
)
from regflow.reporting import JournalFigures, customer_of, figures_of

_K = TypeVar("_K")
_V = TypeVar("_V")


class _Transaction:
    """The table views handed out by ``MemoryStore.transaction()``."""

    def __init__(self, store: MemoryStore) -> None:
        self.flows: ports.FlowTable = tables.Flows(store)
        self.contracts: ports.ContractTable = tables.Contracts(store)
        self.logins: ports.LoginTable = tables.Logins(store)
        self.sessions: ports.SessionTable = tables.Sessions(store)
        self.codes: ports.CodeTable = tables.Codes(store)
        self.outbox: ports.OutboxTable = tables.Outbox(store)
        self.limits: ports.LimitTable = tables.Limits(store)


class MemoryStore:
    """The Store port in memory; tables are usable only inside ``transaction()``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._owner: int | None = None  # thread running the transaction
        self._depth = 0
        self._undo: list[Callable[[], object]] = []
        self._flows: dict[str, FlowRecord] = {}
        self._due: dict[str, datetime] = {}  # flow id -> next_due_at, active flows only
        # A heap of (next_due_at, flow id); entries whose instant no longer matches ``_due`` are
        # stale and skipped (and dropped when they surface), so a save costs O(log n).
        self._due_heap: list[tuple[datetime, str]] = []
        self._journal: dict[str, list[JournalEntry]] = {}
        self._idempotency: dict[tuple[str, str], IdempotencyRecord] = {}
        self._customers: dict[str, Customer] = {}
        self._seat_owner: dict[str, str] = {}  # account -> customer id
        self._logins: dict[str, Login] = {}
        self._login_by_email: dict[str, str] = {}
        self._login_by_account: dict[str, str] = {}
        self._logins_of: dict[str, dict[str, None]] = {}  # customer id -> login ids
        self._admin_of: dict[str, str] = {}  # customer id -> admin login id
        self._sessions: dict[str, Session] = {}
        self._session_by_digest: dict[str, str] = {}
        self._sessions_of: dict[str, dict[str, None]] = {}  # login id -> session ids
        self._codes: dict[str, Code] = {}
        self._codes_of: dict[tuple[str, str], list[str]] = {}  # (flow, purpose) -> ids, issued
        self._codes_for: dict[str, dict[str, None]] = {}  # email key -> code ids
        self._outbox: dict[str, OutboxMail] = {}
        self._queued: dict[str, None] = {}  # ids of queued and sending mail
        self._hits: dict[tuple[str, str], dict[str, list[LimitHit]]] = {}  # (kind, subject) ->
        #   client -> hits in the order added
        self._tx = _Transaction(self)
        self._secret: bytes | None = None

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[ports.Transaction]:
        """Hold the lock for the whole block; undo the block's changes when it raises. Readers
        (``write=False``) take the same lock: it is held in-process for microseconds."""
        del write
        with self._lock:
            mark = len(self._undo)
            self._depth += 1
            self._owner = threading.get_ident()
            try:
                yield self._tx
            except BaseException:
                while len(self._undo) > mark:
                    self._undo.pop()()
                raise
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                    self._undo.clear()

    def shared_secret(self) -> bytes:
        """Random bytes made once for this store (it lives in one process anyway)."""
        if self._secret is None:
            self._secret = secrets.token_bytes(32)
        return self._secret

    def due_flows(self, now: datetime, limit: int) -> list[str]:
        """Ids of active flows due at ``now``, earliest first, popped off the heap (stale
        entries are dropped on the way) and pushed back."""
        with self._lock:
            heap, live = self._due_heap, self._due
            taken: list[tuple[datetime, str]] = []
            while heap and len(taken) < limit and heap[0][0] <= now:
                at, flow_id = heapq.heappop(heap)
                if live.get(flow_id) == at and (at, flow_id) not in taken:
                    taken.append((at, flow_id))
            for entry in taken:
                heapq.heappush(heap, entry)
            return [flow_id for _, flow_id in taken]

    def iter_flow_ids(self) -> Iterator[str]:
        """Every flow id (a snapshot taken when iteration starts)."""
        with self._lock:
            ids = list(self._flows)
        yield from ids

    def purge(self, cutoffs: Cutoffs) -> dict[str, int]:
        """Delete what retention no longer keeps (a walk over the tables: this store is small)."""
        with self.transaction():
            return tables.purge(self, cutoffs)

    def journal_figures(self, flow: str, *, since: datetime | None, until: datetime | None,
                        customer: str | None) -> JournalFigures:
        """The journal aggregates of ``regflow.reporting`` (a walk over the journal: this store
        is small), with the same rules as the SQL of the PeeweeStore."""
        with self._lock:
            rows = [
                (entry.flow_id, entry.from_state, entry.to_state, entry.event, entry.outcome,
                 entry.at)
                for flow_id, entries in self._journal.items()
                if (record := self._flows.get(flow_id)) is not None and record.flow == flow
                and (customer is None or customer_of(record.data) == customer)
                for entry in entries
                if (since is None or entry.at >= since) and (until is None or entry.at < until)
            ]
        return figures_of(rows)

    def close(self) -> None:
        """Nothing to release."""

    # Internals used by the table views, always under the lock.

    def _check(self) -> MemoryStore:
        """The store, once it is clear the calling thread runs a transaction on it."""
        if self._owner != threading.get_ident():
            raise StoreError("store tables are usable only inside store.transaction()")
        return self

    def _put(self, table: dict[_K, _V], key: _K, value: _V) -> None:
        if key in table:
            self._undo.append(functools.partial(table.__setitem__, key, table[key]))
        else:
            self._undo.append(functools.partial(table.pop, key))
        table[key] = value

    def _drop(self, table: dict[_K, _V], key: _K) -> None:
        if key in table:
            self._undo.append(functools.partial(table.__setitem__, key, table.pop(key)))

    def _members(self, table: dict[_K, dict[str, _V]], key: _K) -> dict[str, _V]:
        """The id set (an insertion-ordered dict) of ``key``, created (undoably) if missing."""
        members = table.get(key)
        if members is None:
            members = {}
            self._put(table, key, members)
        return members

    def _append(self, table: dict[_K, list[_V]], key: _K, item: _V) -> None:
        items = table.get(key)
        if items is None:
            self._put(table, key, [item])
        else:
            items.append(item)
            self._undo.append(items.pop)

    def _set_due(self, flow_id: str, due: datetime | None) -> None:
        old = self._due.get(flow_id)
        if old != due:
            self._reindex(flow_id, due)
            self._undo.append(functools.partial(self._reindex, flow_id, old))

    def _reindex(self, flow_id: str, due: datetime | None) -> None:
        if due is None:
            self._due.pop(flow_id, None)
        else:
            self._due[flow_id] = due
            heapq.heappush(self._due_heap, (due, flow_id))
        if len(self._due_heap) > 2 * len(self._due) + 64:  # compact the stale entries
            self._due_heap = [(at, i) for i, at in self._due.items()]
            heapq.heapify(self._due_heap)


_PORT_CHECK: type[ports.Store] = MemoryStore  # mypy proves MemoryStore fits the port
