"""The outbox relay: delivers mail the engine wrote in its transactions, retrying what failed.

A mail is claimed in one transaction (its attempt counted, the row ``sending`` with a lease so
that no other relay takes it meanwhile), handed to the mailer, then marked ``sent`` in another.
Leases are set and judged on the database's clock (``OutboxTable.database_now``), the one clock
every relay of a deployment shares: a relay whose host clock runs ahead cannot take a mail
another relay is still sending. Retry times are the relay's own clock, like every other time of
the engine (a skewed host retries early or late by its skew, never twice at once).

A transient failure (``TransientError``, an ``OSError``, an SMTP 4xx) schedules the next attempt
after an exponential backoff with full jitter; a permanent one (an SMTP 5xx, ``MailRejected``,
any other error), or the last allowed attempt failing, marks the mail ``failed``, journals it on
its flow and logs it.
A mail that is ``sent`` or ``failed`` is never handed to the mailer again, and its body (which
may carry a code) is emptied at that moment: only the row's metadata stays, until purged.

Delivery is at least once: a relay that dies (or loses its database) after the server accepted a
mail and before marking it sends it again once the lease has passed. The Message-ID is stable
per outbox row (``<ID@regflow.invalid>``), so receivers can recognise the copy.

Log lines (logger ``regflow.mail.composer``) carry the outbox id, the recipient's domain (never the whole
address), the attempt and the reason; never a message body.
"""

from __future__ import annotations

import email
import email.policy
import logging
import math
import random
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from email.message import EmailMessage

from regflow.ground.exceptions import TransientError
from regflow.ground.ports import Clock, Mailer, Store, Transaction
from regflow.ground.records import JournalEntry, OutboxMail

log = logging.getLogger("regflow.mail.composer")
clock_log = logging.getLogger("regflow.ground.clock")

