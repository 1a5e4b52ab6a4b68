"""PeeweeStore: the Store port on a SQL database through peewee: SQLite or PostgreSQL.

Each store builds its own model classes (``build_tables``), so stores on different files or
schemas live side by side in one process; peewee keeps one connection per thread and store.
Writers are serialised by ``BEGIN IMMEDIATE`` on SQLite (readers, ``write=False``, take a plain
deferred ``BEGIN`` and read beside them in WAL mode); on PostgreSQL transactions are plain
``BEGIN`` (READ COMMITTED) and the tables take row locks (``FOR UPDATE``) where the ports ask.
PostgreSQL goes through psycopg 3 (``pip install 'regflow[postgres]'``); ``?schema=NAME`` puts
the store in its own schema, created on first use. Tables are usable only inside
``transaction()``.

A connection the PostgreSQL server dropped (restart, fail-over, ``pg_terminate_backend``) is
closed and opened anew: at once when only ``BEGIN`` or a read outside a transaction had been
sent, otherwise by the next call, the failed one raising TransientError (nothing committed). A
loss *at* COMMIT is a StoreError: the transaction may or may not have been committed, so it is
no one's to run again blindly. A SQLite database still locked after the busy timeout is a
TransientError too.
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs
import peewee as pw

from regflow.adapters import peewee_connection as connection
from regflow.adapters import peewee_report, peewee_schema
from regflow.adapters import peewee_tables as tables_
from regflow.adapters.peewee_errors import translated
from regflow.adapters.peewee_flows import Flows
from regflow.adapters.peewee_limits import Limits
from regflow.adapters.peewee_models import Tables, build_tables
from regflow.ground import ports
from regflow.ground.exceptions import StoreError
from regflow.ground.records import Cutoffs, JournalFigures

_SQLITE_PRAGMAS = (
    ("busy_timeout", 10000),  # first, so the journal_mode switch below waits for locks too
    ("journal_mode", "wal"),
    ("synchronous", "normal"),
    ("foreign_keys", 1),
)
_PAGE = 1000  # flow ids fetched per query by iter_flow_ids
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}", re.ASCII)  # PostgreSQL: 63 bytes
_CONNECT_TIMEOUT = 10  # seconds, unless the URL says connect_timeout=


def _sqlite_database(url: str) -> pw.Database:
    """The SQLite database a ``sqlite:///path`` URL names (the file is created on first use)."""
    path = url.removeprefix("sqlite:///")
    if not path or path == ":memory:" or "?" in path:
        raise ValueError(f"store URL {url!r} must name a database file (use MemoryStore)")
    # Resolved now: SQLite opens one connection per thread, later, maybe in another cwd.
    file = Path(path).resolve()
    return pw.SqliteDatabase(str(file), pragmas=_SQLITE_PRAGMAS, timeout=10)


def _postgres_database(url: str) -> tuple[pw.Database, str | None]:
    """The PostgreSQL database (psycopg 3) a ``postgresql://`` URL names, and its schema.

    Query parameters other than ``schema`` are passed to libpq (``sslmode``, ``connect_timeout``…).
    """
    parts = urlsplit(url)
    if parts.password:  # kept out of error messages
        url = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()
    database = unquote(parts.path.removeprefix("/"))
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"store URL {url!r} has an invalid port") from exc
    if not database or "/" in database:
        raise ValueError(f"store URL {url!r} must name a database: postgresql://user@host:port/db")
    params: dict[str, Any] = {"connect_timeout": _CONNECT_TIMEOUT}
    query = parse_qsl(parts.query, keep_blank_values=True)
    if len({key for key, _ in query}) != len(query):
        raise ValueError(f"store URL {url!r} repeats a query parameter")
    params.update(query)
    schema = params.pop("schema", None)
    if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"store URL {url!r}: schema must match [A-Za-z_][A-Za-z0-9_]* (63 at most)")
    if schema is not None:  # quoted, so the name keeps its case as in CREATE SCHEMA "name"
        params["options"] = f'{params.get("options", "")} -c search_path="{schema}"'.strip()
    named = {"host": parts.hostname, "port": port, "user": parts.username, "password": parts.password}
    params.update({k: unquote(v) if isinstance(v, str) else v for k, v in named.items() if v})
    if importlib.util.find_spec("psycopg") is None:
        raise StoreError("PostgreSQL stores need psycopg 3: pip install 'regflow[postgres]'")
    return pw.PostgresqlDatabase(database, prefer_psycopg3=True, **params), schema


def _flag(value: str, where: str) -> bool:
    """A yes/no setting: 1/true/yes/on or 0/false/no/off (empty: no)."""
    word = value.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"{where} must be 1 or 0, not {value!r}")


def _take_migrate(url: str) -> tuple[str, bool | None]:
    """The URL without its ``migrate=`` query parameter, and that parameter's value."""
    base, mark, query = url.partition("?")
    if not mark:
        return url, None
    pairs = parse_qsl(query, keep_blank_values=True)
    values = [value for key, value in pairs if key == "migrate"]
    if not values:
        return url, None
    if len(values) > 1:
        raise ValueError("the store URL repeats a query parameter: migrate")
    rest = "&".join(part for part in query.split("&") if part.split("=", 1)[0] != "migrate")
    return (f"{base}?{rest}" if rest else base), _flag(values[0], "the store URL's migrate=")


