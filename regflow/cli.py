"""The ``regflow`` command line (SPEC 4.3): run flows in the terminal, import contracts, sweep.

Errors regflow raises, and bad ``--db`` / ``--mail`` values, end a command with one line on
stderr, ``regflow: <message id>: <message>``, and exit code 2.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from regflow.bootstrap import build_engine
from regflow.contracts import (
    ContractError,
    ContractRow,
    StoreContracts,
    check_contract,
    read_contracts_csv,
)
from regflow.engine import Engine
from regflow.exceptions import RegflowError
from regflow.frontends.terminal import TerminalFrontEnd

DEFAULT_DB = "sqlite:///regflow.db"
DEFAULT_MAIL = "outbox:outbox"
DEMO_CONTRACT: dict[str, Any] = {
    "customer_id": "281234", "phone": "03-1234-5678", "licenses": 3,
    "accounts": ["abcd8-01", "abcd8-02", "abcd8-03"],
}
DEMO_ACCOUNT = "abcd8-01"
DEMO_BANNER = {
    "ja": ("regflow デモ: アカウント登録（ターミナル）\n"
           "  お客様番号 (CustomerId): {customer_id}\n  電話番号 (Tel): {phone}\n"
           "  契約数: {licenses} アカウント\n  ASP ユーザー: {accounts}\n"
           "  データベース: {db}\n  メール: {mail}\n"
           "ASP ユーザー {account} のアカウントを登録します。確認コードはメールに記載されています。"),
    "en": ("regflow demo: account registration (terminal)\n"
           "  customer number (CustomerId): {customer_id}\n  phone (Tel): {phone}\n"
           "  licenses: {licenses} accounts\n  ASP users (accounts): {accounts}\n"
           "  database: {db}\n  mail: {mail}\n"
           "Registering a login for ASP user {account}. The verification code is in the mail."),
}
MAIL_PLACES = {
    "ja": ("{path} に .eml ファイルとして書き出します", "画面に表示します（メモリ内）"),
    "en": ("written as .eml files to {path}", "shown on screen (kept in memory)"),
}
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
                     help="Store: memory:// or sqlite:///PATH."),
        click.option("--mail", default=DEFAULT_MAIL, show_default=True, metavar="SPEC",
                     help="Mail: memory, or outbox:DIR (one .eml file per mail)."),
        click.option("--hasher", type=click.Choice(["argon2", "fast"]), default="argon2",
                     show_default=True, help="Password hashing; 'fast' is for tests only."),
    )):
        command = option(command)
    return command


@contextmanager
def open_engine(db: str, mail: str, hasher: str) -> Iterator[Engine]:
    """An engine on ``db`` and ``mail``, its store closed afterwards."""
    try:
        engine = build_engine(db, mail, hasher=hasher)
    except (ValueError, OSError) as exc:
        raise CommandFailed("config_invalid", str(exc)) from exc
    try:
        yield engine
    finally:
        engine.store.close()


def _prompt(hidden: bool) -> Callable[[str], str]:
    """A prompt through click (so CliRunner can feed it); end of input is ``EOFError``."""
    def ask(text: str) -> str:
        try:
            return str(click.prompt(text, default="", show_default=False, prompt_suffix="",
                                    hide_input=hidden))
        except click.Abort as exc:
            raise EOFError from exc
    return ask


def _program() -> str:
    """How to call regflow again: ``regflow`` when that is on PATH, else the path it was run by."""
    used = sys.argv[0]
    if Path(used).name != "regflow":
        return "regflow"  # run in-process (tests) or through python -m
    on_path = shutil.which("regflow")
    return "regflow" if on_path and Path(on_path).resolve() == Path(used).resolve() else used


def terminal(engine: Engine, flow: str, *, lang: str, db: str, mail: str, hasher: str,
             poll: float | None = None) -> TerminalFrontEnd:
    """The terminal front end on click's prompts and stdout."""
    resume = [_program(), "run", flow, "--resume", "{id}"]
    for option, value, default in (("--lang", lang, "ja"), ("--db", db, DEFAULT_DB),
                                   ("--mail", mail, DEFAULT_MAIL), ("--hasher", hasher, "argon2")):
        if value != default:
            resume += [option, value]
    return TerminalFrontEnd(
        engine, lang=lang, input_fn=_prompt(hidden=False), secret_fn=_prompt(hidden=True),
        output=sys.stdout, poll=poll,
        resume_command=" ".join(shlex.quote(part).replace("{", "{{").replace("}", "}}")
                                if part != "{id}" else part for part in resume),
    )


@click.group(name="regflow", cls=_Group)
def main() -> None:
    """regflow: account registration flows as declarative state machines."""


