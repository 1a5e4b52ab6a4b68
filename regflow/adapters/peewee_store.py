"""PeeweeStore: the Store port on a SQL database through peewee (SQLite now, PostgreSQL later).

Each store builds its own model classes (``build_tables``), so stores on different files live
side by side in one process; peewee keeps one connection per thread and store. Writers are
serialised by ``BEGIN IMMEDIATE`` on SQLite. Tables are usable only inside ``transaction()``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import peewee as pw

from regflow import ports
from regflow.adapters.peewee_models import (
    Tables,
    build_tables,
    flow_of,
    flow_values,
    record_of,
    translated,
    values_of,
)
from regflow.exceptions import StoreError
from regflow.records import (
    Code,
    Customer,
    FlowRecord,
    IdempotencyRecord,
    JournalEntry,
    Login,
    OutboxMail,
)

_SQLITE_PRAGMAS = (
    ("busy_timeout", 10000),  # first, so the journal_mode switch below waits for locks too
    ("journal_mode", "wal"),
    ("synchronous", "normal"),
    ("foreign_keys", 1),
)
_PAGE = 1000  # flow ids fetched per query by iter_flow_ids


_T = TypeVar("_T", bound="_Table")
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _guarded(method: Callable[Concatenate[_T, _P], _R]) -> Callable[Concatenate[_T, _P], _R]:
    """Refuse use outside a transaction and translate driver errors."""

    @functools.wraps(method)
    def run(self: _T, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        if not self._db.in_transaction():
            raise StoreError("store tables are usable only inside store.transaction()")
        with translated():
            return method(self, *args, **kwargs)

    return run


class _Table:
    """Base of the table views: the database and the store's models."""

    def __init__(self, db: pw.Database, tables: Tables) -> None:
        self._db = db
        self._t = tables


class _Flows(_Table):
    @_guarded
    def load(self, flow_id: str) -> FlowRecord | None:
        row = self._t.flows.get_or_none(self._t.flows.id == flow_id)
        return None if row is None else flow_of(row)

    @_guarded
    def insert(self, flow: FlowRecord) -> None:
        self._t.flows.insert(id=flow.id, rev=flow.rev, **flow_values(flow)).execute()

    @_guarded
    def update(self, flow: FlowRecord, expected_rev: int) -> bool:
        model = self._t.flows
        query = model.update(rev=expected_rev + 1, **flow_values(flow))
        if query.where((model.id == flow.id) & (model.rev == expected_rev)).execute() != 1:
            return False
        flow.rev = expected_rev + 1
        return True

    @_guarded
    def journal(self, entry: JournalEntry) -> None:
        self._t.journal.insert(**values_of(entry)).execute()

    @_guarded
    def history(self, flow_id: str) -> list[JournalEntry]:
        model = self._t.journal
        rows = model.select().where(model.flow_id == flow_id).order_by(model.id)
        return [record_of(JournalEntry, row) for row in rows]

    @_guarded
    def idempotent(self, flow_id: str, key: str) -> IdempotencyRecord | None:
        model = self._t.idempotency
        row = model.get_or_none((model.flow_id == flow_id) & (model.key == key))
        return None if row is None else record_of(IdempotencyRecord, row)

    @_guarded
    def remember(self, record: IdempotencyRecord) -> None:
        with self._db.atomic():  # a savepoint: a refused key leaves the transaction usable
            self._t.idempotency.insert(**values_of(record)).execute()


