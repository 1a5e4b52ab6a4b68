"""Limits that span flows and processes, counted in the store so that every process sees them.

A fresh flow gives no fresh tries: mails with codes are counted per address, wrong codes per
address, flows started and events sent per client, across every flow of every kind. Counts are
sliding windows over ``LimitHit`` rows (``Rate(5, 900)``: at most 5 in any 15 minutes). Addresses
and clients are kept as keyed digests, never in clear. Unknown addresses are counted exactly like
registered ones, so a limit never tells which addresses exist.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from datetime import datetime, timedelta

import attrs

from regflow.ground.exceptions import RateLimited
from regflow.ground.ports import Transaction
from regflow.ground.records import LimitHit

ANY_CLIENT = ""  # the client column of limits that count per address, whoever asks

# The kinds of hits (the ``kind`` column).
CODE_MAIL = "code_mail"  # a mail with a code (or its decoy) to an address
WRONG_CODE = "wrong_code"  # a wrong code typed for an address
START, EVENT = "start", "event"  # a flow started, an event sent, by a client
SIGN_IN_FAILURE = "sign_in_failure"  # a wrong password for an address, from a client
SIGN_IN_LOCKOUT = "sign_in_lockout"  # a lockout of an address for a client (``until`` set)
SIGN_IN_NOTICE = "sign_in_notice"  # the owner of an address was told of a lockout


@attrs.frozen
class Rate:
    """At most ``count`` hits in any ``seconds``."""

    count: int = attrs.field(validator=attrs.validators.ge(1))
    seconds: int = attrs.field(validator=attrs.validators.ge(1))


@attrs.frozen
class Limits:
    """The engine's limits across flows, each a tuple of rates that must all hold.

    ``code_mails``: mails carrying a code (or standing in for one) per address;
    ``wrong_codes``: wrong codes typed per address, in any flow;
    ``starts`` and ``events``: flows started and events sent per client (an IP address, as the
    front end tells; in-process callers without one share the client ``""``).
    """

    code_mails: tuple[Rate, ...] = (Rate(5, 15 * 60), Rate(20, 24 * 3600))
    wrong_codes: tuple[Rate, ...] = (Rate(10, 3600), Rate(30, 24 * 3600))
    starts: tuple[Rate, ...] = (Rate(300, 10 * 60),)
    events: tuple[Rate, ...] = (Rate(3000, 10 * 60),)

    @classmethod
    def off(cls) -> Limits:
        """No limit across flows (benchmarks; never a service facing people)."""
        return cls(code_mails=(), wrong_codes=(), starts=(), events=())

    @property
    def longest(self) -> int:
        """The longest window of any rate, in seconds (what retention must keep at least)."""
        rates = (*self.code_mails, *self.wrong_codes, *self.starts, *self.events)
        return max((rate.seconds for rate in rates), default=0)


def digest(secret: bytes, value: str) -> str:
    """The keyed digest under which an address or a client is counted."""
    return hmac.new(secret, b"regflow.runtime.limits\x00" + value.encode("utf-8"),
                    hashlib.sha256).hexdigest()[:32]


def address(secret: bytes, email_key: str) -> str:
    """The subject under which an address (its normalised key) is counted."""
    return digest(secret, f"address:{email_key}")


def wait_for(rates: tuple[Rate, ...], tx: Transaction, now: datetime, kind: str, subject: str,
             client: str | None) -> tuple[Rate, int] | None:
    """The first rate that is used up, with the seconds until it allows one more; or None."""
    for rate in rates:
        window = timedelta(seconds=rate.seconds)
        number, earliest = tx.limits.count(kind, subject, client, now - window)
        if number >= rate.count:
            free_at = (earliest or now) + window  # the oldest hit leaves the window then
            return rate, max(1, math.ceil((free_at - now).total_seconds()))
    return None


def check(rates: tuple[Rate, ...], tx: Transaction, now: datetime, kind: str, subject: str,
          client: str | None = None) -> None:
    """Raise ``RateLimited`` when one more hit would break a rate (any client when None)."""
    used_up = wait_for(rates, tx, now, kind, subject, client)
    if used_up is not None:
        rate, seconds = used_up
        raise RateLimited(f"{kind}: {rate.count} per {rate.seconds} s", seconds)


def charge(rates: tuple[Rate, ...], tx: Transaction, now: datetime, kind: str, subject: str,
           client: str = ANY_CLIENT) -> None:
    """Count one hit, or raise ``RateLimited`` (counting nothing) when a rate is used up.
    Per-address rates count every client (pass ``ANY_CLIENT``); per-client rates only theirs."""
    if not rates:
        return
    tx.limits.lock(subject)
    check(rates, tx, now, kind, subject, None if client == ANY_CLIENT else client)
    tx.limits.add(LimitHit(kind=kind, subject=subject, client=client, at=now))
