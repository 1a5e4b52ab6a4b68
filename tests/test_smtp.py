"""SMTP delivery against a real server on loopback (aiosmtpd), wired as users wire it
(``Engine.from_url(..., mail="smtp://...")``): SPEC 4.4's relay retries 4xx replies and lost
connections with backoff, fails 5xx at once, and every mail arrives exactly once.

The engines run on a ``ManualClock`` (aiosmtpd's event loop runs in its own thread, which a
frozen clock would stall), so backoff waits pass without waiting.
"""

from __future__ import annotations

import email
import email.policy
import logging
import random
import shutil
import socket
import ssl
import subprocess
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from flows import codes_in, enqueue_mails, message_ids, submit_email

import regflow
from regflow.adapters.smtp import MailRejected, SmtpMailer, redact_url
from regflow.bootstrap import open_mailer
from regflow.ground.records import OutboxMail
from regflow.mail.relay import MailRelay, parse, retry_ceiling

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TARO = "taro@example.jp"
DEMO = {"customer_id": "281234", "phone": "03-1234-5678", "licenses": 3,
        "accounts": ["abcd8-01", "abcd8-02", "abcd8-03"]}
USER, PASSWORD = "mailer", "s@cret:p/w"
LATER = timedelta(days=1)
FAR = datetime(9999, 1, 1, tzinfo=UTC)


# ---- a scriptable SMTP server on loopback ------------------------------------------------------


