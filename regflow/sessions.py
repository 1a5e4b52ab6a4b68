"""Sessions: tokens of ≥128 random bits, kept only as a digest, checked at every use.

A token is ``<session id>.<mac>`` where the MAC is keyed by the engine's secret, so the engine
can give the same token again when a request is replayed by its idempotency key, while the
store keeps nothing a thief could sign in with (only SHA-256 of the token).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

from regflow.context import FlowContext, new_id
from regflow.exceptions import Forbidden, NotSignedIn
from regflow.ports import Transaction
from regflow.records import Login, Session


def token_of(secret: bytes, session_id: str) -> str:
    """The bearer token of a session."""
    mac = hmac.new(secret, session_id.encode(), hashlib.sha256).digest()[:16]
    return f"{session_id}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def digest(token: str) -> str:
    """What the store keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(ctx: FlowContext, login: Login) -> str:
    """Start a session for ``login`` in the step's transaction; the token goes to the snapshot."""
    session_id = new_id()
    token = token_of(ctx.services.secret, session_id)
    ctx.tx.sessions.insert(Session(
        id=session_id, login_id=login.id, digest=digest(token), created_at=ctx.now,
        expires_at=ctx.now + timedelta(seconds=ctx.services.session_ttl),
    ))
    ctx.opened_session = session_id
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