@main.command()
@click.argument("flow")
@click.option("--account", metavar="ID", help="The ASP user (seat) in use; starts a new flow.")
@click.option("--resume", "flow_id", metavar="FLOW_ID", help="Continue a flow started earlier.")
@click.option("--lang", type=click.Choice(["ja", "en"]), default="ja", show_default=True)
@click.option("--poll", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="While a screen waits on a timer, check every SECONDS instead of asking.")
@engine_options
def run(flow: str, account: str | None, flow_id: str | None, lang: str, poll: float | None,
        db: str, mail: str, hasher: str) -> None:
    """Run FLOW in the terminal: the same screens as prompts."""
    if account is not None and flow_id is not None:
        raise click.UsageError("give --account ID to start a flow, or --resume FLOW_ID, not both")
    with open_engine(db, mail, hasher) as engine:
        front = terminal(engine, flow, lang=lang, db=db, mail=mail, hasher=hasher, poll=poll)
        if flow_id is not None:
            found = engine.get(flow_id).flow
            if found != flow:
                raise CommandFailed("flow_mismatch", f"flow {flow_id} is a {found} flow, not {flow}")
            snapshot = front.resume(flow_id)
        else:
            snapshot = front.run(flow, {"account": account} if account is not None else {})
    if snapshot is None:
        sys.exit(2)


@main.group(cls=_Group)
def contracts() -> None:
    """Contracts: customers, their phone, license count and accounts (seats)."""


@contracts.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@engine_options
def import_contracts(file: Path, db: str, mail: str, hasher: str) -> None:
    """Import FILE.csv (customer_id,phone,licenses,accounts): all of it, or nothing."""
    rows, problems = _read_contracts(file)
    if not problems:
        with open_engine(db, mail, hasher) as engine:
            try:
                imported = StoreContracts(engine.store).add_many(rows)
            except ContractError as exc:
                problems = [f"{file}: {p}" for p in exc.problems]
            else:
                click.echo(f"Imported {len(imported)} contract(s) from {file}.")
                return
    for problem in problems:
        click.echo(problem, err=True)
    raise CommandFailed("contract_invalid", f"{len(problems)} problem(s) in {file}; nothing was imported")


def _read_contracts(file: Path) -> tuple[list[ContractRow], list[str]]:
    """The rows of a contracts CSV and every problem found in it, by line number."""
    try:
        numbered = read_contracts_csv(file)
    except ContractError as exc:
        return [], exc.problems
    except UnicodeDecodeError:
        return [], [f"{file}: not UTF-8 text; save the CSV as UTF-8"]
    problems: list[str] = []
    customer_lines: dict[str, int] = {}
    account_lines: dict[str, int] = {}
    for line, row in numbered:
        customer, found = check_contract(*row)
        problems += [f"{file}:{line}: {p}" for p in found]
        if found:
            continue
        first = customer_lines.setdefault(customer.customer_id, line)
        if first != line:
            problems.append(f"{file}:{line}: customer_id: {customer.customer_id} is also on line {first}")
        for account in customer.accounts:
            first = account_lines.setdefault(account, line)
            if first != line:
                problems.append(f"{file}:{line}: accounts: {account!r} is also on line {first}")
    return [row for _, row in numbered], problems


@main.command()
@click.option("--terminal", "in_terminal", is_flag=True, default=True,
              help="Run the demo in the terminal (the default; for now the only front end).")
@click.option("--lang", type=click.Choice(["ja", "en"]), default="ja", show_default=True)
@engine_options
def demo(in_terminal: bool, lang: str, db: str, mail: str, hasher: str) -> None:
    """Seed a demo contract (customer 281234), print it, and register a login for abcd8-01."""
    del in_terminal  # the terminal is the only demo front end so far
    with open_engine(db, mail, hasher) as engine:
        customer = engine.contracts.find(DEMO_CONTRACT["customer_id"])
        if customer is None:
            customer = engine.contracts.add(**DEMO_CONTRACT)
        directory = getattr(engine.mailer, "directory", None)
        where, in_memory = MAIL_PLACES[lang]
        click.echo(DEMO_BANNER[lang].format(
            customer_id=customer.customer_id, phone=customer.phone, licenses=customer.licenses,
            accounts=" ".join(customer.accounts), db=db, account=DEMO_ACCOUNT,
            mail=where.format(path=Path(directory).resolve()) if directory else in_memory,
        ))
        front = terminal(engine, "registration", lang=lang, db=db, mail=mail, hasher=hasher)
        snapshot = front.run("registration", {"account": DEMO_ACCOUNT})
    if snapshot is None:
        sys.exit(2)


@main.command()
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              metavar="SECONDS", help="Pause between passes that found nothing to do.")
@click.option("--batch", type=click.IntRange(min=1), default=100, show_default=True,
              help="Flows and mails handled per pass.")
@engine_options
def worker(once: bool, interval: float, batch: int, db: str, mail: str, hasher: str) -> None:
    """Apply due timers and deliver queued mail, in a loop (several workers may run at once)."""
    with open_engine(db, mail, hasher) as engine:
        try:
            while True:
                flows = engine.sweep(batch)
                mails = engine.deliver(batch)
                if flows or mails:
                    click.echo(f"timers applied to {flows} flow(s); {mails} mail(s) delivered")
                if once:
                    return
                if not (flows or mails):
                    time.sleep(interval)
        except KeyboardInterrupt:
            click.echo("worker stopped")


@main.command()
@engine_options
def sweep(db: str, mail: str, hasher: str) -> None:
    """Apply due timers and expiries, and deliver queued mail, once."""
    with open_engine(db, mail, hasher) as engine:
        flows = engine.sweep()
        mails = engine.deliver()
    click.echo(f"Applied due timers to {flows} flow(s); delivered {mails} mail(s).")
