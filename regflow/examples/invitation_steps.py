"""The guards and actions of the invitation flow (invitation.yaml, next to this file)."""

from __future__ import annotations

from regflow import InvalidContext, Registry
from regflow.definitions.validation import email_key
from regflow.ground.records import Login
from regflow.runtime.context import FlowContext, new_id

steps = Registry()


@steps.action
def check_invitation(ctx: FlowContext) -> None:
    """The inviting customer must exist."""
    if ctx.services.contracts.find(str(ctx.data["customer_id"])) is None:
        raise InvalidContext(f"unknown customer {ctx.data['customer_id']!r}", key="customer_id")


@steps.guard
def terms_accepted(ctx: FlowContext) -> bool:
    """The invitee ticked the terms box."""
    return ctx.input.get("terms") is True


@steps.guard
def address_taken(ctx: FlowContext) -> bool:
    """The invited address has a login by now (I1)."""
    return ctx.tx.logins.by_email(email_key(str(ctx.data["email"]))) is not None


@steps.guard
def seat_left(ctx: FlowContext) -> bool:
    """The customer has a license left (I3), counted under the customer's lock."""
    customer = ctx.services.contracts.find(str(ctx.data["customer_id"]))
    if customer is None:
        return False
    ctx.tx.contracts.lock(customer.customer_id)
    ctx.params["licenses"] = customer.licenses
    return ctx.tx.logins.count(customer.customer_id) < customer.licenses


@steps.action
def create_invited_login(ctx: FlowContext) -> None:
    """The invitee's login, ready at once; a member unless it is the customer's first (I4)."""
    customer_id = str(ctx.data["customer_id"])
    email = str(ctx.data["email"])
    ctx.tx.logins.insert(Login(
        id=new_id(), customer_id=customer_id, email=email, email_key=email_key(email),
        password_hash=ctx.services.hasher.hash(str(ctx.input["password"])),
        display_name=str(ctx.input["display_name"]),
        role="admin" if ctx.tx.logins.count(customer_id) == 0 else "member",
        two_factor=False, ready_at=ctx.now, account=None, created_at=ctx.now,
    ))
