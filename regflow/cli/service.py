"""``regflow serve``, ``regflow demo``, ``regflow worker`` and ``regflow sweep``."""

from __future__ import annotations

import ipaddress
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import attrs
import click

from regflow.adapters.smtp import redact_url
from regflow.cli.base import CommandFailed, engine_options, main, open_engine, product_options
from regflow.cli.terminal import DEMO_ACCOUNT, run_terminal_demo, seed_demo, sender_of
from regflow.engine import Engine
from regflow.ground.exceptions import ConcurrentUpdate, RegflowError, StoreError, TransientError
from regflow.runtime.retrying import Backoff
from regflow.runtime.sweeping import SweepReport

PARTIAL = 3  # exit status of a pass that ran but set flows aside (docs/operations.md)
DEMO_DB = "sqlite:///demo/regflow.db"
DEMO_MAIL = "outbox:demo/outbox"
WEB_BANNER = {
    "ja": ("regflow デモ（ブラウザ）\n"
           "  URL: {url}\n  お客様番号 (CustomerId): {customer_id}\n  電話番号 (Tel): {phone}\n"
           "  契約数: {licenses} アカウント\n  ASP ユーザー: {accounts}\n"
           "  製品名: {product}\n  差出人 (From): {sender}\n"
           "  データベース: {db}\n  メール: {mail}（送ったメールはここにも表示します）\n"
           "ブラウザで {url} を開いてください。終了は Ctrl+C。"),
    "en": ("regflow demo (browser)\n"
           "  URL: {url}\n  customer number (CustomerId): {customer_id}\n  phone (Tel): {phone}\n"
           "  licenses: {licenses} accounts\n  ASP users (accounts): {accounts}\n"
           "  product: {product}\n  sender (From): {sender}\n"
           "  database: {db}\n  mail: {mail} (every mail is also shown here)\n"
           "Open {url} in a browser. Ctrl+C stops."),
}


def is_loopback(host: str | None) -> bool:
    """Whether a host name or address stays on this machine (no host: a local socket/file)."""
    if not host or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_secret(reason: str) -> None:
    """Refuse to run for real without ``REGFLOW_SECRET`` (its length is checked on use)."""
    if not os.environ.get("REGFLOW_SECRET"):
        raise CommandFailed(
            "secret_required",
            f"{reason}: set REGFLOW_SECRET (at least 32 bytes, the same in every process), e.g. "
            "from `python -c \"import secrets; print(secrets.token_urlsafe(32))\"`; without it the "
            "key of the code digests would be kept in the database")


def server_options(command: click.decorators.FC) -> click.decorators.FC:
    """``--host``, ``--port`` and ``--relay/--no-relay``."""
    command = click.option("--relay/--no-relay", default=True, show_default=True,
                           help="Apply due timers and deliver mail in this process.")(command)
    command = click.option("--port", type=click.IntRange(0, 65535), default=8000,
                           show_default=True, help="TCP port to listen on.")(command)
    return click.option("--host", default="127.0.0.1", show_default=True,
                        help="Address to listen on (serve: beyond loopback, REGFLOW_SECRET is "
                             "required).")(command)


@main.command()
@server_options
@click.option("--trusted-proxies", type=click.IntRange(min=0), default=0, show_default=True,
              help="Reverse proxies in front whose X-Forwarded-* headers are believed.")
@engine_options
@product_options
def serve(host: str, port: int, relay: bool, trusted_proxies: int, db: str, mail: str,
          hasher: str, product: str | None, mail_from: str | None) -> None:
    """Serve the HTML pages and the JSON API on a production WSGI server (waitress).

    On a host other than loopback, ``REGFLOW_SECRET`` is required."""
    from regflow.web.server import serve as serve_app

    if not is_loopback(host):
        require_secret(f"serving on {host}, beyond this machine")
    with open_engine(db, mail, hasher, product=product, mail_from=mail_from) as engine:
        click.echo(f"regflow: serving on http://{host}:{port}/ (store {redact_url(db)}, "
                   f"mail {redact_url(mail)})")
        serve_app(engine, host=host, port=port, relay=relay, trusted_proxies=trusted_proxies)


def _fresh_sqlite(db: str) -> None:
    """Remove a SQLite demo database (and its WAL files) so the demo starts afresh."""
    if not db.startswith("sqlite:///"):
        raise CommandFailed("config_invalid", "the demo runs on a SQLite file: sqlite:///PATH")
    path = Path(urlsplit(db).path[1:] if not db.startswith("sqlite:////") else db[len("sqlite:///"):])
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)