class Inbox:
    """The server's handler: replies as scripted, keeps every mail it accepted with 250."""

    def __init__(self) -> None:
        self.rcpt_replies: list[str] = []  # consumed one per RCPT; empty: accept
        self.data_replies: list[str] = []  # consumed one per DATA; "drop" closes the connection
        self.received: list[EmailMessage] = []
        self.rcpts = 0
        self.datas = 0
        self.mechanisms: list[str] = []

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        """Refuse as scripted, else accept the recipient."""
        self.rcpts += 1
        if self.rcpt_replies:
            return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Reply as scripted (or drop the connection before replying), else keep the mail."""
        self.datas += 1
        reply = self.data_replies.pop(0) if self.data_replies else "250 2.0.0 queued"
        if reply == "drop":
            assert server.transport is not None
            server.transport.close()  # the data came in, the reply never goes out
            return "451 gone"
        if reply.startswith("250"):
            raw = envelope.original_content or envelope.content
            assert isinstance(raw, bytes)
            message = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            self.received.append(message)
        return reply

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        """AUTH LOGIN / PLAIN: only USER with PASSWORD passes; others get 535."""
        self.mechanisms.append(mechanism)
        ok = (isinstance(auth_data, LoginPassword)
              and (auth_data.login, auth_data.password) == (USER.encode(), PASSWORD.encode()))
        return AuthResult(success=ok, handled=False)


class LoopbackController(Controller):
    """aiosmtpd's controller, which can listen on port 0 (the port it got is then ``port``)."""

    def _trigger_server(self) -> None:
        """Learn the port first: the base class connects to ``self.port``."""
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    """One SMTP server on 127.0.0.1 that can be stopped and started again on the same port."""

    def __init__(self, inbox: Inbox, options: dict[str, Any]) -> None:
        self.inbox = inbox
        self.options = options
        self.port = 0
        self.controller: LoopbackController | None = None

    def start(self) -> None:
        """Listen (on the port of the last run, if any)."""
        assert self.controller is None
        options = dict(self.options)
        if "authenticator" in options:
            options["authenticator"] = self.inbox.authenticate
        self.controller = LoopbackController(self.inbox, hostname="127.0.0.1", port=self.port,
                                             **options)
        self.controller.start()
        self.port = self.controller.port

    def stop(self) -> None:
        """Stop listening: connections are refused."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def url(self, scheme: str = "smtp", query: str = "timeout=5", credentials: str = "") -> str:
        """The mail spec of this server."""
        return f"{scheme}://{credentials}127.0.0.1:{self.port}?{query}"


@pytest.fixture
def serve() -> Iterator[Callable[..., SmtpServer]]:
    """Start SMTP servers (keyword arguments go to aiosmtpd's SMTP); stopped after the test."""
    servers: list[SmtpServer] = []

    def start(**options: Any) -> SmtpServer:
        server = SmtpServer(Inbox(), options)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (made by openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:  # cryptography is not a dependency; the openssl command makes the pair
        pytest.skip("no openssl command to make a test certificate with")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """The server side's TLS context."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def trust(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the test certificate a trusted CA for the client (OpenSSL's SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))


@pytest.fixture(autouse=True)
def no_smtp_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SMTP credentials from the environment unless a test sets them."""
    monkeypatch.delenv("REGFLOW_SMTP_USER", raising=False)
    monkeypatch.delenv("REGFLOW_SMTP_PASSWORD", raising=False)


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store of the test's engines: memory, or a SQLite file."""
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'regflow.db'}"


@pytest.fixture
def clock() -> regflow.ManualClock:
    """The engines' clock."""
    return regflow.ManualClock(START)


@pytest.fixture
def mail_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The ``regflow.mail.composer`` log, from INFO up."""
    caplog.set_level(logging.INFO, logger="regflow.mail.composer")
    return caplog


@pytest.fixture
def engines(clock: regflow.ManualClock) -> Iterator[Callable[..., regflow.Engine]]:
    """Build engines on a store URL and a mail spec (demo contract added); closed afterwards."""
    built: list[regflow.Engine] = []

    def make(db: str, mail: str, *, contract: bool = True) -> regflow.Engine:
        engine = regflow.Engine.from_url(db, mail=mail, hasher="fast", clock=clock)
        engine.relay.rng = random.Random(7)
        if contract:
            engine.contracts.add(**DEMO)
        built.append(engine)
        return engine

    yield make
    for engine in built:
        engine.store.close()


# ---- helpers -----------------------------------------------------------------------------------


def queued(engine: regflow.Engine) -> list[OutboxMail]:
    """Every queued mail, due or not."""
    with engine.store.transaction() as tx:
        return tx.outbox.due(FAR, 10_000)


def row(engine: regflow.Engine, mail_id: str) -> OutboxMail:
    """The outbox row of a mail."""
    with engine.store.transaction() as tx:
        found = tx.outbox.get(mail_id)
    assert found is not None
    return found


def logged(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    """The ``regflow.mail.composer`` records at ``level``."""
    return [r for r in caplog.records if r.name == "regflow.mail.composer" and r.levelno == level]


def assert_private(records: list[logging.LogRecord], *secrets: str) -> None:
    """No log line shows the recipient's whole address or any of ``secrets``."""
    for record in records:
        text = record.getMessage()
        assert TARO not in text, text
        for secret in secrets:
            assert secret not in text, text


def one_retry_later(engine: regflow.Engine, clock: regflow.ManualClock, mail: OutboxMail) -> int:
    """Not due before its next attempt; at it, deliver; how many were sent."""
    assert mail.next_attempt_at is not None
    wait = mail.next_attempt_at - clock.now()
    assert timedelta(0) < wait <= retry_ceiling(mail.attempts)  # full jitter under the ceiling
    assert engine.deliver() == 0
    clock.set(mail.next_attempt_at)
    return engine.deliver()


def code_works_once(engine: regflow.Engine, flow: regflow.Snapshot, message: EmailMessage) -> None:
    """The mail's code moves the flow on; the code is used up."""
    [code] = codes_in(message)
    assert engine.send(flow, "submit", {"code": code}).state == "details"
    with engine.store.transaction() as tx:
        issued = tx.codes.latest(flow.id, "registration")
    assert issued is not None
    assert issued.used_at is not None


def assert_retried_then_sent_once(engine: regflow.Engine, clock: regflow.ManualClock,
                                  server: SmtpServer, snap: regflow.Snapshot,
                                  failure: str) -> None:
    """The flow went on; its mail stayed queued; one retry later exactly one copy arrived."""
    assert snap.state == "enter_code"
    assert server.inbox.received == []
    [mail] = queued(engine)
    assert (mail.status, mail.attempts, mail.sent_at) == ("queued", 1, None)
    assert mail.last_error is not None
    assert failure in mail.last_error
    assert TARO not in mail.last_error
    assert one_retry_later(engine, clock, mail) == 1
    [message] = server.inbox.received
    assert message["Message-ID"] == f"<{mail.id}@regflow.invalid>"
    assert message["To"] == TARO
    code_works_once(engine, snap, message)
    clock.advance(LATER.total_seconds())
    assert engine.deliver() == 0
    assert len(server.inbox.received) == 1
    sent = row(engine, mail.id)
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 2, None)