class Transaction:
    """The table views handed out by ``PeeweeStore.transaction()``."""

    def __init__(self, db: pw.Database, tables: Tables) -> None:
        self.flows: ports.FlowTable = Flows(db, tables)
        self.contracts: ports.ContractTable = tables_.Contracts(db, tables)
        self.logins: ports.LoginTable = tables_.Logins(db, tables)
        self.sessions: ports.SessionTable = tables_.Sessions(db, tables)
        self.codes: ports.CodeTable = tables_.Codes(db, tables)
        self.outbox: ports.OutboxTable = tables_.Outbox(db, tables)
        self.limits: ports.LimitTable = Limits(db, tables)


class PeeweeStore:
    """The Store port on a peewee database; build it with ``PeeweeStore.from_url``."""

    def __init__(self, db: pw.Database, *, url: str, begin: tuple[str, ...] = (),
                 schema: str | None = None, migrate: bool = False) -> None:
        self.url = url
        self.migrate_at_start = migrate  # apply missing schema migrations on first use
        self._db = db
        self._begin = begin  # arguments of db.atomic() for the outermost transaction
        self._schema = schema  # PostgreSQL: created on first use, the connections' search_path
        self._tables = build_tables(db)
        self._tx = Transaction(db, self._tables)
        self._ready = False
        self._ready_lock = threading.Lock()
        self._secret: bytes | None = None

    @classmethod
    def from_url(cls, url: str, *, migrate: bool | None = None) -> PeeweeStore:
        """A store for ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or
        ``postgresql://user[:password]@host[:port]/database[?schema=name]`` (or ``postgres://``).

        Nothing is opened yet: the first transaction connects, creates the tables of an empty
        database and checks the schema version of an existing one (``peewee_schema``).
        ``migrate`` (else the URL's ``migrate=1``, else the environment's ``REGFLOW_MIGRATE=1``)
        lets that first use apply missing schema migrations instead of refusing the database.
        """
        url, migrate_in_url = _take_migrate(url)
        if migrate is None:
            migrate = migrate_in_url if migrate_in_url is not None else _flag(
                os.environ.get("REGFLOW_MIGRATE", ""), "REGFLOW_MIGRATE")
        if url.startswith("sqlite:///"):
            return cls(_sqlite_database(url), url=url, begin=("IMMEDIATE",), migrate=migrate)
        if url.startswith(("postgresql://", "postgres://")):
            db, schema = _postgres_database(url)
            return cls(db, url=url, schema=schema, migrate=migrate)
        raise ValueError(
            f"unsupported store URL {url!r}: expected sqlite:///<path> or postgresql://…/<database>"
        )

    def _ensure_ready(self) -> None:
        """On first use: create the database file (SQLite) or schema (PostgreSQL) and the tables
        of an empty database, or check (and, when asked, migrate) an existing one's version."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            self._make_folder()
            # A read without locks first: DDL on existing tables still takes table locks on
            # PostgreSQL, and would deadlock with other engines already at work.
            version = connection.fresh(self._db, self._version)
            if version is None:
                with self._locked():
                    version = peewee_schema.create(self._db, self._tables, self._schema)
            if version is not None and version != peewee_schema.latest():
                peewee_schema.check(version, migrate=self.migrate_at_start)
                self._upgrade(peewee_schema.pending(version))
            self._ready = True

    def _make_folder(self) -> None:
        """SQLite: the database file's folder, made if missing."""
        if isinstance(self._db, pw.SqliteDatabase):
            try:
                Path(self._db.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the database folder: {exc}") from exc

    def _version(self) -> int | None:
        """The database's schema version; None when it has no tables yet (no locks taken)."""
        if isinstance(self._db, pw.SqliteDatabase) and not Path(self._db.database).exists():
            return None
        with translated():
            found = peewee_schema.found_tables(self._db, self._schema)
            return peewee_schema.read_version(self._db, self._tables, found)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """A transaction holding the schema lock (PostgreSQL: the schema created first)."""
        with connection.putting_aside(self._db), translated(), self._db.atomic(*self._begin):
            peewee_schema.lock(self._db, self._schema)
            if self._schema is not None:  # validated: [A-Za-z_][A-Za-z0-9_]*
                run: Any = self._db.execute_sql  # peewee is untyped
                run(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
            yield

    def _upgrade(self, steps: list[peewee_schema.Migration]) -> list[peewee_schema.Migration]:
        """Apply ``steps``, one locked transaction each; those this store applied."""
        return peewee_schema.upgrade(self._db, self._tables, self._schema, self._locked, steps)

    def migrate(self, *, dry_run: bool = False) -> peewee_schema.Report:
        """Bring the database to this code's schema version (create an empty one's tables), or
        with ``dry_run`` only say what that would do; refuses a database newer than the code."""
        with self._ready_lock:
            before = connection.fresh(self._db, self._version)
            if before is not None:
                peewee_schema.check(before, migrate=True)
            if dry_run:
                steps = [] if before is None else peewee_schema.pending(before)
                return peewee_schema.Report(before, peewee_schema.latest(), tuple(steps), True)
            if before is None:
                self._make_folder()
                with self._locked():  # None unless another process created them meanwhile
                    before = peewee_schema.create(self._db, self._tables, self._schema)
            steps = [] if before is None else self._upgrade(peewee_schema.pending(before))
            self._ready = True
        return peewee_schema.Report(before, peewee_schema.latest(), tuple(steps))

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[ports.Transaction]:
        """One transaction (a savepoint when nested); rolled back when its block raises.

        ``write=False`` is for blocks that only read: on SQLite a deferred ``BEGIN``, which
        does not wait for the write lock (in WAL mode it reads beside a writer); elsewhere the
        same transaction as for writes. Nothing stops it from writing, but on SQLite such a
        write may find the database busy at once (TransientError).
        """
        self._ensure_ready()
        block = self._db.atomic(*(self._begin if write else ()))
        connection.begin(self._db, block)
        try:
            yield self._tx
        except BaseException as exc:
            connection.roll_back(self._db, block, exc)
            raise
        connection.commit(self._db, block)

    def shared_secret(self) -> bytes:
        """The database's secret, made by whichever process asks first (insert-if-absent)."""
        if self._secret is None:
            meta = self._tables.meta
            with self.transaction(), translated():
                meta.insert(key="secret", value=secrets.token_hex(32)).on_conflict_ignore().execute()
                self._secret = bytes.fromhex(meta.get(meta.key == "secret").value)
        return self._secret

    def due_flows(self, now: datetime, limit: int) -> list[str]:
        """Ids of active flows due at ``now``, earliest first, from the next_due_at index."""
        self._ensure_ready()
        model = self._tables.flows
        query = model.select(model.id).where(model.next_due_at <= now)
        query = query.order_by(model.next_due_at, model.id).limit(limit)
        return self._ids(query)

    def _ids(self, query: Any) -> list[str]:
        """The flow ids a query selects, read outside a transaction (see ``peewee_connection.fresh``)."""
        return connection.fresh(self._db, lambda: [str(flow_id) for (flow_id,) in query.tuples()])

    def iter_flow_ids(self) -> Iterator[str]:
        """Every flow id, read page by page in id order."""
        self._ensure_ready()
        model = self._tables.flows
        after: str | None = None
        while True:
            query = model.select(model.id).order_by(model.id).limit(_PAGE)
            if after is not None:
                query = query.where(model.id > after)
            page = self._ids(query)
            yield from page
            if len(page) < _PAGE:
                return
            after = page[-1]

    def purge(self, cutoffs: Cutoffs) -> dict[str, int]:
        """Delete what retention no longer keeps, one table after the other, each by index."""
        t = self._tables
        counts: dict[str, int] = {}
        with self.transaction(), translated():
            flows = t.flows.select(t.flows.id).where(
                (t.flows.status != "active") & (t.flows.updated_at < cutoffs.flows))
            counts["idempotency"] = t.idempotency.delete().where(
                (t.idempotency.created_at < cutoffs.idempotency)
                | t.idempotency.flow_id.in_(flows)).execute()
            codes = t.codes
            spent = codes.used_at.is_null(False) | (codes.void == True) | (  # noqa: E712
                codes.expires_at < cutoffs.codes)
            counts["codes"] = codes.delete().where(
                codes.flow_id.in_(flows) | (spent & (codes.created_at < cutoffs.codes))).execute()
            counts["flows"] = t.flows.delete().where(
                (t.flows.status != "active") & (t.flows.updated_at < cutoffs.flows)).execute()
            counts["sessions"] = t.sessions.delete().where(
                t.sessions.expires_at < cutoffs.sessions).execute()
            counts["mail"] = t.outbox.delete().where(
                t.outbox.status.in_(("sent", "failed", "decoy"))
                & (t.outbox.created_at < cutoffs.mail)).execute()
            hits = t.limits
            counts["limits"] = hits.delete().where(
                (hits.at < cutoffs.limits) & (hits.until.is_null() | (hits.until < cutoffs.limits))
            ).execute()
            counts["journal"] = t.journal.delete().where(t.journal.at < cutoffs.journal).execute()
        return {field.name: int(counts[field.name]) for field in attrs.fields(Cutoffs)}

    def journal_figures(self, flow: str, *, since: datetime | None, until: datetime | None,
                        customer: str | None) -> JournalFigures:
        """The journal aggregates of ``regflow.reports.funnel``, in SQL (``peewee_report``), in one
        reading transaction."""
        with self.transaction(write=False), translated():
            return peewee_report.journal_figures(self._db, self._tables, flow, since=since,
                                                 until=until, customer=customer)

    def close(self) -> None:
        """Close this thread's connection (peewee reopens one on the next use)."""
        with translated():
            self._db.close()


_PORT_CHECK: type[ports.Store] = PeeweeStore  # mypy proves PeeweeStore fits the port
