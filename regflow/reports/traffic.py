"""Scripted traffic: many people taking known paths through the registration flow, driven
through a real engine on a moving clock — for the demo's report and for tests that check a
report against numbers declared up front (issue 17).

A ``TrafficScript`` says how many people take each path (``PATHS``) on one day, for one
customer. ``run_traffic(engine, clock, script)`` adds the script's contracts, starts each
person's registration at an instant spread evenly over the day's hours (``first_hour`` to
``last_hour``, UTC), plays every person's steps in time order — setting the clock to each
step's instant — and finally moves the clock past the last deadline and sweeps, so that code
timers, provisioning and expiries are journaled at their own instants. It answers a
``TrafficResult``: the people per path, and the time each visit to a screen took as the
script planned it (the oracle of a report's durations).

The paths (``e``, ``c`` and ``d`` are the person's thinking time on the e-mail, code and
details screens, ``think``; code_ttl 30 min, provisioning 10 min and flow expiry 60 min are the
registration's settings):

=====================  ========================================================================
``finish``             e-mail, code, details; provisioned 10 min later (ready)
``wrong_code``         e-mail; a wrong code (``code_invalid``) after c, the right one c later
``contract_mismatch``  e-mail, code; a wrong phone (``contract_mismatch``) after d, right d later
``license_full``       of the script's *full* customer (no free license): details after d
                       (``license_full``), cancel d later
``cancel_at_email``    cancel after e
``cancel_at_code``     e-mail; cancel after c
``cancel_at_details``  e-mail, code; cancel after d
``code_expires``       e-mail, then nothing: the code expires (``code_expired``) after 30 min,
                       the flow after 60 min
``abandon_at_details`` e-mail, code, then nothing: the flow expires 60 min later
=====================  ========================================================================

From the command line (an SQLite or PostgreSQL database for a demo report)::

    regflow traffic --db sqlite:///demo.db            # DEMO_DAY on 2026-01-05
    regflow traffic --db sqlite:///demo.db --day 2026-01-06 --scale 2
    regflow report registration --db sqlite:///demo.db --since 2026-01-05 --until 2026-01-06

or ``python -m regflow.reports.traffic --db URL``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import attrs

from regflow.engine import Engine
from regflow.ground.clock import ManualClock
from regflow.ground.exceptions import RegflowError
from regflow.ground.records import Login
from regflow.ground.screens import Snapshot
from regflow.runtime.context import new_id

PATHS = ("finish", "wrong_code", "contract_mismatch", "license_full", "cancel_at_email",
         "cancel_at_code", "cancel_at_details", "code_expires", "abandon_at_details")
PASSWORD = "Kx7#mPq2wZ"  # meets the policy; contains no address nor customer number
PHONE = "03-1234-5678"
CODE_TTL_S = 30 * 60
PROVISIONING_S = 10 * 60
EXPIRY_S = 60 * 60


def think(screen: str, person: int) -> int:
    """Seconds person number ``person`` spends on a screen before acting: e-mail 20-50 s,
    code 45-105 s, details 120-210 s, varying from person to person."""
    base, step, spread = {"email": (20, 5, 7), "code": (45, 15, 5), "details": (120, 30, 4)}[screen]
    return base + step * (person % spread)


@attrs.frozen
class TrafficScript:
    """How many people take each path on ``day`` (midnight UTC), for ``customer``; the
    ``license_full`` people belong to ``full_customer``, which has no free license."""

    day: datetime
    people: Mapping[str, int]
    customer: str = "281001"
    full_customer: str = "281099"
    first_hour: int = 8
    last_hour: int = 20
    tag: str = "t"  # makes the addresses of two scripts on one database differ

    def __attrs_post_init__(self) -> None:
        unknown = set(self.people) - set(PATHS)
        if unknown:
            raise ValueError(f"unknown traffic paths: {sorted(unknown)}; known: {list(PATHS)}")
        if any(n < 0 for n in self.people.values()):
            raise ValueError("a path's number of people is 0 or more")

    def count(self, *paths: str) -> int:
        """How many people take any of ``paths``."""
        return sum(self.people.get(path, 0) for path in paths)

    @property
    def total(self) -> int:
        """Everyone in the script."""
        return self.count(*PATHS)

    def scaled(self, factor: int) -> TrafficScript:
        """The same day with ``factor`` times as many people on every path."""
        return attrs.evolve(self, people={k: v * factor for k, v in self.people.items()})


DEMO_DAY = TrafficScript(
    day=datetime(2026, 1, 5, tzinfo=UTC),
    people={"finish": 60, "wrong_code": 12, "contract_mismatch": 6, "license_full": 4,
            "cancel_at_email": 10, "cancel_at_code": 8, "cancel_at_details": 5,
            "code_expires": 7, "abandon_at_details": 4},
)


def demo_script(day: datetime | None = None, scale: int = 1) -> TrafficScript:
    """``DEMO_DAY`` on another ``day`` and/or with ``scale`` times the people, its addresses
    made unique by a random tag (so that playing a day again into one database starts new
    people rather than addresses registered already)."""
    import secrets

    when = day if day is not None else DEMO_DAY.day
    return attrs.evolve(DEMO_DAY.scaled(scale), day=when,
                        tag=f"d{when:%Y%m%d}{secrets.token_hex(3)}")


@attrs.frozen
class TrafficResult:
    """What a script did: people per path and the planned seconds of every visit, by state."""

    script: TrafficScript
    people: dict[str, int]
    spent: dict[str, list[int]]


@attrs.define
class _Person:
    number: int
    path: str
    email: str
    seat: str
    customer: str
    snap: Snapshot | None = None


_Step = tuple[datetime, int, Callable[[], None]]


def _contracts(engine: Engine, script: TrafficScript) -> tuple[str, str]:
    """Add the script's two contracts (once); the seat of each."""
    seats = (f"s{script.customer}-01", f"s{script.full_customer}-01")
    if engine.contracts.find(script.customer) is None:
        engine.contracts.add(script.customer, PHONE, 1_000_000, [seats[0]])
    if engine.contracts.find(script.full_customer) is None:  # one license, taken already
        engine.contracts.add(script.full_customer, PHONE, 1, [seats[1]])
        now = engine.clock.now()
        with engine.store.transaction() as tx:
            tx.logins.insert(Login(
                id=new_id(), customer_id=script.full_customer,
                email=f"admin.{script.full_customer}@example.jp",
                email_key=f"admin.{script.full_customer}@example.jp", password_hash="-",
                display_name="admin", role="admin", two_factor=False, ready_at=now, account=None,
                created_at=now))
    return seats


