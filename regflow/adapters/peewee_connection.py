"""A dropped connection and the transaction around it: beginning, rolling back, committing.

PostgreSQL closes a connection when it restarts, fails over or ends the backend
(``pg_terminate_backend``). The driver then marks the connection closed, but peewee keeps its own
flag, which still says open: every later statement of that thread would fail with "the
connection is closed". ``put_aside`` closes such a connection in peewee's eyes too, so the next
statement opens a new one. Where nothing can have been sent but ``BEGIN`` or a read, the
statement is sent again at once on a new connection (``fresh``); a loss inside a transaction is
a TransientError (the server rolled it back); a loss *at* COMMIT is a StoreError, since the
transaction may or may not have been committed. (peewee's ``ReconnectMixin`` lists MySQL's
errors only, advises against PostgreSQL, and retries only outside transactions.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import peewee as pw

from regflow.adapters.peewee_errors import is_lost, translated
from regflow.ground.exceptions import RegflowError, StoreError, TransientError

_T = TypeVar("_T")


def is_broken(db: pw.Database) -> bool:
    """Whether this thread's connection is open in peewee's eyes but closed in the driver's
    (psycopg sets ``closed`` once the server is gone; sqlite3 connections have no such flag)."""
    if db.is_closed():
        return False
    connection: Callable[[], Any] = db.connection  # peewee is untyped; open: no connecting
    return bool(getattr(connection(), "closed", False))


def put_aside(db: pw.Database) -> bool:
    """Close this thread's connection if the driver found it dead, so that the next statement
    opens a new one; not inside a transaction (peewee refuses to close one). Whether it did."""
    if db.transaction_depth() or not is_broken(db):
        return False
    try:
        db.close()
    except pw.PeeweeException:
        db.dispose()  # forget it without asking the dead connection anything
    return True


@contextmanager
def putting_aside(db: pw.Database) -> Iterator[None]:
    """Put a connection found dead aside when the block fails, for the next call."""
    try:
        yield
    except BaseException:
        put_aside(db)
        raise


def fresh(db: pw.Database, run: Callable[[], _T]) -> _T:
    """``run`` (statements that change nothing unless they succeed: ``BEGIN``, reads outside a
    transaction), translated; when it finds this thread's connection dropped by the server, once
    more on a new connection. A dead connection is never kept."""
    had_connection = not db.is_closed()
    try:
        with translated():
            return run()
    except TransientError:
        if not (put_aside(db) and had_connection):
            raise
    with putting_aside(db), translated():
        return run()


def begin(db: pw.Database, block: Any) -> None:
    """Enter ``block`` (peewee's ``atomic()``): a transaction, or a savepoint inside one. A
    connection the server dropped while it was idle shows only now, at ``BEGIN``: nothing else
    was sent on it, so begin once more on a new connection."""
    if db.transaction_depth():
        with translated():
            block.__enter__()
        return
    put_aside(db)  # found dead by an earlier call of this thread
    fresh(db, block.__enter__)


def roll_back(db: pw.Database, block: Any, exc: BaseException) -> None:
    """Leave ``block`` after it raised ``exc``. When the connection is gone, so is the
    transaction (the server rolls back what a lost connection held): ``exc`` stands, and the
    dead connection is put aside for the next call."""
    try:
        with translated():
            block.__exit__(type(exc), exc, exc.__traceback__)
    except RegflowError:
        if not is_broken(db):
            raise
    finally:
        put_aside(db)


def commit(db: pw.Database, block: Any) -> None:
    """Leave ``block`` normally: COMMIT (or RELEASE the savepoint). A connection lost before
    COMMIT was sent is a TransientError (rolled back); one lost *at* COMMIT a StoreError."""
    outermost = db.transaction_depth() == 1
    if outermost and not db.is_connection_usable():
        if is_broken(db):
            error: RegflowError = TransientError(
                "the connection to the database was lost in this transaction: rolled back")
        else:
            # PostgreSQL aborted the transaction on a failed statement someone caught, and
            # would answer COMMIT with a silent rollback: say so instead.
            error = StoreError("a statement failed in this transaction: rolled back")
        roll_back(db, block, error)
        raise error
    try:
        with translated():
            block.__exit__(None, None, None)
    except RegflowError as exc:
        dropped = put_aside(db)
        cause = exc.__cause__
        if not (outermost and (dropped or (isinstance(cause, pw.PeeweeException)
                                           and is_lost(cause)))):
            raise
        raise StoreError(
            "the connection to the database was lost at COMMIT: the transaction may or may "
            "not have been committed") from exc
