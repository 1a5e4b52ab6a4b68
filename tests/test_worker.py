"""The worker's two jobs (SPEC 3 durable timers, 4.3 ``regflow worker``, 4.4 outbox relay):
``engine.sweep()`` applies due timers and expiries, ``engine.deliver()`` sends queued mail.

A mail whose delivery failed stays queued and is sent once later (transient) or is marked
``failed`` (permanent); several workers running together — threads with their own engines, and
processes — never deliver a mail twice and never apply a timer twice.
"""

from __future__ import annotations

import email
import email.policy
import multiprocessing
import smtplib
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flows import (
    EngineFactory,
    codes_in,
    details,
    enqueue_mails,
    message_ids,
    submit_email,
    to_details,
)
from freezegun.api import FrozenDateTimeFactory
from pg import drop_schema, postgres_url

import regflow
from regflow.cli import main
from regflow.ground.records import OutboxMail

SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
FIRST_RETRY = 30 * SECOND
PROVISIONING = 10 * MINUTE
MAX_ATTEMPTS = 10
MAILS = 60
TIMEOUT = 120  # seconds: a worker still running after this is a hang
BIG = {"customer_id": "288888", "phone": "011-888-0000", "licenses": 40,
       "accounts": ["big8-01", "big8-02"]}
TARO = "taro@example.jp"


# ---- helpers -----------------------------------------------------------------------------------


class ScriptedMailer:
    """A mailer that raises the scripted failures first (then ``always``, if set), keeping every
    message it was handed in ``tried`` and every one it accepted in ``messages``."""

    def __init__(self, *failures: Exception, always: Exception | None = None) -> None:
        self.failures = list(failures)
        self.always = always
        self.tried: list[EmailMessage] = []
        self.messages: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> None:
        """Fail as scripted, else keep the message."""
        self.tried.append(message)
        failure = self.failures.pop(0) if self.failures else self.always
        if failure is not None:
            raise failure
        self.messages.append(message)


def use_mailer(engine: regflow.Engine, mailer: Any) -> None:
    """Make the engine (and its relay) hand mail to ``mailer``."""
    engine.mailer = mailer
    engine.relay.mailer = mailer
    engine.relay.jitter = False  # the waits below are the backoff's ceilings, exactly


def outbox_id(message: EmailMessage) -> str:
    """The outbox id a message was written under (its Message-ID is ``<id@regflow.invalid>``)."""
    return str(message["Message-ID"]).strip("<>").split("@")[0]


def outbox_row(engine: regflow.Engine, message: EmailMessage) -> OutboxMail:
    """The outbox row of a message."""
    with engine.store.transaction() as tx:
        row = tx.outbox.get(outbox_id(message))
    assert row is not None
    return row


def queued(engine: regflow.Engine, *, due_by: datetime | None = None) -> list[OutboxMail]:
    """Queued mail whose attempt is due by ``due_by`` (default: any time, leased ones too)."""
    when = due_by if due_by is not None else datetime(9999, 1, 1, tzinfo=UTC)
    with engine.store.transaction() as tx:
        return tx.outbox.due(when, 10_000)


def drain(engine: regflow.Engine, batch: int = 7) -> int:
    """A worker's loop: deliver until no queued mail is due; how many this worker sent."""
    sent = 0
    while True:
        delivered = engine.deliver(batch)
        sent += delivered
        if not delivered and not queued(engine, due_by=engine.clock.now()):
            return sent


def sweep_all(engine: regflow.Engine, batch: int = 5) -> int:
    """A worker's loop: sweep until no flow is due; how many flows this worker changed."""
    changed = 0
    while True:
        changed += engine.sweep(batch)
        if not engine.store.due_flows(engine.clock.now(), 1):
            return changed


def together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released by one barrier; their results."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    failures: list[str] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=TIMEOUT)
            results[index] = work(index)
        except BaseException:
            failures.append(traceback.format_exc())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads), "workers hung"
    assert not failures, "\n".join(failures)
    return results