def assert_failed_at_once(engine: regflow.Engine, clock: regflow.ManualClock,
                          caplog: pytest.LogCaptureFixture, snap: regflow.Snapshot,
                          code: str) -> OutboxMail:
    """The flow went on; its mail is ``failed`` after one attempt, journaled and logged."""
    assert snap.state == "enter_code"
    assert queued(engine) == []
    [record] = logged(caplog, logging.ERROR)
    mail_id = str(record.args[0]) if isinstance(record.args, tuple) else ""
    failed = row(engine, mail_id)
    assert (failed.status, failed.attempts, failed.next_attempt_at) == ("failed", 1, None)
    assert failed.last_error is not None
    assert code in failed.last_error
    assert "MailRejected" in failed.last_error
    text = record.getMessage()
    assert mail_id in text
    assert "*@example.jp" in text
    assert "attempt 1" in text
    assert code in text
    assert_private(logged(caplog, logging.ERROR), *codes_in(parse(failed.message)))
    entry = engine.history(snap.id)[-1]
    assert (entry.event, entry.actor, entry.outcome) == ("mail", "system", "mail_rejected")
    assert entry.from_state == entry.to_state == "enter_code"
    clock.advance(LATER.total_seconds())
    assert engine.deliver() == 0
    return failed


# ---- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stage", "reply"), [
    ("data", "451 4.3.0 try again later"),
    ("rcpt", "450 4.2.0 greylisted, come back later"),
])
def test_4xx_then_success(serve: Callable[..., SmtpServer], engines: Callable[..., regflow.Engine],
                          store_url: str, clock: regflow.ManualClock,
                          mail_log: pytest.LogCaptureFixture, stage: str, reply: str) -> None:
    """A 4xx reply: the flow advances at once, the mail waits; later it arrives once, code works."""
    server = serve()
    (server.inbox.data_replies if stage == "data" else server.inbox.rcpt_replies).append(reply)
    engine = engines(store_url, server.url())
    snap = submit_email(engine, TARO)
    assert_retried_then_sent_once(engine, clock, server, snap, reply[:3])
    [warning] = logged(mail_log, logging.WARNING)
    text = warning.getMessage()
    assert "*@example.jp" in text
    assert "attempt 1 of 10" in text
    assert reply[:3] in text
    assert_private(mail_log.records, *codes_in(server.inbox.received[0]))


@pytest.mark.parametrize(("stage", "reply"), [
    ("data", "550 5.7.1 message refused"),
    ("rcpt", "550 5.1.1 <taro@example.jp>: no such user"),
])
def test_5xx_fails_at_once(serve: Callable[..., SmtpServer],
                           engines: Callable[..., regflow.Engine], store_url: str,
                           clock: regflow.ManualClock, mail_log: pytest.LogCaptureFixture,
                           stage: str, reply: str) -> None:
    """A 5xx reply: the mail is ``failed`` at once, journaled and logged, never retried; no copy."""
    server = serve()
    (server.inbox.data_replies if stage == "data" else server.inbox.rcpt_replies).append(reply)
    engine = engines(store_url, server.url())
    snap = submit_email(engine, TARO)
    failed = assert_failed_at_once(engine, clock, mail_log, snap, "550")
    assert failed.last_error is not None
    assert TARO not in failed.last_error  # the address in the reply is masked
    assert (server.inbox.rcpts, server.inbox.datas) == ((1, 1) if stage == "data" else (1, 0))
    assert server.inbox.received == []


def test_connection_dropped_mid_data(serve: Callable[..., SmtpServer],
                                     engines: Callable[..., regflow.Engine], store_url: str,
                                     clock: regflow.ManualClock) -> None:
    """The server drops the connection after the data, before replying: retried, then one copy."""
    server = serve()
    server.inbox.data_replies.append("drop")
    engine = engines(store_url, server.url())
    snap = submit_email(engine, TARO)
    assert_retried_then_sent_once(engine, clock, server, snap, "SMTPServerDisconnected")
    assert server.inbox.datas == 2


def test_server_down_then_up(serve: Callable[..., SmtpServer],
                             engines: Callable[..., regflow.Engine], store_url: str,
                             clock: regflow.ManualClock) -> None:
    """Nothing listening: the mail waits; once the server is back it arrives once."""
    server = serve()
    server.stop()
    engine = engines(store_url, server.url())
    snap = submit_email(engine, TARO)
    assert snap.state == "enter_code"
    [mail] = queued(engine)
    assert mail.last_error is not None
    assert "ConnectionRefusedError" in mail.last_error
    assert one_retry_later(engine, clock, mail) == 0  # still down: attempt 2 fails too
    [mail] = queued(engine)
    assert mail.attempts == 2
    server.start()
    assert one_retry_later(engine, clock, mail) == 1
    [message] = server.inbox.received
    assert message["Message-ID"] == f"<{mail.id}@regflow.invalid>"
    code_works_once(engine, snap, message)
    clock.advance(LATER.total_seconds())
    assert engine.deliver() == 0
    assert len(server.inbox.received) == 1
    assert row(engine, mail.id).status == "sent"


