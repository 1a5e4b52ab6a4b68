"""The MemoryStore's data: its tables as dicts, their indexes and the undo log of the running
transaction, with the undoable changes the table views (``memory_tables``) make. Used only
under the store's lock, by the thread that runs the transaction."""

from __future__ import annotations

import functools
import heapq
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from regflow.ground.exceptions import StoreError
from regflow.ground.records import (
    Code,
    Customer,
    FlowRecord,
    IdempotencyRecord,
    JournalEntry,
    LimitHit,
    Login,
    OutboxMail,
    Session,
)

_K = TypeVar("_K")
_V = TypeVar("_V")


class MemoryData:
    """The dicts and indexes of a MemoryStore, and the undoable changes made to them."""

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

    def _check(self) -> MemoryData:
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
