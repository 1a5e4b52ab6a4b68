"""The ports: small Protocols every adapter fits by shape. The engine knows only these."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol, runtime_checkable

from regflow.ground.records import (
    Code,
    Customer,
    Cutoffs,
    FlowRecord,
    IdempotencyRecord,
    JournalEntry,
    JournalFigures,
    LimitHit,
    Login,
    OutboxMail,
    Session,
)


class Clock(Protocol):
    """Where time comes from. Read at call time, so freezegun (or a test clock) moves it."""

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""

    def sleep(self, seconds: float) -> None:
        """Wait (used only between retries of a transient failure)."""


class Mailer(Protocol):
    """Delivers one finished message; raises TransientError when worth retrying."""

    def send(self, message: EmailMessage) -> None:
        """Hand the message to its transport."""


class PasswordHasher(Protocol):
    """Hashes and verifies passwords."""

    def hash(self, password: str) -> str:
        """A self-describing hash of the password."""

    def verify(self, hashed: str, password: str) -> bool:
        """Whether the password matches the hash."""


class Provisioner(Protocol):
    """Creates the login's identity elsewhere (e.g. an external directory). May be transient."""

    def provision(self, login: Login, *, key: str) -> None:
        """Provision ``login``; ``key`` is stable across retries of the same request."""


class FlowTable(Protocol):
    """Flows, their journal and idempotency keys, inside one transaction."""

    def load(self, flow_id: str) -> FlowRecord | None:
        """The flow, locked for this transaction where the database has row locks."""
    def insert(self, flow: FlowRecord) -> None: ...
    def update(self, flow: FlowRecord, expected_rev: int) -> bool:
        """Save when the stored ``rev`` is still ``expected_rev``; return False otherwise."""
    def journal(self, entry: JournalEntry) -> None: ...
    def history(self, flow_id: str) -> list[JournalEntry]: ...
    def idempotent(self, flow_id: str, key: str) -> IdempotencyRecord | None: ...
    def remember(self, record: IdempotencyRecord) -> None: ...
    def defer(self, flow_id: str, due_by: datetime, until: datetime) -> bool:
        """Move an active flow that is due by ``due_by`` to ``until`` in the due index
        (``Store.due_flows``), without loading or changing the flow: a sweep sets a failing flow
        aside so. Its next save puts it back where its timers say. Whether it moved."""


class ContractTable(Protocol):
    """Customers (contracts) and their seats."""

    def customer(self, customer_id: str) -> Customer | None: ...
    def customer_of_account(self, account: str) -> Customer | None: ...
    def put_customer(self, customer: Customer) -> None:
        """Insert or replace a customer with its accounts."""
    def lock(self, customer_id: str) -> None:
        """Serialise work on one customer's logins until the transaction ends (I3, I4):
        ``SELECT … FOR UPDATE`` of the customer row on PostgreSQL; a no-op where the
        transaction already holds the database's write lock (SQLite, memory)."""
    def customers(self) -> list[Customer]:
        """Every customer, by customer id."""
    def set_require_two_factor(self, customer_id: str, required: bool) -> None: ...


class LoginTable(Protocol):
    """Logins; the store enforces I1 (email_key), I2 (account) and I4 (one admin) as constraints.

    ``lock=True`` locks the row for the transaction where the database has row locks
    (PostgreSQL ``FOR UPDATE``), so counters such as failed sign-ins are exact.
    """

    def by_email(self, email_key: str, *, lock: bool = False) -> Login | None: ...
    def get(self, login_id: str, *, lock: bool = False) -> Login | None: ...
    def by_account(self, account: str) -> Login | None: ...
    def of_customer(self, customer_id: str) -> list[Login]: ...
    def count(self, customer_id: str) -> int: ...
    def insert(self, login: Login) -> None:
        """Raise ConstraintViolation('email' | 'account' | 'admin') when a rule refuses it."""
    def update(self, login: Login) -> None:
        """Save every field but ``id``; ConstraintViolation as for ``insert``."""
    def delete(self, login_id: str) -> None: ...


class SessionTable(Protocol):
    """Signed-in sessions, found by the digest of their token."""

    def insert(self, session: Session) -> None: ...
    def by_digest(self, digest: str) -> Session | None: ...
    def end(self, session_id: str) -> None: ...
    def end_of_login(self, login_id: str, *, keep: str | None = None) -> int:
        """End every session of a login except ``keep``; how many ended."""
    def of_login(self, login_id: str) -> list[Session]:
        """The login's sessions (live or expired, not ended), oldest first."""


