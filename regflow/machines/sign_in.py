"""Guards and actions of sign-in and the hand-overs."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from regflow.definitions.registry import Registry
from regflow.ground.clock import shown_minute
from regflow.ground.records import LimitHit, Login
from regflow.machines.code_steps import address_key, issue_and_count
from regflow.runtime import limits, sessions
from regflow.runtime.context import FlowContext

sign_in = Registry()
_DUMMY_PASSWORD = "regflow-dummy-password"  # hashed once per engine for unknown addresses
NOTICE_INTERVAL = timedelta(hours=1)  # at most one lockout mail per address in this time


def _local(ctx: FlowContext, instant: datetime, fmt: str = "%H:%M") -> str:
    return instant.astimezone(ZoneInfo(ctx.services.timezone)).strftime(fmt)


def _typed_login(ctx: FlowContext) -> Login | None:
    """The login of the typed address (if any), looked up once per step."""
    if "typed_login" not in ctx.scratch:
        ctx.scratch["typed_login"] = ctx.tx.logins.by_email(address_key(ctx))
    found = ctx.scratch["typed_login"]
    return found if isinstance(found, Login) else None


def _login(ctx: FlowContext) -> Login | None:
    """The login this flow is signing in (after the password was right), locked: it is
    written back whole, so nobody may change it between this read and that write."""
    login_id = ctx.data.get("_login_id")
    return ctx.tx.logins.get(str(login_id), lock=True) if login_id else None


# ---- credentials -----------------------------------------------------------------------------

@sign_in.guard
def before_enforcement(ctx: FlowContext) -> bool:
    """Before the enforcement date, the legacy way in still exists."""
    return ctx.now < datetime.fromisoformat(str(ctx.setting("enforcement")))


@sign_in.action
def note_enforcement(ctx: FlowContext) -> None:
    """Name the enforcement date (its local day) for the texts: 2026年2月2日 (seed ①)."""
    day = datetime.fromisoformat(str(ctx.setting("enforcement"))).astimezone(
        ZoneInfo(ctx.services.timezone)).date()
    ctx.data.update({"enforcement_date": day.isoformat(), "enforcement_year": day.year,
                     "enforcement_month": day.month, "enforcement_day": day.day})


def _subject(ctx: FlowContext) -> str:
    """The typed (or kept) address as the sign-in limits count it."""
    return limits.address(ctx.services.secret, address_key(ctx))


@sign_in.guard
def login_locked(ctx: FlowContext) -> bool:
    """This client is locked out for the typed address after too many wrong passwords in a row
    (whether the address has a login or not: the answer must not tell). Other clients are not.
    Asked first, so it takes the address's lock: concurrent attempts are judged one by one."""
    ctx.tx.limits.lock(_subject(ctx))
    hit = ctx.tx.limits.last(limits.SIGN_IN_LOCKOUT, _subject(ctx), ctx.client)
    if hit is None or hit.until is None or hit.until <= ctx.now:
        return False
    ctx.params["seconds"] = int((hit.until - ctx.now).total_seconds() + 0.999)
    ctx.params["until_local"] = _local(ctx, hit.until, "%H:%M:%S")
    return True


@sign_in.guard
def password_matches(ctx: FlowContext) -> bool:
    """The password is the login's; an unknown address costs the same hash (no enumeration)."""
    hasher = ctx.services.hasher
    login = _typed_login(ctx)
    if login is None:
        if ctx.services.dummy_hash is None:
            ctx.services.dummy_hash = hasher.hash(_DUMMY_PASSWORD)
        hasher.verify(ctx.services.dummy_hash, str(ctx.input["password"]))
        return False
    return hasher.verify(login.password_hash, str(ctx.input["password"]))


