"""MemoryStore: the Store port in process memory, for tests, demos and single-process runs.

A transaction holds the store's ``threading.RLock`` from start to end, so writers are serialised.
Every change appends an undo closure to a log; an exception inside the transaction runs the log
backwards (cost proportional to the changes, not to the store). Records are copied in and out,
so a caller mutating a record it holds changes nothing until it saves it.
"""

from __future__ import annotations

import bisect
import copy
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar

import attrs

from regflow import ports
from regflow.exceptions import ConstraintViolation, StoreError
from regflow.records import (
    Code,
    Customer,
    FlowRecord,
    IdempotencyRecord,
    JournalEntry,
    Login,
    OutboxMail,
)

_K = TypeVar("_K")
_V = TypeVar("_V")


def _flow_copy(flow: FlowRecord) -> FlowRecord:
    """A copy sharing nothing mutable with ``flow``."""
    return attrs.evolve(flow, data=copy.deepcopy(flow.data), timers=list(flow.timers))


def _answer_copy(record: IdempotencyRecord) -> IdempotencyRecord:
    """A copy sharing nothing mutable with ``record``."""
    return attrs.evolve(record, response=copy.deepcopy(record.response))


def _customer_copy(customer: Customer) -> Customer:
    """A copy sharing nothing mutable with ``customer``."""
    return attrs.evolve(customer, accounts=list(customer.accounts))


class _Base:
    """Base of the table views: the store whose dicts they read and change."""

    def __init__(self, store: MemoryStore) -> None:
        self._s = store


class _Flows(_Base):
    def load(self, flow_id: str) -> FlowRecord | None:
        flow = self._s._check()._flows.get(flow_id)
        return None if flow is None else _flow_copy(flow)

    def insert(self, flow: FlowRecord) -> None:
        s = self._s._check()
        if flow.id in s._flows:
            raise ConstraintViolation("id")
        s._put(s._flows, flow.id, _flow_copy(flow))
        s._set_due(flow.id, flow.next_due_at)

    def update(self, flow: FlowRecord, expected_rev: int) -> bool:
        s = self._s._check()
        stored = s._flows.get(flow.id)
        if stored is None or stored.rev != expected_rev:
            return False
        s._put(s._flows, flow.id, attrs.evolve(_flow_copy(flow), rev=expected_rev + 1))
        s._set_due(flow.id, flow.next_due_at)
        flow.rev = expected_rev + 1
        return True

    def journal(self, entry: JournalEntry) -> None:
        s = self._s._check()
        s._append(s._journal, entry.flow_id, entry)  # frozen, immutable fields: no copy needed

    def history(self, flow_id: str) -> list[JournalEntry]:
        return list(self._s._check()._journal.get(flow_id, ()))

    def idempotent(self, flow_id: str, key: str) -> IdempotencyRecord | None:
        record = self._s._check()._idempotency.get((flow_id, key))
        return None if record is None else _answer_copy(record)

    def remember(self, record: IdempotencyRecord) -> None:
        s = self._s._check()
        if (record.flow_id, record.key) in s._idempotency:
            raise ConstraintViolation("idempotency")
        s._put(s._idempotency, (record.flow_id, record.key), _answer_copy(record))


class _Contracts(_Base):
    def customer(self, customer_id: str) -> Customer | None:
        customer = self._s._check()._customers.get(customer_id)
        return None if customer is None else _customer_copy(customer)

    def customer_of_account(self, account: str) -> Customer | None:
        owner = self._s._check()._seat_owner.get(account)
        return None if owner is None else self.customer(owner)

    def put_customer(self, customer: Customer) -> None:
        s = self._s._check()
        key = customer.customer_id
        taken = {a for a in customer.accounts if s._seat_owner.get(a, key) != key}
        if taken or len(set(customer.accounts)) != len(customer.accounts):
            raise ConstraintViolation("seat")
        old = s._customers.get(key)
        for account in old.accounts if old is not None else ():
            s._drop(s._seat_owner, account)
        for account in customer.accounts:
            s._put(s._seat_owner, account, key)
        s._put(s._customers, key, _customer_copy(customer))


class _Logins(_Base):
    def by_email(self, email_key: str) -> Login | None:
        s = self._s._check()
        login_id = s._login_by_email.get(email_key)
        return None if login_id is None else attrs.evolve(s._logins[login_id])

    def get(self, login_id: str) -> Login | None:
        login = self._s._check()._logins.get(login_id)
        return None if login is None else attrs.evolve(login)

    def of_customer(self, customer_id: str) -> list[Login]:
        s = self._s._check()
        logins = [s._logins[i] for i in s._logins_of.get(customer_id, ())]
        return [attrs.evolve(x) for x in sorted(logins, key=lambda x: (x.created_at, x.id))]

    def count(self, customer_id: str) -> int:
        return len(self._s._check()._logins_of.get(customer_id, ()))

    def insert(self, login: Login) -> None:
        s = self._s._check()
        if login.id in s._logins:
            raise ConstraintViolation("id")
        if login.email_key in s._login_by_email:
            raise ConstraintViolation("email")
        if login.account is not None and login.account in s._login_by_account:
            raise ConstraintViolation("account")
        admin = login.role == "admin"
        if admin and login.customer_id in s._admin_of:
            raise ConstraintViolation("admin")
        s._put(s._logins, login.id, attrs.evolve(login))
        s._put(s._login_by_email, login.email_key, login.id)
        if login.account is not None:
            s._put(s._login_by_account, login.account, login.id)
        if admin:
            s._put(s._admin_of, login.customer_id, login.id)
        s._append(s._logins_of, login.customer_id, login.id)


