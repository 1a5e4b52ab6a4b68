"""What the built-in flows share: the seat check, and validators (each returns the normalised
value or raises Invalid).

The validators follow the flow's rules as data: the rule settings (``customer_id_pattern``,
``phone_country``, ``password_blocklist``; a flow without one gets the seed's value) and the
password field's ``constraints`` (``min_length``, ``max_length``, ``classes``).
"""

from __future__ import annotations

from typing import Any

from regflow.definitions.registry import Registry
from regflow.definitions.validation import (
    RULE_SETTINGS,
    Invalid,
    check_password,
    normalize_code,
    normalize_customer_id,
    normalize_display_name,
    normalize_email,
    normalize_tel,
)
from regflow.ground.exceptions import InvalidContext
from regflow.runtime.context import FlowContext

common = Registry()
PASSWORD_DEFAULTS = {"min_length": 8, "max_length": 256, "classes": 3}  # the seed's policy


def rule(ctx: FlowContext, key: str) -> str:
    """A rule setting of the flow (``RULE_SETTINGS``), the seed's value when it declares none."""
    return str(ctx.definition.settings.get(key, RULE_SETTINGS[key]))


def password_limits(ctx: FlowContext) -> dict[str, int]:
    """The numbers of the password policy: the constraints of the flow's field checked by
    ``password_policy`` (the same the screen's hint shows), the seed's where it sets none."""
    for field in ctx.definition.fields.values():
        if "password_policy" in field.validate:
            return {k: int(field.constraints.get(k, v)) for k, v in PASSWORD_DEFAULTS.items()}
    return dict(PASSWORD_DEFAULTS)


@common.action
def require_known_account(ctx: FlowContext) -> None:
    """The seat in use must belong to a contract (registration and sign-in start from it)."""
    customer = ctx.services.contracts.of_account(str(ctx.data["account"]))
    if customer is None:
        raise InvalidContext(f"unknown account {ctx.data['account']!r}", key="account",
                             message_id="account_unknown")
    ctx.data["_customer"] = customer.customer_id  # reports by customer (regflow.reports.funnel)


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
    """A customer number matching the setting ``customer_id_pattern`` (six digits starting 28)."""
    return normalize_customer_id(value, rule(ctx, "customer_id_pattern"))


@common.validator
def phone_number(ctx: FlowContext, value: Any) -> str:
    """A phone number: its digits, or its E.164 form when the setting ``phone_country`` is set."""
    return normalize_tel(value, rule(ctx, "phone_country"))


@common.validator
def display_name(ctx: FlowContext, value: Any) -> str:
    """1–256 characters, no control or bidi characters."""
    return normalize_display_name(value)


@common.validator
def password_policy(ctx: FlowContext, value: Any) -> str:
    """Length, classes, blocklist, no e-mail local part or customer number (``password_limits``,
    the setting ``password_blocklist``)."""
    # The customer number typed on this screen (registration; when it is one), else the login's
    # (reset: a stored number, whatever pattern it was registered under).
    typed, customer_id = ctx.raw.get("customer_id"), ctx.data.get("_customer_id")
    if isinstance(typed, str):
        try:
            customer_id = normalize_customer_id(typed, rule(ctx, "customer_id_pattern"))
        except Invalid:
            customer_id = None
    customer_id = customer_id if isinstance(customer_id, str) else None
    email = ctx.data.get("email")
    check_password(value, email=email if isinstance(email, str) else None, customer_id=customer_id,
                   blocked=rule(ctx, "password_blocklist"), **password_limits(ctx))
    return str(value)


@common.validator
def same_as_password(ctx: FlowContext, value: Any) -> str:
    """Equal to the ``password`` field as typed."""
    if value != ctx.raw.get("password"):
        raise Invalid("password_mismatch")
    return str(value)