@sign_in.action
def count_failed_sign_in(ctx: FlowContext) -> None:
    """Count a wrong password for the address from this client. The ``lockout_after``-th in a
    row within ``lockout_window`` locks this client out for the address: ``lockout_first``,
    doubling with each lockout within ``lockout_memory``, at most ``lockout_max``; the owner of
    the address is told by mail (at most once an hour)."""
    subject, client, now = _subject(ctx), ctx.client, ctx.now
    table = ctx.tx.limits
    table.lock(subject)  # concurrent wrong passwords for one address are counted one by one
    table.add(LimitHit(kind=limits.SIGN_IN_FAILURE, subject=subject, client=client, at=now))
    since = now - timedelta(seconds=ctx.seconds("lockout_window"))
    last = table.last(limits.SIGN_IN_LOCKOUT, subject, client)
    if last is not None and last.at > since:
        since = last.at  # failures before the last lockout were paid for by it
    failures, _ = table.count(limits.SIGN_IN_FAILURE, subject, client, since)
    if failures < int(ctx.setting("lockout_after")):
        return
    memory = now - timedelta(seconds=ctx.seconds("lockout_memory"))
    strikes, _ = table.count(limits.SIGN_IN_LOCKOUT, subject, client, memory)
    first, longest = ctx.seconds("lockout_first"), ctx.seconds("lockout_max")
    until = now + timedelta(seconds=min(longest, first * 2 ** min(strikes, 32)))
    table.add(LimitHit(kind=limits.SIGN_IN_LOCKOUT, subject=subject, client=client, at=now,
                       until=until))
    _tell_owner(ctx, subject, until)


def _tell_owner(ctx: FlowContext, subject: str, until: datetime) -> None:
    """Mail the address's owner that a client was locked out (a decoy for an unknown address:
    the same work, nothing sent), at most once per ``NOTICE_INTERVAL``."""
    table = ctx.tx.limits
    told, _ = table.count(limits.SIGN_IN_NOTICE, subject, None, ctx.now - NOTICE_INTERVAL)
    if told:
        return
    table.add(LimitHit(kind=limits.SIGN_IN_NOTICE, subject=subject, client=limits.ANY_CLIENT,
                       at=ctx.now))
    login = _typed_login(ctx)
    address = login.email if login is not None else str(ctx.input.get("email", ""))
    ctx.mail("sign_in_locked", address, decoy=login is None, email=address,
             until_local=_local(ctx, until, "%Y-%m-%d %H:%M"), zone=ctx.services.timezone)


def clear_sign_in_failures(ctx: FlowContext, email_key: str, *, every_client: bool) -> None:
    """Forget wrong passwords and lockouts of an address: this client's (the right password
    was typed) or every client's (an admin unlocked the login, or its password was reset)."""
    subject = limits.address(ctx.services.secret, email_key)
    client = None if every_client else ctx.client
    ctx.tx.limits.clear(limits.SIGN_IN_FAILURE, subject, client)
    ctx.tx.limits.clear(limits.SIGN_IN_LOCKOUT, subject, client)


def _under_attack(ctx: FlowContext) -> bool:
    """``step_up_after`` wrong passwords or more for the address within ``lockout_window``,
    from all clients together: even the right password then needs a code from the mailbox."""
    since = ctx.now - timedelta(seconds=ctx.seconds("lockout_window"))
    failures, _ = ctx.tx.limits.count(limits.SIGN_IN_FAILURE, _subject(ctx), None, since)
    return failures >= int(ctx.setting("step_up_after"))


def _password_mark(login: Login) -> str:
    """What the flow keeps to notice a password changed meanwhile (never the hash itself)."""
    return hashlib.sha256(login.password_hash.encode()).hexdigest()


@sign_in.action
def clear_failed_sign_ins(ctx: FlowContext) -> None:
    """The password was right: this client's run of failures (and of lockouts) is over."""
    login = _typed_login(ctx)
    assert login is not None  # only after password_matches
    clear_sign_in_failures(ctx, login.email_key, every_client=False)