LEASE = timedelta(seconds=60)  # a claimed mail is not claimed again before this passes
FIRST_RETRY = timedelta(seconds=30)
LAST_RETRY = timedelta(hours=1)
MAX_ATTEMPTS = 10
MARK_TRIES = 3  # tries to record a sent mail as sent before leaving it to the lease
SKEW_WARNING = timedelta(seconds=5)  # a process clock this far from the database's is logged
_ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:@]+@(?=[A-Za-z0-9\[])")


def parse(raw: bytes) -> EmailMessage:
    """The outbox bytes as an EmailMessage."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def is_permanent(exc: Exception) -> bool:
    """Whether a delivery failure is final: an SMTP 5xx reply (for every recipient), or any
    error that is neither a TransientError nor an OSError (connection trouble, SMTP 4xx)."""
    import smtplib  # only when something failed

    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return not isinstance(exc, TransientError | OSError)


def rejected(exc: Exception) -> bool:
    """Whether the failure is the server's final refusal (an SMTP 5xx or ``MailRejected``),
    as opposed to a mailer that broke or attempts that ran out."""
    import smtplib

    if getattr(exc, "message_id", None) == "mail_rejected":
        return True
    return isinstance(exc, smtplib.SMTPException) and is_permanent(exc)


def retry_ceiling(attempts: int, first: timedelta = FIRST_RETRY,
                  last: timedelta = LAST_RETRY) -> timedelta:
    """The longest wait after ``attempts`` failed attempts: ``first`` doubling, at most ``last``."""
    doublings = min(max(0, attempts - 1), 60)  # seconds in floats: no timedelta overflow
    return timedelta(seconds=min(last.total_seconds(), first.total_seconds() * 2.0 ** doublings))


def retry_delay(attempts: int, rng: random.Random | None = None, *,
                first: timedelta = FIRST_RETRY, last: timedelta = LAST_RETRY) -> timedelta:
    """The wait before the next attempt: drawn uniformly between zero and the ceiling (full
    jitter, so relays that failed together do not retry together), or the ceiling without rng."""
    ceiling = retry_ceiling(attempts, first, last)
    if rng is None:
        return ceiling
    return timedelta(seconds=rng.uniform(0, ceiling.total_seconds()))


def domain_of(address: str) -> str:
    """``*@domain`` of an address: what logs show of a recipient."""
    return "*@" + address.rpartition("@")[2].strip().strip(">").lower()


def reason_of(exc: BaseException) -> str:
    """An error as kept on the outbox row and logged: its type, its text with every address's
    local part masked, and the type it was raised from; one line, at most 300 characters."""
    text = " ".join(_ADDRESS.sub("***@", str(exc)).split())
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    cause = exc.__cause__
    if cause is not None and type(cause).__name__ not in reason:
        reason += f" (from {type(cause).__name__})"
    return reason[:300]


class MailRelay:
    """Moves mail from the outbox to the mailer, each mail at most once per lease.

    ``rng`` draws the jittered waits (seeded in tests); ``jitter=False`` waits the ceilings
    exactly. ``max_attempts`` attempts in all, then ``failed``. ``lease``: how long a claim
    keeps other relays away; never shorter than twice the mailer's ``timeout`` if it has one.
    """

    def __init__(
        self,
        store: Store,
        mailer: Mailer,
        clock: Clock,
        *,
        rng: random.Random | None = None,
        jitter: bool = True,
        max_attempts: int = MAX_ATTEMPTS,
        lease: timedelta = LEASE,
        first_retry: timedelta = FIRST_RETRY,
        last_retry: timedelta = LAST_RETRY,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if lease <= timedelta(0) or first_retry <= timedelta(0) or last_retry < first_retry:
            raise ValueError("lease and retries must be positive, last_retry ≥ first_retry")
        self.store = store
        self.mailer = mailer
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        self.jitter = jitter
        self.max_attempts = max_attempts
        self.lease = lease
        self.first_retry = first_retry
        self.last_retry = last_retry
        self._skew_logged = False
        # Counted since this relay was made, for what a command reports: attempts that failed
        # and were left to retry, and mail that failed for good ("dead").
        self.failed_attempts = 0
        self.dead = 0

    def deliver(self, mail_ids: Iterable[str]) -> int:
        """Try to deliver these mails now (right after the commit that wrote them); how many
        were sent. Never raises for one mail: what fails stays queued (or is marked failed)."""
        return sum(self._deliver_one(mail_id) for mail_id in mail_ids)

    def deliver_due(self, limit: int = 100) -> int:
        """Deliver queued mail whose attempt is due; how many were sent."""
        with self.store.transaction() as tx:
            due = [m.id for m in tx.outbox.due(self.clock.now(), limit)]
        return self.deliver(due)

    def lease_for(self) -> timedelta:
        """The lease of a claim: ``lease``, or twice the mailer's timeout when that is longer."""
        timeout = getattr(self.mailer, "timeout", None)
        if isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0:
            return max(self.lease, timedelta(seconds=2 * timeout))
        return self.lease

    def next_wait(self, attempts: int) -> timedelta:
        """The wait after ``attempts`` failed attempts, jittered unless ``jitter`` is off."""
        return retry_delay(attempts, self.rng if self.jitter else None,
                           first=self.first_retry, last=self.last_retry)

    # ---- one mail ------------------------------------------------------------------------------

    def _deliver_one(self, mail_id: str) -> bool:
        try:
            mail = self._claim(mail_id)
        except Exception as exc:
            log.error("mail %s not claimed, left for a later pass: %s", mail_id, reason_of(exc))
            self.failed_attempts += 1
            return False
        if mail is None:
            return False
        try:
            self.mailer.send(parse(mail.message))
        except Exception as exc:
            try:
                self._failed(mail, exc)
            except Exception as store_exc:
                log.error("mail %s to %s: attempt %d failed (%s) and could not be recorded (%s); "
                          "retried once its lease has passed", mail.id, domain_of(mail.to),
                          mail.attempts, reason_of(exc), reason_of(store_exc))
                self.failed_attempts += 1
            return False
        self._sent(mail)
        return True

    def _claim(self, mail_id: str) -> OutboxMail | None:
        """Count the attempt and lease the mail, in one transaction; None if not ours to send.

        A queued mail is due by this relay's clock; a sending one (its relay died, or is slower
        than its lease) only once its lease has passed on the database's clock, which also
        starts the new lease."""
        with self.store.transaction() as tx:
            now = self.clock.now()
            mail = tx.outbox.get(mail_id)  # locked where the database has row locks
            if mail is None or mail.status not in ("queued", "sending"):
                return None
            if mail.status == "queued" and mail.next_attempt_at is not None \
                    and mail.next_attempt_at > now:
                return None  # its next attempt is not due yet
            shared = self._shared_now(tx, now)
            if mail.status == "sending" and mail.next_attempt_at is not None \
                    and mail.next_attempt_at > shared:
                return None  # another relay is sending it now
            mail.status = "sending"
            mail.attempts += 1
            mail.next_attempt_at = shared + self.lease_for()
            tx.outbox.update(mail)
            return mail

    def _shared_now(self, tx: Transaction, now: datetime) -> datetime:
        """The database's clock (else ``now``); logs once if this process's clock is far off."""
        shared = tx.outbox.database_now()
        if shared is None:
            return now
        skew = (now - shared).total_seconds()
        if abs(skew) > SKEW_WARNING.total_seconds() and not self._skew_logged:
            self._skew_logged = True
            clock_log.warning(
                "this process's clock is %.1f s %s the database's: mail leases follow the "
                "database's clock, but timers, expiries and mail retries follow this one, up to "
                "that much early or late; synchronise the hosts' clocks (NTP)",
                abs(skew), "ahead of" if skew > 0 else "behind")
        return shared

    def _sent(self, mail: OutboxMail) -> None:
        """Record the delivery (retrying a failing store a little); a lost mark means a second
        copy once the lease has passed, which the stable Message-ID lets receivers spot."""
        for attempt in range(1, MARK_TRIES + 1):
            try:
                self._mark_sent(mail)
                return
            except Exception as exc:
                if attempt == MARK_TRIES:
                    log.error("mail %s to %s was sent but not marked sent (%s); it will be sent "
                              "again once its lease has passed", mail.id, domain_of(mail.to),
                              reason_of(exc))
                    return
                self.clock.sleep(0.1 * 2 ** (attempt - 1))

    def _mark_sent(self, mail: OutboxMail) -> None:
        with self.store.transaction() as tx:
            row = tx.outbox.get(mail.id)
            if row is None:
                log.error("mail %s to %s was sent, but its outbox row is gone",
                          mail.id, domain_of(mail.to))
                return
            if row.status == "sent":
                log.warning("mail %s to %s was sent again (attempt %d): another relay sent it "
                            "after this one's lease ran out", mail.id, domain_of(mail.to),
                            mail.attempts)
                return
            row.status = "sent"
            row.message = b""  # the body may carry a code: gone once delivered
            row.sent_at = self.clock.now()
            row.next_attempt_at = None
            row.last_error = None
            tx.outbox.update(row)
        log.info("mail %s to %s sent (attempt %d)", mail.id, domain_of(mail.to), mail.attempts)

    def _failed(self, mail: OutboxMail, exc: Exception) -> None:
        """Record a failed attempt: a later one scheduled, or the mail failed for good."""
        reason = reason_of(exc)
        permanent = is_permanent(exc)
        with self.store.transaction() as tx:
            now = self.clock.now()
            row = tx.outbox.get(mail.id)
            if row is None or row.status != "sending" or row.attempts != mail.attempts:
                # Sent or failed meanwhile, or claimed again by a relay after our lease ran
                # out: that relay now decides what happens to the mail.
                log.warning("mail %s to %s: attempt %d failed after its lease ran out: %s",
                            mail.id, domain_of(mail.to), mail.attempts, reason)
                self.failed_attempts += 1
                return
            row.last_error = reason
            if permanent or row.attempts >= self.max_attempts:
                row.status = "failed"
                row.message = b""  # dead: the body (maybe a code) is kept no longer
                row.next_attempt_at = None
                self._journal(tx, row, now, "mail_rejected" if rejected(exc) else "mail_failed")
            else:
                row.status = "queued"
                row.next_attempt_at = now + self.next_wait(row.attempts)
            tx.outbox.update(row)
        if row.status == "failed":
            self.dead += 1
            log.error("mail %s to %s failed for good at attempt %d of %d (%s): %s",
                      row.id, domain_of(row.to), row.attempts, self.max_attempts,
                      "permanent" if permanent else "attempts exhausted", reason)
        else:
            self.failed_attempts += 1
            log.warning("mail %s to %s: attempt %d of %d failed, next at %s: %s",
                        row.id, domain_of(row.to), row.attempts, self.max_attempts,
                        row.next_attempt_at.isoformat() if row.next_attempt_at else "-", reason)

    def _journal(self, tx: Transaction, mail: OutboxMail, now: datetime, outcome: str) -> None:
        """Note the failed mail in its flow's journal (state unchanged, actor ``system``)."""
        if mail.flow_id is None:
            return
        flow = tx.flows.load(mail.flow_id)
        if flow is None:
            return
        tx.flows.journal(JournalEntry(flow_id=flow.id, from_state=flow.state, to_state=flow.state,
                                   event="mail", actor="system", at=now, outcome=outcome))
