"""Issue 18: the database going away and coming back, and a busy SQLite file.

PostgreSQL drops every connection when it restarts or fails over (``pg_terminate_backend`` does
the same to one): the store reopens a dropped connection, a step that lost it before COMMIT is
retried under the transient policy, a loss at COMMIT is a StoreError (it may have committed).
``regflow serve`` answers 503 while the server is away and recovers once it is back; ``regflow
worker`` waits it out. A SQLite file held by another writer past the busy timeout is transient,
and read transactions (``write=False``) pass beside a writer.

Real processes and the local PostgreSQL server. Two tests restart the cluster
(``pg_ctlcluster``) and wait until it accepts connections again, so later tests find it up.
"""

from __future__ import annotations

import email
import email.policy
import multiprocessing
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import peewee as pw
import pytest
from flows import details, enqueue_mails, to_details
from pg import SERVER, drop_schema, postgres_url
from security.live import Server, serving

import regflow
from regflow.adapters.peewee_store import PeeweeStore
from regflow.ground.exceptions import StoreError, TransientError
from regflow.ground.records import FlowRecord, Login

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONTRACT: dict[str, Any] = {"customer_id": "281234", "phone": "03-1234-5678", "licenses": 3,
                            "accounts": ["abcd8-01", "abcd8-02", "abcd8-03"]}
BACK_WITHIN = 15.0  # seconds after PostgreSQL is back by which serve and worker must work again
TIMEOUT = 120  # seconds: a process or wait still going after this is a hang
RESTART_LIMIT = 300  # seconds a PostgreSQL restart may take (its shutdown checkpoint included)


# ---- PostgreSQL: backends, the cluster ---------------------------------------------------------


