"""What every ``regflow`` command shares: engine options, opening an engine, one-line errors.

Errors regflow raises, and bad ``--db`` / ``--mail`` values, end a command with one line on
stderr, ``regflow: <message id>: <message>``, and exit code 2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from regflow.bootstrap import build_engine
from regflow.engine import Engine
from regflow.exceptions import RegflowError

DEFAULT_DB = "sqlite:///regflow.db"
DEFAULT_MAIL = "outbox:outbox"
F = TypeVar("F", bound=Callable[..., Any])


class CommandFailed(click.ClickException):
    """A command could not do its work: one line on stderr, exit code 2."""

    exit_code = 2

    def __init__(self, message_id: str, message: str) -> None:
        self.message_id = message_id
        super().__init__(" ".join(message.split()))

    def show(self, file: Any = None) -> None:
        """``regflow: <message id>: <message>`` on stderr."""
        click.echo(f"regflow: {self.message_id}: {self.message}", err=True)


class _Group(click.Group):
    """A group whose commands turn ``RegflowError`` into ``CommandFailed``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RegflowError as exc:
            raise CommandFailed(exc.message_id, str(exc)) from exc


def engine_options(command: F) -> F:
    """``--db``, ``--mail`` and ``--hasher``: what a command builds its engine from."""
    for option in reversed((
        click.option("--db", default=DEFAULT_DB, show_default=True, metavar="URL",
                     help="Store: memory://, sqlite:///PATH or postgresql://USER@HOST/DB."),
        click.option("--mail", default=DEFAULT_MAIL, show_default=True, metavar="SPEC",
                     help=("Mail: memory, outbox:DIR (one .eml file per mail), "
                           "smtp://HOST:PORT[?starttls=1] or smtps://HOST:PORT.")),
        click.option("--hasher", type=click.Choice(["argon2", "fast"]), default="argon2",
                     show_default=True, help="Password hashing; 'fast' is for tests only."),
    )):
        command = option(command)
    return command


def product_options(command: F) -> F:
    """``--product`` and ``--mail-from`` (or ``REGFLOW_PRODUCT`` and ``REGFLOW_MAIL_FROM``): the
    name pages and mails show, and the sender. Every command that runs steps takes them; every
    process of a deployment should be given the same."""
    for option in reversed((
        click.option("--product", metavar="TEXT", envvar="REGFLOW_PRODUCT",
                     help="Product name shown on the pages and in the mails, 1-100 printable "
                          "characters (env REGFLOW_PRODUCT; default: regflow)."),
        click.option("--mail-from", metavar="ADDRESS", envvar="REGFLOW_MAIL_FROM",
                     help="From of every mail, e.g. 'Example <no-reply@example.jp>' (env "
                          "REGFLOW_MAIL_FROM; default: the product name on "
                          "no-reply@regflow.invalid)."),
    )):
        command = option(command)
    return command


@contextmanager
def open_engine(db: str, mail: str, hasher: str, *, product: str | None = None,
                mail_from: str | None = None, echo_mail: bool = False) -> Iterator[Engine]:
    """An engine on ``db`` and ``mail``, its store closed afterwards; a bad option or
    environment variable ends the command with ``config_invalid``."""
    try:
        engine = build_engine(db, mail, hasher=hasher, product=product, mail_from=mail_from,
                              echo_mail=echo_mail)
    except (ValueError, OSError) as exc:
        raise CommandFailed("config_invalid", str(exc)) from exc
    try:
        yield engine
    finally:
        engine.store.close()


@click.group(name="regflow", cls=_Group)
def main() -> None:
    """regflow: account registration flows as declarative state machines."""
