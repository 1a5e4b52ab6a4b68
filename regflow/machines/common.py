"""What the built-in flows share: the seat check, and validators (each returns the normalised
value or raises Invalid)."""

from __future__ import annotations

from typing import Any

from regflow.context import FlowContext
from regflow.exceptions import InvalidContext
from regflow.registry import Registry
from regflow.validation import (
    Invalid,
    check_password,
    normalize_code,
    normalize_customer_id,
    normalize_display_name,
    normalize_email,
    normalize_tel,
)

common = Registry()


@common.action
def require_known_account(ctx: FlowContext) -> None:
    """The seat in use must belong to a contract (registration and sign-in start from it)."""
    if ctx.services.contracts.of_account(str(ctx.data["account"])) is None:
        raise InvalidContext(f"unknown account {ctx.data['account']!r}", key="account",
                             message_id="account_unknown")


def _address_shown(ctx: FlowContext) -> dict[str, str]:
    """The address the person gave (kept, or typed on this screen) to fill in on the next flow."""
    address = ctx.data.get("email", ctx.raw.get("email"))
    return {"email": address} if isinstance(address, str) and address.strip() else {}


@common.action
def continue_with_password_reset(ctx: FlowContext) -> None:
    """Hand over to a password reset, the address filled in."""
    ctx.hand_over("password_reset", {}, form=_address_shown(ctx))


@common.action
def continue_with_sign_in(ctx: FlowContext) -> None:
    """Hand over to the sign-in of the same seat, the address filled in."""
    ctx.hand_over("sign_in", {"account": str(ctx.data["account"])}, form=_address_shown(ctx))


@common.validator
def email_address(ctx: FlowContext, value: Any) -> str:
    """A syntactically valid e-mail address."""
    return normalize_email(value)


@common.validator
def code_digits(ctx: FlowContext, value: Any) -> str:
    """Eight digits."""
    return normalize_code(value)


@common.validator
def customer_number(ctx: FlowContext, value: Any) -> str:
    """Six digits starting 28."""
    return normalize_customer_id(value)


@common.validator
def phone_number(ctx: FlowContext, value: Any) -> str:
    """A phone number, digits only."""
    return normalize_tel(value)


@common.validator
def display_name(ctx: FlowContext, value: Any) -> str:
    """1–256 characters, no control or bidi characters."""
    return normalize_display_name(value)


@common.validator
def password_policy(ctx: FlowContext, value: Any) -> str:
    """SPEC 2.1.4: length, classes, blocklist, no e-mail local part or customer number."""
    # The customer number typed on this screen (registration), else the login's (reset).
    customer_id = ctx.raw.get("customer_id", ctx.data.get("_customer_id"))
    try:
        customer_id = normalize_customer_id(customer_id) if isinstance(customer_id, str) else None
    except Invalid:
        customer_id = None
    email = ctx.data.get("email")
    check_password(value, email=email if isinstance(email, str) else None, customer_id=customer_id)
    return str(value)


@common.validator
def same_as_password(ctx: FlowContext, value: Any) -> str:
    """Equal to the ``password`` field as typed."""
    if value != ctx.raw.get("password"):
        raise Invalid("password_mismatch")
    return str(value)