def eml_message_ids(folders: Sequence[Path]) -> list[str]:
    """The Message-ID of every ``.eml`` file in the folders (one entry per file)."""
    found = []
    for folder in folders:
        for path in sorted(folder.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            found.append(str(message["Message-ID"]))
    return found


def provisioning_flows(engine: regflow.Engine, count: int) -> list[regflow.Snapshot]:
    """``count`` registrations of the BIG customer accepted (in provisioning); their snapshots."""
    engine.contracts.add(**BIG)
    form = details(customer_id=BIG["customer_id"], tel=BIG["phone"])
    flows = []
    for number in range(count):
        snap = to_details(engine, f"timer{number:02d}@example.jp", BIG["accounts"][number % 2])
        snap = engine.send(snap, "submit", form)
        assert snap.state == "provisioning", message_ids(snap)
        flows.append(snap)
    return flows


def provisioned_steps(engine: regflow.Engine, flow_id: str) -> list[Any]:
    """The journal entries of a flow's ``provisioned`` timer."""
    return [e for e in engine.history(flow_id) if e.event == "provisioned"]


# ---- (a) sweep and deliver ---------------------------------------------------------------------


@pytest.mark.parametrize("failure", [
    regflow.TransientError("mail server busy"),
    OSError("network unreachable"),
    ConnectionRefusedError(111, "connection refused"),
    TimeoutError("timed out"),
    smtplib.SMTPServerDisconnected("connection unexpectedly closed"),
    smtplib.SMTPResponseException(421, b"4.3.2 service not available, try later"),
], ids=lambda exc: type(exc).__name__)
def test_transient_failure_stays_queued_and_is_sent_once_later(
        make_engine: EngineFactory, frozen: FrozenDateTimeFactory, failure: Exception) -> None:
    """A transient failure after the commit keeps the mail queued; deliver() sends it once later."""
    engine = make_engine()
    mailer = ScriptedMailer(failure)
    use_mailer(engine, mailer)
    snap = submit_email(engine, TARO)
    assert snap.state == "enter_code"  # the step succeeded, whatever the mail did
    assert (len(mailer.tried), mailer.messages) == (1, [])
    row = outbox_row(engine, mailer.tried[0])
    assert (row.status, row.attempts, row.sent_at) == ("queued", 1, None)
    assert row.last_error is not None
    assert type(failure).__name__ in row.last_error
    assert row.next_attempt_at == datetime.now(UTC) + FIRST_RETRY

    assert engine.deliver() == 0  # not due yet
    frozen.tick(FIRST_RETRY - SECOND)
    assert engine.deliver() == 0
    frozen.tick(SECOND)
    assert engine.deliver() == 1
    assert len(mailer.messages) == 1
    assert mailer.messages[0]["Message-ID"] == mailer.tried[0]["Message-ID"]
    [code] = codes_in(mailer.messages[0])
    assert engine.send(snap, "submit", {"code": code}).state == "details"
    for _ in range(3):
        frozen.tick(timedelta(hours=1))
        assert engine.deliver() == 0
    assert len(mailer.tried) == 2
    row = outbox_row(engine, mailer.messages[0])
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    assert row.sent_at is not None
    assert queued(engine) == []


def assert_failed_for_good(engine: regflow.Engine, frozen: FrozenDateTimeFactory,
                           failure: Exception) -> None:
    """A mail whose first delivery raised ``failure`` is ``failed`` and never tried again."""
    mailer = ScriptedMailer(failure)
    use_mailer(engine, mailer)
    assert submit_email(engine, TARO).state == "enter_code"
    row = outbox_row(engine, mailer.tried[0])
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 1, None)
    assert row.last_error is not None
    for _ in range(3):
        frozen.tick(timedelta(hours=2))
        assert engine.deliver() == 0
    assert (len(mailer.tried), mailer.messages) == (1, [])
    assert queued(engine) == []


@pytest.mark.parametrize("failure", [ValueError("bad address"), RuntimeError("mailer bug")],
                         ids=lambda exc: type(exc).__name__)
def test_permanent_failure_marks_the_mail_failed(
        make_engine: EngineFactory, frozen: FrozenDateTimeFactory, failure: Exception) -> None:
    """A mailer raising anything but TransientError or OSError: ``failed``, never retried."""
    assert_failed_for_good(make_engine(), frozen, failure)


