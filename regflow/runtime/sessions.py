"""Sessions: tokens of ≥128 bits nobody can predict, kept only as a digest, checked at every use.

A token is ``<session id>.<mac>`` where the MAC is keyed by the **flow token** of the sign-in
that opened it — a secret only the client holds, of which the store keeps only a hash. So the
engine can give the same token again when that client replays its request (same flow token,
same Idempotency-Key), while a copy of the database gives a thief nothing to sign in with:
neither the token nor the key it came from. A step run without a flow token (a trusted
embedding) gets a purely random token, which no replay can give again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from regflow.ground.exceptions import Forbidden, NotSignedIn
from regflow.ground.ports import Transaction
from regflow.ground.records import Login, Session
from regflow.runtime import limits
from regflow.runtime.context import FlowContext, new_id


def token_of(flow_token: str, session_id: str) -> str:
    """The bearer token of a session opened by the flow whose token is ``flow_token``."""
    mac = hmac.new(flow_token.encode(), b"regflow.session\x00" + session_id.encode(),
                   hashlib.sha256).digest()[:16]
    return f"{session_id}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def digest(token: str) -> str:
    """What the store keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(ctx: FlowContext, login: Login) -> str:
    """Start a session for ``login`` in the step's transaction; the token goes to the snapshot."""
    session_id = new_id()
    token = (token_of(ctx.flow_token, session_id) if ctx.flow_token
             else f"{session_id}.{secrets.token_urlsafe(16)}")
    ctx.tx.sessions.insert(Session(
        id=session_id, login_id=login.id, digest=digest(token), created_at=ctx.now,
        expires_at=ctx.now + timedelta(seconds=ctx.services.session_ttl),
    ))
    ctx.opened_session = session_id
    ctx.session_token = token
    return token


def resolve(tx: Transaction, token: str | None, now: datetime) -> tuple[Session, Login] | None:
    """The live session of a token and its login, or None (unknown, expired, login deleted)."""
    if not token or not isinstance(token, str) or len(token) > 256 or not token.isascii():
        return None
    session = tx.sessions.by_digest(digest(token))
    if session is None or session.expires_at <= now:
        return None
    login = tx.logins.get(session.login_id)
    if login is None:
        return None
    return session, login


def require(tx: Transaction, token: str | None, now: datetime, *, admin: bool) -> Login:
    """The login of a live session (an admin's when ``admin``); NotSignedIn without one,
    Forbidden when it is not the admin."""
    found = resolve(tx, token, now)
    if found is None:
        raise NotSignedIn("a signed-in session is needed")
    login = found[1]
    if admin and login.role != "admin":
        raise Forbidden("only the customer's admin may do this")
    return login


def customer_logins(tx: Transaction, customer_id: str, now: datetime, secret: bytes, *,
                    window: int) -> list[dict[str, Any]]:
    """The logins of a customer as the admin's list shows them. ``sign_in_failures``:
    wrong passwords for the login's address, from all clients, in the last ``window`` seconds
    (the sign-in flow's ``lockout_window``; what ``unlock_login`` clears)."""
    since = now - timedelta(seconds=window)
    return [{
        "id": login.id, "email": login.email, "display_name": login.display_name,
        "account": login.account, "role": login.role, "ready": login.ready_at <= now,
        "ready_at": login.ready_at.isoformat().replace("+00:00", "Z"),
        "two_factor": login.two_factor,
        "sign_in_failures": tx.limits.count(limits.SIGN_IN_FAILURE,
                                            limits.address(secret, login.email_key), None, since)[0],
    } for login in tx.logins.of_customer(customer_id)]
