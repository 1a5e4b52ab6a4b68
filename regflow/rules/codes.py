"""One-time codes (I5): random digits, kept only as a keyed digest, checked in constant time.

The digest is keyed by the engine's secret (``REGFLOW_SECRET``), which is not in the database:
with 10^8 possible codes, a digest keyed by anything stored beside it would give the code away
to whoever copies the database.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from enum import Enum

from regflow.ground.records import Code
from regflow.runtime.context import FlowContext, new_id


class CodeCheck(Enum):
    """What a typed code turned out to be."""

    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"
    VOID = "void"  # used, replaced, voided, or out of tries: a new code is needed
    MISSING = "missing"


DECOY = "decoy"  # never equal to a hex digest


def digest(secret: bytes, code_id: str, code: str) -> str:
    """The stored form of a code: HMAC-SHA256 keyed by the engine's secret, bound to the code's
    own random id."""
    return hmac.new(secret, f"regflow.code\x00{code_id}\x00{code}".encode(), hashlib.sha256).hexdigest()


def random_code(digits: int = 8) -> str:
    """``digits`` decimal digits from ``secrets``."""
    return f"{secrets.randbelow(10 ** digits):0{digits}d}"


def issue(ctx: FlowContext, purpose: str, email_key: str, ttl_seconds: int, *,
          decoy: bool = False) -> str:
    """Void the flow's previous code of that purpose and issue a new one; returns the digits.

    A ``decoy`` behaves like a code in every way (tries, expiry, resend) but no digits match it:
    what a flow shows when it must not reveal that no real code was sent.
    """
    void(ctx, purpose)
    code = random_code()
    code_id = new_id()
    ctx.tx.codes.insert(Code(
        id=code_id, flow_id=ctx.flow.id, purpose=purpose, email_key=email_key,
        digest=DECOY if decoy else digest(ctx.services.secret, code_id, code),
        expires_at=ctx.now + timedelta(seconds=ttl_seconds), created_at=ctx.now,
    ))
    return code


def void(ctx: FlowContext, purpose: str) -> None:
    """Kill the flow's current code of that purpose, if any."""
    current = ctx.tx.codes.latest(ctx.flow.id, purpose)
    if current is not None and not current.void and current.used_at is None:
        current.void = True
        ctx.tx.codes.update(current)


def check(ctx: FlowContext, purpose: str, email_key: str, typed: str, max_tries: int) -> CodeCheck:
    """Judge a typed code against the flow's current one, without changing anything."""
    current = ctx.tx.codes.latest(ctx.flow.id, purpose)
    if current is None:
        return CodeCheck.MISSING
    if current.void or current.used_at is not None or current.wrong_tries >= max_tries:
        return CodeCheck.VOID
    if ctx.now >= current.expires_at:
        return CodeCheck.EXPIRED
    matches = hmac.compare_digest(current.digest, digest(ctx.services.secret, current.id, typed))
    if not matches or current.email_key != email_key:
        return CodeCheck.WRONG
    return CodeCheck.OK


def use(ctx: FlowContext, purpose: str) -> None:
    """Mark the current code used: it never works again."""
    current = ctx.tx.codes.latest(ctx.flow.id, purpose)
    if current is not None:
        current.used_at = ctx.now
        ctx.tx.codes.update(current)


def count_wrong(ctx: FlowContext, purpose: str, max_tries: int) -> int:
    """Count a wrong try; the code is void once ``max_tries`` is reached. Returns the tries."""
    current = ctx.tx.codes.latest(ctx.flow.id, purpose)
    if current is None:
        return 0
    current.wrong_tries += 1
    if current.wrong_tries >= max_tries:
        current.void = True
    ctx.tx.codes.update(current)
    return current.wrong_tries
