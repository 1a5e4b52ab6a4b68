"""No timing or status oracle: the same work whether an address is registered or not, and mail
composed in the step but delivered only after the answer went out (issue 10, attack 5: a
password reset answered in 9.4 ms for a registered address and 2.7 ms for another, because the
mail was composed, stored and delivered inside the request only when the address existed).

The work is compared as the sequence of store calls and mail compositions a step makes, on
every store: a difference in work is what a clock measures. The size of the remaining gap is
a benchmark row (``make bench``), not a timed assertion.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from flows import EngineFactory
from live import Server, seed_login, serving
from live_server import free_port

import regflow
from regflow.runtime.limits import Limits

KNOWN = "taro@example.jp"
UNKNOWN = "nobody@example.jp"


class _Recorder:
    """A table view that notes every method called on it, then passes the call on."""

    def __init__(self, name: str, table: Any, calls: list[str]) -> None:
        self._name, self._table, self._calls = name, table, calls

    def __getattr__(self, method: str) -> Any:
        real = getattr(self._table, method)
        if not callable(real):
            return real

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls.append(f"{self._name}.{method}")
            return real(*args, **kwargs)

        return call


class _RecordingTransaction:
    def __init__(self, tx: Any, calls: list[str]) -> None:
        for name in ("flows", "contracts", "logins", "sessions", "codes", "outbox", "limits"):
            setattr(self, name, _Recorder(name, getattr(tx, name), calls))


@contextmanager
def recording(engine: regflow.Engine) -> Iterator[list[str]]:
    """Every store call, password check and mail composition the engine makes inside the block,
    with mail delivery deferred as the web front end defers it (after the answer)."""
    calls: list[str] = []
    # The real hasher behind the engine's (which hashes between transactions, regflow.runtime.slow_work)
    store, composer, hasher = engine.store, engine.services.composer, engine.services.hasher.real  # type: ignore[attr-defined]
    original_tx, original_compose, original_verify = store.transaction, composer.compose, hasher.verify

    @contextmanager
    def transaction(**options: Any) -> Iterator[Any]:  # write=False: a read transaction
        with original_tx(**options) as tx:
            yield _RecordingTransaction(tx, calls)

    def compose(*args: Any, **kwargs: Any) -> Any:
        calls.append("compose")
        return original_compose(*args, **kwargs)

    def verify(*args: Any, **kwargs: Any) -> bool:
        calls.append("hasher.verify")
        return original_verify(*args, **kwargs)

    store.transaction = transaction  # type: ignore[method-assign]
    composer.compose = compose  # type: ignore[method-assign]
    hasher.verify = verify  # type: ignore[method-assign]
    try:
        with engine.deferred_mail():
            yield calls
    finally:
        store.transaction = original_tx  # type: ignore[method-assign]
        composer.compose = original_compose  # type: ignore[method-assign]
        hasher.verify = original_verify  # type: ignore[method-assign]


def _work(engine: regflow.Engine, step: Callable[[str], Any], address: str) -> list[str]:
    with recording(engine) as calls:
        step(address)
    return calls


def _seed(engine: regflow.Engine) -> None:
    from live import PASSWORD  # noqa: F401 - the seeded login's password
    seed_login(engine, KNOWN, account="abcd8-01")


def test_a_password_reset_does_the_same_work_for_any_address(make_engine: EngineFactory) -> None:
    """Submitting the address: the same store calls and one mail composed, registered or not."""
    engine = make_engine(limits=Limits.off())
    _seed(engine)

    def submit(address: str) -> Any:
        started = engine.start("password_reset")
        with recording(engine) as calls:
            engine.send(started, "submit", {"email": address})
        return calls

    known, unknown = submit(KNOWN), submit(UNKNOWN)
    assert known == unknown
    assert known.count("compose") == 1
    assert known.count("outbox.enqueue") == 1


def test_a_wrong_password_does_the_same_work_for_any_address(make_engine: EngineFactory) -> None:
    """Wrong passwords, up to and past the lockout: the same work (one argon2 verify, the
    same counting, the lockout notice composed) whether the address has a login or not."""
    engine = make_engine()
    _seed(engine)

    def attempts(address: str) -> list[list[str]]:
        runs = []
        for _ in range(11):
            started = engine.start("sign_in", {"account": "abcd8-01"})
            with recording(engine) as calls:
                engine.send(started, "submit", {"email": address, "password": "Wrong-pass-1"})
            runs.append(calls)
        return runs

    known, unknown = attempts(KNOWN), attempts(UNKNOWN)
    assert known == unknown
    assert [run.count("hasher.verify") for run in known] == [1] * 10 + [0]
    assert known[9].count("compose") == 1  # the 10th locks out: the owner is told (or a decoy)


def test_registration_under_conceal_does_the_same_work_for_any_address(
        make_engine: EngineFactory) -> None:
    """With ``existing_email = "conceal"`` a registered address gets a notice instead of a
    code: the same store calls and one composition either way."""
    engine = make_engine(settings={"registration": {"existing_email": "conceal"}},
                         limits=Limits.off())
    _seed(engine)

    def submit(address: str) -> list[str]:
        started = engine.start("registration", {"account": "abcd8-02"})
        with recording(engine) as calls:
            engine.send(started, "submit", {"email": address})
        return calls

    assert submit(KNOWN) == submit(UNKNOWN)


# ---- delivery after the answer, over HTTP ---------------------------------------------------------

class _HeldInbox:
    """An SMTP handler that holds every mail until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.arrived = threading.Event()
        self.received = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.arrived.set()
        await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
        self.received += 1
        return "250 2.0.0 queued"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_answer_does_not_wait_for_the_mail(kind: str, tmp_path: Path) -> None:
    """The mail server holds the reset mail; the answer to the reset request has already come
    (delivery follows the response); once released, the mail is delivered once."""
    inbox = _HeldInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with serving(kind, tmp_path, mail=f"smtp://127.0.0.1:{port}") as server:
            _answered_before_delivery(server, inbox)
    finally:
        inbox.release.set()
        controller.stop()


def _answered_before_delivery(server: Server, inbox: _HeldInbox) -> None:
    seeding = server.engine()
    seed_login(seeding, KNOWN, account="abcd8-01")
    seeding.store.close()
    client = server.client()
    started = client.start("password_reset")
    answer = client.send(started["id"], "submit", {"email": KNOWN}, started["flow_token"])
    assert (answer.status, answer["state"]) == (200, "enter_code")
    assert inbox.received == 0  # answered while no mail has been accepted
    assert inbox.arrived.wait(30)  # the relay is at it, after the answer
    inbox.release.set()
    for _ in range(200):
        if inbox.received:
            break
        threading.Event().wait(0.05)
    assert inbox.received == 1