def test_a_silent_server_times_out(engines: Callable[..., regflow.Engine],
                                   clock: regflow.ManualClock) -> None:
    """A server that accepts the connection and never greets: the send gives up at ``timeout``."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        engine = engines("memory://", f"smtp://127.0.0.1:{port}?timeout=0.3")
        began = time.monotonic()
        snap = submit_email(engine, TARO)
        took = time.monotonic() - began
    assert snap.state == "enter_code"
    assert 0.3 <= took < 5
    [mail] = queued(engine)
    assert mail.last_error is not None
    assert "TransientError" in mail.last_error
    assert "timed out" in mail.last_error


def test_attempts_run_out_for_good(serve: Callable[..., SmtpServer],
                                   engines: Callable[..., regflow.Engine], store_url: str,
                                   clock: regflow.ManualClock,
                                   mail_log: pytest.LogCaptureFixture) -> None:
    """4xx on every attempt: ``failed`` after ``max_attempts``, journaled, its body (the code)
    emptied, never handed to the mailer again; a resend mails a new code that works."""
    server = serve()
    server.inbox.data_replies.extend(["451 4.3.0 busy"] * 3)
    engine = engines(store_url, server.url())
    engine.relay.max_attempts = 3
    snap = submit_email(engine, TARO)
    for _ in range(2):
        [mail] = queued(engine)
        assert one_retry_later(engine, clock, mail) == 0
    assert queued(engine) == []
    [record] = logged(mail_log, logging.ERROR)
    assert "attempt 3 of 3" in record.getMessage()
    assert "attempts exhausted" in record.getMessage()
    mail_id = str(record.args[0]) if isinstance(record.args, tuple) else ""
    assert (row(engine, mail_id).status, row(engine, mail_id).attempts) == ("failed", 3)
    entry = engine.history(snap.id)[-1]
    assert (entry.event, entry.outcome) == ("mail", "mail_failed")
    assert row(engine, mail_id).message == b""  # the dead mail keeps no code
    clock.advance(600)  # within the code's 30 minutes
    assert engine.deliver() == 0
    assert server.inbox.datas == 3
    snap = engine.send(snap, "resend_code")
    assert message_ids(snap) == ["code_resent"]
    [message] = server.inbox.received
    code_works_once(engine, snap, message)
    assert engine.deliver() == 0
    assert len(server.inbox.received) == 1
    assert row(engine, mail_id).status == "failed"


# ---- TLS and AUTH ------------------------------------------------------------------------------


@pytest.mark.usefixtures("trust")
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("where", ["url", "env"])
def test_starttls_and_auth(serve: Callable[..., SmtpServer],
                           engines: Callable[..., regflow.Engine], server_tls: ssl.SSLContext,
                           clock: regflow.ManualClock, monkeypatch: pytest.MonkeyPatch,
                           mechanism: str, where: str) -> None:
    """STARTTLS required, AUTH PLAIN or LOGIN with credentials in the URL or the environment."""
    other = "LOGIN" if mechanism == "PLAIN" else "PLAIN"
    server = serve(tls_context=server_tls, require_starttls=True, authenticator=True,
                   auth_required=True, auth_exclude_mechanism=[other])
    credentials = ""
    if where == "url":
        credentials = "mailer:s%40cret%3Ap%2Fw@"  # USER:PASSWORD, percent-encoded
    else:
        monkeypatch.setenv("REGFLOW_SMTP_USER", USER)
        monkeypatch.setenv("REGFLOW_SMTP_PASSWORD", PASSWORD)
    engine = engines("memory://", server.url(query="starttls=1&timeout=5", credentials=credentials))
    snap = submit_email(engine, TARO)
    assert snap.state == "enter_code"
    assert queued(engine) == []
    [message] = server.inbox.received
    assert server.inbox.mechanisms == [mechanism]
    code_works_once(engine, snap, message)


@pytest.mark.usefixtures("trust")
def test_wrong_password_is_permanent(serve: Callable[..., SmtpServer],
                                     engines: Callable[..., regflow.Engine],
                                     server_tls: ssl.SSLContext, clock: regflow.ManualClock,
                                     mail_log: pytest.LogCaptureFixture) -> None:
    """535 (credentials refused) is a 5xx: the mail is ``failed`` at once; nothing arrives."""
    server = serve(tls_context=server_tls, require_starttls=True, authenticator=True,
                   auth_required=True)
    engine = engines("memory://", server.url(query="starttls=1&timeout=5",
                                             credentials="mailer:wrong@"))
    snap = submit_email(engine, TARO)
    assert_failed_at_once(engine, clock, mail_log, snap, "535")
    assert_private(mail_log.records, "wrong")
    assert server.inbox.received == []
    assert sorted(server.inbox.mechanisms) == ["LOGIN", "PLAIN"]  # one attempt, each mechanism once


def test_untrusted_certificate_is_not_sent_to(serve: Callable[..., SmtpServer],
                                              engines: Callable[..., regflow.Engine],
                                              server_tls: ssl.SSLContext) -> None:
    """STARTTLS to a server whose certificate is not trusted: nothing sent, the mail waits."""
    server = serve(tls_context=server_tls, require_starttls=True)
    engine = engines("memory://", server.url(query="starttls=1&timeout=5"))
    assert submit_email(engine, TARO).state == "enter_code"
    [mail] = queued(engine)
    assert mail.last_error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in mail.last_error
    assert server.inbox.datas == 0


def test_starttls_required_but_not_offered(serve: Callable[..., SmtpServer],
                                           engines: Callable[..., regflow.Engine]) -> None:
    """``starttls=1`` to a server without STARTTLS: nothing goes out in clear; the mail waits."""
    server = serve()
    engine = engines("memory://", server.url(query="starttls=1&timeout=5"))
    assert submit_email(engine, TARO).state == "enter_code"
    [mail] = queued(engine)
    assert mail.last_error is not None
    assert "STARTTLS" in mail.last_error
    assert (server.inbox.rcpts, server.inbox.datas) == (0, 0)


@pytest.mark.usefixtures("trust")
def test_implicit_tls(serve: Callable[..., SmtpServer], engines: Callable[..., regflow.Engine],
                      server_tls: ssl.SSLContext, store_url: str,
                      clock: regflow.ManualClock) -> None:
    """``smtps://``: TLS from the first byte; a 451 is retried, then exactly one copy."""
    server = serve(ssl_context=server_tls)
    server.inbox.data_replies.append("451 4.3.0 later")
    engine = engines(store_url, server.url("smtps"))
    assert isinstance(engine.mailer, SmtpMailer)
    assert engine.mailer.security == "tls"
    snap = submit_email(engine, TARO)
    assert_retried_then_sent_once(engine, clock, server, snap, "451")


