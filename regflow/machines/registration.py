"""Guards and actions of the registration flow."""

from __future__ import annotations

from datetime import timedelta

from regflow.definitions.registry import Registry
from regflow.definitions.validation import same_phone, tel_digits  # noqa: F401 (tel_digits: tests' replica)
from regflow.ground.clock import shown_minute
from regflow.ground.records import Customer, Login
from regflow.machines.code_steps import address_key, issue_and_count
from regflow.machines.common import rule
from regflow.runtime.context import FlowContext, new_id

registration = Registry()


@registration.guard
def seat_linked(ctx: FlowContext) -> bool:
    """The seat in use is linked to a login already (I2): it has had its registration. An
    unlinked login registered from the seat does not count: the seat is free until a login
    links it at its first sign-in (that login's license is taken meanwhile, I3)."""
    return ctx.tx.logins.by_account(str(ctx.data["account"])) is not None


@registration.guard
def email_registered(ctx: FlowContext) -> bool:
    """The address (typed now, or kept from before) already has a login (I1)."""
    return ctx.tx.logins.by_email(address_key(ctx)) is not None


@registration.guard
def reveals_existing_email(ctx: FlowContext) -> bool:
    """Setting ``existing_email = "reveal"``: say the address is taken (the reference behaviour)."""
    return ctx.setting("existing_email") == "reveal"


@registration.action
def sign_in_with_password(ctx: FlowContext) -> None:
    """The address is registered: sign in with it and the password typed here (the
    guide's password screen), in a sign-in flow of the same seat that takes the credentials at
    once; a login registered before and never linked is linked there (its link prompt)."""
    address = str(ctx.data["email"])
    ctx.hand_over("sign_in", {"account": str(ctx.data["account"])}, form={"email": address},
                  event="submit", data={"email": address, "password": ctx.input["current_password"]})


@registration.action
def send_code(ctx: FlowContext) -> None:
    """Issue a new code (the old one dies) and mail it; for a taken address under ``conceal``,
    mail the owner a notice and keep a decoy code so the flow looks the same."""
    address = str(ctx.data["email"])
    if ctx.tx.logins.by_email(address_key(ctx)) is not None:
        issue_and_count(ctx, decoy=True)
        ctx.mail("registration_existing", address, email=address)
    else:
        code = issue_and_count(ctx)
        ctx.mail("registration_code", address, code=code, email=address,
                 minutes=ctx.seconds("code_ttl") // 60)


def _typed_customer(ctx: FlowContext) -> Customer | None:
    """The contract of the typed customer number, looked up once per step."""
    if "customer" not in ctx.scratch:
        ctx.scratch["customer"] = ctx.services.contracts.find(str(ctx.input["customer_id"]))
    found = ctx.scratch["customer"]
    return found if isinstance(found, Customer) else None


@registration.guard
def contract_matches(ctx: FlowContext) -> bool:
    """CustomerId and Tel both match one contract, and the seat in use is one of its accounts.
    The phones are compared as the setting ``phone_country`` says (digits only, or E.164)."""
    customer = _typed_customer(ctx)
    if customer is None:
        return False
    return (same_phone(str(ctx.input["tel"]), customer.phone, rule(ctx, "phone_country"))
            and ctx.data["account"] in customer.accounts)


@registration.guard
def seat_free(ctx: FlowContext) -> bool:
    """The customer has fewer logins than licenses (I3). Asked only once the contract matched,
    so the license count it finds for the message never leaks to someone who guessed a number.
    Locks the customer first, so racing registrants are counted one after the other."""
    customer = _typed_customer(ctx)
    if customer is None:
        return False
    ctx.tx.contracts.lock(customer.customer_id)
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
        email_key=address_key(ctx), password_hash=ctx.password_hash("password"),
        display_name=str(ctx.input["display_name"]), role="admin" if first else "member",
        two_factor=False, ready_at=ready_at, account=None, created_at=ctx.now,
    )
    ctx.tx.logins.insert(login)
    ctx.services.provisioner.provision(login, key=ctx.flow.id)
    ctx.data.update({
        "login_id": login.id, "role": login.role, "customer_id": customer_id,
        "ready_at": ready_at.isoformat().replace("+00:00", "Z"),
        "ready_at_local": shown_minute(ready_at, ctx.services.timezone),  # never before ready_at
    })
