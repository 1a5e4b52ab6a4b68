"""The PeeweeStore's table views: the ports' tables as queries on one store's models.

Every method refuses use outside a transaction and translates driver errors. Row locks
(``FOR UPDATE``, ``SKIP LOCKED`` for the outbox) are taken only where the database has them
(PostgreSQL); on SQLite the transaction's ``BEGIN IMMEDIATE`` already holds the write lock.
Writes a uniqueness rule may refuse run in a savepoint, so the transaction stays usable after
a ConstraintViolation (PostgreSQL aborts the whole transaction on a failed statement otherwise).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import attrs
import peewee as pw

from regflow.adapters.peewee_models import (
    InstantField,
    JsonField,
    Tables,
    flow_values,
    from_micros,
    record_of,
    to_micros,
    translated,
    values_of,
)
from regflow.ground.exceptions import StoreError
from regflow.ground.records import (
    Code,
    Customer,
    FlowRecord,
    IdempotencyRecord,
    JournalEntry,
    Login,
    OutboxMail,
    Session,
)

_T = TypeVar("_T", bound="_Table")
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _guarded(method: Callable[Concatenate[_T, _P], _R]) -> Callable[Concatenate[_T, _P], _R]:
    """Refuse use outside a transaction and translate driver errors."""

    @functools.wraps(method)
    def run(self: _T, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        if not self._db.in_transaction():
            raise StoreError("store tables are usable only inside store.transaction()")
        try:  # cheaper than entering ``translated()`` on every call of a step's hot path
            return method(self, *args, **kwargs)
        except pw.PeeweeException:
            with translated():
                raise

    return run


class _Table:
    """Base of the table views: the database, the store's models and the row-lock helper."""

    def __init__(self, db: pw.Database, tables: Tables) -> None:
        self._db = db
        self._t = tables
        self._row_locks = bool(getattr(db, "for_update", False))  # PostgreSQL: True

    def _locked(self, query: Any, *, skip_locked: bool = False) -> Any:
        """``query … FOR UPDATE [SKIP LOCKED]`` where the database has row locks."""
        return query.for_update(skip_locked=skip_locked) if self._row_locks else query

    def _one(self, query: Any, *, lock: bool = False) -> Any:
        """The query's first row or None, locked for the transaction when ``lock``."""
        return (self._locked(query) if lock else query).first()


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # as JsonField writes
_RECORD_FIELDS = frozenset(field.name for field in attrs.fields(FlowRecord))


def _converter(field: Any, *, reading: bool) -> Callable[[Any], Any] | None:
    """What turns a column's value into the row's (``reading``) or back, written out for the
    field types of the hot path (peewee's ``db_value``/``python_value`` cost a call each more);
    None where the driver's value is the value."""
    if isinstance(field, InstantField):
        return (lambda v: from_micros(int(v))) if reading else to_micros
    if isinstance(field, JsonField):
        return json.loads if reading else _JSON
    if type(field) in (pw.TextField, pw.IntegerField):
        return None
    convert: Callable[[Any], Any] = field.python_value if reading else field.db_value
    return convert


