"""Races (SPEC 1, I1–I5 under concurrency; issue 3): at least 12 threads — and on PostgreSQL
several processes — prepared up to the racing step, then released together by a barrier.

Each thread race runs on memory, on a real SQLite file and on PostgreSQL (skipped without a
server); on SQLite and PostgreSQL both with one Engine shared by every thread and with one Engine
per thread on the same database (separate connections, separate stores). Every racer must get
an answer (a snapshot; ``Forbidden`` only where the racer lost its admin role meanwhile), never
another exception, and I1–I4 are checked over the store after every race.
"""

from __future__ import annotations

import multiprocessing
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from flows import PASSWORD, details, last_code, message_ids, register, submit_email, to_details
from pg import drop_schema, postgres_url

import regflow
from regflow.definitions.validation import email_key
from regflow.ground.records import Login
from regflow.ground.screens import Snapshot
from regflow.runtime.limits import Limits, Rate
from regflow.testing import check_invariants  # I1–I4 over the whole store

RACERS = 12
PROCESSES = 4  # on PostgreSQL, RACERS spread over this many processes
JOIN_TIMEOUT = 120  # seconds: a racer still running after this is a hang
PROVISIONING = 600  # seconds

DEMO = {"customer_id": "281234", "phone": "03-1234-5678", "licenses": 3,
        "accounts": ["abcd8-01", "abcd8-02", "abcd8-03"]}
FRESH = {"customer_id": "287777", "phone": "045-777-0000", "licenses": 20,
         "accounts": ["race7-01", "race7-02"]}
TEAM = {"customer_id": "286666", "phone": "06-6666-0000", "licenses": 7,
        "accounts": [f"adm6-{i:02d}" for i in range(1, 8)]}
# One address, twelve spellings: case and full width (NFKC + casefold make them one key).
TARO_SPELLINGS = [
    "Taro@Example.jp", "ＴＡＲＯ@example.jp", "taro@EXAMPLE.JP", "taro@example.jp",
    "TARO@EXAMPLE.JP", "ｔａｒｏ@example.jp", "Ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", "tArO@eXaMpLe.Jp",
    "taro@ｅｘａｍｐｌｅ.jp", "TaRo@example.JP", "ｔaｒo@Example.Jp", "TARO＠example.jp",
]
KINDS = ("memory", "sqlite", "sqlite-engines", "postgresql", "postgresql-engines")


# ---- the course: a store, a clock, engines ---------------------------------------------------


@attrs.define
class Course:
    """A store for one race: the preparing engine, and the racers' engines on the same store."""

    url: str
    clock: regflow.ManualClock
    engine: regflow.Engine  # prepares the race; every racer's engine when ``shared``
    shared: bool
    built: list[regflow.Engine] = attrs.field(factory=list)
    limits: Limits | None = None  # the engines' limits across flows (None: the defaults)

    def racers(self, count: int = RACERS) -> list[regflow.Engine]:
        """An engine per racer: the preparing one, or each its own on the same database."""
        if self.shared:
            return [self.engine] * count
        engines = [regflow.Engine.from_url(self.url, mail="memory", hasher="fast", clock=self.clock,
                                           limits=self.limits)
                   for _ in range(count)]
        self.built.extend(engines)
        return engines


@pytest.fixture
def course_limits() -> Limits | None:
    """The limits across flows of a course's engines: the defaults, unless a test parametrizes
    ``course_limits`` (to race on something else than those limits)."""
    return None


@pytest.fixture(params=KINDS)
def course(request: pytest.FixtureRequest, tmp_path: Path,
           course_limits: Limits | None) -> Iterator[Course]:
    """A fresh store of the kind, with the demo contract; a manual clock shared by all engines."""
    kind = str(request.param)
    if kind == "memory":
        url = "memory://"
    elif kind.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'race.db'}"
    else:
        url = postgres_url()
    clock = regflow.ManualClock(datetime.now(UTC).replace(microsecond=0))
    engine = regflow.Engine.from_url(url, mail="memory", hasher="fast", clock=clock,
                                     limits=course_limits)
    engine.contracts.add(**DEMO)
    course = Course(url=url, clock=clock, engine=engine, shared=not kind.endswith("-engines"),
                    built=[engine], limits=course_limits)
    try:
        yield course
    finally:
        for built in course.built:
            built.store.close()
        if kind.startswith("postgresql"):
            drop_schema(url)


