"""What every ``regflow`` command shares: engine options, opening an engine, logging, one-line
errors, ``-h``/``--help``, ``--version`` and the environment variables.

Errors regflow raises, bad options and bad ``--db`` / ``--mail`` values end a command with one
line on stderr, ``regflow: <message id>: <message>``, and exit code 2 (regflow.cli.errors).
Every option can also be set by an environment variable: the shared ones by their own name
(``REGFLOW_DB``, ``REGFLOW_MAIL``, ``REGFLOW_LANG``, ``REGFLOW_LOG_LEVEL`` ...), the others by
``REGFLOW_<COMMAND>_<OPTION>`` (click's ``auto_envvar_prefix``); docs/configuration.md lists them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from regflow.cli import errors, logs
from regflow.cli.errors import CommandFailed
from regflow.engine import Engine
from regflow.ground.exceptions import RegflowError

DEFAULT_DB = "sqlite:///regflow.db"
DEFAULT_MAIL = "outbox:outbox"
ENV_PREFIX = "REGFLOW"
F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("regflow.cli")

__all__ = ["DEFAULT_DB", "DEFAULT_MAIL", "CommandFailed", "engine_options", "main", "open_engine",
           "product_options"]


def _version() -> str:
    """``regflow.__version__``, else the installed distribution's version."""
    import regflow

    found = getattr(regflow, "__version__", None)
    if isinstance(found, str):
        return found
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("regflow")
    except PackageNotFoundError:
        return "unknown"


def _common_options() -> list[click.Option]:
    """What every command takes: the language of its messages and its logging."""
    return [
        click.Option(["--lang"], type=click.Choice(["ja", "en"]), envvar="REGFLOW_LANG",
                     help="Language of error messages (default: en)."),
        click.Option(["--log-level"], type=click.Choice(logs.LEVELS, case_sensitive=False),
                     default=logs.DEFAULT_LEVEL, show_default=True, envvar="REGFLOW_LOG_LEVEL",
                     help="Log records of this level and above go to stderr."),
        click.Option(["--log-json"], is_flag=True, envvar="REGFLOW_LOG_JSON",
                     help="Log as JSON lines (time, level, logger, message), for log shippers."),
    ]


def _convert(exc: Exception) -> CommandFailed:
    """Any error of a command as its one line: regflow's own by message id, click's as usage,
    anything else as ``unexpected_error`` (its traceback logged at debug level)."""
    if isinstance(exc, CommandFailed):
        return exc
    if isinstance(exc, RegflowError):
        return CommandFailed(exc.message_id, str(exc))
    if isinstance(exc, click.ClickException):
        return errors.from_click(exc)
    log.debug("unexpected error", exc_info=exc)
    return CommandFailed("unexpected_error", f"{type(exc).__name__}: {exc}")


class _Command(click.Command):
    """A command with the common options; it sets up logging and the language of its errors
    before it runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = {p.name for p in self.params}
        self._added = [o for o in _common_options() if o.name not in names]
        self.params.extend(self._added)

    def invoke(self, ctx: click.Context) -> Any:
        for option in self._added:
            value = ctx.params.pop(option.name or "", None)
            ctx.meta[f"regflow.{option.name}"] = value
        lang = ctx.params.get("lang", ctx.meta.get("regflow.lang"))
        source = ctx.get_parameter_source("lang")
        asked = source is not None and source is not click.core.ParameterSource.DEFAULT
        # Errors are in English unless a language was asked for (not a command's default).
        errors.STATE.lang = lang if asked and lang in ("ja", "en") else errors.FALLBACK_LANGUAGE
        with logs.to_stderr(str(ctx.meta.get("regflow.log_level") or logs.DEFAULT_LEVEL),
                            json_lines=bool(ctx.meta.get("regflow.log_json"))):
            try:
                return super().invoke(ctx)
            except (click.exceptions.Exit, click.Abort):
                raise
            except Exception as exc:  # converted here, while the command's logging is on
                raise _convert(exc) from exc


class _Group(click.Group):
    """A group whose commands get the common options and end with one line on any error."""

    command_class = _Command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            raise _convert(exc) from exc

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except (click.exceptions.Exit, click.Abort):
            raise
        except click.ClickException as exc:
            raise _convert(exc) from exc

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             *rest: Any, **extra: Any) -> Any:
        errors.start(args)
        return super().main(args, prog_name or "regflow", *rest, **extra)


_Group.group_class = _Group


def engine_options(command: F) -> F:
    """``--db``, ``--mail`` and ``--hasher``: what a command builds its engine from."""
    for option in reversed((
        click.option("--db", default=DEFAULT_DB, show_default=True, metavar="URL", envvar="REGFLOW_DB",
                     help="Store: memory://, sqlite:///PATH (relative to the current folder) or "
                          "postgresql://USER@HOST/DB."),
        click.option("--mail", default=DEFAULT_MAIL, show_default=True, metavar="SPEC",
                     envvar="REGFLOW_MAIL",
                     help=("Mail: memory, outbox:DIR (one .eml file per mail; DIR relative to the "
                           "current folder), smtp://HOST:PORT[?starttls=1] or smtps://HOST:PORT.")),
        click.option("--hasher", type=click.Choice(["argon2", "fast"]), default="argon2",
                     show_default=True, envvar="REGFLOW_HASHER",
                     help="Password hashing; 'fast' is for tests only."),
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
        engine = Engine.from_url(db, mail, hasher=hasher, product=product, mail_from=mail_from,
                              echo_mail=echo_mail)
    except (ValueError, OSError) as exc:
        raise CommandFailed("config_invalid", str(exc)) from exc
    try:
        yield engine
    finally:
        engine.store.close()


@click.group(name="regflow", cls=_Group,
             context_settings={"auto_envvar_prefix": ENV_PREFIX, "help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="regflow", message="%(prog)s %(version)s")
def main() -> None:
    """regflow: account registration flows as declarative state machines.

    Every option can also be given by an environment variable: REGFLOW_DB, REGFLOW_MAIL,
    REGFLOW_HASHER, REGFLOW_LANG, REGFLOW_LOG_LEVEL, REGFLOW_LOG_JSON, REGFLOW_PRODUCT,
    REGFLOW_MAIL_FROM, and REGFLOW_<COMMAND>_<OPTION> for the others (e.g.
    REGFLOW_WORKER_INTERVAL). Errors are one line on stderr, exit code 2."""