class _FlowStatements:
    """The three statements of every step — load, versioned update, journal insert — written
    once per store from the models' columns, with the conversion of each column. Building them
    through peewee's query builder, or converting through its fields, on each call cost more
    than SQLite spent running them (see docs/benchmarks.md)."""

    def __init__(self, db: pw.Database, tables: Tables, *, row_locks: bool) -> None:
        param = db.param

        def quote(name: str) -> str:  # standard SQL identifiers, as SQLite and PostgreSQL take
            return f'"{name}"'

        flows, journal = tables.flows, tables.journal
        # Read: the record's own columns (next_due_at and other derived columns are written only).
        read = [f for f in flows._meta.sorted_fields if f.name in _RECORD_FIELDS]
        self.readers = [(f.name, _converter(f, reading=True)) for f in read]
        self.load = (f"SELECT {', '.join(quote(f.column_name) for f in read)} "
                     f"FROM {quote(flows._meta.table_name)} "
                     f"WHERE {quote('id')} = {param}" + (" FOR UPDATE" if row_locks else ""))
        changed = [f for f in flows._meta.sorted_fields if f.name != "id"]  # rev last
        self.writers = [(f.name, _converter(f, reading=False)) for f in changed]
        assignments = ", ".join(f"{quote(f.column_name)} = {param}" for f in changed)
        self.update = (f"UPDATE {quote(flows._meta.table_name)} SET {assignments} "
                       f"WHERE {quote('id')} = {param} AND {quote('rev')} = {param}")
        entries = [f for f in journal._meta.sorted_fields if f.name != "id"]
        self.journal_writers = [(f.name, _converter(f, reading=False)) for f in entries]
        self.journal = (
            f"INSERT INTO {quote(journal._meta.table_name)} "
            f"({', '.join(quote(f.column_name) for f in entries)}) "
            f"VALUES ({', '.join(param for _ in entries)})")


class Flows(_Table):
    def __init__(self, db: pw.Database, tables: Tables) -> None:
        super().__init__(db, tables)
        self._sql = _FlowStatements(db, tables, row_locks=self._row_locks)

    def _run(self, sql: str, params: tuple[Any, ...]) -> Any:
        run: Any = self._db.execute_sql  # peewee is untyped
        return run(sql, params)

    @_guarded
    def load(self, flow_id: str) -> FlowRecord | None:
        row = self._run(self._sql.load, (flow_id,)).fetchone()
        if row is None:
            return None
        values = {name: value if read is None or value is None else read(value)
                  for (name, read), value in zip(self._sql.readers, row, strict=True)}
        values["timers"] = [(str(event), from_micros(int(micros)))
                            for event, micros in values["timers"]]
        return FlowRecord(**values)

    @_guarded
    def insert(self, flow: FlowRecord) -> None:
        with self._db.atomic():  # a savepoint: a refused id leaves the transaction usable
            self._t.flows.insert(id=flow.id, rev=flow.rev, **flow_values(flow)).execute()

    @_guarded
    def update(self, flow: FlowRecord, expected_rev: int) -> bool:
        values = flow_values(flow)
        values["rev"] = expected_rev + 1
        params = [value if write is None or value is None else write(value)
                  for name, write in self._sql.writers for value in (values[name],)]
        params += (flow.id, expected_rev)
        if self._run(self._sql.update, tuple(params)).rowcount != 1:
            return False
        flow.rev = expected_rev + 1
        return True

    @_guarded
    def journal(self, entry: JournalEntry) -> None:
        self._run(self._sql.journal, tuple(
            value if write is None or value is None else write(value)
            for name, write in self._sql.journal_writers for value in (getattr(entry, name),)))

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

    @_guarded
    def defer(self, flow_id: str, due_by: datetime, until: datetime) -> bool:
        model = self._t.flows  # next_due_at is NULL for ended flows: they never match
        due = (model.id == flow_id) & (model.next_due_at <= due_by)
        return int(model.update(next_due_at=until).where(due).execute()) == 1


