"""Guards and actions of the password reset."""

from __future__ import annotations

from regflow.definitions.registry import Registry
from regflow.ground.records import Login
from regflow.machines.code_steps import address_key, issue_and_count
from regflow.machines.sign_in import clear_sign_in_failures
from regflow.runtime.context import FlowContext

password_reset = Registry()


def _login(ctx: FlowContext) -> Login | None:
    return ctx.tx.logins.by_email(address_key(ctx), lock=True)


@password_reset.action
def send_reset_code(ctx: FlowContext) -> None:
    """Mail a reset code to a registered address; for any other address keep a decoy code and
    a decoy mail (composed and stored the same way, never sent), so that neither the screens
    nor the time an answer takes tell which addresses are registered."""
    address = str(ctx.data["email"])
    unknown = _login(ctx) is None
    code = issue_and_count(ctx, decoy=unknown)
    ctx.mail("password_reset_code", address, decoy=unknown, code=code, email=address,
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
    login.password_hash = ctx.password_hash("password")
    ctx.tx.logins.update(login)
    ctx.tx.sessions.end_of_login(login.id)
    clear_sign_in_failures(ctx, login.email_key, every_client=True)