# ---- several relays ----------------------------------------------------------------------------


def drain_together(relays: list[regflow.Engine]) -> list[int]:
    """Each engine delivers in its own thread until nothing is due; how many each sent."""
    barrier = threading.Barrier(len(relays))
    counts = [0] * len(relays)
    failures: list[str] = []

    def work(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            while True:
                sent = relays[index].deliver(5)
                counts[index] += sent
                if not sent and not [m for m in queued(relays[index])
                                     if m.next_attempt_at is None
                                     or m.next_attempt_at <= relays[index].clock.now()]:
                    return
        except BaseException:
            failures.append(traceback.format_exc())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(relays))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads), "relays hung"
    assert not failures, "\n".join(failures)
    return counts


def test_two_relays_deliver_each_mail_once(serve: Callable[..., SmtpServer],
                                           engines: Callable[..., regflow.Engine],
                                           tmp_path: Path, clock: regflow.ManualClock) -> None:
    """Two relays (threads, own engines, one SQLite file) on one queue: each Message-ID once."""
    server = serve()
    server.inbox.data_replies.extend(["250 ok"] * 3 + ["451 4.3.0 busy"] + ["250 ok"] * 7
                                     + ["drop"])
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    feeder = engines(url, "memory", contract=False)
    expected = enqueue_mails(feeder, 40, START)
    relays = [engines(url, server.url(), contract=False) for _ in range(2)]
    first = drain_together(relays)
    assert len(queued(feeder)) == 2  # the 451 and the dropped one wait for their retry
    clock.advance(retry_ceiling(1).total_seconds())
    second = drain_together(relays)
    arrived = Counter(str(m["Message-ID"]) for m in server.inbox.received)
    assert set(arrived) == expected
    assert max(arrived.values()) == 1, arrived.most_common(3)
    assert sum(first) + sum(second) == 40
    assert queued(feeder) == []