def race(engines: Sequence[regflow.Engine],
         work: Callable[[int, regflow.Engine], Any]) -> list[Any]:
    """Run ``work(i, engines[i])`` in one thread per engine, all released by one barrier.

    Each thread connects before the barrier and closes its connection afterwards. Returns what
    each racer returned; fails with the tracebacks if any racer raised or hung.
    """
    count = len(engines)
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    failures: list[str] = []

    def run(index: int) -> None:
        engine = engines[index]
        try:
            with engine.store.transaction():
                pass  # connect (and create the tables) before the start
            barrier.wait(timeout=JOIN_TIMEOUT)
            results[index] = work(index, engine)
        except BaseException:
            failures.append(f"racer {index}:\n{traceback.format_exc()}")
        finally:
            engine.store.close()  # this thread's connection

    threads = [threading.Thread(target=run, args=(i,), name=f"racer-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not [t.name for t in threads if t.is_alive()], "racers hung"
    assert not failures, "\n".join(failures)
    return results


def all_logins(engine: regflow.Engine) -> list[Login]:
    """Every login of every customer in the store."""
    with engine.store.transaction() as tx:
        return [login for customer in tx.contracts.customers()
                for login in tx.logins.of_customer(customer.customer_id)]


def prepare(engine: regflow.Engine, addresses: Sequence[str],
            accounts: Sequence[str]) -> list[Snapshot]:
    """Registrations brought to the details screen, one per address; their snapshots (each
    with its flow's token)."""
    return [to_details(engine, address, accounts[i % len(accounts)])
            for i, address in enumerate(addresses)]


def contract_form(contract: dict[str, Any]) -> dict[str, str]:
    """A details form matching a contract."""
    return details(customer_id=contract["customer_id"], tel=contract["phone"])


def racer_addresses(tag: str, count: int = RACERS) -> list[str]:
    """Distinct addresses for racers."""
    return [f"{tag}{i:02d}@example.jp" for i in range(count)]


def assert_seat_race(snaps: Sequence[Any], free: int) -> None:
    """Exactly ``free`` registrants were accepted, the others told license_full; all answered."""
    assert all(isinstance(s, Snapshot) for s in snaps), snaps
    states = Counter(s.state for s in snaps)
    assert states == Counter({"provisioning": free, "details": len(snaps) - free}), states
    for snap in snaps:
        if snap.state == "details":
            assert message_ids(snap) == ["license_full"]


# ---- (a) the last seats ------------------------------------------------------------------------


def test_registrants_race_for_the_last_seats(course: Course) -> None:
    """12 registrants at details, 2 free seats of 3: exactly 2 logins more, 10 license_full."""
    engine = course.engine
    first = register(engine, "abcd8-01", "first@example.jp")
    assert first.state == "provisioning"
    flows = prepare(engine, racer_addresses("seat"), DEMO["accounts"])
    form = contract_form(DEMO)
    snaps = race(course.racers(), lambda i, e: e.send(flows[i], "submit", form))
    assert_seat_race(snaps, free=2)
    logins = all_logins(engine)
    assert len(logins) == 3
    assert [login.email for login in logins if login.role == "admin"] == ["first@example.jp"]
    winners = {s.id for s in snaps if s.state == "provisioning"}
    for flow in flows:
        steps = [(e.from_state, e.to_state) for e in engine.history(flow.id)]
        assert (("details", "provisioning") in steps) == (flow.id in winners)
    check_invariants(engine)


# ---- (b) the first registrants -----------------------------------------------------------------


def test_first_registrants_race_for_admin(course: Course) -> None:
    """12 first registrants of a fresh customer: all accepted, exactly one of them admin."""
    engine = course.engine
    engine.contracts.add(**FRESH)
    flows = prepare(engine, racer_addresses("first"), FRESH["accounts"])
    form = contract_form(FRESH)
    snaps = race(course.racers(), lambda i, e: e.send(flows[i], "submit", form))
    assert [s.state for s in snaps] == ["provisioning"] * RACERS
    roles = Counter(login.role for login in all_logins(engine))
    assert roles == Counter({"admin": 1, "member": RACERS - 1})
    check_invariants(engine)


# ---- (c) one address, many spellings -----------------------------------------------------------


# The 12 registrations of one address mail it 12 codes at once: more than the 5 per 15 min
# across flows allows. This race is about I1, so that limit is raised for it.
TWELVE_MAILS = Limits(code_mails=(Rate(RACERS, 15 * 60),))


@pytest.mark.parametrize("course_limits", [TWELVE_MAILS], ids=["twelve-mails"])
def test_one_address_in_many_spellings_gives_one_login(course: Course) -> None:
    """The same address differing in case or width, 12 at details: one login, 11 email_taken."""
    engine = course.engine
    assert len({email_key(a) for a in TARO_SPELLINGS}) == 1
    assert len(set(TARO_SPELLINGS)) == RACERS
    flows = prepare(engine, TARO_SPELLINGS, DEMO["accounts"])
    form = contract_form(DEMO)
    snaps = race(course.racers(), lambda i, e: e.send(flows[i], "submit", form))
    assert all(isinstance(s, Snapshot) for s in snaps)
    assert Counter(s.state for s in snaps) == Counter({"provisioning": 1, "email_taken": RACERS - 1})
    logins = all_logins(engine)
    assert [login.email_key for login in logins] == ["taro@example.jp"]
    assert logins[0].role == "admin"
    check_invariants(engine)


# ---- (d) transfer racing delete and other transfers --------------------------------------------


def sign_in(engine: regflow.Engine, account: str, email: str) -> str:
    """Sign in (linking the seat); the session token."""
    snap = engine.start("sign_in", {"account": account})
    snap = engine.send(snap, "submit", {"email": email, "password": PASSWORD})
    if snap.state == "link_prompt":
        snap = engine.send(snap, "submit")
    assert snap.state == "signed_in", message_ids(snap)
    assert snap.session
    return snap.session


def test_transfer_races_delete_and_other_transfers(course: Course) -> None:
    """The admin's transfers to 6 members race the deletes of the same 6: one admin remains.

    At most one transfer succeeds; the flows that lose end failed (not_admin_any_more,
    login_gone) or are refused (Forbidden: the racer is no longer the admin); a login is gone
    exactly when its delete succeeded, and a transfer's winner is never a deleted login.
    """
    engine, clock = course.engine, course.clock
    engine.contracts.add(**TEAM)
    form = contract_form(TEAM)
    boss = register(engine, "adm6-01", "boss@example.jp", customer_id=TEAM["customer_id"],
                    tel=TEAM["phone"])
    assert boss.state == "provisioning"
    members = racer_addresses("member", 6)
    for address in members:
        flow = to_details(engine, address, "adm6-02")
        assert engine.send(flow, "submit", form).state == "provisioning"
    clock.advance(PROVISIONING)
    token = sign_in(engine, "adm6-01", "boss@example.jp")
    ids = {login.email: login.id for login in all_logins(engine)}
    flows: list[tuple[str, str, Snapshot]] = []  # (flow name, target id, the started flow)
    for address in members:
        for name in ("transfer_admin", "delete_login"):
            snap = engine.start(name, {"target": ids[address]}, session=token)
            assert snap.state == "confirm"
            flows.append((name, ids[address], snap))

    def submit(index: int, racer: regflow.Engine) -> Snapshot | regflow.Forbidden:
        try:
            return racer.send(flows[index][2], "submit", session=token)
        except regflow.Forbidden as refused:
            return refused

    answers = race(course.racers(len(flows)), submit)
    assert all(isinstance(a, Snapshot | regflow.Forbidden) for a in answers), answers
    outcomes: list[tuple[str, str, str]] = []
    for (name, target, _), answer in zip(flows, answers, strict=True):
        state = "forbidden" if isinstance(answer, regflow.Forbidden) else answer.state
        outcomes.append((name, target, state))
        if state == "failed":
            assert message_ids(answer)[0] in ("not_admin_any_more", "login_gone"), message_ids(answer)
        assert state in ("done", "failed", "forbidden"), (name, state, answer)
    check_invariants(engine)

    logins = {login.id: login for login in all_logins(engine)}
    transferred = [target for name, target, state in outcomes
                   if name == "transfer_admin" and state == "done"]
    deleted = {target for name, target, state in outcomes if name == "delete_login" and state == "done"}
    assert len(transferred) <= 1, outcomes
    assert set(ids.values()) - set(logins) == deleted, outcomes
    admins = [login.id for login in logins.values() if login.role == "admin"]
    assert admins == (transferred or [ids["boss@example.jp"]]), outcomes
    if transferred:
        assert transferred[0] not in deleted
        assert logins[ids["boss@example.jp"]].role == "member"


# ---- (e) one code, twelve submits --------------------------------------------------------------


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "idempotency-key"])
def test_one_code_submitted_concurrently_succeeds_once(course: Course, keyed: bool) -> None:
    """The same right code from 12 threads: one enter_code → details step; the rest are ordinary
    answers on the details screen (or, with one Idempotency-Key, replays of the first)."""
    engine = course.engine
    snap = submit_email(engine, "once@example.jp")
    assert snap.state == "enter_code"
    flow_id, code = snap.id, last_code(engine)
    key = "same-request" if keyed else None
    snaps = race(course.racers(), lambda i, e: e.send(snap, "submit", {"code": code},
                                                      idempotency_key=key))
    assert all(isinstance(s, Snapshot) for s in snaps)
    assert {s.state for s in snaps} == {"details"}
    clean = [s for s in snaps if not message_ids(s)]
    if keyed:
        assert len(clean) == RACERS
        assert len({repr(s.to_dict()) for s in snaps}) == 1
    else:
        assert len(clean) == 1
    history = engine.history(flow_id)
    assert [(e.from_state, e.to_state) for e in history if e.event == "submit"
            and e.from_state == "enter_code"] == [("enter_code", "details")]
    if keyed:
        assert [e.event for e in history] == ["start", "submit", "submit"]
    check_invariants(engine)


