"""Guards and actions of the registration flow (SPEC 2.1 steps 2–5)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from regflow import codes
from regflow.codes import CodeCheck
from regflow.context import FlowContext, new_id
from regflow.exceptions import InvalidContext
from regflow.records import Login
from regflow.registry import Registry
from regflow.validation import email_key, tel_digits

registration = Registry()
PURPOSE = "registration"


def _email_key(ctx: FlowContext) -> str:
    """The address being typed now (enter_email), else the one the flow kept."""
    typed = ctx.input.get("email")
    return email_key(typed) if isinstance(typed, str) else str(ctx.data.get("_email_key", ""))


def _last_sent(ctx: FlowContext) -> datetime | None:
    text = ctx.data.get("_last_sent_at")
    return datetime.fromisoformat(text) if isinstance(text, str) else None


# ---- enter_email -----------------------------------------------------------------------------

@registration.action
def require_known_account(ctx: FlowContext) -> None:
    """The seat in use must belong to a contract."""
    if ctx.services.contracts.of_account(str(ctx.data["account"])) is None:
        raise InvalidContext(f"unknown account {ctx.data['account']!r}", key="account",
                             message_id="account_unknown")


@registration.guard
def email_registered(ctx: FlowContext) -> bool:
    """The address (typed now, or kept from before) already has a login (I1)."""
    return ctx.tx.logins.by_email(_email_key(ctx)) is not None


@registration.guard
def reveals_existing_email(ctx: FlowContext) -> bool:
    """Setting ``existing_email = "reveal"``: say the address is taken (the reference behaviour)."""
    return ctx.setting("existing_email") == "reveal"


@registration.guard
def send_limit_reached(ctx: FlowContext) -> bool:
    """The flow has sent as many codes as allowed."""
    limit = int(ctx.setting("max_sends"))
    ctx.params["max_sends"] = limit
    return int(ctx.data.get("_sends", 0)) >= limit


@registration.guard
def send_too_soon(ctx: FlowContext) -> bool:
    """The last code went out less than ``resend_interval`` ago."""
    last = _last_sent(ctx)
    if last is None:
        return False
    wait = last + timedelta(seconds=ctx.seconds("resend_interval")) - ctx.now
    ctx.params["seconds"] = max(0, int(wait.total_seconds() + 0.999))
    return wait > timedelta(0)


@registration.action
def remember_email(ctx: FlowContext) -> None:
    """Keep the address for the rest of the flow."""
    ctx.data["email"] = ctx.input["email"]
    ctx.data["_email_key"] = email_key(ctx.input["email"])


@registration.action
def send_code(ctx: FlowContext) -> None:
    """Issue a new code (the old one dies) and mail it; for a taken address under ``conceal``,
    mail the owner a notice and keep an undisclosed code so the flow looks the same."""
    key = _email_key(ctx)
    ttl = ctx.seconds("code_ttl")
    address = str(ctx.data["email"])
    if ctx.tx.logins.by_email(key) is not None:
        codes.issue(ctx, PURPOSE, key, ttl, decoy=True)
        ctx.mail("registration_existing", address, email=address)
    else:
        code = codes.issue(ctx, PURPOSE, key, ttl)
        ctx.mail("registration_code", address, code=code, email=address, minutes=ttl // 60)
    ctx.data["_sends"] = int(ctx.data.get("_sends", 0)) + 1
    ctx.data["_last_sent_at"] = ctx.now.isoformat()


@registration.action
def void_code(ctx: FlowContext) -> None:
    """The current code dies (going back, cancelling)."""
    codes.void(ctx, PURPOSE)


# ---- enter_code ------------------------------------------------------------------------------

def _check(ctx: FlowContext) -> CodeCheck:
    return codes.check(ctx, PURPOSE, _email_key(ctx), str(ctx.input.get("code", "")),
                       int(ctx.setting("code_tries")))


@registration.guard
def code_matches(ctx: FlowContext) -> bool:
    """The typed code is the flow's current one, unused, unexpired, with tries left."""
    return _check(ctx) is CodeCheck.OK