# ---- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "expected"), [
    ("smtp://mail.example.jp", ("mail.example.jp", 25, "none", None, 10.0)),
    ("smtp://mail.example.jp:2525?timeout=3.5", ("mail.example.jp", 2525, "none", None, 3.5)),
    ("smtp://u%40x:p%3Aw@mail.example.jp?starttls=1", ("mail.example.jp", 587, "starttls", "u@x", 10.0)),
    ("smtp://u:p@mail.example.jp:25?starttls=true", ("mail.example.jp", 25, "starttls", "u", 10.0)),
    ("smtps://u:p@[::1]", ("::1", 465, "tls", "u", 10.0)),
    ("smtps://mail.example.jp:1465?starttls=0", ("mail.example.jp", 1465, "tls", None, 10.0)),
])
def test_mail_urls(spec: str, expected: tuple[object, ...]) -> None:
    """``open_mailer`` reads host, port (defaults 25 / 587 / 465), security, user and timeout."""
    mailer = open_mailer(spec)
    assert isinstance(mailer, SmtpMailer)
    assert (mailer.host, mailer.port, mailer.security, mailer.username, mailer.timeout) == expected
    assert ":p" not in repr(mailer)


def test_credentials_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """REGFLOW_SMTP_USER / _PASSWORD fill what the URL leaves out; a lone password is refused."""
    monkeypatch.setenv("REGFLOW_SMTP_USER", "envuser")
    monkeypatch.setenv("REGFLOW_SMTP_PASSWORD", "envpass")
    mailer = open_mailer("smtps://mail.example.jp")
    assert isinstance(mailer, SmtpMailer)
    assert mailer.username == "envuser"
    assert "envpass" not in repr(mailer)
    mailer = open_mailer("smtps://urluser@mail.example.jp")
    assert isinstance(mailer, SmtpMailer)
    assert mailer.username == "urluser"
    monkeypatch.delenv("REGFLOW_SMTP_USER")
    with pytest.raises(ValueError, match="user and a password"):
        open_mailer("smtps://:urlpass@mail.example.jp")


@pytest.mark.parametrize("spec", [
    "smtp://u:hunter2@mail.example.jp?tls=1",
    "smtp://u:hunter2@mail.example.jp?starttls=maybe",
    "smtps://u:hunter2@mail.example.jp?starttls=1",
    "smtp://u:hunter2@mail.example.jp?timeout=soon",
    "smtp://u:hunter2@mail.example.jp?timeout=0",
    "smtp://u:hunter2@mail.example.jp:99999",
    "smtp://u:hunter2@/path",
    "smtp+tls://u:hunter2@mail.example.jp",
])
def test_bad_mail_urls_never_show_the_password(spec: str) -> None:
    """A bad SMTP URL is a ValueError whose text hides the credentials."""
    with pytest.raises(ValueError, match=r"\*\*\*@") as raised:
        open_mailer(spec)
    assert "hunter2" not in str(raised.value)
    assert redact_url(spec).count("hunter2") == 0


def test_lease_outlasts_the_smtp_timeout(clock: regflow.ManualClock) -> None:
    """The relay's lease is never shorter than twice the mailer's timeout (default 60 s)."""
    store: Any = None
    assert MailRelay(store, SmtpMailer("h", 25), clock).lease_for() == timedelta(seconds=60)
    slow = SmtpMailer("h", 25, timeout=45)
    assert MailRelay(store, slow, clock).lease_for() == timedelta(seconds=90)


def test_smtp_errors_are_sorted() -> None:
    """What ``SmtpMailer`` raises: MailRejected (5xx, permanent) is a RegflowError with its code."""
    rejected = MailRejected(550, "5.1.1 no such user")
    assert isinstance(rejected, regflow.RegflowError)
    assert (rejected.message_id, rejected.code, str(rejected)) == (
        "mail_rejected", 550, "SMTP 550 5.1.1 no such user")
    with pytest.raises(ValueError, match="security"):
        SmtpMailer("h", 25, security="ssl")
    with pytest.raises(ValueError, match="username and a password"):
        SmtpMailer("h", 25, username="u")
    with pytest.raises(ValueError, match="ASCII"):
        SmtpMailer("h", 25, security="tls", username="u", password="パス")
