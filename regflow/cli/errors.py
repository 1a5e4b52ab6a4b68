"""One error line per failed command: ``regflow: <message id>: <message>`` on stderr, exit 2.

The message is in the language asked: the command's ``--lang`` (or ``REGFLOW_LANG``), else
English. Each message id has a template ``cli.error.<id>`` in the locale files; ``{detail}`` in
it is the technical detail as the code wrote it (a file name, a URL, a driver's words), which
stays as it is. A bad option or argument (click's usage errors) is ``usage``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from typing import Any

import click

from regflow.ground.catalog import Catalog

FALLBACK_LANGUAGE = "en"
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
LANG_ENV = "REGFLOW_LANG"


class _State:
    """What the running command line asked for: its arguments, and its ``--lang`` once parsed."""

    args: Sequence[str] = ()
    lang: str | None = None


STATE = _State()


def start(args: Sequence[str] | None) -> None:
    """Note the arguments of a new command line (before they are parsed)."""
    STATE.args = list(sys.argv[1:] if args is None else args)
    STATE.lang = None


def _asked(value: str | None) -> str | None:
    return value if value in ("ja", "en") else None


def language() -> str:
    """The language of error lines: the parsed ``--lang``; before parsing (a bad option), a
    ``--lang ja|en`` anywhere on the command line; else ``REGFLOW_LANG``; else English."""
    if STATE.lang is not None:
        return STATE.lang
    args = list(STATE.args)
    for i, arg in enumerate(args):
        if arg == "--":
            break
        value = arg.partition("=")[2] if arg.startswith("--lang=") else (
            args[i + 1] if arg == "--lang" and i + 1 < len(args) else None)
        if _asked(value):
            return str(value)
    return _asked(os.environ.get(LANG_ENV, "").strip().lower()) or FALLBACK_LANGUAGE


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def localized(message_id: str, detail: str, lang: str | None = None, **params: Any) -> str:
    """The message of ``message_id`` in ``lang`` (default: :func:`language`): its template
    (``cli.usage.<kind>`` for a usage error of that kind, else ``cli.error.<id>``) over
    ``detail`` and ``params``; else the screens' text of the id (``message.<id>``) with the
    detail in brackets; else the detail itself when it is Japanese already (a command that
    localized its own message); else the generic ``cli.error.error``."""
    catalog = Catalog(lang or language())
    kind = params.get("kind")
    template = catalog.find(*([f"cli.usage.{kind}"] if kind else []), f"cli.error.{message_id}")
    if template is None:
        shown = catalog.find(f"message.{message_id}")
        if shown is not None and "{" not in shown:
            return one_line(f"{shown}（{detail}）" if catalog.lang == "ja" else f"{shown} ({detail})")
        if catalog.lang != FALLBACK_LANGUAGE and JAPANESE.search(detail):
            return one_line(detail)  # already in the language asked by the code that raised it
        template = catalog.find("cli.error.error") or "{detail}"
    return one_line(template.format_map({**params, "detail": detail}))


class CommandFailed(click.ClickException):
    """A command could not do its work: one line on stderr, exit code 2."""

    exit_code = 2

    def __init__(self, message_id: str, message: str, **params: Any) -> None:
        self.message_id = message_id
        self.params = params
        super().__init__(one_line(message))

    def line(self, lang: str | None = None) -> str:
        """``regflow: <message id>: <message>`` in ``lang`` (default: the language asked)."""
        return f"regflow: {self.message_id}: {localized(self.message_id, self.message, lang, **self.params)}"

    def show(self, file: Any = None) -> None:
        click.echo(self.line(), err=True)


def _param_name(param: click.Parameter | None, hint: str | None) -> str:
    if hint:
        return hint.strip("'")
    if param is None:
        return "?"
    if isinstance(param, click.Option):
        return "/".join(param.opts)
    return str(param.human_readable_name)


def from_click(exc: click.ClickException) -> CommandFailed:
    """A click error (bad option, value, argument or command) as a ``usage`` error."""
    detail = one_line(exc.format_message())
    if isinstance(exc, click.NoSuchOption):
        close = ", ".join(exc.possibilities or ())
        return CommandFailed("usage", detail, kind="no_such_option", name=exc.option_name,
                             hint=f" ({close})" if close else "")
    if isinstance(exc, click.MissingParameter):
        return CommandFailed("usage", detail, kind="missing",
                             name=_param_name(exc.param, exc.param_hint if isinstance(exc.param_hint, str)
                                              else None))
    if isinstance(exc, click.BadParameter):
        hint = exc.param_hint if isinstance(exc.param_hint, str) else None
        return CommandFailed("usage", detail, kind="bad_value", name=_param_name(exc.param, hint),
                             why=one_line(exc.message))
    return CommandFailed("usage", detail, kind="other")