class _Contracts(_Table):
    def _customer(self, row: Any) -> Customer:
        model = self._t.accounts
        query = model.select(model.account).where(model.customer == row.customer_id)
        seats = [str(account) for (account,) in query.order_by(model.position).tuples()]
        return Customer(row.customer_id, row.phone, row.licenses, seats)

    @_guarded
    def customer(self, customer_id: str) -> Customer | None:
        model = self._t.customers
        row = model.get_or_none(model.customer_id == customer_id)
        return None if row is None else self._customer(row)

    @_guarded
    def customer_of_account(self, account: str) -> Customer | None:
        customers, accounts = self._t.customers, self._t.accounts
        query = customers.select().join(accounts, on=accounts.customer == customers.customer_id)
        row = query.where(accounts.account == account).first()
        return None if row is None else self._customer(row)

    @_guarded
    def put_customer(self, customer: Customer) -> None:
        customers, accounts = self._t.customers, self._t.accounts
        key, values = customer.customer_id, {"phone": customer.phone, "licenses": customer.licenses}
        seats = enumerate(customer.accounts)
        rows = [{"account": a, "customer": key, "position": i} for i, a in seats]
        with self._db.atomic():  # a savepoint: a refused seat leaves nothing half-written
            if not customers.update(**values).where(customers.customer_id == key).execute():
                customers.insert(customer_id=key, **values).execute()
            accounts.delete().where(accounts.customer == key).execute()
            if rows:
                accounts.insert_many(rows).execute()


class _Logins(_Table):
    @_guarded
    def by_email(self, email_key: str) -> Login | None:
        row = self._t.logins.get_or_none(self._t.logins.email_key == email_key)
        return None if row is None else record_of(Login, row)

    @_guarded
    def get(self, login_id: str) -> Login | None:
        row = self._t.logins.get_or_none(self._t.logins.id == login_id)
        return None if row is None else record_of(Login, row)

    @_guarded
    def of_customer(self, customer_id: str) -> list[Login]:
        model = self._t.logins
        rows = model.select().where(model.customer_id == customer_id)
        return [record_of(Login, row) for row in rows.order_by(model.created_at, model.id)]

    @_guarded
    def count(self, customer_id: str) -> int:
        model = self._t.logins
        return int(model.select().where(model.customer_id == customer_id).count())

    @_guarded
    def insert(self, login: Login) -> None:
        with self._db.atomic():  # a savepoint: a refused login leaves the transaction usable
            self._t.logins.insert(**values_of(login)).execute()


class _Codes(_Table):
    def _of(self, flow_id: str, purpose: str) -> Any:
        model = self._t.codes
        return (model.flow_id == flow_id) & (model.purpose == purpose)

    @_guarded
    def latest(self, flow_id: str, purpose: str) -> Code | None:
        """The code issued last for the flow and purpose (issue order, not the clock)."""
        model = self._t.codes
        row = model.select().where(self._of(flow_id, purpose)).order_by(model.seq.desc()).first()
        return None if row is None else record_of(Code, row)

    @_guarded
    def insert(self, code: Code) -> None:
        model = self._t.codes
        last = model.select(pw.fn.MAX(model.seq)).where(self._of(code.flow_id, code.purpose))
        model.insert(seq=int(last.scalar() or 0) + 1, **values_of(code)).execute()

    @_guarded
    def update(self, code: Code) -> None:
        """Save a code's state; its flow, purpose and creation instant stay as issued."""
        model = self._t.codes
        values = values_of(code, "id", "flow_id", "purpose", "created_at")
        if not model.update(**values).where(model.id == code.id).execute():
            raise StoreError(f"no code {code.id!r} to update")


class _Outbox(_Table):
    @_guarded
    def enqueue(self, mail: OutboxMail) -> None:
        self._t.outbox.insert(**values_of(mail)).execute()

    @_guarded
    def due(self, now: datetime, limit: int) -> list[OutboxMail]:
        model = self._t.outbox
        waited = model.next_attempt_at.is_null() | (model.next_attempt_at <= now)
        rows = model.select().where((model.status == "queued") & waited)
        rows = rows.order_by(model.created_at, model.id).limit(limit)
        return [record_of(OutboxMail, row, message=bytes(row.message)) for row in rows]

    @_guarded
    def update(self, mail: OutboxMail) -> None:
        model = self._t.outbox
        if not model.update(**values_of(mail, "id")).where(model.id == mail.id).execute():
            raise StoreError(f"no mail {mail.id!r} to update")

    @_guarded
    def get(self, mail_id: str) -> OutboxMail | None:
        row = self._t.outbox.get_or_none(self._t.outbox.id == mail_id)
        return None if row is None else record_of(OutboxMail, row, message=bytes(row.message))


