"""MemoryStore: the Store port in process memory, for tests, demos and single-process runs.

A transaction holds the store's ``threading.RLock`` from start to end, so writers are serialised.
Every change appends an undo closure to a log; an exception inside the transaction runs the log
backwards (cost proportional to the changes, not to the store). Records are copied in and out,
so a caller mutating a record it holds changes nothing until it saves it. The table views live
in ``memory_tables`` (the flows' in ``memory_flows``), the data, its indexes and the undo log in
``memory_data``; this module keeps the transactions.
"""

from __future__ import annotations

import heapq
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from regflow.adapters import memory_tables as tables
from regflow.adapters.memory_data import MemoryData
from regflow.adapters.memory_flows import Flows
from regflow.adapters.memory_report import figures_of
from regflow.ground import ports
from regflow.ground.records import Cutoffs, JournalFigures


class _Transaction:
    """The table views handed out by ``MemoryStore.transaction()``."""

    def __init__(self, store: MemoryData) -> None:
        self.flows: ports.FlowTable = Flows(store)
        self.contracts: ports.ContractTable = tables.Contracts(store)
        self.logins: ports.LoginTable = tables.Logins(store)
        self.sessions: ports.SessionTable = tables.Sessions(store)
        self.codes: ports.CodeTable = tables.Codes(store)
        self.outbox: ports.OutboxTable = tables.Outbox(store)
        self.limits: ports.LimitTable = tables.Limits(store)


class MemoryStore(MemoryData):
    """The Store port in memory; tables are usable only inside ``transaction()``."""

    def __init__(self) -> None:
        super().__init__()
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
        """The journal aggregates of ``regflow.reports.funnel`` (a walk over the journal: this store
        is small), with the same rules as the SQL of the PeeweeStore."""
        with self._lock:
            rows = [
                (entry.flow_id, entry.from_state, entry.to_state, entry.event, entry.outcome,
                 entry.at)
                for flow_id, entries in self._journal.items()
                if (record := self._flows.get(flow_id)) is not None and record.flow == flow
                and (customer is None or record.customer == customer)
                for entry in entries
                if (since is None or entry.at >= since) and (until is None or entry.at < until)
            ]
        return figures_of(rows)

    def close(self) -> None:
        """Nothing to release."""


_PORT_CHECK: type[ports.Store] = MemoryStore  # mypy proves MemoryStore fits the port