@registration.guard
def code_expired(ctx: FlowContext) -> bool:
    """The current code's 30 minutes are over."""
    return _check(ctx) is CodeCheck.EXPIRED


@registration.guard
def code_void(ctx: FlowContext) -> bool:
    """There is no usable code: out of tries (or none issued); a resend is needed."""
    return _check(ctx) in (CodeCheck.VOID, CodeCheck.MISSING)


@registration.guard
def last_code_try(ctx: FlowContext) -> bool:
    """This wrong try is the last one the code allows."""
    current = ctx.tx.codes.latest(ctx.flow.id, PURPOSE)
    tries = int(ctx.setting("code_tries"))
    return current is not None and current.wrong_tries + 1 >= tries


@registration.action
def count_wrong_code(ctx: FlowContext) -> None:
    """Count a wrong try against the code; at the limit the code dies."""
    tries = int(ctx.setting("code_tries"))
    used = codes.count_wrong(ctx, PURPOSE, tries)
    ctx.params["tries_left"] = max(0, tries - used)


@registration.action
def use_code(ctx: FlowContext) -> None:
    """The code is spent (I5)."""
    codes.use(ctx, PURPOSE)


# ---- details ---------------------------------------------------------------------------------

@registration.guard
def contract_matches(ctx: FlowContext) -> bool:
    """CustomerId and Tel both match one contract, and the seat in use is one of its accounts."""
    customer = ctx.services.contracts.find(str(ctx.input["customer_id"]))
    if customer is None:
        return False
    return (tel_digits(customer.phone).lstrip("+") == ctx.input["tel"]
            and ctx.data["account"] in customer.accounts)


@registration.guard
def seat_free(ctx: FlowContext) -> bool:
    """The customer has fewer logins than licenses (I3). Asked only once the contract matched,
    so the license count it finds for the message never leaks to someone who guessed a number."""
    customer = ctx.services.contracts.find(str(ctx.input["customer_id"]))
    if customer is None:
        return False
    ctx.params["licenses"] = customer.licenses
    return ctx.tx.logins.count(customer.customer_id) < customer.licenses


@registration.guard
def mismatches_left(ctx: FlowContext) -> bool:
    """Another contract mismatch still leaves the flow alive."""
    return int(ctx.data.get("_mismatches", 0)) + 1 < int(ctx.setting("max_mismatches"))


@registration.action
def count_mismatch(ctx: FlowContext) -> None:
    """Count a contract mismatch."""
    ctx.data["_mismatches"] = int(ctx.data.get("_mismatches", 0)) + 1


@registration.action
def create_login(ctx: FlowContext) -> None:
    """Create the login (first of its customer is admin, I4), then provision it."""
    customer_id = str(ctx.input["customer_id"])
    first = ctx.tx.logins.count(customer_id) == 0
    ready_at = ctx.now + timedelta(seconds=ctx.seconds("provisioning_delay"))
    login = Login(
        id=new_id(), customer_id=customer_id, email=str(ctx.data["email"]),
        email_key=_email_key(ctx), password_hash=ctx.services.hasher.hash(ctx.input["password"]),
        display_name=str(ctx.input["display_name"]), role="admin" if first else "member",
        two_factor=False, ready_at=ready_at, account=None, created_at=ctx.now,
    )
    ctx.tx.logins.insert(login)
    ctx.services.provisioner.provision(login, key=ctx.flow.id)
    local = ready_at.astimezone(ZoneInfo(ctx.services.timezone))
    ctx.data.update({
        "login_id": login.id, "role": login.role, "customer_id": customer_id,
        "ready_at": ready_at.isoformat().replace("+00:00", "Z"),
        "ready_at_local": local.strftime("%H:%M"),
    })