class _Codes(_Base):
    def latest(self, flow_id: str, purpose: str) -> Code | None:
        """The code issued last for the flow and purpose (issue order, not the clock)."""
        s = self._s._check()
        issued = s._codes_of.get((flow_id, purpose))
        return attrs.evolve(s._codes[issued[-1]]) if issued else None

    def insert(self, code: Code) -> None:
        s = self._s._check()
        if code.id in s._codes:
            raise ConstraintViolation("id")
        s._put(s._codes, code.id, attrs.evolve(code))
        s._append(s._codes_of, (code.flow_id, code.purpose), code.id)

    def update(self, code: Code) -> None:
        """Save a code's state; its flow, purpose and creation instant stay as issued."""
        s = self._s._check()
        old = s._codes.get(code.id)
        if old is None:
            raise StoreError(f"no code {code.id!r} to update")
        kept = attrs.evolve(
            code, flow_id=old.flow_id, purpose=old.purpose, created_at=old.created_at
        )
        s._put(s._codes, code.id, kept)


class _Outbox(_Base):
    def enqueue(self, mail: OutboxMail) -> None:
        s = self._s._check()
        if mail.id in s._outbox:
            raise ConstraintViolation("id")
        self._save(mail)

    def _save(self, mail: OutboxMail) -> None:
        s = self._s
        s._put(s._outbox, mail.id, attrs.evolve(mail))
        if mail.status == "queued":
            s._put(s._queued, mail.id, None)
        else:
            s._drop(s._queued, mail.id)

    def due(self, now: datetime, limit: int) -> list[OutboxMail]:
        s = self._s._check()
        waiting = (s._outbox[i] for i in s._queued)
        due = [m for m in waiting if m.next_attempt_at is None or m.next_attempt_at <= now]
        due.sort(key=lambda m: (m.created_at, m.id))
        return [attrs.evolve(m) for m in due[:limit]]

    def update(self, mail: OutboxMail) -> None:
        if mail.id not in self._s._check()._outbox:
            raise StoreError(f"no mail {mail.id!r} to update")
        self._save(mail)

    def get(self, mail_id: str) -> OutboxMail | None:
        mail = self._s._check()._outbox.get(mail_id)
        return None if mail is None else attrs.evolve(mail)


class _Transaction:
    """The table views handed out by ``MemoryStore.transaction()``."""

    def __init__(self, store: MemoryStore) -> None:
        self.flows: ports.FlowTable = _Flows(store)
        self.contracts: ports.ContractTable = _Contracts(store)
        self.logins: ports.LoginTable = _Logins(store)
        self.codes: ports.CodeTable = _Codes(store)
        self.outbox: ports.OutboxTable = _Outbox(store)


class MemoryStore:
    """The Store port in memory; tables are usable only inside ``transaction()``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._owner: int | None = None  # thread running the transaction
        self._depth = 0
        self._undo: list[Callable[[], object]] = []
        self._flows: dict[str, FlowRecord] = {}
        self._due: dict[str, datetime] = {}  # flow id -> next_due_at, active flows only
        self._due_index: list[tuple[datetime, str]] = []  # sorted (next_due_at, flow id)
        self._journal: dict[str, list[JournalEntry]] = {}
        self._idempotency: dict[tuple[str, str], IdempotencyRecord] = {}
        self._customers: dict[str, Customer] = {}
        self._seat_owner: dict[str, str] = {}  # account -> customer id
        self._logins: dict[str, Login] = {}
        self._login_by_email: dict[str, str] = {}
        self._login_by_account: dict[str, str] = {}
        self._logins_of: dict[str, list[str]] = {}  # customer id -> login ids
        self._admin_of: dict[str, str] = {}  # customer id -> admin login id
        self._codes: dict[str, Code] = {}
        self._codes_of: dict[tuple[str, str], list[str]] = {}  # (flow, purpose) -> ids, issued
        self._outbox: dict[str, OutboxMail] = {}
        self._queued: dict[str, None] = {}  # ids of queued mail
        self._tx = _Transaction(self)

    @contextmanager
    def transaction(self) -> Iterator[ports.Transaction]:
        """Hold the lock for the whole block; undo the block's changes when it raises."""
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

    def due_flows(self, now: datetime, limit: int) -> list[str]:
        """Ids of active flows due at ``now``, earliest first, read from the sorted index."""
        with self._lock:
            due: list[str] = []
            for at, flow_id in self._due_index:
                if at > now or len(due) >= limit:
                    break
                due.append(flow_id)
            return due

    def iter_flow_ids(self) -> Iterator[str]:
        """Every flow id (a snapshot taken when iteration starts)."""
        with self._lock:
            ids = list(self._flows)
        yield from ids

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
        old = self._due.pop(flow_id, None)
        if old is not None:
            del self._due_index[bisect.bisect_left(self._due_index, (old, flow_id))]
        if due is not None:
            self._due[flow_id] = due
            bisect.insort(self._due_index, (due, flow_id))


_PORT_CHECK: type[ports.Store] = MemoryStore  # mypy proves MemoryStore fits the port
