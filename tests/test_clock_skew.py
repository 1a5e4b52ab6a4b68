"""Clock skew: mail leases follow the database's clock, so a relay whose host clock runs ahead
cannot take a mail another relay is still sending, and one whose clock is behind does not wait
longer than the lease (see docs/operations.md, "Clocks").

In one process, relays with skewed clocks (``clocks.OffsetClock``) each on their own store claim
and inspect leases; in real processes, two relays, one 90 s ahead, deliver 60 mails from one
queue to a real SMTP server (aiosmtpd on loopback). Each on PostgreSQL and on one SQLite file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from clocks import OffsetClock
from flows import enqueue_into
from test_smtp import Inbox, SmtpServer

from regflow.adapters.mailers import MemoryMailer
from regflow.adapters.peewee_store import PeeweeStore
from regflow.ground.clock import SystemClock
from regflow.ground.records import OutboxMail
from regflow.mail.relay import LEASE, MailRelay

AHEAD = 90.0  # seconds: the skew of the report (80 mails received for 60)
MAILS = 60
SEND_TIME = 0.1  # seconds the server takes over each mail, so sends overlap the other's passes
TESTS = Path(__file__).parent


@pytest.fixture
def stores(db_url: str) -> Iterator[Callable[[], PeeweeStore]]:
    """Open stores on the test's URL, each with its own connection; closed afterwards."""
    opened: list[PeeweeStore] = []

    def open_store() -> PeeweeStore:
        opened.append(PeeweeStore.from_url(db_url))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


def enqueue(store: PeeweeStore, count: int) -> list[str]:
    """Write ``count`` mails into the outbox; their ids (Message-ID ``<ID@regflow.invalid>``)."""
    return enqueue_into(store, count)


def row(store: PeeweeStore, mail_id: str) -> OutboxMail:
    """The outbox row of a mail."""
    with store.transaction() as tx:
        found = tx.outbox.get(mail_id)
    assert found is not None
    return found


def database_now(store: PeeweeStore) -> datetime:
    """The database's clock."""
    with store.transaction() as tx:
        now = tx.outbox.database_now()
    assert now is not None
    return now


# ---- one process, relays with skewed clocks ----------------------------------------------------


def test_a_clock_ahead_cannot_take_a_mail_being_sent(stores: Callable[[], PeeweeStore]) -> None:
    """While a relay on time sends a mail, a relay 90 s ahead (past that lease by its own
    clock) neither claims it by id nor finds it due: one copy, one attempt."""
    on_time_store, ahead_store = stores(), stores()
    [mail_id] = enqueue(on_time_store, 1)
    ahead_mailer = MemoryMailer()
    ahead = MailRelay(ahead_store, ahead_mailer, OffsetClock(AHEAD))
    meanwhile: list[tuple[int, int]] = []

    class WhileSending(MemoryMailer):
        def send(self, message: EmailMessage) -> None:
            meanwhile.append((ahead.deliver([mail_id]), ahead.deliver_due()))
            super().send(message)

    on_time_mailer = WhileSending()
    assert MailRelay(on_time_store, on_time_mailer, SystemClock()).deliver([mail_id]) == 1
    assert meanwhile == [(0, 0)]
    assert (len(on_time_mailer.messages), ahead_mailer.messages) == (1, [])
    sent = row(on_time_store, mail_id)
    assert (sent.status, sent.attempts) == ("sent", 1)


@pytest.mark.parametrize("offset", [AHEAD, -AHEAD], ids=["ahead", "behind"])
def test_a_lease_ends_a_lease_after_the_database_clock(stores: Callable[[], PeeweeStore],
                                                        offset: float) -> None:
    """A relay 90 s ahead or behind leases a mail until the database's clock + the lease, not
    its own clock + the lease."""
    store, observer = stores(), stores()
    [mail_id] = enqueue(store, 1)
    seen: list[tuple[OutboxMail, datetime]] = []

    class Peek(MemoryMailer):
        def send(self, message: EmailMessage) -> None:
            seen.append((row(observer, mail_id), database_now(observer)))
            super().send(message)

    assert MailRelay(store, Peek(), OffsetClock(offset)).deliver([mail_id]) == 1
    [(leased, now)] = seen
    assert (leased.status, leased.attempts) == ("sending", 1)
    assert leased.next_attempt_at is not None
    left = leased.next_attempt_at - now
    assert LEASE - timedelta(seconds=5) < left <= LEASE, left