@main.command()
@click.option("--terminal", "in_terminal", is_flag=True,
              help="Register in the terminal instead of serving the web pages.")
@click.option("--lang", type=click.Choice(["ja", "en"]), default="ja", show_default=True,
              envvar="REGFLOW_LANG", help="Language of the pages and messages.")
@click.option("--keep", is_flag=True, help="Keep the demo database instead of starting afresh.")
@server_options
@click.option("--db", default=DEMO_DB, show_default=True, metavar="URL",
              help="The demo's store (a SQLite file, emptied unless --keep); not REGFLOW_DB.")
@click.option("--mail", default=DEMO_MAIL, show_default=True, metavar="SPEC",
              help="The demo's mail; not REGFLOW_MAIL.")
@click.option("--hasher", type=click.Choice(["argon2", "fast"]), default="argon2", show_default=True,
              help="Password hashing; 'fast' is for tests only.")
@product_options
def demo(in_terminal: bool, lang: str, keep: bool, host: str, port: int, relay: bool,
         db: str, mail: str, hasher: str, product: str | None, mail_from: str | None) -> None:
    """Serve the pages on a fresh SQLite file with a demo contract (customer 281234) seeded."""
    if in_terminal:
        run_terminal_demo(lang, db, mail, hasher, product=product, mail_from=mail_from)
        return
    from regflow.web.server import serve as serve_app

    if not keep:
        _fresh_sqlite(db)
    with open_engine(db, mail, hasher, product=product, mail_from=mail_from,
                     echo_mail=True) as engine:
        customer = seed_demo(engine)
        directory = getattr(engine.mailer, "directory", None)
        url = f"http://{host}:{port}/?account={DEMO_ACCOUNT}&lang={lang}"
        click.echo(WEB_BANNER[lang].format(
            url=url, customer_id=customer.customer_id, phone=customer.phone,
            licenses=customer.licenses, accounts=" ".join(customer.accounts), db=db,
            product=engine.services.product, sender=sender_of(engine),
            mail=Path(directory).resolve() if directory else redact_url(mail)))
        serve_app(engine, host=host, port=port, relay=relay)


@main.command()
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              metavar="SECONDS", help="Pause between passes that found nothing to do.")
@click.option("--batch", type=click.IntRange(min=1), default=100, show_default=True,
              help="Flows and mails handled per pass.")
@click.option("--purge-every", type=click.FloatRange(min=0), default=3600.0, show_default=True,
              metavar="SECONDS", help="Purge what retention no longer keeps this often (0: never).")
@engine_options
@product_options
def worker(once: bool, interval: float, batch: int, purge_every: float, db: str, mail: str,
           hasher: str, product: str | None, mail_from: str | None) -> None:
    """Apply due timers, deliver queued mail and purge old rows, in a loop (several workers may
    run at once). Failed delivery attempts and dead mail are counted in each pass's line and
    logged on stderr; with --once they make the exit status 3. With a database beyond this
    machine, ``REGFLOW_SECRET`` is required; give it the --product and --mail-from of the web
    processes (timers may send mail).

    A flow that cannot be stepped (e.g. its definition version is not loaded here) is set
    aside and tried again later, one line on stderr each time; the pass goes on. With --once
    the exit status is then 3. A pass the database fails (away, restarting, busy) is tried
    again after 1 s, doubling to 30 s, until it works: one line on stderr when that starts and
    one when it ends; with --once it ends the command (status 2)."""
    if not is_loopback(urlsplit(db).hostname) and not db.startswith("sqlite:"):
        require_secret("working on a database beyond this machine")
    with open_engine(db, mail, hasher, product=product, mail_from=mail_from) as engine:
        purged_at = -float("inf")
        backoff = Backoff(initial=1.0, maximum=30.0)
        try:
            while True:
                try:
                    before = Failures.of(engine)
                    report = engine.sweep_pass(batch)
                    flows, aside = report.changed, len(report.set_aside)
                    mails = engine.deliver(batch)
                    failed = Failures.of(engine) - before
                    if flows or mails or aside or failed:
                        click.echo(f"timers applied to {flows} flow(s); {mails} mail(s) delivered"
                                   + failed.summary()
                                   + (f"; {aside} flow(s) set aside" if aside else ""))
                    _report_set_aside(report)
                    if purge_every and time.monotonic() - purged_at >= purge_every:
                        _report_purge(engine.purge())
                        purged_at = time.monotonic()
                except (TransientError, StoreError, ConcurrentUpdate) as exc:
                    if once:
                        raise
                    _wait_out(backoff, exc)
                    continue
                _report_recovery(backoff)
                if once:
                    if aside or failed:
                        click.get_current_context().exit(PARTIAL)
                    return
                if not (flows or mails):
                    time.sleep(interval)
        except KeyboardInterrupt:
            click.echo("worker stopped")


