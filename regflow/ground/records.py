"""What the engine keeps in a store: plain attrs records, free of any storage technology.

All instants are timezone-aware UTC ``datetime`` values; stores must hand back what they got.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs


def customer_of(data: Mapping[str, Any]) -> str | None:
    """The customer a flow's data names: its seat's (``_customer``, set when the seat is
    checked), the one it registered for (``customer_id``) or its login's (``_customer_id``).
    Reports by customer read it (SQL stores keep it in a column); None while the flow does
    not know it yet."""
    for key in ("_customer", "customer_id", "_customer_id"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return None


@attrs.define
class FlowRecord:
    """One running (or ended) flow: where it is, what it holds, when its timers fire."""

    id: str
    flow: str
    version: int  # the definition's version the flow runs on
    state: str
    status: str  # active | completed | cancelled | expired | failed
    data: dict[str, Any]
    timers: list[tuple[str, datetime]]  # (event, at), sorted by ``at``
    expires_at: datetime | None  # inactivity expiry; None once ended
    created_at: datetime
    updated_at: datetime
    rev: int = 0  # optimistic concurrency counter, bumped on every save
    token_digest: str = ""  # SHA-256 of the flow token given to the starter only (hex)

    @property
    def next_due_at(self) -> datetime | None:
        """The earliest instant at which something happens to this flow by itself."""
        if self.status != "active":
            return None
        instants = [at for _, at in self.timers]
        if self.expires_at is not None:
            instants.append(self.expires_at)
        return min(instants) if instants else None

    @property
    def customer(self) -> str | None:
        """The customer the flow belongs to (``customer_of`` its data)."""
        return customer_of(self.data)


@attrs.frozen
class JournalEntry:
    """One applied event, appended, never changed: the audit log of a flow."""

    flow_id: str
    from_state: str
    to_state: str
    event: str
    actor: str  # "user", "timer", "system" or a login id
    at: datetime
    outcome: str  # "ok", a message id, or "transient_error"


@attrs.frozen
class IdempotencyRecord:
    """The first answer given to a request carrying an Idempotency-Key."""

    flow_id: str
    key: str
    request_hash: str
    response: dict[str, Any]
    created_at: datetime


@attrs.define
class Customer:
    """A contract holder with its seats (accounts) and license count."""

    customer_id: str
    phone: str  # as written in the contract
    licenses: int
    accounts: list[str]
    require_two_factor: bool = False  # the admin's policy for every login of the customer


@attrs.define
class Login:
    """An e-mail + password identity of one customer."""

    id: str
    customer_id: str
    email: str  # as typed (after trimming)
    email_key: str  # NFKC + casefold: the unique key of I1
    password_hash: str
    display_name: str
    role: str  # "admin" | "member"
    two_factor: bool
    ready_at: datetime
    account: str | None
    created_at: datetime


@attrs.define
class Code:
    """A one-time code issued to a flow for one address and purpose (I5); only its digest is kept."""

    id: str
    flow_id: str
    purpose: str
    email_key: str
    digest: str
    expires_at: datetime
    created_at: datetime
    wrong_tries: int = 0
    used_at: datetime | None = None
    void: bool = False


@attrs.define
class OutboxMail:
    """A mail written in the same transaction as the state change that caused it."""

    id: str
    flow_id: str | None
    to: str
    message: bytes  # the RFC 5322 bytes, Message-ID included
    created_at: datetime
    status: str = "queued"  # queued | sending (leased) | sent | failed | decoy (never sent)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    last_error: str | None = None


@attrs.define
class Session:
    """A signed-in session of a login; only the token's SHA-256 digest is kept."""

    id: str
    login_id: str
    digest: str
    created_at: datetime
    expires_at: datetime


@attrs.frozen
class LimitHit:
    """One counted attempt of a limit that spans flows (mails to an address, wrong codes,
    starts from a client, wrong passwords): ``kind`` names the rule, ``subject`` and ``client``
    are keyed digests (never an address or an IP in clear). ``until`` is set on lockout rows."""

    kind: str
    subject: str
    client: str
    at: datetime
    until: datetime | None = None


@attrs.frozen
class Cutoffs:
    """What ``Store.purge`` deletes: rows that ended (or were last useful) before these instants."""

    flows: datetime  # ended flows, with their codes and idempotency keys
    codes: datetime  # used, void or expired codes of any flow
    sessions: datetime  # sessions expired before
    mail: datetime  # sent, failed and decoy mail
    idempotency: datetime  # remembered answers
    limits: datetime  # limit hits (and lockouts ended) before
    journal: datetime  # journal entries


@attrs.frozen
class Visits:
    """What a store measured of the visits to one state (durations in integer microseconds)."""

    finished: int  # visits that left the state within the range
    open: int  # visits still open at the end of the range
    median_us: int | None
    p90_us: int | None


@attrs.frozen
class JournalFigures:
    """The raw aggregates a store computes over the journal rows of a range: what
    ``flow_report`` turns into a ``FlowReport`` with the definition's states."""

    moves: dict[tuple[str, str, str], int]  # (from_state, event, to_state) -> rows
    outcomes: dict[str, int]  # outcome (not "ok") -> rows
    visits: dict[str, Visits]  # state -> visits
