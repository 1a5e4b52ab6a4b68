"""The outbox relay: delivers mail the engine wrote in its transactions, retrying what failed.

A mail is claimed (attempt counted, a lease set) in one transaction, handed to the mailer, then
marked sent in another; a failure marks it for a later attempt with exponential backoff, and a
mail that keeps failing, or fails permanently, is marked ``failed`` with the error kept.
"""

from __future__ import annotations

import email
import email.policy
import logging
import smtplib
from collections.abc import Iterable
from datetime import datetime, timedelta
from email.message import EmailMessage

from regflow.exceptions import TransientError
from regflow.ports import Clock, Mailer, Store
from regflow.records import OutboxMail

log = logging.getLogger("regflow.mail")

LEASE = timedelta(seconds=60)  # a claimed mail is not claimed again before this passes
FIRST_RETRY = timedelta(seconds=30)
LAST_RETRY = timedelta(hours=1)
MAX_ATTEMPTS = 10


def parse(raw: bytes) -> EmailMessage:
    """The outbox bytes as an EmailMessage."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def is_permanent(exc: Exception) -> bool:
    """Whether a delivery failure is final: an SMTP 5xx reply (for every recipient), or any
    error that is neither a TransientError nor an OSError (connection trouble, SMTP 4xx)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return not isinstance(exc, TransientError | OSError)


def retry_delay(attempts: int) -> timedelta:
    """Wait before the next attempt after ``attempts`` failed ones: 30 s doubling, at most 1 h."""
    delay: timedelta = FIRST_RETRY * 2 ** max(0, attempts - 1)
    return min(LAST_RETRY, delay)


class MailRelay:
    """Moves mail from the outbox to the mailer."""

    def __init__(self, store: Store, mailer: Mailer, clock: Clock) -> None:
        self.store = store
        self.mailer = mailer
        self.clock = clock

    def deliver(self, mail_ids: Iterable[str]) -> int:
        """Try to deliver these mails now (right after the commit that wrote them)."""
        return sum(self._deliver_one(mail_id) for mail_id in mail_ids)

    def deliver_due(self, limit: int = 100) -> int:
        """Deliver queued mail whose attempt is due; how many were sent."""
        with self.store.transaction() as tx:
            due = [m.id for m in tx.outbox.due(self.clock.now(), limit)]
        return self.deliver(due)

    def _claim(self, mail_id: str, now: datetime) -> OutboxMail | None:
        with self.store.transaction() as tx:
            mail = tx.outbox.get(mail_id)
            if mail is None or mail.status != "queued":
                return None
            if mail.next_attempt_at is not None and mail.next_attempt_at > now:
                return None
            mail.attempts += 1
            mail.next_attempt_at = now + LEASE
            tx.outbox.update(mail)
            return mail

    def _deliver_one(self, mail_id: str) -> bool:
        now = self.clock.now()
        mail = self._claim(mail_id, now)
        if mail is None:
            return False
        try:
            self.mailer.send(parse(mail.message))
        except Exception as exc:
            self._failed(mail, now, f"{type(exc).__name__}: {exc}", permanent=is_permanent(exc))
            return False
        with self.store.transaction() as tx:
            mail.status = "sent"
            mail.sent_at = self.clock.now()
            mail.next_attempt_at = None
            mail.last_error = None
            tx.outbox.update(mail)
        return True

    def _failed(self, mail: OutboxMail, now: datetime, error: str, *, permanent: bool) -> None:
        with self.store.transaction() as tx:
            mail.last_error = error
            if permanent or mail.attempts >= MAX_ATTEMPTS:
                mail.status = "failed"
                mail.next_attempt_at = None
                log.error("mail %s to the outbox failed for good: %s", mail.id, error)
            else:
                mail.next_attempt_at = now + retry_delay(mail.attempts)
                log.warning("mail %s not delivered (attempt %d), retrying: %s",
                            mail.id, mail.attempts, error)
            tx.outbox.update(mail)