# ---- (f) one seat, twelve logins linking it ----------------------------------------------------


def test_logins_race_to_link_one_seat(course: Course) -> None:
    """12 ready logins at the link prompt of the same seat: one linked, 11 account_taken (I2)."""
    engine, clock = course.engine, course.clock
    engine.contracts.add(**FRESH)
    flows = prepare(engine, racer_addresses("link"), FRESH["accounts"])
    form = contract_form(FRESH)
    for flow in flows:
        assert engine.send(flow, "submit", form).state == "provisioning"
    clock.advance(PROVISIONING)
    prompts = []
    for address in racer_addresses("link"):
        snap = engine.start("sign_in", {"account": "race7-01"})
        snap = engine.send(snap, "submit", {"email": address, "password": PASSWORD})
        assert snap.state == "link_prompt", message_ids(snap)
        prompts.append(snap)
    snaps = race(course.racers(), lambda i, e: e.send(prompts[i], "submit"))
    assert all(isinstance(s, Snapshot) for s in snaps)
    assert Counter(s.state for s in snaps) == Counter({"signed_in": 1, "link_prompt": RACERS - 1})
    assert all(message_ids(s) == ["account_taken"] for s in snaps if s.state == "link_prompt")
    assert [s.session is not None for s in snaps].count(True) == 1
    linked = [login.account for login in all_logins(engine) if login.account is not None]
    assert linked == ["race7-01"]
    check_invariants(engine)


