"""``regflow run``: the terminal front end on click's prompts; the terminal demo."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from regflow.cli.base import (
    DEFAULT_DB,
    DEFAULT_MAIL,
    CommandFailed,
    engine_options,
    main,
    open_engine,
    product_options,
)
from regflow.engine import Engine
from regflow.frontends.terminal import TerminalFrontEnd
from regflow.ground.records import Customer
from regflow.ground.screens import Snapshot

DEMO_CONTRACT: dict[str, Any] = {
    "customer_id": "281234", "phone": "03-1234-5678", "licenses": 3,
    "accounts": ["abcd8-01", "abcd8-02", "abcd8-03"],
}
DEMO_ACCOUNT = "abcd8-01"
DEMO_BANNER = {
    "ja": ("regflow デモ: アカウント登録（ターミナル）\n"
           "  お客様番号 (CustomerId): {customer_id}\n  電話番号 (Tel): {phone}\n"
           "  契約数: {licenses} アカウント\n  ASP ユーザー: {accounts}\n"
           "  製品名: {product}\n  差出人 (From): {sender}\n"
           "  データベース: {db}\n  メール: {mail}\n"
           "ASP ユーザー {account} のアカウントを登録します。確認コードはメールに記載されています。"),
    "en": ("regflow demo: account registration (terminal)\n"
           "  customer number (CustomerId): {customer_id}\n  phone (Tel): {phone}\n"
           "  licenses: {licenses} accounts\n  ASP users (accounts): {accounts}\n"
           "  product: {product}\n  sender (From): {sender}\n"
           "  database: {db}\n  mail: {mail}\n"
           "Registering a login for ASP user {account}. The verification code is in the mail."),
}
MAIL_PLACES = {
    "ja": ("{path} に .eml ファイルとして書き出します", "画面に表示します（メモリ内）"),
    "en": ("written as .eml files to {path}", "shown on screen (kept in memory)"),
}


def seed_demo(engine: Engine) -> Customer:
    """The demo contract, added unless it is there already."""
    customer = engine.contracts.find(DEMO_CONTRACT["customer_id"])
    return customer if customer is not None else engine.contracts.add(**DEMO_CONTRACT)


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


def sender_of(engine: Engine) -> str:
    """The From of the engine's mail, as the demo banners show it."""
    return str(getattr(engine.services.composer, "sender", ""))


def terminal(engine: Engine, flow: str, *, lang: str, db: str, mail: str, hasher: str,
             poll: float | None = None, product: str | None = None,
             mail_from: str | None = None) -> TerminalFrontEnd:
    """The terminal front end on click's prompts and stdout."""
    resume = [_program(), "run", flow, "--resume", "{id}"]
    # Only what was given as an option, not what came from the environment (which the resumed
    # run reads again, and which may hold a password in a database URL).
    for option, value, default, env in (
            ("--lang", lang, "ja", "REGFLOW_LANG"), ("--db", db, DEFAULT_DB, "REGFLOW_DB"),
            ("--mail", mail, DEFAULT_MAIL, "REGFLOW_MAIL"), ("--hasher", hasher, "argon2", "REGFLOW_HASHER"),
            ("--product", product, None, "REGFLOW_PRODUCT"),
            ("--mail-from", mail_from, None, "REGFLOW_MAIL_FROM")):
        if value is not None and value != default and value != (os.environ.get(env) or None):
            resume += [option, value]
    resume.append("--flow-token={token}")  # the flow's secret: resuming needs it
    return _CommandFrontEnd(
        engine, lang=lang, input_fn=_prompt(hidden=False), secret_fn=_prompt(hidden=True),
        output=sys.stdout, poll=poll,
        resume_command=" ".join(shlex.quote(part).replace("{", "{{").replace("}", "}}")
                                if part not in ("{id}", "--flow-token={token}") else part
                                for part in resume),
    )


class _CommandFrontEnd(TerminalFrontEnd):
    """The terminal front end of ``regflow run``: a flow that cannot start is the command's
    error (one line on stderr, exit 2), not a line among the screens."""

    def run(self, flow: str, context: Mapping[str, Any]) -> Snapshot | None:
        mark = self._mail_mark()
        snapshot = self.engine.start(flow, context, lang=self.lang)  # errors end the command
        self._report_mail(mark)
        return self.drive(snapshot)


@main.command()
@click.argument("flow")
@click.option("--account", metavar="ID", help="The ASP user (seat) in use; starts a new flow.")
@click.option("--resume", "flow_id", metavar="FLOW_ID", help="Continue a flow started earlier.")
@click.option("--flow-token", metavar="TOKEN", envvar="REGFLOW_FLOW_TOKEN",
              help="The flow token printed when the flow was stopped: needed with --resume "
                   "(env REGFLOW_FLOW_TOKEN).")
@click.option("--lang", type=click.Choice(["ja", "en"]), default="ja", show_default=True,
              envvar="REGFLOW_LANG", help="Language of the screens and messages.")
@click.option("--poll", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="While a screen waits on a timer, check every SECONDS instead of asking.")
@engine_options
@product_options
def run(flow: str, account: str | None, flow_id: str | None, flow_token: str | None, lang: str,
        poll: float | None, db: str, mail: str, hasher: str, product: str | None,
        mail_from: str | None) -> None:
    """Run FLOW in the terminal: the same screens as prompts."""
    if account is not None and flow_id is not None:
        raise CommandFailed("usage", "give --account ID to start a flow, or --resume FLOW_ID, not both",
                            kind="account_and_resume")
    with open_engine(db, mail, hasher, product=product, mail_from=mail_from) as engine:
        front = terminal(engine, flow, lang=lang, db=db, mail=mail, hasher=hasher, poll=poll,
                         product=product, mail_from=mail_from)
        if flow_id is not None:
            if not flow_token:
                raise CommandFailed("flow_token_required",
                                    "--resume needs the flow's token: --flow-token TOKEN "
                                    "(or REGFLOW_FLOW_TOKEN), as printed when the flow stopped")
            found = engine.get(flow_id, token=flow_token).flow
            if found != flow:
                raise CommandFailed("flow_mismatch", f"flow {flow_id} is a {found} flow, not {flow}")
            snapshot = front.resume(flow_id, flow_token)
        else:
            snapshot = front.run(flow, {"account": account} if account is not None else {})
    if snapshot is None:
        sys.exit(2)


def run_terminal_demo(lang: str, db: str, mail: str, hasher: str, *, product: str | None = None,
                      mail_from: str | None = None) -> None:
    """Seed the demo contract, print it, and register a login for abcd8-01 in the terminal."""
    with open_engine(db, mail, hasher, product=product, mail_from=mail_from) as engine:
        customer = seed_demo(engine)
        directory = getattr(engine.mailer, "directory", None)
        where, in_memory = MAIL_PLACES[lang]
        click.echo(DEMO_BANNER[lang].format(
            customer_id=customer.customer_id, phone=customer.phone, licenses=customer.licenses,
            accounts=" ".join(customer.accounts), db=db, account=DEMO_ACCOUNT,
            product=engine.services.product, sender=sender_of(engine),
            mail=where.format(path=Path(directory).resolve()) if directory else in_memory,
        ))
        front = terminal(engine, "registration", lang=lang, db=db, mail=mail, hasher=hasher,
                         product=product, mail_from=mail_from)
        snapshot = front.run("registration", {"account": DEMO_ACCOUNT})
    if snapshot is None:
        sys.exit(2)