@pytest.mark.parametrize("failure", [
    smtplib.SMTPRecipientsRefused({TARO: (550, b"5.1.1 no such user")}),
    smtplib.SMTPResponseException(554, b"5.7.1 message rejected"),
    smtplib.SMTPDataError(552, b"5.3.4 message too big"),
], ids=lambda exc: type(exc).__name__)
def test_smtp_5xx_marks_the_mail_failed(frozen: FrozenDateTimeFactory, failure: Exception) -> None:
    """SPEC 4.4: SMTP 5xx is not retried (smtplib's errors are OSErrors, 5xx included)."""
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast")
    engine.contracts.add(customer_id="281234", phone="03-1234-5678", licenses=3,
                         accounts=["abcd8-01"])
    assert_failed_for_good(engine, frozen, failure)


def test_mail_failing_transiently_gives_up_after_ten_attempts(
        make_engine: EngineFactory, frozen: FrozenDateTimeFactory) -> None:
    """Retries back off (30 s doubling, at most 1 h); after 10 attempts the mail is ``failed``."""
    engine = make_engine()
    mailer = ScriptedMailer(always=regflow.TransientError("still busy"))
    use_mailer(engine, mailer)
    submit_email(engine, TARO)
    waits = []
    for _ in range(MAX_ATTEMPTS - 1):
        row = outbox_row(engine, mailer.tried[0])
        assert row.status == "queued"
        assert row.next_attempt_at is not None
        wait = row.next_attempt_at - datetime.now(UTC)
        waits.append(int(wait.total_seconds()))
        frozen.tick(wait - SECOND)
        assert engine.deliver() == 0
        assert len(mailer.tried) == row.attempts
        frozen.tick(SECOND)
        assert engine.deliver() == 0
        assert len(mailer.tried) == row.attempts + 1
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    row = outbox_row(engine, mailer.tried[0])
    assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)
    frozen.tick(timedelta(days=1))
    assert engine.deliver() == 0
    assert len(mailer.tried) == MAX_ATTEMPTS


def test_sweep_applies_due_timers_and_expiries(make_engine: EngineFactory,
                                              frozen: FrozenDateTimeFactory) -> None:
    """sweep(): nothing before a deadline; at it the timer fires (journaled at the deadline)."""
    engine = make_engine()
    accepted = to_details(engine, TARO)
    accepted = engine.send(accepted, "submit", details())
    assert accepted.state == "provisioning"
    abandoned = engine.start("registration", {"account": "abcd8-02"})
    ready_at = datetime.now(UTC) + PROVISIONING
    frozen.tick(PROVISIONING - SECOND)
    assert engine.sweep() == 0
    frozen.tick(SECOND)
    assert engine.sweep() == 1
    assert engine.sweep() == 0
    [step] = provisioned_steps(engine, accepted.id)
    assert (step.from_state, step.to_state, step.actor, step.at) == (
        "provisioning", "ready", "timer", ready_at)
    frozen.tick(timedelta(minutes=50) - SECOND)  # the abandoned flow: 60 min after its start
    assert engine.sweep() == 0
    frozen.tick(SECOND)
    assert engine.sweep() == 1
    assert engine.get(abandoned).status == "expired"
    assert engine.get(accepted).status == "completed"
    assert engine.sweep() == 0


# ---- (b) several workers deliver each mail once ------------------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema (skipped without a server)."""
    url = postgres_url()
    try:
        yield url
    finally:
        drop_schema(url)


def open_engines(url: str, count: int, **options: Any) -> list[regflow.Engine]:
    """``count`` engines on one database, each with its own memory mailer, each store opened
    (tables checked) before any of them works: the races below are about working together; a
    store's first use racing others' work is ``test_worker_starting_while_another_works``."""
    engines = [regflow.Engine.from_url(url, mail="memory", hasher="fast", **options)
               for _ in range(count)]
    for engine in engines:
        with engine.store.transaction():
            pass
    return engines


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_in_threads_deliver_each_mail_once(db_url: str, workers: int) -> None:
    """Workers (own engines, own mailers) draining one outbox together: each mail sent once."""
    feeder, *engines = open_engines(db_url, workers + 1)
    try:
        expected = enqueue_mails(feeder, MAILS)

        def work(index: int) -> int:
            engine = engines[index]
            try:
                return drain(engine)
            finally:
                engine.store.close()

        counts = together(workers, work)
        sent = [str(m["Message-ID"]) for e in engines for m in e.mailer.messages]  # type: ignore[attr-defined]
        assert len(sent) == MAILS, Counter(sent).most_common(3)
        assert set(sent) == expected
        assert sum(counts) == MAILS
        assert queued(feeder) == []
    finally:
        for engine in (feeder, *engines):
            engine.store.close()


