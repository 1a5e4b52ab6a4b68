"""Guards and actions of the administration flows. The engine has already checked
the session: the actor is the customer's admin (or, for ``set_two_factor``, any signed-in
login) and the ``target`` login belongs to the same customer. Every step is journaled with
the actor's login id."""

from __future__ import annotations

from regflow.definitions.registry import Registry
from regflow.ground.records import Login
from regflow.machines.sign_in import clear_sign_in_failures
from regflow.runtime.context import FlowContext

admin = Registry()


def _target(ctx: FlowContext) -> Login | None:
    """The target login, locked: guards and actions see the same row, and no admin step of
    another flow can change it in between (a full-row update would otherwise undo theirs)."""
    return ctx.tx.logins.get(str(ctx.data["target"]), lock=True)


def _actor(ctx: FlowContext) -> Login:
    assert ctx.actor_login is not None  # the engine sets it for every flow with ``auth``
    return ctx.actor_login


def _cut_off(ctx: FlowContext, login: Login) -> None:
    """A login losing its seat or its life: its sessions and pending codes die at once."""
    ctx.tx.sessions.end_of_login(login.id)
    ctx.tx.codes.void_for(login.email_key)


@admin.action
def describe_target(ctx: FlowContext) -> None:
    """Name the target on the confirm screen."""
    target = _target(ctx)
    if target is not None:
        ctx.data.update(target_name=target.display_name, target_email=target.email,
                        target_account=target.account or "—")


@admin.guard
def target_is_actor(ctx: FlowContext) -> bool:
    """The admin is acting on its own login (not allowed: transfer the role first)."""
    return str(ctx.data["target"]) == _actor(ctx).id


@admin.guard
def target_exists(ctx: FlowContext) -> bool:
    """The target login still exists."""
    return _target(ctx) is not None


@admin.guard
def target_ready(ctx: FlowContext) -> bool:
    """The target login's provisioning is over."""
    target = _target(ctx)
    return target is not None and target.ready_at <= ctx.now


@admin.action
def unlink_target(ctx: FlowContext) -> None:
    """Unlink the target from its seat; its sessions and codes end."""
    target = _target(ctx)
    assert target is not None
    target.account = None
    ctx.tx.logins.update(target)
    _cut_off(ctx, target)


@admin.action
def unlock_target(ctx: FlowContext) -> None:
    """Lift every client's sign-in lockout of the target and forget its wrong passwords."""
    target = _target(ctx)
    assert target is not None
    clear_sign_in_failures(ctx, target.email_key, every_client=True)


@admin.action
def delete_target(ctx: FlowContext) -> None:
    """Delete the target login: its seat is free again; its sessions and codes end."""
    target = _target(ctx)
    assert target is not None
    _cut_off(ctx, target)
    ctx.tx.logins.delete(target.id)


@admin.action
def transfer_admin_role(ctx: FlowContext) -> None:
    """Make the target the customer's admin and the actor a member, atomically (I4)."""
    me = _actor(ctx)
    ctx.tx.contracts.lock(me.customer_id)
    current = ctx.tx.logins.get(me.id, lock=True)
    target = _target(ctx)
    assert current is not None
    assert target is not None
    current.role = "member"
    ctx.tx.logins.update(current)  # demote first: the store allows one admin per customer
    target.role = "admin"
    ctx.tx.logins.update(target)


@admin.guard
def still_admin(ctx: FlowContext) -> bool:
    """The actor is still the admin (a transfer racing this flow may have demoted it)."""
    current = ctx.tx.logins.get(_actor(ctx).id, lock=True)
    return current is not None and current.role == "admin"


@admin.action
def set_customer_two_factor(ctx: FlowContext) -> None:
    """The customer's policy: every login signs in with a second factor (or not)."""
    ctx.tx.contracts.set_require_two_factor(_actor(ctx).customer_id, bool(ctx.input["enabled"]))


@admin.action
def set_own_two_factor(ctx: FlowContext) -> None:
    """The signed-in login's own second factor, on or off."""
    me = ctx.tx.logins.get(_actor(ctx).id, lock=True)
    assert me is not None
    me.two_factor = bool(ctx.input["enabled"])
    ctx.tx.logins.update(me)


@admin.action
def show_own_two_factor(ctx: FlowContext) -> None:
    """The confirm screen starts from the login's current setting."""
    ctx.data["_form"] = {"enabled": _actor(ctx).two_factor}


@admin.action
def show_customer_two_factor(ctx: FlowContext) -> None:
    """The confirm screen starts from the customer's current policy."""
    customer = ctx.services.contracts.find(_actor(ctx).customer_id)
    ctx.data["_form"] = {"enabled": bool(customer and customer.require_two_factor)}