class _Transaction:
    """The table views handed out by ``PeeweeStore.transaction()``."""

    def __init__(self, db: pw.Database, tables: Tables) -> None:
        self.flows: ports.FlowTable = _Flows(db, tables)
        self.contracts: ports.ContractTable = _Contracts(db, tables)
        self.logins: ports.LoginTable = _Logins(db, tables)
        self.codes: ports.CodeTable = _Codes(db, tables)
        self.outbox: ports.OutboxTable = _Outbox(db, tables)


class PeeweeStore:
    """The Store port on a peewee database; build it with ``PeeweeStore.from_url``."""

    def __init__(self, db: pw.Database, *, url: str, begin: tuple[str, ...] = ()) -> None:
        self.url = url
        self._db = db
        self._begin = begin  # arguments of db.atomic() for the outermost transaction
        self._tables = build_tables(db)
        self._tx = _Transaction(db, self._tables)
        self._ready = False
        self._ready_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> PeeweeStore:
        """A store for ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``."""
        prefix = "sqlite:///"
        if not url.startswith(prefix):
            raise ValueError(f"unsupported store URL {url!r}: expected {prefix}<path>")
        path = url.removeprefix(prefix)
        if not path or path == ":memory:" or "?" in path:
            raise ValueError(f"store URL {url!r} must name a database file (use MemoryStore)")
        # Resolved now: SQLite opens one connection per thread, later, maybe in another cwd.
        file = Path(path).resolve()
        db = pw.SqliteDatabase(str(file), pragmas=_SQLITE_PRAGMAS, timeout=10)
        return cls(db, url=url, begin=("IMMEDIATE",))

    def _ensure_ready(self) -> None:
        """Create the database file and the tables on first use."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            if isinstance(self._db, pw.SqliteDatabase):
                try:
                    Path(self._db.database).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot create the database folder: {exc}") from exc
            with translated(), self._db.atomic(*self._begin):
                self._db.create_tables(self._tables.all(), safe=True)
            self._ready = True

    @contextmanager
    def transaction(self) -> Iterator[ports.Transaction]:
        """One transaction (a savepoint when nested); rolled back when its block raises."""
        self._ensure_ready()
        block = self._db.atomic(*self._begin)
        with translated():
            block.__enter__()
        try:
            yield self._tx
        except BaseException as exc:
            with translated():
                block.__exit__(type(exc), exc, exc.__traceback__)
            raise
        with translated():
            block.__exit__(None, None, None)

    def due_flows(self, now: datetime, limit: int) -> list[str]:
        """Ids of active flows due at ``now``, earliest first, from the next_due_at index."""
        self._ensure_ready()
        model = self._tables.flows
        query = model.select(model.id).where(model.next_due_at <= now)
        query = query.order_by(model.next_due_at, model.id).limit(limit)
        with translated():
            return [str(flow_id) for (flow_id,) in query.tuples()]

    def iter_flow_ids(self) -> Iterator[str]:
        """Every flow id, read page by page in id order."""
        self._ensure_ready()
        model = self._tables.flows
        after: str | None = None
        while True:
            query = model.select(model.id).order_by(model.id).limit(_PAGE)
            if after is not None:
                query = query.where(model.id > after)
            with translated():
                page = [str(flow_id) for (flow_id,) in query.tuples()]
            yield from page
            if len(page) < _PAGE:
                return
            after = page[-1]

    def close(self) -> None:
        """Close this thread's connection (peewee reopens one on the next use)."""
        with translated():
            self._db.close()


_PORT_CHECK: type[ports.Store] = PeeweeStore  # mypy proves PeeweeStore fits the port
