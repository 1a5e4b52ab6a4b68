"""The PeeweeStore's table views: the ports' tables as queries on one store's models, and the
base (``_Table``, ``_guarded``) the flow view (``peewee_flows``) and the limits
(``peewee_limits``) build on too.

Every method refuses use outside a transaction and translates driver errors. Row locks
(``FOR UPDATE``, ``SKIP LOCKED`` for the outbox) are taken only where the database has them
(PostgreSQL); on SQLite the transaction's ``BEGIN IMMEDIATE`` already holds the write lock.
Writes a uniqueness rule may refuse run in a savepoint, so the transaction stays usable after
a ConstraintViolation (PostgreSQL aborts the whole transaction on a failed statement otherwise).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import peewee as pw

from regflow.adapters.peewee_models import Tables, from_micros, record_of, translated, values_of
from regflow.ground.exceptions import StoreError
from regflow.ground.records import Code, Customer, Login, OutboxMail, Session

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