def admin_run(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run ``sql`` on the test server over a connection of its own; the rows."""
    import psycopg

    with psycopg.connect(SERVER, autocommit=True, connect_timeout=3) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def terminate(application_name: str) -> int:
    """``pg_terminate_backend`` every backend of that application name, and wait until they are
    gone (the signal is asynchronous); how many there were."""
    pids = [pid for (pid,) in admin_run(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,))]
    for pid in pids:
        admin_run("SELECT pg_terminate_backend(%s)", (pid,))
    deadline = time.monotonic() + 10
    while admin_run("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)):
        assert time.monotonic() < deadline, "terminated backends still there after 10 s"
        time.sleep(0.02)
    return len(pids)


@pytest.fixture
def named_url() -> Iterator[tuple[str, str]]:
    """A store URL on a fresh schema whose connections carry their own ``application_name``
    (libpq takes it from the URL), and that name."""
    name = f"regflow-test-{secrets.token_hex(4)}"
    url = postgres_url()
    try:
        yield f"{url}&application_name={name}", name
    finally:
        drop_schema(url)


def postgres_accepts() -> bool:
    """Whether the test server takes a connection and a query now."""
    try:
        admin_run("SELECT 1")
    except Exception:
        return False
    return True


def wait_for_postgres(seconds: float = 60) -> float:
    """Wait until the server accepts connections; the monotonic instant it first did."""
    deadline = time.monotonic() + seconds
    while not postgres_accepts():
        assert time.monotonic() < deadline, f"PostgreSQL not back after {seconds} s"
        time.sleep(0.05)
    return time.monotonic()


@attrs.frozen
class Cluster:
    """The local cluster the test server runs on (Debian's ``pg_ctlcluster`` names it)."""

    version: str
    name: str

    def _ctl(self, action: str, *pg_ctl: str, check: bool = False) -> int:
        return subprocess.run(["pg_ctlcluster", self.version, self.name, action, "--", *pg_ctl],
                              check=check, timeout=RESTART_LIMIT + 30,
                              capture_output=True).returncode

    def checkpoint(self) -> None:
        """Write dirty pages out now, so that the restart's shutdown checkpoint is short (after
        many tests' schemas it can take a minute) and the outage is what a planned restart is."""
        admin_run("CHECKPOINT")

    def restart(self) -> float:
        """Restart it ("fast": sessions are ended, as on a fail-over); the instant it is back."""
        self._ctl("restart", "-t", str(RESTART_LIMIT), check=True)
        return wait_for_postgres()

    def ensure_up(self) -> None:
        """Wait until it accepts connections, starting it if a failed test left it stopped."""
        deadline = time.monotonic() + RESTART_LIMIT
        while not postgres_accepts():
            assert time.monotonic() < deadline, f"PostgreSQL not up after {RESTART_LIMIT} s"
            if self._ctl("status") == 3:  # pg_ctl: not running
                self._ctl("start", "-t", str(RESTART_LIMIT))
            time.sleep(0.5)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """The restartable local cluster of the test server, left up afterwards; or a skip."""
    postgres_url()  # skips without a server
    parts = urlsplit(SERVER)
    if shutil.which("pg_ctlcluster") is None or shutil.which("pg_lsclusters") is None:
        pytest.skip("pg_ctlcluster is not installed: cannot restart PostgreSQL")
    if parts.hostname not in ("127.0.0.1", "localhost", "::1") or os.geteuid() != 0:
        pytest.skip("restarting PostgreSQL needs root and the server on this machine")
    listed = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True,
                            check=False).stdout.splitlines()
    found = [line.split() for line in listed if len(line.split()) > 3]
    mine = [Cluster(fields[0], fields[1]) for fields in found
            if fields[2] == str(parts.port or 5432) and fields[3] == "online"]
    if len(mine) != 1:
        pytest.skip(f"no single online local cluster on port {parts.port or 5432}")
    try:
        yield mine[0]
    finally:
        mine[0].ensure_up()


# ---- PostgreSQL: the engine and the store -----------------------------------------------------


def demo_engine(url: str, **options: Any) -> regflow.Engine:
    """An engine on ``url`` (memory mail, fast hasher) with the demo contract."""
    engine = regflow.Engine.from_url(url, mail="memory", hasher="fast", **options)
    engine.contracts.add(**CONTRACT)
    return engine


def test_engine_call_after_its_backend_was_terminated(named_url: tuple[str, str]) -> None:
    """A call works; its backend is terminated (a restart or fail-over does that); the next
    calls (a read and a write) succeed on a new connection, no error reaching the caller."""
    url, name = named_url
    engine = demo_engine(url)
    try:
        started = engine.start("registration", {"account": "abcd8-01"})
        before = admin_run("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,))
        assert terminate(name) == 1
        assert engine.get(started).state == "enter_email"
        assert terminate(name) == 1
        sent = engine.send(started, "submit", {"email": "taro@example.jp"})
        assert sent.state == "enter_code"
        after = admin_run("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,))
        assert after
        assert after != before  # the same engine, on a new backend
        assert [e.to_state for e in engine.history(started.id)][-1] == "enter_code"
    finally:
        engine.store.close()


class KillingProvisioner:
    """A provisioner that terminates the engine's backend on its first call: the step then
    loses its connection between the login's insert and the flow's save, before COMMIT."""

    def __init__(self, application_name: str) -> None:
        self.application_name = application_name
        self.calls: list[str] = []

    def provision(self, login: Login, *, key: str) -> None:
        """Count the call; the first one drops the step's connection."""
        self.calls.append(key)
        if len(self.calls) == 1:
            assert terminate(self.application_name) == 1


def test_step_that_lost_its_connection_is_retried(named_url: tuple[str, str]) -> None:
    """The connection is lost in the middle of a step (nothing committed): the engine runs
    the step again under its transient policy; the caller sees the step done, once."""
    url, name = named_url
    provisioner = KillingProvisioner(name)
    engine = demo_engine(url, provisioner=provisioner)
    try:
        snap = to_details(engine, "taro@example.jp")
        done = engine.send(snap, "submit", details())
        assert done.state == "provisioning", done
        assert len(provisioner.calls) == 2
        assert len(set(provisioner.calls)) == 1  # the same key both times
        with engine.store.transaction() as tx:
            assert [login.email for login in tx.logins.of_customer("281234")] == [
                "taro@example.jp"]
        steps = [e.to_state for e in engine.history(done.id)]
        assert steps.count("provisioning") == 1, steps
    finally:
        engine.store.close()


def flow(flow_id: str) -> FlowRecord:
    """A stored flow record (no timers)."""
    return FlowRecord(id=flow_id, flow="registration", version=1, state="enter_email",
                      status="active", data={}, timers=[], expires_at=T0 + timedelta(hours=1),
                      created_at=T0, updated_at=T0, token_digest="7f" * 32)


def test_store_loss_inside_a_transaction_is_transient(named_url: tuple[str, str]) -> None:
    """The connection lost between two statements of a transaction: TransientError, nothing
    of the transaction kept, and the next transaction works on a new connection."""
    url, name = named_url
    store = PeeweeStore.from_url(url)
    try:
        with store.transaction() as tx:
            tx.flows.insert(flow("kept"))

        def lose_connection_midway() -> None:
            with store.transaction() as tx:
                tx.flows.insert(flow("lost"))
                terminate(name)
                tx.flows.insert(flow("never"))

        with pytest.raises(TransientError) as caught:
            lose_connection_midway()
        assert isinstance(caught.value.__cause__, pw.OperationalError)
        with store.transaction() as tx:
            assert tx.flows.load("kept") is not None
            assert tx.flows.load("lost") is None
            assert tx.flows.load("never") is None
            tx.flows.insert(flow("after"))
        assert sorted(store.iter_flow_ids()) == ["after", "kept"]
    finally:
        store.close()


def test_store_loss_at_commit_is_a_store_error(named_url: tuple[str, str]) -> None:
    """The connection lost when COMMIT is sent: the commit may or may not have happened, so
    the caller gets a StoreError (not TransientError, which would invite a blind retry); the
    next transaction works on a new connection."""
    url, name = named_url
    store = PeeweeStore.from_url(url)
    try:
        def lose_connection_at_commit() -> None:
            with store.transaction() as tx:
                tx.flows.insert(flow("at-commit"))
                terminate(name)

        with pytest.raises(StoreError, match="may or may not have been committed") as caught:
            lose_connection_at_commit()
        assert type(caught.value) is StoreError  # not retried as transient
        with store.transaction() as tx:  # here it was not: the backend died before COMMIT
            assert tx.flows.load("at-commit") is None
            tx.flows.insert(flow("after"))
        assert list(store.iter_flow_ids()) == ["after"]
    finally:
        store.close()


def test_reads_outside_a_transaction_reconnect(named_url: tuple[str, str]) -> None:
    """``due_flows`` and ``iter_flow_ids`` (autocommit reads) after the backend was terminated:
    answered on a new connection."""
    url, name = named_url
    store = PeeweeStore.from_url(url)
    try:
        with store.transaction() as tx:
            tx.flows.insert(flow("f1"))
        terminate(name)
        assert list(store.iter_flow_ids()) == ["f1"]
        terminate(name)
        assert list(store.due_flows(T0 + timedelta(hours=2), 10)) == ["f1"]
    finally:
        store.close()


def test_unreachable_server_is_transient() -> None:
    """A PostgreSQL server that does not answer (down, restarting): TransientError, caused by
    the driver's error; a store error only once it is clear no retry helps."""
    pytest.importorskip("psycopg")
    from live_server import free_port

    store = PeeweeStore.from_url(f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    with pytest.raises(TransientError) as caught, store.transaction():
        pass
    assert "connect" in str(caught.value)
    with pytest.raises(TransientError):
        list(store.due_flows(T0, 1))


def test_pages_and_api_answer_503_while_the_database_is_away() -> None:
    """With no server to reach, a page and an API call answer 503 with ``Retry-After`` (the
    page in the visitor's language), not 500."""
    pytest.importorskip("psycopg")
    from live_server import free_port

    from regflow.web import create_app

    url = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    engine = regflow.Engine.from_url(url, mail="memory", hasher="fast", secret=secrets.token_bytes(32))
    client = create_app(engine).test_client()
    page = client.get("/?account=abcd8-01&lang=ja")
    assert page.status_code == 503
    assert page.headers["Retry-After"] == "1"
    assert "しばらくしてからもう一度お試しください" in page.get_data(as_text=True)
    api = client.post("/api/flows", json={"flow": "registration", "context": {"account": "abcd8-01"}})
    assert api.status_code == 503
    assert api.get_json()["error"] == "transient_error"


# ---- PostgreSQL restarted under `regflow serve` and `regflow worker` ---------------------------


@attrs.define
class Watch:
    """Polls the server every 20 ms in a thread: when it first refused, when it first
    accepted again afterwards (what "PostgreSQL is back" means below)."""

    down: float | None = None
    up: float | None = None
    _thread: threading.Thread | None = None

    def start(self) -> Watch:
        """Start polling."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        deadline = time.monotonic() + RESTART_LIMIT
        while self.up is None and time.monotonic() < deadline:
            accepts = postgres_accepts()
            if not accepts and self.down is None:
                self.down = time.monotonic()
            elif accepts and self.down is not None:
                self.up = time.monotonic()
            time.sleep(0.02)

    def up_at(self, seconds: float) -> float:
        """The instant the server accepted again after refusing (waiting for it)."""
        assert self._thread is not None
        self._thread.join(seconds)
        assert self.up is not None, "PostgreSQL never went away, or never came back"
        return self.up

    def outage(self) -> float:
        """Seconds between the first refusal and the first acceptance after it."""
        assert self.up is not None
        assert self.down is not None
        return self.up - self.down


@attrs.define
class Load:
    """HTTP load in threads until stopped: each round a registration started from a client
    address of its own, then a read of that flow; every answer as (start, end, status)."""

    server: Server
    answers: list[tuple[float, float, int]] = attrs.field(factory=list)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)
    _stop: threading.Event = attrs.field(factory=threading.Event)
    _threads: list[threading.Thread] = attrs.field(factory=list)

    def start(self, threads: int = 4) -> Load:
        """Start the threads."""
        for _ in range(threads):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop the threads and wait for them."""
        self._stop.set()
        for thread in self._threads:
            thread.join(TIMEOUT)

    def _record(self, began: float, status: int) -> None:
        with self._lock:
            self.answers.append((began, time.monotonic(), status))

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                client = self.server.client()
            began = time.monotonic()
            try:
                started = client.start("registration", account="abcd8-01")
            except OSError:  # the server itself must stay up: recorded as status 0
                self._record(began, 0)
                continue
            self._record(began, started.status)
            if started.status == 201:
                began = time.monotonic()
                read = client.get(started["id"], started["flow_token"])
                self._record(began, read.status)
            else:
                time.sleep(0.05)

    def successes_since(self, instant: float) -> int:
        """Answers 2xx to requests sent after ``instant``."""
        with self._lock:
            return sum(1 for began, _, status in self.answers
                       if began >= instant and 200 <= status < 300)


def test_serve_recovers_after_postgresql_restart(cluster: Cluster, tmp_path: Path) -> None:
    """``regflow serve`` on PostgreSQL under load; the cluster restarts: requests during the
    outage may get 503, nothing else; within BACK_WITHIN s of PostgreSQL being back every
    request succeeds again (the measured time is printed)."""
    cluster.checkpoint()
    with serving("postgresql", tmp_path) as server:
        load = Load(server).start()
        try:
            began = time.monotonic()
            while load.successes_since(began) < 24:
                assert time.monotonic() - began < 60, "no load before the restart"
                time.sleep(0.05)
            watch = Watch().start()
            restart_at = time.monotonic()
            done_at = cluster.restart()
            back_at = watch.up_at(TIMEOUT)
            deadline = back_at + BACK_WITHIN
            while load.successes_since(back_at) == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(3)  # then a few seconds of load that must all succeed
        finally:
            load.stop()
        assert server.process.poll() is None, "regflow serve exited"
    answers = sorted(load.answers)
    before = [status for _, end, status in answers if end < restart_at]
    assert before
    assert set(before) <= {200, 201}, before
    assert {status for _, _, status in answers} <= {200, 201, 503}, answers
    first_after = min((end for began, end, status in answers
                       if began >= back_at and status in (200, 201)), default=None)
    assert first_after is not None, f"no request succeeded within {BACK_WITHIN} s"
    failed = [end for _, end, status in answers if status == 503]
    last_failure = max(failed, default=restart_at)
    recovered = max(first_after, last_failure) - back_at
    print(f"\nserve: PostgreSQL away {watch.outage():.2f} s (restart command {done_at - restart_at:.2f}"
          f" s); {len(failed)} answer(s) 503; first request sent after PostgreSQL was back "
          f"succeeded {first_after - back_at:.3f} s after it was; last 503 "
          f"{last_failure - back_at:+.3f} s from then")
    assert recovered < BACK_WITHIN, recovered
    after = [status for began, _, status in answers if began > max(last_failure, back_at)]
    assert len(after) >= 10, after
    assert set(after) <= {200, 201}, after


def eml_ids(folder: Path) -> set[str]:
    """The Message-IDs of the ``.eml`` files in a folder."""
    return {str(email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                ["Message-ID"]) for path in folder.glob("*.eml")}


def wait_for_mail(folder: Path, wanted: set[str], seconds: float) -> float:
    """Wait until every wanted Message-ID is in the folder; the instant they were."""
    deadline = time.monotonic() + seconds
    while not wanted <= eml_ids(folder):
        assert time.monotonic() < deadline, f"mail {wanted - eml_ids(folder)} not delivered"
        time.sleep(0.05)
    return time.monotonic()


def test_worker_survives_postgresql_restart(cluster: Cluster, tmp_path: Path) -> None:
    """``regflow worker`` on PostgreSQL: the cluster restarts; the worker keeps running and
    delivers a mail queued after the restart; failures, if it met any, were one line when
    they started and one when they ended."""
    cluster.checkpoint()
    url = postgres_url()
    outbox, log = tmp_path / "outbox", tmp_path / "worker.err"
    feeder = regflow.Engine.from_url(url, mail="memory", hasher="fast")
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", "from regflow.cli import main; main()", "worker", "--db", url,
             "--mail", f"outbox:{outbox}", "--hasher", "fast", "--interval", "0.05"],
            stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_for_mail(outbox, enqueue_mails(feeder, 1), 30)
        back_at = cluster.restart()
        queued = enqueue_mails(feeder, 1)  # the feeder's connection was dropped too
        delivered_at = wait_for_mail(outbox, queued, BACK_WITHIN + 30)
        assert process.poll() is None, log.read_text()
    finally:
        process.terminate()
        process.wait(TIMEOUT)
        feeder.store.close()
        drop_schema(url)
    lines = log.read_text().splitlines()
    waiting = [line for line in lines if "worker_waiting" in line]
    resumed = [line for line in lines if "worker_resumed" in line]
    print(f"\nworker: mail queued after the restart delivered {delivered_at - back_at:.2f} s "
          f"after PostgreSQL was back; {len(waiting)} failure streak(s): {waiting}")
    assert "Traceback" not in log.read_text(), lines
    assert len(waiting) == len(resumed) <= 2, lines
    assert len(lines) == len(waiting) + len(resumed), lines


def test_worker_once_still_fails_when_the_database_is_away(tmp_path: Path) -> None:
    """``regflow worker --once`` against a server that does not answer ends with status 2 and
    the transient error's one line (it is not left waiting)."""
    pytest.importorskip("psycopg")
    from live_server import free_port

    url = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    done = subprocess.run(
        [sys.executable, "-c", "from regflow.cli import main; main()", "worker", "--once",
         "--db", url, "--mail", f"outbox:{tmp_path}", "--hasher", "fast"],
        capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("regflow: transient_error: "), done.stderr


# ---- SQLite: writers in two processes, busy, readers beside a writer ---------------------------


@contextmanager
def opened(url: str) -> Iterator[PeeweeStore]:
    """A store on a URL, closed after the block."""
    store = PeeweeStore.from_url(url)
    try:
        yield store
    finally:
        store.close()


def short_timeout_store(path: Path, busy_ms: int) -> PeeweeStore:
    """A store on a SQLite file whose busy timeout is ``busy_ms`` (the URL's is 10 s)."""
    db = pw.SqliteDatabase(str(path), timeout=busy_ms / 1000, pragmas=(
        ("busy_timeout", busy_ms), ("journal_mode", "wal"), ("synchronous", "normal")))
    return PeeweeStore(db, url=f"sqlite:///{path}", begin=("IMMEDIATE",))


def _engine_writer(url: str, prefix: str, calls: int, barrier: Any, results: Any) -> None:
    """In a spawned process: ``calls`` engine calls that write (starts and events) after the
    barrier; every error a caller saw, as text."""
    seen: list[str] = []
    try:
        engine = regflow.Engine.from_url(url, mail="memory", hasher="fast")
        barrier.wait(timeout=TIMEOUT)
        for number in range(calls):
            try:
                snap = engine.start("registration", {"account": "abcd8-01"})
                engine.send(snap, "submit", {"email": f"{prefix}{number}@example.jp"})
            except Exception as exc:
                seen.append(f"{type(exc).__name__}: {exc}")
        engine.store.close()
        results.put((prefix, seen))
    except BaseException:
        results.put((prefix, [traceback.format_exc()]))


def _store_writer(path: str, prefix: str, writes: int, barrier: Any, results: Any) -> None:
    """In a spawned process: ``writes`` write transactions on a store with a 1 ms busy timeout,
    each run again while it raises TransientError; (transients met, any other error)."""
    transients = 0
    others: list[str] = []
    try:
        store = short_timeout_store(Path(path), 1)
        barrier.wait(timeout=TIMEOUT)
        for number in range(writes):
            while True:
                try:
                    with store.transaction() as tx:
                        tx.flows.insert(flow(f"{prefix}-{number}"))
                        tx.flows.load(f"{prefix}-{number}")
                    break
                except TransientError:
                    transients += 1
                except Exception as exc:
                    others.append(f"{type(exc).__name__}: {exc}")
                    break
        store.close()
        results.put((transients, others))
    except BaseException:
        results.put((transients, [traceback.format_exc()]))


def run_spawned(target: Callable[..., None], argsets: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``target(*args, barrier, results)`` in one spawned process per argument set, all
    starting together; what each put in the results queue."""
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(len(argsets)), spawn.Queue()
    processes = [spawn.Process(target=target, args=(*args, barrier, results)) for args in argsets]
    for process in processes:
        process.start()
    try:
        return [results.get(timeout=TIMEOUT) for _ in processes]
    finally:
        for process in processes:
            process.join(TIMEOUT)
            if process.is_alive():
                process.kill()


def test_sqlite_engines_in_two_processes_never_see_locked(tmp_path: Path) -> None:
    """Two processes writing through their engines on one SQLite file at once (150 starts and
    150 events each): every call succeeds; no caller sees "database is locked"."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    demo_engine(url).store.close()
    answers = run_spawned(_engine_writer, [(url, "a", 150), (url, "b", 150)])
    assert [seen for _, seen in answers] == [[], []], answers
    with opened(url) as store:
        assert len(list(store.iter_flow_ids())) == 300


def test_sqlite_busy_is_transient_under_contention(tmp_path: Path) -> None:
    """Two processes hammering writes with a 1 ms busy timeout, so that SQLite is busy for
    real: every such failure reaches the caller as TransientError (run again, it succeeds);
    none as a StoreError or a raw driver error; every write is there once."""
    path = tmp_path / "busy.db"
    with opened(f"sqlite:///{path}") as store, store.transaction():
        pass  # tables made before the race
    answers = run_spawned(_store_writer, [(str(path), "a", 300), (str(path), "b", 300)])
    assert [others for _, others in answers] == [[], []], answers
    print(f"\nSQLite busy met (and retried as TransientError): {[t for t, _ in answers]}")
    assert sum(t for t, _ in answers) > 0, "SQLite was never busy: the test proved nothing"
    with opened(f"sqlite:///{path}") as store:
        assert len(list(store.iter_flow_ids())) == 600


def write_one(store: PeeweeStore, flow_id: str) -> None:
    """One write transaction: a flow inserted."""
    with store.transaction() as tx:
        tx.flows.insert(flow(flow_id))


HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE flows SET state = 'held' WHERE id = 'f1'")
print("holding", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
print("released", flush=True)
"""


def test_sqlite_reader_beside_a_writer_and_busy_writer(tmp_path: Path) -> None:
    """Another process holds the write lock: a read transaction (``write=False``) runs at
    once and sees the last committed state; a write transaction, past its busy timeout, is a
    TransientError caused by "database is locked"; once the holder commits, writes work."""
    path = tmp_path / "held.db"
    store = short_timeout_store(path, 200)
    with store.transaction() as tx:
        tx.flows.insert(flow("f1"))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline().strip() == "holding"
        began = time.monotonic()
        with store.transaction(write=False) as tx:
            found = tx.flows.load("f1")
        assert found is not None
        assert found.state == "enter_email"  # not the holder's change
        assert time.monotonic() - began < 0.15  # did not wait for the lock
        with pytest.raises(TransientError) as caught:
            write_one(store, "f2")
        assert "database is locked" in str(caught.value.__cause__)
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(TIMEOUT)
    with store.transaction() as tx:
        tx.flows.insert(flow("f2"))
        loaded = tx.flows.load("f1")
        assert loaded is not None
        assert loaded.state == "held"
    store.close()


# ---- every store: read transactions ----------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[regflow.ground.ports.Store]:
    """A fresh store of each kind."""
    if request.param == "memory":
        yield regflow.Engine.from_url("memory://", mail="memory", hasher="fast").store
        return
    url = f"sqlite:///{tmp_path / 'r.db'}" if request.param == "sqlite" else postgres_url()
    store = PeeweeStore.from_url(url)
    try:
        yield store
    finally:
        store.close()
        if request.param == "postgresql":
            drop_schema(url)


def test_read_transactions_on_every_store(any_store: regflow.ground.ports.Store) -> None:
    """``transaction(write=False)`` reads what was committed, nests both ways, and rolls back
    with its block like any transaction."""
    with any_store.transaction() as tx:
        tx.flows.insert(flow("f1"))
    with any_store.transaction(write=False) as tx:
        assert tx.flows.load("f1") is not None
        with any_store.transaction() as inner:  # no other writer here: the write goes in
            inner.flows.insert(flow("f3"))
        assert tx.flows.load("missing") is None
    with any_store.transaction() as _, any_store.transaction(write=False) as inner:
        assert inner.flows.load("f3") is not None

    def fail_after_a_write() -> None:
        with any_store.transaction(write=False) as tx:
            tx.flows.insert(flow("f2"))
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        fail_after_a_write()
    with any_store.transaction(write=False) as tx:
        assert tx.flows.load("f2") is None
