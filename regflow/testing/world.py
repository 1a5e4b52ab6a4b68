"""The world a path runs in: the clock, contracts, logins and a session, and the changes of it
that witnesses name (``{"world": "delete_login", "email": ...}``).

Every operation works inside a store transaction it is given, so a ``meanwhile`` change lands
in the very transaction of the step it races with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import attrs

from regflow.definitions.validation import email_key
from regflow.engine import Engine
from regflow.ground.clock import ManualClock
from regflow.ground.ports import Transaction
from regflow.ground.records import LimitHit, Login, Session
from regflow.rules.contracts import ContractRules, check_contract
from regflow.runtime import limits, sessions
from regflow.runtime.context import new_id

DEFAULT_PASSWORD = "Kx7#mPq2wZ"  # meets the password policy; the password of world logins
DAY = timedelta(days=1)


class ClockDriver(Protocol):
    """What the runner needs of a test clock: read it, put it somewhere, move it."""

    def now(self) -> datetime: ...
    def set(self, instant: datetime) -> None: ...
    def advance(self, seconds: float) -> None: ...


class FrozenClock:
    """A freezegun ``FrozenDateTimeFactory`` as a ClockDriver (the engine reads the system
    clock, which freezegun holds still)."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory

    def now(self) -> datetime:
        """The frozen instant, in UTC."""
        return datetime.now(UTC)

    def set(self, instant: datetime) -> None:
        """Move the frozen time to ``instant``."""
        self.factory.move_to(instant)

    def advance(self, seconds: float) -> None:
        """Tick the frozen time forward."""
        self.factory.tick(timedelta(seconds=seconds))


def clock_driver(clock: object) -> ClockDriver:
    """A ``regflow.ManualClock`` as it is, a freezegun factory wrapped; else TypeError."""
    if isinstance(clock, ManualClock | FrozenClock):
        return clock
    if hasattr(clock, "tick") and hasattr(clock, "move_to"):
        return FrozenClock(clock)
    raise TypeError(f"not a test clock: {clock!r} (use regflow.ManualClock or a freezegun factory)")


# ---- operations --------------------------------------------------------------------------------

Args = Mapping[str, Any]
OpFunction = Callable[[Engine, Transaction, datetime, Args], None]


@attrs.frozen
class Op:
    """A world operation: what it does, the arguments it needs and those it may take."""

    run: OpFunction
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    doc: str = ""


def _login(tx: Transaction, email: str) -> Login:
    found = tx.logins.by_email(email_key(email), lock=True)
    if found is None:
        raise LookupError(f"no login for {email!r} in the world")
    return found


def add_login(engine: Engine, tx: Transaction, now: datetime, args: Args) -> None:
    """A login of a customer; the customer's first is its admin (I4) unless ``role`` says."""
    customer_id = str(args["customer_id"])
    first = tx.logins.count(customer_id) == 0
    ready = bool(args.get("ready", True))
    tx.logins.insert(Login(
        id=new_id(), customer_id=customer_id, email=str(args["email"]),
        email_key=email_key(str(args["email"])),
        password_hash=engine.services.hasher.hash(str(args.get("password", DEFAULT_PASSWORD))),
        display_name=str(args.get("display_name") or str(args["email"]).split("@")[0]),
        role=str(args.get("role") or ("admin" if first else "member")),
        two_factor=bool(args.get("two_factor", False)),
        ready_at=now - DAY if ready else now + DAY, account=args.get("account"),
        created_at=now - DAY,
    ))
    if args.get("locked"):  # the in-process client ("") is locked out for the address an hour
        tx.limits.add(LimitHit(
            kind=limits.SIGN_IN_LOCKOUT, client=limits.ANY_CLIENT, at=now,
            subject=limits.address(engine.services.secret, email_key(str(args["email"]))),
            until=now + timedelta(hours=1)))


def delete_login(engine: Engine, tx: Transaction, now: datetime, args: Args) -> None:
    """Delete a login as the admin does: its sessions and live codes end with it."""
    login = _login(tx, str(args["email"]))
    tx.sessions.end_of_login(login.id)
    tx.codes.void_for(login.email_key)
    tx.logins.delete(login.id)


def _update(field: str, value_of: Callable[[Engine, Args], Any]) -> OpFunction:
    def run(engine: Engine, tx: Transaction, now: datetime, args: Args) -> None:
        login = _login(tx, str(args["email"]))
        setattr(login, field, value_of(engine, args))
        tx.logins.update(login)

    return run


def make_admin(engine: Engine, tx: Transaction, now: datetime, args: Args) -> None:
    """Move the admin role of the login's customer to the login (the old admin is demoted first)."""
    login = _login(tx, str(args["email"]))
    for other in tx.logins.of_customer(login.customer_id):
        if other.role == "admin" and other.id != login.id:
            other.role = "member"
            tx.logins.update(other)
    login.role = "admin"
    tx.logins.update(login)


def add_contract(engine: Engine, tx: Transaction, now: datetime, args: Args) -> None:
    """A customer with its phone, license count and accounts (seats)."""
    customer, problems = check_contract(str(args["customer_id"]), str(args["phone"]),
                                        args["licenses"], [str(a) for a in args["accounts"]],
                                        ContractRules.of_library(engine.flows))
    if problems:
        raise ValueError(f"contract {args['customer_id']}: {'; '.join(problems)}")
    tx.contracts.put_customer(customer)