def _newest_code(engine: Engine, email: str) -> str:
    """The 8-digit code of the newest mail to ``email`` (the memory mailer's)."""
    messages: list[EmailMessage] = engine.mailer.messages  # type: ignore[attr-defined]
    for message in reversed(messages):
        if str(message["To"]) == email:
            body = message.get_body(("plain",))
            text = str(body.get_content()) if body is not None else ""
            for word in text.split():
                if len(word) == 8 and word.isdigit():
                    return word
    raise RuntimeError(f"no code was mailed to {email}")


def _plan(engine: Engine, person: _Person, start: datetime,
          spent: dict[str, list[int]]) -> list[_Step]:
    """The person's steps, each at its instant, and the visits they make (in ``spent``)."""
    n, path = person.number, person.path
    e, c, d = think("email", n), think("code", n), think("details", n)
    details = {"password": PASSWORD, "password_confirm": PASSWORD, "customer_id": person.customer,
               "display_name": f"Person {n}", "tel": PHONE}

    def visit(state: str, seconds: int) -> None:
        spent.setdefault(state, []).append(seconds)

    def send(event: str, data: dict[str, Any] | None = None) -> Callable[[], None]:
        def run() -> None:
            assert person.snap is not None, "a step before the start"
            payload = data
            if event == "code":  # the code of the newest mail, or (wrong_code) another one
                event_, payload = "submit", {"code": _newest_code(engine, person.email)}
            elif event == "wrong_code":
                right = int(_newest_code(engine, person.email))
                event_, payload = "submit", {"code": f"{(right + 1) % 10**8:08d}"}
            else:
                event_ = event
            person.snap = engine.send(person.snap, event_, payload)
        return run

    def begin() -> None:
        person.snap = engine.start("registration", {"account": person.seat})

    at = start
    steps: list[_Step] = [(at, n, begin)]

    def then(seconds: int, action: Callable[[], None]) -> None:
        nonlocal at
        at += timedelta(seconds=seconds)
        steps.append((at, n, action))

    if path == "cancel_at_email":
        then(e, send("cancel"))
        visit("enter_email", e)
        return steps
    then(e, send("submit", {"email": person.email}))
    visit("enter_email", e)
    if path == "code_expires":
        visit("enter_code", EXPIRY_S)
        return steps
    if path == "cancel_at_code":
        then(c, send("cancel"))
        visit("enter_code", c)
        return steps
    if path == "wrong_code":
        then(c, send("wrong_code"))
        then(c, send("code"))
        visit("enter_code", 2 * c)
    else:
        then(c, send("code"))
        visit("enter_code", c)
    if path == "abandon_at_details":
        visit("details", EXPIRY_S)
    elif path == "cancel_at_details":
        then(d, send("cancel"))
        visit("details", d)
    elif path == "license_full":
        then(d, send("submit", details))
        then(d, send("cancel"))
        visit("details", 2 * d)
    else:
        if path == "contract_mismatch":
            then(d, send("submit", {**details, "tel": "03-9999-9999"}))
            visit("details", 2 * d)
        else:
            visit("details", d)
        then(d, send("submit", details))
        visit("provisioning", PROVISIONING_S)
    return steps