def test_a_lease_lapses_on_the_database_clock(stores: Callable[[], PeeweeStore]) -> None:
    """A relay that died while sending leaves its lease: no relay takes the mail, even one
    90 s ahead; once the lease has passed on the database's clock, a relay 90 s behind takes
    it at once (it does not wait for its own clock to pass the lease)."""
    first, second = stores(), stores()
    [mail_id] = enqueue(first, 1)

    class Died(BaseException):
        """The relay's process ends in the middle of the send."""

    class Dying(MemoryMailer):
        def send(self, message: EmailMessage) -> None:
            raise Died

    with pytest.raises(Died):
        MailRelay(first, Dying(), SystemClock()).deliver([mail_id])
    assert row(first, mail_id).status == "sending"
    ahead_mailer, behind_mailer = MemoryMailer(), MemoryMailer()
    ahead = MailRelay(second, ahead_mailer, OffsetClock(AHEAD))
    behind = MailRelay(second, behind_mailer, OffsetClock(-AHEAD))
    assert (ahead.deliver_due(), ahead.deliver([mail_id]), behind.deliver_due()) == (0, 0, 0)

    with first.transaction() as tx:  # the lease passes on the database's clock
        leased = tx.outbox.get(mail_id)
        now = tx.outbox.database_now()
        assert leased is not None
        assert now is not None
        leased.next_attempt_at = now - timedelta(milliseconds=1)
        tx.outbox.update(leased)
    assert behind.deliver_due() == 1
    assert (len(behind_mailer.messages), ahead_mailer.messages) == (1, [])
    sent = row(first, mail_id)
    assert (sent.status, sent.attempts) == ("sent", 2)


def test_a_skewed_process_clock_is_logged_once(stores: Callable[[], PeeweeStore],
                                               caplog: pytest.LogCaptureFixture) -> None:
    """A relay whose clock is more than 5 s off the database's says so once (``regflow.ground.clock``);
    one on time says nothing."""
    caplog.set_level(logging.WARNING, logger="regflow.ground.clock")
    store = stores()
    ids = enqueue(store, 3)
    assert MailRelay(store, MemoryMailer(), SystemClock()).deliver(ids[:1]) == 1
    assert MailRelay(store, MemoryMailer(), OffsetClock(AHEAD)).deliver(ids[1:]) == 2
    records = [r.getMessage() for r in caplog.records if r.name == "regflow.ground.clock"]
    assert len(records) == 1, records
    assert "s ahead of the database's" in records[0]
    assert float(records[0].split("clock is ")[1].split(" s ")[0]) == pytest.approx(AHEAD, abs=3)


# ---- real processes ----------------------------------------------------------------------------

RELAY_PROCESS = textwrap.dedent("""
    import logging, sys, time
    from pathlib import Path

    import regflow
    from clocks import OffsetClock

    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    url, mail, offset, stop = sys.argv[1], sys.argv[2], float(sys.argv[3]), Path(sys.argv[4])
    engine = regflow.Engine.from_url(url, mail=mail, hasher="fast", clock=OffsetClock(offset))
    sent = 0
    while not stop.exists():
        delivered = engine.deliver(5)
        sent += delivered
        if not delivered:
            time.sleep(0.02)
    engine.store.close()
    print(sent)
""")


class SlowInbox(Inbox):
    """A server that takes ``SEND_TIME`` over each mail, as real ones take a while."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Wait, then reply as the plain inbox does."""
        await asyncio.sleep(SEND_TIME)
        return await super().handle_DATA(server, session, envelope)


def relay_in_processes(url: str, mail: str, offsets: list[float], stop: Path,
                       done: Callable[[], bool]) -> list[tuple[int, str]]:
    """Run one relay process per clock offset until ``done()`` (at most 120 s); what each
    delivered, and its log."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}
    processes = [subprocess.Popen([sys.executable, "-c", RELAY_PROCESS, url, mail, str(offset),
                                   str(stop)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env, cwd=stop.parent) for offset in offsets]
    try:
        deadline = time.monotonic() + 120
        while not done() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.touch()  # each finishes the send it is in, then stops
        outputs = [process.communicate(timeout=60) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    return [(int(out.strip()), err) for out, err in outputs]


def test_two_relay_processes_one_90s_ahead_send_each_mail_once(db_url: str, tmp_path: Path) -> None:
    """60 queued mails, two relay processes on one queue, the second one's clock 90 s ahead
    (past every lease the first one takes): each mail arrives once, both relays took part,
    and the skewed one logged its skew."""
    url = db_url
    server = SmtpServer(SlowInbox(), {})
    server.start()
    feeder = PeeweeStore.from_url(url)
    try:
        ids = enqueue(feeder, MAILS)

        def all_sent() -> bool:
            with feeder.transaction() as tx:
                return all(getattr(tx.outbox.get(i), "status", None) == "sent" for i in ids)

        relays = relay_in_processes(url, server.url(), [0.0, AHEAD], tmp_path / "stop", all_sent)
        assert all_sent()
    finally:
        feeder.close()
        server.stop()
    arrived = Counter(str(m["Message-ID"]) for m in server.inbox.received)
    print(f"{url.split(':')[0]}: {sum(arrived.values())} received for {MAILS} mails, "
          f"{len(arrived)} distinct; relays sent {[sent for sent, _ in relays]}")
    assert arrived == Counter({f"<{mail_id}@regflow.invalid>": 1 for mail_id in ids})
    assert sum(sent for sent, _ in relays) == MAILS
    assert min(sent for sent, _ in relays) > 0, relays
    (_, on_time_log), (_, ahead_log) = relays
    assert "sent again" not in on_time_log + ahead_log
    assert "s ahead of the database's" in ahead_log
    assert "the database's" not in on_time_log