def require_two_factor(engine: Engine, tx: Transaction, now: datetime, args: Args) -> None:
    """The customer's two-factor policy."""
    tx.contracts.set_require_two_factor(str(args["customer_id"]), bool(args["enabled"]))


def end_sessions(engine: Engine, tx: Transaction, now: datetime, args: Args) -> None:
    """End every session of a login (signed out everywhere)."""
    tx.sessions.end_of_login(_login(tx, str(args["email"])).id)


def sign_in_attempts(engine: Engine, tx: Transaction, now: datetime, args: Args) -> None:
    """Sign-in attempts of earlier flows, each a flow of its own through the engine (the limits
    across flows count them; this flow's own inactivity is not touched)."""
    del tx, now  # each attempt is the engine's own transaction (nested in the step's)
    for _ in range(int(args.get("count", 1))):
        started = engine.start("sign_in", {"account": str(args["account"])})
        engine.send(started, "submit", {"email": str(args["email"]), "password": str(args["password"])})


OPS: dict[str, Op] = {
    "add_login": Op(add_login, ("email", "customer_id"),
                    ("password", "display_name", "role", "account", "two_factor", "ready", "locked"),
                    "a login (ready a day ago unless ready = false; locked for an hour if locked)"),
    "delete_login": Op(delete_login, ("email",), (), "delete a login, its sessions and codes"),
    "set_password": Op(_update("password_hash", lambda e, a: e.services.hasher.hash(str(a["password"]))),
                       ("email", "password"), (), "give a login another password"),
    "link": Op(_update("account", lambda e, a: str(a["account"])), ("email", "account"), (),
               "link a login to an account (seat)"),
    "unlink": Op(_update("account", lambda e, a: None), ("email",), (), "unlink a login"),
    "two_factor": Op(_update("two_factor", lambda e, a: bool(a["enabled"])), ("email", "enabled"), (),
                     "turn a login's own second factor on or off"),
    "make_admin": Op(make_admin, ("email",), (), "make a login its customer's admin"),
    "add_contract": Op(add_contract, ("customer_id", "phone", "licenses", "accounts"), (),
                       "add a customer (contract)"),
    "require_two_factor": Op(require_two_factor, ("customer_id", "enabled"), (),
                             "the customer's two-factor policy"),
    "end_sessions": Op(end_sessions, ("email",), (), "end every session of a login"),
    "sign_in_attempts": Op(sign_in_attempts, ("email", "password", "account"), ("count",),
                           "sign-ins of other flows with that password (count times, default 1)"),
}
SETTINGS_OP = "settings"  # {"world": "settings", "values": {...}}: the flow's settings, not the store
# {"world": "migrate", "to": FILE or {...}}: deploy a newer version of the flow and retire the one
# it runs on, so that it migrates; a step of a replayed path only (the generator explores one
# version), run by the Player (``regflow.testing.runner``).
MIGRATE_OP = "migrate"


def op_faults(raw: Mapping[str, Any], where: str, *, in_step: bool = True) -> list[str]:
    """What is wrong with a world operation as written (unknown name, missing or unknown args)."""
    name = raw.get("world")
    args = set(raw) - {"world", "guard"}
    if name == SETTINGS_OP:
        ok = in_step and isinstance(raw.get("values"), Mapping) and args <= {"values", "flow"}
        return [] if ok else [f"{where}: 'settings' takes a table 'values' (and 'flow')"]
    if name == MIGRATE_OP:
        return [f"{where}: 'migrate' is a step of a replayed path (run_path, check_path), not of "
                "a scenario: the generator explores one version"]
    op = OPS.get(str(name))
    if op is None:
        return [f"{where}: unknown world operation {name!r} (one of {', '.join(sorted(OPS))}, settings)"]
    faults = [f"{where}: {name} needs {k!r}" for k in op.required if k not in raw]
    return faults + [f"{where}: {name} takes no {k!r}" for k in sorted(args - {*op.required, *op.optional})]


def apply_op(engine: Engine, tx: Transaction, now: datetime, raw: Args) -> None:
    """Run a world operation (its arguments already resolved) in ``tx``."""
    OPS[str(raw["world"])].run(engine, tx, now, raw)


def open_session(engine: Engine, tx: Transaction, now: datetime, email: str) -> str:
    """A live session of the login of ``email``; its bearer token."""
    login = _login(tx, email)
    session_id = new_id()
    token = f"{session_id}.{new_id()}"
    ttl = timedelta(seconds=engine.services.session_ttl)
    tx.sessions.insert(Session(id=session_id, login_id=login.id, digest=sessions.digest(token),
                               created_at=now, expires_at=now + ttl))
    return token


def build_world(engine: Engine, flow: str, driver: ClockDriver, *, start: datetime,
                settings: Mapping[str, Any], contracts: tuple[dict[str, Any], ...],
                logins: tuple[dict[str, Any], ...], session: str | None) -> str | None:
    """Set the clock, the flow's settings, contracts and logins; the session token, if asked."""
    driver.set(start)
    if settings:
        engine.flows.configure(flow, settings)
    now = driver.now()
    with engine.store.transaction() as tx:
        for contract in contracts:
            add_contract(engine, tx, now, contract)
        for login in logins:
            add_login(engine, tx, now, login)
        return open_session(engine, tx, now, session) if session else None