class CodeTable(Protocol):
    """One-time codes (digests only)."""

    def latest(self, flow_id: str, purpose: str) -> Code | None:
        """The code issued last to the flow for that purpose."""
    def insert(self, code: Code) -> None: ...
    def update(self, code: Code) -> None: ...
    def void_for(self, email_key: str) -> int:
        """Void every live (unused, not void) code issued for an address; how many."""


class OutboxTable(Protocol):
    """Mail waiting for delivery, written with the state change.

    A ``queued`` mail's ``next_attempt_at`` is when to try it (by the clock of the relay that
    set it); a ``sending`` mail's is the end of its lease, on the clock ``database_now`` reads.
    """

    def database_now(self) -> datetime | None:
        """The database's clock, which mail leases are set and judged by, so that processes
        whose clocks disagree still agree on a lease; None where the process's clock is the
        only one (a store in memory)."""
    def enqueue(self, mail: OutboxMail) -> None: ...
    def due(self, now: datetime, limit: int) -> list[OutboxMail]:
        """Queued mail whose next attempt is due at ``now``, and sending mail whose lease has
        passed (on ``database_now``, else ``now``), oldest first; rows another transaction holds
        are skipped (PostgreSQL ``FOR UPDATE SKIP LOCKED``), so relays spread the work."""
    def update(self, mail: OutboxMail) -> None: ...
    def get(self, mail_id: str) -> OutboxMail | None:
        """The mail, locked for this transaction where the database has row locks, so two
        relays never claim it together."""


class LimitTable(Protocol):
    """Counted attempts of the limits that span flows and processes (``regflow.runtime.limits``)."""

    def add(self, hit: LimitHit) -> None: ...
    def count(self, kind: str, subject: str, client: str | None,
              since: datetime) -> tuple[int, datetime | None]:
        """Hits of ``kind`` for ``subject`` (from ``client``, or any client when None) later
        than ``since``: how many, and the earliest of them."""
    def last(self, kind: str, subject: str, client: str) -> LimitHit | None:
        """The latest hit of ``kind`` for ``subject`` from ``client``."""
    def clear(self, kind: str, subject: str, client: str | None = None) -> int:
        """Forget the hits of ``kind`` for ``subject`` (from ``client``, or every client)."""
    def lock(self, subject: str) -> None:
        """Serialise counting for ``subject`` until the transaction ends, so that a limit is
        exact under concurrency (an advisory lock on PostgreSQL; a no-op where the transaction
        already holds the write lock)."""


class Transaction(Protocol):
    """One unit of work; everything in it commits or rolls back together."""

    flows: FlowTable
    contracts: ContractTable
    logins: LoginTable
    sessions: SessionTable
    codes: CodeTable
    outbox: OutboxTable
    limits: LimitTable


class Store(Protocol):
    """Storage. ``transaction()`` serialises writers (BEGIN IMMEDIATE, row locks, or a lock)."""

    def transaction(self, *, write: bool = True) -> AbstractContextManager[Transaction]:
        """One unit of work. ``write=False`` says the block only reads: where the database has a
        write lock (SQLite) it is not taken, so readers pass beside a writer. A database busy
        or out of reach raises TransientError (nothing was committed)."""
    def due_flows(self, now: datetime, limit: int) -> Sequence[str]:
        """Ids of active flows with a timer or expiry due at ``now``, by index."""
    def iter_flow_ids(self) -> Iterator[str]: ...
    def shared_secret(self) -> bytes:
        """32 random bytes made on first use and kept with the data: every process on the
        same database reads the same. Used only where no ``REGFLOW_SECRET`` is configured (a
        copy of the database then holds the key of code digests and request hashes)."""
    def purge(self, cutoffs: Cutoffs) -> dict[str, int]:
        """Delete what retention no longer keeps (see ``Cutoffs``); how many rows, by table."""
    def close(self) -> None: ...


@runtime_checkable
class JournalReader(Protocol):
    """A store that aggregates its journal for reports (``regflow.reports.funnel``; both stores
    regflow ships). Kept apart from ``Store`` so that other stores fit without it."""

    def journal_figures(self, flow: str, *, since: datetime | None, until: datetime | None,
                        customer: str | None) -> JournalFigures:
        """The aggregates of the journal rows of the flows of definition ``flow`` (of that
        customer, when given) with ``since <= at < until``, each bound optional."""


class ContractDirectory(Protocol):
    """Where contracts come from: the store's table (imported from CSV) or a user's backend."""

    def find(self, customer_id: str) -> Customer | None:
        """The customer with that number, or None."""

    def of_account(self, account: str) -> Customer | None:
        """The customer owning that seat, or None."""

    def add(self, customer_id: str, phone: str, licenses: int, accounts: Sequence[str]) -> Customer:
        """Create or replace a contract."""