# ---- PostgreSQL: racers in several processes ---------------------------------------------------


@pytest.fixture
def pg_engine() -> Iterator[regflow.Engine]:
    """An engine on a fresh PostgreSQL schema, on the system clock (as the processes are)."""
    url = postgres_url()
    engine = regflow.Engine.from_url(url, mail="memory", hasher="fast")
    try:
        yield engine
    finally:
        engine.store.close()
        drop_schema(url)


def _racing_process(url: str, flows: list[tuple[str, str]], form: dict[str, str], barrier: Any,
                    results: Any) -> None:
    """In a spawned process: one thread per flow (its id and token), each submitting ``form``
    after the barrier."""
    engine = regflow.Engine.from_url(url, mail="memory", hasher="fast")

    def run(flow_id: str, token: str) -> None:
        try:
            with engine.store.transaction():
                pass  # connect before the start
            barrier.wait(timeout=JOIN_TIMEOUT)
            snap = engine.send(flow_id, "submit", form, token=token)
            results.put((flow_id, snap.state, message_ids(snap), None))
        except BaseException:
            results.put((flow_id, None, [], traceback.format_exc()))
        finally:
            engine.store.close()

    threads = [threading.Thread(target=run, args=flow) for flow in flows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)


def race_in_processes(url: str, snapshots: list[Snapshot],
                      form: dict[str, str]) -> dict[str, tuple[str, list[str]]]:
    """Submit each flow's details from PROCESSES spawned processes released by one barrier
    (each process gets the ids and tokens of its flows); the answers by flow id."""
    spawn = multiprocessing.get_context("spawn")
    flows = [(snap.id, snap.flow_token or "") for snap in snapshots]
    barrier = spawn.Barrier(len(flows))
    results = spawn.Queue()
    chunks = [flows[i::PROCESSES] for i in range(PROCESSES)]
    processes = [spawn.Process(target=_racing_process, args=(url, chunk, form, barrier, results))
                 for chunk in chunks]
    for process in processes:
        process.start()
    try:
        answers = [results.get(timeout=JOIN_TIMEOUT) for _ in flows]
    finally:
        for process in processes:
            process.join(JOIN_TIMEOUT)
            if process.is_alive():
                process.kill()
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    failures = [error for _, _, _, error in answers if error is not None]
    assert not failures, "\n".join(failures)
    return {flow_id: (state, messages) for flow_id, state, messages, _ in answers}


