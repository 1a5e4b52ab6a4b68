"""Guards and actions every flow that mails a one-time code shares (registration, sign-in 2FA,
password reset). The code's purpose is the flow's name; the numbers are the flow's settings
``code_ttl``, ``code_tries``, ``resend_interval`` and ``max_sends``, and, across flows, the
engine's ``Limits``: code mails and wrong codes per address, whatever the flow (a fresh flow
gives no fresh tries)."""

from __future__ import annotations

from datetime import datetime, timedelta

from regflow.definitions.registry import Registry
from regflow.definitions.validation import email_key
from regflow.ground.records import LimitHit
from regflow.rules import codes
from regflow.rules.codes import CodeCheck
from regflow.runtime import limits
from regflow.runtime.context import FlowContext

code_steps = Registry()


def address_key(ctx: FlowContext) -> str:
    """The address being typed now (a screen with ``email``), else the one the flow kept."""
    typed = ctx.input.get("email")
    return email_key(typed) if isinstance(typed, str) else str(ctx.data.get("_email_key", ""))


def purpose(ctx: FlowContext) -> str:
    """Codes are issued per flow kind: a sign-in code never verifies a registration."""
    return ctx.definition.name


def address_subject(ctx: FlowContext) -> str:
    """The address as the limits across flows count it."""
    return limits.address(ctx.services.secret, address_key(ctx))


def issue_and_count(ctx: FlowContext, *, decoy: bool = False) -> str:
    """Issue the flow's next code (the previous one dies) and count the send, in this flow and
    against the address's code mails across flows (``RateLimited`` when they are used up)."""
    limits.charge(ctx.services.limits.code_mails, ctx.tx, ctx.now, limits.CODE_MAIL,
                  address_subject(ctx))
    code = codes.issue(ctx, purpose(ctx), address_key(ctx), ctx.seconds("code_ttl"), decoy=decoy)
    ctx.data["_sends"] = int(ctx.data.get("_sends", 0)) + 1
    ctx.data["_last_sent_at"] = ctx.now.isoformat()
    return code


def _check(ctx: FlowContext) -> CodeCheck:
    return codes.check(ctx, purpose(ctx), address_key(ctx), str(ctx.input.get("code", "")),
                       int(ctx.setting("code_tries")))


@code_steps.action
def remember_email(ctx: FlowContext) -> None:
    """Keep the typed address for the rest of the flow."""
    ctx.data["email"] = ctx.input["email"]
    ctx.data["_email_key"] = email_key(ctx.input["email"])


@code_steps.guard
def send_limit_reached(ctx: FlowContext) -> bool:
    """The flow has sent as many codes as allowed."""
    limit = int(ctx.setting("max_sends"))
    ctx.params["max_sends"] = limit
    return int(ctx.data.get("_sends", 0)) >= limit


@code_steps.guard
def send_too_soon(ctx: FlowContext) -> bool:
    """The last code went out less than ``resend_interval`` ago."""
    text = ctx.data.get("_last_sent_at")
    if not isinstance(text, str):
        return False
    wait = datetime.fromisoformat(text) + timedelta(seconds=ctx.seconds("resend_interval")) - ctx.now
    ctx.params["seconds"] = max(0, int(wait.total_seconds() + 0.999))
    return wait > timedelta(0)


@code_steps.guard
def code_matches(ctx: FlowContext) -> bool:
    """The typed code is the flow's current one, unused, unexpired, with tries left. Asked
    first of every typed code: when the address has had too many wrong codes across flows,
    no code is judged at all (``RateLimited``)."""
    limits.check(ctx.services.limits.wrong_codes, ctx.tx, ctx.now, limits.WRONG_CODE,
                 address_subject(ctx))
    return _check(ctx) is CodeCheck.OK


@code_steps.guard
def code_expired(ctx: FlowContext) -> bool:
    """The current code's time is over."""
    return _check(ctx) is CodeCheck.EXPIRED


@code_steps.guard
def code_void(ctx: FlowContext) -> bool:
    """There is no usable code: out of tries (or none issued); a resend is needed."""
    return _check(ctx) in (CodeCheck.VOID, CodeCheck.MISSING)


@code_steps.guard
def last_code_try(ctx: FlowContext) -> bool:
    """This wrong try is the last one the code allows."""
    current = ctx.tx.codes.latest(ctx.flow.id, purpose(ctx))
    return current is not None and current.wrong_tries + 1 >= int(ctx.setting("code_tries"))


@code_steps.action
def count_wrong_code(ctx: FlowContext) -> None:
    """Count a wrong try against the code; at the limit the code dies."""
    tries = int(ctx.setting("code_tries"))
    used = codes.count_wrong(ctx, purpose(ctx), tries)
    ctx.params["tries_left"] = max(0, tries - used)
    ctx.tx.limits.add(LimitHit(kind=limits.WRONG_CODE, subject=address_subject(ctx),
                               client=limits.ANY_CLIENT, at=ctx.now))


@code_steps.action
def use_code(ctx: FlowContext) -> None:
    """The code is spent (I5)."""
    codes.use(ctx, purpose(ctx))


@code_steps.action
def void_code(ctx: FlowContext) -> None:
    """The current code dies (going back, cancelling)."""
    codes.void(ctx, purpose(ctx))