@sign_in.action
def remember_login(ctx: FlowContext) -> None:
    """The password was right: remember whose login this is, as of which password."""
    clear_failed_sign_ins(ctx)
    login = _typed_login(ctx)
    assert login is not None
    ctx.data["_login_id"] = login.id
    ctx.data["_password_mark"] = _password_mark(login)
    ctx.data["email"] = login.email
    ctx.data["_email_key"] = login.email_key


@sign_in.guard
def login_ready(ctx: FlowContext) -> bool:
    """The login's provisioning is over (``ready_at`` has come)."""
    login = _typed_login(ctx)
    if login is None:
        return False
    ctx.params["ready_at_local"] = shown_minute(login.ready_at, ctx.services.timezone)
    return login.ready_at <= ctx.now


@sign_in.guard
def seat_of_own_customer(ctx: FlowContext) -> bool:
    """The seat in use belongs to the login's customer."""
    login = _typed_login(ctx)
    customer = ctx.services.contracts.of_account(str(ctx.data["account"]))
    return login is not None and customer is not None and customer.customer_id == login.customer_id


@sign_in.guard
def linked_elsewhere(ctx: FlowContext) -> bool:
    """The login is linked to another seat than the one in use."""
    login = _typed_login(ctx)
    return login is not None and login.account not in (None, ctx.data["account"])


@sign_in.guard
def needs_second_factor(ctx: FlowContext) -> bool:
    """The login, or its customer's policy, asks for a code at every sign-in; or the address is
    under attack (many wrong passwords from many clients), so the right password alone is not
    enough."""
    login = _typed_login(ctx) or _login(ctx)
    if login is None:
        return False
    customer = ctx.services.contracts.find(login.customer_id)
    return (login.two_factor or (customer is not None and customer.require_two_factor)
            or _under_attack(ctx))


@sign_in.guard
def needs_link(ctx: FlowContext) -> bool:
    """First sign-in with this login: it is not linked to a seat yet."""
    login = _typed_login(ctx) or _login(ctx)
    return login is not None and login.account is None


@sign_in.action
def send_sign_in_code(ctx: FlowContext) -> None:
    """Mail a second-factor code (the previous one dies)."""
    code = issue_and_count(ctx)
    address = str(ctx.data["email"])
    ctx.mail("sign_in_code", address, code=code, email=address,
             minutes=ctx.seconds("code_ttl") // 60)


@sign_in.action
def open_session(ctx: FlowContext) -> None:
    """Signed in: a new session for the login; the token is in this answer's snapshot."""
    login = _login(ctx)
    assert login is not None
    sessions.open_session(ctx, login)


@sign_in.action
def forget_login(ctx: FlowContext) -> None:
    """Back to the credentials screen: nothing of the last attempt is kept."""
    for key in ("_login_id", "_password_mark", "email", "_email_key"):
        ctx.data.pop(key, None)


@sign_in.action
def continue_with_registration(ctx: FlowContext) -> None:
    """Hand over to a registration for the same seat."""
    ctx.hand_over("registration", {"account": str(ctx.data["account"])})


# ---- second factor and link prompt -----------------------------------------------------------

@sign_in.guard
def login_unchanged(ctx: FlowContext) -> bool:
    """The login being signed in still exists with the password that was typed (an admin may
    have deleted it, or a password reset replaced the password, since)."""
    login = _login(ctx)
    return login is not None and _password_mark(login) == ctx.data.get("_password_mark")


@sign_in.guard
def account_taken(ctx: FlowContext) -> bool:
    """The seat in use is already linked to another login (I2)."""
    holder = ctx.tx.logins.by_account(str(ctx.data["account"]))
    return holder is not None and holder.id != ctx.data.get("_login_id")


@sign_in.action
def link_account(ctx: FlowContext) -> None:
    """Link the login to the seat in use (I2; the store's unique account is the last guard)."""
    login = _login(ctx)
    assert login is not None
    login.account = str(ctx.data["account"])
    ctx.tx.logins.update(login)