def test_processes_race_for_the_last_seats(pg_engine: regflow.Engine) -> None:
    """PostgreSQL, 12 registrants in 4 processes, 3 seats of a fresh customer: 3 logins, 1 admin."""
    engine = pg_engine
    engine.contracts.add(**DEMO)
    flows = prepare(engine, racer_addresses("proc"), DEMO["accounts"])
    answers = race_in_processes(engine.store.url, flows, contract_form(DEMO))  # type: ignore[attr-defined]
    states = Counter(state for state, _ in answers.values())
    assert states == Counter({"provisioning": 3, "details": RACERS - 3}), answers
    assert all(messages == ["license_full"] for state, messages in answers.values()
               if state == "details")
    roles = Counter(login.role for login in all_logins(engine))
    assert roles == Counter({"admin": 1, "member": 2})
    check_invariants(engine)


def test_processes_race_for_admin(pg_engine: regflow.Engine) -> None:
    """PostgreSQL, 12 first registrants of a fresh customer in 4 processes: exactly one admin."""
    engine = pg_engine
    engine.contracts.add(**FRESH)
    flows = prepare(engine, racer_addresses("boss"), FRESH["accounts"])
    answers = race_in_processes(engine.store.url, flows, contract_form(FRESH))  # type: ignore[attr-defined]
    assert {state for state, _ in answers.values()} == {"provisioning"}, answers
    roles = Counter(login.role for login in all_logins(engine))
    assert roles == Counter({"admin": 1, "member": RACERS - 1})
    check_invariants(engine)


def test_race_helpers_see_every_failure() -> None:
    """The race harness reports a racer's exception instead of swallowing it."""
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast")

    def work(index: int, _: regflow.Engine) -> int:
        if index == 3:
            raise RuntimeError("racer 3 fell")
        return index

    with pytest.raises(AssertionError, match="racer 3 fell"):
        race([engine] * 4, work)
    assert race([engine] * 4, lambda i, _: i * 2) == [0, 2, 4, 6]
