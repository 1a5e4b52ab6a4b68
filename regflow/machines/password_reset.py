"""Guards and actions of the password reset (SPEC 2.3)."""

from __future__ import annotations

from regflow.context import FlowContext
from regflow.machines.code_steps import address_key, issue_and_count
from regflow.records import Login
from regflow.registry import Registry

password_reset = Registry()


def _login(ctx: FlowContext) -> Login | None:
    return ctx.tx.logins.by_email(address_key(ctx), lock=True)


@password_reset.action
def send_reset_code(ctx: FlowContext) -> None:
    """Mail a reset code to a registered address; for any other address keep a decoy code and
    mail nothing, so the screens never tell which addresses are registered."""
    address = str(ctx.data["email"])
    if _login(ctx) is None:
        issue_and_count(ctx, decoy=True)
        return
    code = issue_and_count(ctx)
    ctx.mail("password_reset_code", address, code=code, email=address,
             minutes=ctx.seconds("code_ttl") // 60)


@password_reset.action
def remember_reset_login(ctx: FlowContext) -> None:
    """The code was right: the password policy needs the login's customer number."""
    login = _login(ctx)
    if login is not None:
        ctx.data["_customer_id"] = login.customer_id


@password_reset.guard
def reset_login_exists(ctx: FlowContext) -> bool:
    """The login still exists (an admin may have deleted it meanwhile)."""
    return _login(ctx) is not None


@password_reset.action
def set_password(ctx: FlowContext) -> None:
    """Store the new password, lift any lockout, and end every session of the login."""
    login = _login(ctx)
    assert login is not None  # only after reset_login_exists
    login.password_hash = ctx.services.hasher.hash(str(ctx.input["password"]))
    login.failed_sign_ins, login.lockouts, login.locked_until = 0, 0, None
    ctx.tx.logins.update(login)
    ctx.tx.sessions.end_of_login(login.id)