class Contracts(_Table):
    def _seats(self, customer_id: str | None) -> dict[str, list[str]]:
        """Seats in their given order by customer: one customer's, or everyone's (None)."""
        model = self._t.accounts
        query = model.select(model.customer, model.account)
        if customer_id is not None:
            query = query.where(model.customer == customer_id)
        seats: dict[str, list[str]] = {}
        for owner, account in query.order_by(model.customer, model.position).tuples():
            seats.setdefault(str(owner), []).append(str(account))
        return seats

    def _customer(self, row: Any, seats: list[str]) -> Customer:
        return Customer(row.customer_id, row.phone, row.licenses, seats, row.require_two_factor)

    @_guarded
    def customer(self, customer_id: str) -> Customer | None:
        model = self._t.customers
        row = model.get_or_none(model.customer_id == customer_id)
        if row is None:
            return None
        return self._customer(row, self._seats(customer_id).get(customer_id, []))

    @_guarded
    def customer_of_account(self, account: str) -> Customer | None:
        model = self._t.accounts
        owner = model.select(model.customer).where(model.account == account).scalar()
        return None if owner is None else self.customer(str(owner))

    @_guarded
    def put_customer(self, customer: Customer) -> None:
        customers, accounts = self._t.customers, self._t.accounts
        key = customer.customer_id
        values = values_of(customer, "customer_id", "accounts")
        seats = enumerate(customer.accounts)
        rows = [{"account": a, "customer": key, "position": i} for i, a in seats]
        with self._db.atomic():  # a savepoint: a refused seat leaves nothing half-written
            if not customers.update(**values).where(customers.customer_id == key).execute():
                customers.insert(customer_id=key, **values).execute()
            accounts.delete().where(accounts.customer == key).execute()
            if rows:
                accounts.insert_many(rows).execute()

    @_guarded
    def lock(self, customer_id: str) -> None:
        """A transaction-scoped advisory lock on the customer number on PostgreSQL (it works
        whether or not the contract is in this database's table, e.g. with a contract directory
        of the user's); nothing on SQLite, where BEGIN IMMEDIATE already serialises writers."""
        if self._row_locks:
            run: Any = self._db.execute_sql  # peewee is untyped
            run("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"regflow.customer:{customer_id}",))

    @_guarded
    def customers(self) -> list[Customer]:
        seats = self._seats(None)
        rows = self._t.customers.select().order_by(self._t.customers.customer_id)
        return [self._customer(row, seats.get(row.customer_id, [])) for row in rows]

    @_guarded
    def set_require_two_factor(self, customer_id: str, required: bool) -> None:
        model = self._t.customers
        query = model.update(require_two_factor=required).where(model.customer_id == customer_id)
        if not query.execute():
            raise StoreError(f"no customer {customer_id!r} to update")


class Logins(_Table):
    def _find(self, condition: Any, *, lock: bool = False) -> Login | None:
        row = self._one(self._t.logins.select().where(condition), lock=lock)
        return None if row is None else record_of(Login, row)

    @_guarded
    def by_email(self, email_key: str, *, lock: bool = False) -> Login | None:
        return self._find(self._t.logins.email_key == email_key, lock=lock)

    @_guarded
    def get(self, login_id: str, *, lock: bool = False) -> Login | None:
        return self._find(self._t.logins.id == login_id, lock=lock)

    @_guarded
    def by_account(self, account: str) -> Login | None:
        return self._find(self._t.logins.account == account)

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

    @_guarded
    def update(self, login: Login) -> None:
        model = self._t.logins
        with self._db.atomic():  # a savepoint, as for insert
            changed = model.update(**values_of(login, "id")).where(model.id == login.id).execute()
        if not changed:
            raise StoreError(f"no login {login.id!r} to update")

    @_guarded
    def delete(self, login_id: str) -> None:
        """Delete the login, freeing its email key, seat and admin role (sessions stay)."""
        model = self._t.logins
        if not model.delete().where(model.id == login_id).execute():
            raise StoreError(f"no login {login_id!r} to delete")


class Sessions(_Table):
    @_guarded
    def insert(self, session: Session) -> None:
        with self._db.atomic():  # a savepoint: a refused session leaves the transaction usable
            self._t.sessions.insert(**values_of(session)).execute()

    @_guarded
    def by_digest(self, digest: str) -> Session | None:
        row = self._t.sessions.get_or_none(self._t.sessions.digest == digest)
        return None if row is None else record_of(Session, row)

    @_guarded
    def end(self, session_id: str) -> None:
        """End the session; ending an unknown or ended one does nothing."""
        self._t.sessions.delete().where(self._t.sessions.id == session_id).execute()

    @_guarded
    def end_of_login(self, login_id: str, *, keep: str | None = None) -> int:
        model = self._t.sessions
        condition = model.login_id == login_id
        if keep is not None:
            condition &= model.id != keep
        return int(model.delete().where(condition).execute())


    @_guarded
    def of_login(self, login_id: str) -> list[Session]:
        model = self._t.sessions
        rows = model.select().where(model.login_id == login_id).order_by(model.created_at, model.id)
        return [record_of(Session, row) for row in rows]


class Codes(_Table):
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
        with self._db.atomic():  # a savepoint: a refused id leaves the transaction usable
            model.insert(seq=int(last.scalar() or 0) + 1, **values_of(code)).execute()

    @_guarded
    def update(self, code: Code) -> None:
        """Save a code's state; its flow, purpose, address and creation stay as issued."""
        model = self._t.codes
        values = values_of(code, "id", "flow_id", "purpose", "email_key", "created_at")
        if not model.update(**values).where(model.id == code.id).execute():
            raise StoreError(f"no code {code.id!r} to update")

    @_guarded
    def void_for(self, email_key: str) -> int:
        model = self._t.codes
        live = (model.email_key == email_key) & model.used_at.is_null() & (model.void == False)  # noqa: E712
        return int(model.update(void=True).where(live).execute())


# The database's clock in microseconds since the epoch, as InstantField stores instants: mail
# leases are set and judged by it, so relays on hosts whose clocks disagree agree on a lease.
# PostgreSQL: the server's clock at the statement (not the transaction's start). SQLite: the
# host's clock, read by the process that runs the statement (one value within a statement).
_DATABASE_NOW_POSTGRES = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)"
_DATABASE_NOW_SQLITE = ("(CAST(strftime('%s', 'now') AS INTEGER) * 1000000"
                        " + CAST(substr(strftime('%f', 'now'), 4) AS INTEGER) * 1000)")


