"""Driver errors as the store's: which say a uniqueness rule refused a write, PostgreSQL gave
the transaction up, SQLite stayed busy, or the PostgreSQL connection is lost.

PostgreSQL closes a connection when it restarts, fails over or ends the backend
(``pg_terminate_backend``); psycopg then reports "the connection is closed" or fails to
connect, mostly without a SQLSTATE. SQLite is *busy* when another process held the write lock
longer than the busy timeout. Both are worth trying again (TransientError), where nothing can
have been committed: ``peewee_connection`` answers a loss at COMMIT itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import peewee as pw

from regflow.ground.exceptions import ConcurrentUpdate, ConstraintViolation, StoreError, TransientError

# PostgreSQL: the server is shutting down, crashed, or not yet accepting connections (class 57);
# class 08 is "connection exception".
_LOST_STATES = frozenset({"57P01", "57P02", "57P03"})
_SQLITE_BUSY = 5  # primary result code; extended codes (BUSY_SNAPSHOT …) keep it in the low byte


def driver_error(exc: pw.PeeweeException) -> BaseException | None:
    """The driver's exception peewee wrapped (``orig`` in peewee 4, else the first argument).
    A failure to connect met while running a statement is wrapped twice."""
    found: BaseException | None = exc
    for _ in range(3):
        if not isinstance(found, pw.PeeweeException):
            break
        orig = getattr(found, "orig", None)
        first = found.args[0] if found.args else None
        found = (orig if isinstance(orig, BaseException)
                 else first if isinstance(first, BaseException) else found.__context__)
    return found


def sqlstate(exc: pw.PeeweeException) -> str | None:
    """The SQLSTATE of a PostgreSQL error (psycopg 3: ``sqlstate``, psycopg2: ``pgcode``)."""
    driver = driver_error(exc)
    state = getattr(driver, "sqlstate", None) or getattr(driver, "pgcode", None)
    return state if isinstance(state, str) else None


def is_busy(exc: pw.PeeweeException) -> bool:
    """SQLite gave up waiting for a lock ("database is locked", SQLITE_BUSY): nothing was
    written by the statement, and the transaction can be run again."""
    driver = driver_error(exc)
    if not isinstance(driver, sqlite3.OperationalError):
        return False
    code = getattr(driver, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF == _SQLITE_BUSY
    return "database is locked" in str(driver)


def is_lost(exc: pw.PeeweeException) -> bool:
    """PostgreSQL: the connection broke, was closed by the server, or could not be opened
    (server down, restarting or unreachable). The driver reports these without a SQLSTATE
    ("the connection is closed", "connection failed: …") or in classes 08 and 57P."""
    driver = driver_error(exc)
    if not (hasattr(driver, "sqlstate") or hasattr(driver, "pgcode")):
        return False  # not a PostgreSQL driver's error
    state = sqlstate(exc)
    if state is None:
        return isinstance(exc, pw.OperationalError)
    return state.startswith("08") or state in _LOST_STATES


# Uniqueness rules: (SQLite's ``table.column`` in the error text, PostgreSQL's index or
# constraint name from the error's diagnostics, the rule). First text match wins, so specific
# columns come before the primary keys.
_CONSTRAINTS = (
    ("logins.email_key", "logins_email_key_unique", "email"),
    ("logins.account", "logins_account_unique", "account"),
    ("logins.customer_id", "logins_one_admin", "admin"),
    ("sessions.digest", "sessions_digest_unique", "digest"),
    ("accounts.account", "accounts_pkey", "seat"),
    ("idempotency_keys.", "idempotency_keys_pkey", "idempotency"),
    (".id", "_pkey", "id"),
)
# PostgreSQL gave the transaction up (serialization failure, deadlock): worth running again.
_RETRY_STATES = frozenset({"40001", "40P01"})


def _constraint_name(exc: pw.IntegrityError) -> str | None:
    """The uniqueness rule an integrity error names (None: not a uniqueness rule of ours)."""
    index = getattr(getattr(driver_error(exc), "diag", None), "constraint_name", None)
    if isinstance(index, str):  # PostgreSQL: the index or constraint, exactly
        for _, name, rule in _CONSTRAINTS:
            if index == name or (name == "_pkey" and index.endswith(name)):
                return rule
        return None
    error = str(exc)
    if "unique" in error.lower():
        for column, name, rule in _CONSTRAINTS:
            if column in error or name in error:
                return rule
    return None


@contextmanager
def translated() -> Iterator[None]:
    """Turn peewee's errors into the store's (the driver's error stays as ``__cause__``):
    ConstraintViolation for a uniqueness rule, ConcurrentUpdate when PostgreSQL gave the
    transaction up (serialization failure, deadlock), TransientError when SQLite stayed busy
    or the PostgreSQL connection is lost or cannot be opened, StoreError for everything else.

    A lost connection is transient only while nothing can have been committed: the store's
    ``transaction()`` answers a loss at COMMIT itself (see ``PeeweeStore``)."""
    try:
        yield
    except pw.IntegrityError as exc:
        name = _constraint_name(exc)
        if name is None:
            raise StoreError(f"IntegrityError: {exc}") from exc
        raise ConstraintViolation(name) from exc
    except pw.PeeweeException as exc:
        if sqlstate(exc) in _RETRY_STATES:
            raise ConcurrentUpdate(f"the database gave the transaction up: {exc}") from exc
        if is_busy(exc):
            raise TransientError(f"the database stayed busy (locked by another writer): {exc}") from exc
        if is_lost(exc):
            raise TransientError(f"the connection to the database is lost: {exc}") from exc
        raise StoreError(f"{type(exc).__name__}: {exc}") from exc