def _deliver_in_process(url: str, folder: str, barrier: Any, results: Any) -> None:
    """In a spawned process: a worker with an outbox-folder mailer, draining after the barrier."""
    try:
        engine = regflow.Engine.from_url(url, mail=f"outbox:{folder}", hasher="fast")
        with engine.store.transaction():
            pass  # connect before the start
        barrier.wait(timeout=TIMEOUT)
        results.put((drain(engine), None))
        engine.store.close()
    except BaseException:
        results.put((0, traceback.format_exc()))


def test_workers_in_processes_deliver_each_mail_once(pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL, 4 spawned worker processes draining one outbox: each mail sent exactly once."""
    feeder = regflow.Engine.from_url(pg_url, mail="memory", hasher="fast")
    expected = enqueue_mails(feeder, MAILS)
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(4), spawn.Queue()
    folders = [tmp_path / f"worker-{i}" for i in range(4)]
    processes = [spawn.Process(target=_deliver_in_process, args=(pg_url, str(f), barrier, results))
                 for f in folders]
    for process in processes:
        process.start()
    try:
        answers = [results.get(timeout=TIMEOUT) for _ in processes]
    finally:
        for process in processes:
            process.join(TIMEOUT)
            if process.is_alive():
                process.kill()
    assert not [error for _, error in answers if error], answers
    assert [p.exitcode for p in processes] == [0] * 4
    sent = eml_message_ids(folders)
    assert len(sent) == MAILS, Counter(sent).most_common(3)
    assert set(sent) == expected
    assert sum(count for count, _ in answers) == MAILS
    assert queued(feeder) == []
    feeder.store.close()


def run_workers(url: str, folders: Sequence[Path], *extra: str) -> list[str]:
    """Start one ``regflow worker --once`` process per folder at the same time; their outputs."""
    command = [sys.executable, "-c", "from regflow.cli import main; main()"]
    processes = [subprocess.Popen(
        [*command, "worker", "--once", "--batch", "500", "--db", url, "--mail", f"outbox:{folder}",
         "--hasher", "fast", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for folder in folders]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=TIMEOUT)
        assert process.returncode == 0, err
        assert "Traceback" not in err, err
        outputs.append(out)
    return outputs


def test_worker_commands_deliver_each_mail_once(pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL, two ``regflow worker --once`` processes together: each mail sent exactly once."""
    feeder = regflow.Engine.from_url(pg_url, mail="memory", hasher="fast")
    expected = enqueue_mails(feeder, MAILS)
    folders = [tmp_path / "one", tmp_path / "two"]
    run_workers(pg_url, folders)
    sent = eml_message_ids(folders)
    assert len(sent) == MAILS, Counter(sent).most_common(3)
    assert set(sent) == expected
    assert queued(feeder) == []
    feeder.store.close()


def test_worker_starting_while_another_works(pg_url: str) -> None:
    """PostgreSQL: a worker whose store is used for the first time while another engine is in a
    transaction (here: one that wrote the outbox and then saves a flow) does not fail."""
    busy = regflow.Engine.from_url(pg_url, mail="memory", hasher="fast")
    busy.contracts.add(customer_id="281234", phone="03-1234-5678", licenses=3,
                       accounts=["abcd8-01"])
    flow_id = busy.start("registration", {"account": "abcd8-01"}).id  # the tables exist now
    newcomer = regflow.Engine.from_url(pg_url, mail="memory", hasher="fast")
    answers: list[Any] = []

    def first_pass() -> None:
        try:
            answers.append(newcomer.deliver())
        except Exception as exc:
            answers.append(exc)
        finally:
            newcomer.store.close()

    thread = threading.Thread(target=first_pass)
    try:
        with busy.store.transaction() as tx:
            enqueue_mails(busy, 1)  # a savepoint of this open transaction
            thread.start()
            time.sleep(0.5)  # the newcomer is checking its tables meanwhile
            record = tx.flows.load(flow_id)
            assert record is not None
            assert tx.flows.update(record, record.rev)
    finally:
        thread.join(TIMEOUT)
        busy.store.close()
    assert answers in ([0], [1]), answers  # no exception; the mail sent or left for later


# ---- (c) several workers apply each timer once ---------------------------------------------------


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_in_threads_apply_each_timer_once(db_url: str, workers: int) -> None:
    """Many flows in provisioning, workers sweeping together after the deadline: one step each."""
    clock = regflow.ManualClock(datetime.now(UTC).replace(microsecond=0))
    feeder, *engines = open_engines(db_url, workers + 1, clock=clock)
    try:
        flows = provisioning_flows(feeder, 24)
        clock.advance(PROVISIONING.total_seconds())

        def work(index: int) -> int:
            engine = engines[index]
            try:
                return sweep_all(engine)
            finally:
                engine.store.close()

        counts = together(workers, work)
        assert sum(counts) == len(flows)
        for flow in flows:
            assert len(provisioned_steps(feeder, flow.id)) == 1
            assert feeder.get(flow).state == "ready"
    finally:
        for engine in (feeder, *engines):
            engine.store.close()


def test_worker_commands_apply_each_timer_once(pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL, two ``regflow worker --once`` processes after the deadline: one step per flow."""
    past = datetime.now(UTC).replace(microsecond=0) - 2 * PROVISIONING
    feeder = regflow.Engine.from_url(pg_url, mail="memory", hasher="fast",
                                     clock=regflow.ManualClock(past))
    flow_ids = [flow.id for flow in provisioning_flows(feeder, 24)]
    outputs = run_workers(pg_url, [tmp_path / "one", tmp_path / "two"])
    applied = 0
    for out in outputs:
        for line in out.splitlines():
            if line.startswith("timers applied to"):
                applied += int(line.split()[3])
    assert applied == len(flow_ids), outputs
    for flow_id in flow_ids:
        assert len(provisioned_steps(feeder, flow_id)) == 1
    feeder.store.close()


# ---- (d) the command on SQLite -------------------------------------------------------------------


def test_worker_once_on_sqlite_applies_timers_and_delivers(tmp_path: Path) -> None:
    """``regflow worker --once``: due timers applied, queued mail delivered, counts printed."""
    url = f"sqlite:///{tmp_path / 'regflow.db'}"
    past = datetime.now(UTC).replace(microsecond=0) - 2 * PROVISIONING
    clock = regflow.ManualClock(past)
    engine = regflow.Engine.from_url(url, mail="memory", hasher="fast", clock=clock)
    engine.contracts.add(customer_id="281234", phone="03-1234-5678", licenses=3,
                         accounts=["abcd8-01", "abcd8-02", "abcd8-03"])
    mailer = ScriptedMailer(always=regflow.TransientError("down"))
    use_mailer(engine, mailer)
    flow_ids = []
    for number, address in enumerate(("a@example.jp", "b@example.jp")):
        snap = submit_email(engine, address, f"abcd8-0{number + 1}")
        snap = engine.send(snap, "submit", {"code": codes_in(mailer.tried[-1])[0]})
        snap = engine.send(snap, "submit", details())
        assert snap.state == "provisioning", message_ids(snap)
        flow_ids.append(snap.id)
    submit_email(engine, "c@example.jp", "abcd8-03")  # its mail stays queued too
    engine.store.close()
    assert len(mailer.tried) == 3

    outbox = tmp_path / "outbox"
    runner = CliRunner()
    args = ["worker", "--once", "--db", url, "--mail", f"outbox:{outbox}", "--hasher", "fast"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output == "timers applied to 2 flow(s); 3 mail(s) delivered\n"
    assert sorted(eml_message_ids([outbox])) == sorted(str(m["Message-ID"]) for m in mailer.tried)
    result = runner.invoke(main, args)  # nothing left: a quiet pass
    assert (result.exit_code, result.output) == (0, "")
    assert len(eml_message_ids([outbox])) == 3

    check = regflow.Engine.from_url(url, mail="memory", hasher="fast", clock=clock)
    for flow_id in flow_ids:
        [step] = provisioned_steps(check, flow_id)
        assert (step.to_state, step.actor) == ("ready", "timer")
        assert step.at == past + PROVISIONING
    check.store.close()