class Outbox(_Table):
    def __init__(self, db: pw.Database, tables: Tables) -> None:
        super().__init__(db, tables)
        postgres = isinstance(db, pw.PostgresqlDatabase)
        self._now_sql = _DATABASE_NOW_POSTGRES if postgres else _DATABASE_NOW_SQLITE

    @_guarded
    def database_now(self) -> datetime:
        """The database's clock now (millisecond precision on SQLite)."""
        run: Any = self._db.execute_sql  # peewee is untyped
        return from_micros(int(run(f"SELECT {self._now_sql}").fetchone()[0]))

    @_guarded
    def enqueue(self, mail: OutboxMail) -> None:
        with self._db.atomic():  # a savepoint: a refused id leaves the transaction usable
            self._t.outbox.insert(**values_of(mail)).execute()

    @_guarded
    def due(self, now: datetime, limit: int) -> list[OutboxMail]:
        """Queued mail due at ``now`` and sending mail whose lease has passed on the database's
        clock, oldest first; rows other transactions lock are skipped."""
        model = self._t.outbox
        waited = model.next_attempt_at.is_null() | (model.next_attempt_at <= now)
        lapsed = model.next_attempt_at <= pw.SQL(self._now_sql)
        due = ((model.status == "queued") & waited) | ((model.status == "sending") & lapsed)
        rows = model.select().where(due)
        rows = self._locked(rows.order_by(model.created_at, model.id).limit(limit), skip_locked=True)
        return [record_of(OutboxMail, row, message=bytes(row.message)) for row in rows]

    @_guarded
    def update(self, mail: OutboxMail) -> None:
        model = self._t.outbox
        if not model.update(**values_of(mail, "id")).where(model.id == mail.id).execute():
            raise StoreError(f"no mail {mail.id!r} to update")

    @_guarded
    def get(self, mail_id: str) -> OutboxMail | None:
        model = self._t.outbox
        row = self._one(model.select().where(model.id == mail_id), lock=True)
        return None if row is None else record_of(OutboxMail, row, message=bytes(row.message))