def run_traffic(engine: Engine, clock: ManualClock, script: TrafficScript) -> TrafficResult:
    """Play ``script`` through ``engine``, whose clock must be ``clock`` and whose mailer the
    memory mailer (the people read their codes from it); the clock ends 3 hours after the
    last start, every timer applied."""
    if not hasattr(engine.mailer, "messages"):
        raise ValueError("scripted traffic reads the codes from the memory mailer (mail=memory)")
    seat, full_seat = _contracts(engine, script)
    people: list[_Person] = []
    for path in PATHS:
        for _ in range(script.people.get(path, 0)):
            number = len(people)
            full = path == "license_full"
            people.append(_Person(
                number=number, path=path,
                email=f"p{number:05d}.{script.tag}{script.day:%Y%m%d}@example.jp",
                seat=full_seat if full else seat,
                customer=script.full_customer if full else script.customer))
    order = sorted(range(len(people)), key=lambda i: (i * 7919) % max(1, len(people)))
    first = script.day + timedelta(hours=script.first_hour)
    span = timedelta(hours=script.last_hour - script.first_hour)
    spent: dict[str, list[int]] = {}
    steps: list[_Step] = []
    for slot, index in enumerate(order):
        start = first + span * slot / max(1, len(people))
        steps += _plan(engine, people[index], start, spent)
    steps.sort(key=lambda step: (step[0], step[1]))
    for at, _, action in steps:
        clock.set(at)
        action()
    clock.set(max([first + span, *(at for at, _, _ in steps)]) + timedelta(hours=3))
    while engine.sweep(500):
        pass
    return TrafficResult(script=script, people={p: script.count(p) for p in PATHS},
                         spent={state: sorted(seconds) for state, seconds in spent.items()})


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence what scripted traffic sets off on purpose: the security log of its wrong codes
    and mismatches, and the warning that its clock is not the database's."""
    loggers = [logging.getLogger(name) for name in ("regflow.security", "regflow.ground.clock")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class TrafficRefused(RegflowError):
    """The database holds contracts of its own: scripted people are for demo databases only."""

    message_id = "traffic_refused"


def fill(db: str, script: TrafficScript = DEMO_DAY, *, hasher: str = "fast") -> TrafficResult:
    """Play ``script`` into the database at ``db`` (a fresh engine on a manual clock), without
    the security log's lines about the script's wrong codes. A database with any contract but
    the script's own is refused (``TrafficRefused``), untouched: it is someone's deployment."""
    from regflow.engine import Engine

    clock = ManualClock(script.day)
    with _quiet():
        engine = Engine.from_url(db, "memory", hasher=hasher, clock=clock)
        try:
            with engine.store.transaction(write=False) as tx:
                own = {script.customer, script.full_customer}
                others = [c.customer_id for c in tx.contracts.customers() if c.customer_id not in own]
            if others:
                raise TrafficRefused(
                    f"{db} holds contracts of its own ({len(others)}): scripted traffic goes into "
                    "demo databases only")
            return run_traffic(engine, clock, script)
        finally:
            engine.store.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m regflow.reports.traffic --db URL [--day YYYY-MM-DD] [--scale N]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m regflow.reports.traffic",
                                     description="Fill a database with a scripted day of registrations.")
    parser.add_argument("--db", required=True, help="sqlite:///PATH or postgresql://USER@HOST/DB")
    parser.add_argument("--day", default=f"{DEMO_DAY.day:%Y-%m-%d}", help="the day (UTC)")
    parser.add_argument("--scale", type=int, default=1, help="people on every path × N")
    args = parser.parse_args(argv)
    day = datetime.strptime(args.day, "%Y-%m-%d").replace(tzinfo=UTC)
    result = fill(args.db, demo_script(day, args.scale))
    print(f"{sum(result.people.values())} registrations on {args.day}: "
          + ", ".join(f"{path} {n}" for path, n in result.people.items()))


if __name__ == "__main__":
    main()