@attrs.frozen
class Failures:
    """Mail a command failed to deliver: attempts left to retry, and mail failed for good."""

    attempts: int = 0
    dead: int = 0

    @classmethod
    def of(cls, engine: Engine) -> Failures:
        """The engine's relay's counts so far."""
        return cls(engine.relay.failed_attempts, engine.relay.dead)

    def __sub__(self, earlier: Failures) -> Failures:
        return Failures(self.attempts - earlier.attempts, self.dead - earlier.dead)

    def __bool__(self) -> bool:
        return bool(self.attempts or self.dead)

    def summary(self) -> str:
        """``; N delivery attempt(s) failed (retried later); N mail(s) failed for good``, the
        parts that are not zero."""
        return ((f"; {self.attempts} delivery attempt(s) failed (retried later)" if self.attempts else "")
                + (f"; {self.dead} mail(s) failed for good" if self.dead else ""))


def _wait_out(backoff: Backoff, exc: RegflowError) -> None:
    """After a failed pass (database away or busy): one line on stderr for the first failure
    of a streak, then a pause of 1 s doubling to 30 s."""
    pause = backoff.failed()
    if backoff.failures == 1:
        reason = " ".join(str(exc).split())
        click.echo(f"regflow: worker_waiting: a pass failed ({exc.message_id}: {reason}); "
                   f"trying again in {pause:g} s, then at most every {backoff.maximum:g} s, "
                   "until it works", err=True)
    time.sleep(pause)


def _report_recovery(backoff: Backoff) -> None:
    """One line on stderr when a pass works again after a streak of failed ones."""
    failed = backoff.succeeded()
    if failed:
        click.echo(f"regflow: worker_resumed: working again after {failed} failed pass(es)",
                   err=True)


def _report_set_aside(report: SweepReport) -> None:
    """One line on stderr per flow the pass set aside: its ref, definition, wait and reason."""
    for entry in report.set_aside:
        click.echo(f"regflow: flow_set_aside: flow {entry.flow_ref} ({entry.definition}) set "
                   f"aside until {entry.retry_at.isoformat(timespec='seconds')}: {entry.reason}",
                   err=True)


def _report_purge(counts: dict[str, int]) -> None:
    if any(counts.values()):
        click.echo("purged " + ", ".join(f"{n} {name}" for name, n in counts.items() if n))


@main.command()
@engine_options
def purge(db: str, mail: str, hasher: str) -> None:
    """Delete what retention no longer keeps: ended flows (30 days), used and expired codes and
    expired sessions (1 day), sent, failed and decoy mail (7 days), counted attempts (2 days),
    journal entries (400 days); prints how many rows went."""
    with open_engine(db, mail, hasher) as engine:
        counts = engine.purge()
    click.echo("purged " + ", ".join(f"{n} {name}" for name, n in counts.items()))


@main.command()
@engine_options
@product_options
def sweep(db: str, mail: str, hasher: str, product: str | None, mail_from: str | None) -> None:
    """Apply due timers and expiries, and deliver queued mail, once. Flows that cannot be
    stepped are set aside (one line on stderr each); failed delivery attempts and mail that
    failed for good are counted in the summary and logged on stderr. Either makes the exit
    status 3."""
    with open_engine(db, mail, hasher, product=product, mail_from=mail_from) as engine:
        report = engine.sweep_pass()
        mails = engine.deliver()
        failed = Failures.of(engine)
    aside = len(report.set_aside)
    click.echo(f"Applied due timers to {report.changed} flow(s); delivered {mails} mail(s)"
               + failed.summary() + (f"; set aside {aside} flow(s)." if aside else "."))
    _report_set_aside(report)
    if aside or failed:
        click.get_current_context().exit(PARTIAL)
