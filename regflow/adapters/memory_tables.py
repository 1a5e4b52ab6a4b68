"""The MemoryStore's table views: the ports' tables over the store's dicts and indexes (the
flows' view, the step's hot path, is in ``memory_flows``), and retention's purge.

Every view checks that the calling thread runs a transaction on the store, writes through the
store's undo-logging helpers, and copies records in and out. Row locks are no-ops here: the
transaction already holds the store's lock.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from regflow.adapters.memory_data import MemoryData
from regflow.ground.exceptions import ConstraintViolation, StoreError
from regflow.ground.records import (
    Code,
    Customer,
    Cutoffs,
    LimitHit,
    Login,
    OutboxMail,
    Session,
)


def _customer_copy(customer: Customer) -> Customer:
    """A copy sharing nothing mutable with ``customer``."""
    return attrs.evolve(customer, accounts=list(customer.accounts))


class _Base:
    """Base of the table views: the store whose dicts they read and change."""

    def __init__(self, store: MemoryData) -> None:
        self._s = store


class Contracts(_Base):
    def customer(self, customer_id: str) -> Customer | None:
        customer = self._s._check()._customers.get(customer_id)
        return None if customer is None else _customer_copy(customer)

    def customer_of_account(self, account: str) -> Customer | None:
        owner = self._s._check()._seat_owner.get(account)
        return None if owner is None else self.customer(owner)

    def put_customer(self, customer: Customer) -> None:
        s = self._s._check()
        key = customer.customer_id
        taken = {a for a in customer.accounts if s._seat_owner.get(a, key) != key}
        if taken or len(set(customer.accounts)) != len(customer.accounts):
            raise ConstraintViolation("seat")
        old = s._customers.get(key)
        for account in old.accounts if old is not None else ():
            s._drop(s._seat_owner, account)
        for account in customer.accounts:
            s._put(s._seat_owner, account, key)
        s._put(s._customers, key, _customer_copy(customer))

    def lock(self, customer_id: str) -> None:
        """Nothing to do: the transaction holds the store's lock already."""
        self._s._check()

    def customers(self) -> list[Customer]:
        s = self._s._check()
        return [_customer_copy(s._customers[key]) for key in sorted(s._customers)]

    def set_require_two_factor(self, customer_id: str, required: bool) -> None:
        s = self._s._check()
        customer = s._customers.get(customer_id)
        if customer is None:
            raise StoreError(f"no customer {customer_id!r} to update")
        s._put(s._customers, customer_id, attrs.evolve(customer, require_two_factor=required))


class Logins(_Base):
    def by_email(self, email_key: str, *, lock: bool = False) -> Login | None:
        login_id = self._s._check()._login_by_email.get(email_key)
        return None if login_id is None else self.get(login_id)

    def get(self, login_id: str, *, lock: bool = False) -> Login | None:
        login = self._s._check()._logins.get(login_id)
        return None if login is None else attrs.evolve(login)

    def by_account(self, account: str) -> Login | None:
        login_id = self._s._check()._login_by_account.get(account)
        return None if login_id is None else self.get(login_id)

    def of_customer(self, customer_id: str) -> list[Login]:
        s = self._s._check()
        logins = [s._logins[i] for i in s._logins_of.get(customer_id, ())]
        return [attrs.evolve(x) for x in sorted(logins, key=lambda x: (x.created_at, x.id))]

    def count(self, customer_id: str) -> int:
        return len(self._s._check()._logins_of.get(customer_id, ()))

    def insert(self, login: Login) -> None:
        s = self._s._check()
        if login.id in s._logins:
            raise ConstraintViolation("id")
        self._refuse_clash(login)
        self._index(login)

    def update(self, login: Login) -> None:
        s = self._s._check()
        old = s._logins.get(login.id)
        if old is None:
            raise StoreError(f"no login {login.id!r} to update")
        self._refuse_clash(login)
        self._unindex(old)
        self._index(login)

    def delete(self, login_id: str) -> None:
        old = self._s._check()._logins.get(login_id)
        if old is None:
            raise StoreError(f"no login {login_id!r} to delete")
        self._unindex(old)

    def _refuse_clash(self, login: Login) -> None:
        """Raise ConstraintViolation when another login holds the email key, seat or admin role."""
        s = self._s
        if s._login_by_email.get(login.email_key, login.id) != login.id:
            raise ConstraintViolation("email")
        if login.account is not None and s._login_by_account.get(login.account, login.id) != login.id:
            raise ConstraintViolation("account")
        if login.role == "admin" and s._admin_of.get(login.customer_id, login.id) != login.id:
            raise ConstraintViolation("admin")

    def _index(self, login: Login) -> None:
        s = self._s
        s._put(s._logins, login.id, attrs.evolve(login))
        s._put(s._login_by_email, login.email_key, login.id)
        if login.account is not None:
            s._put(s._login_by_account, login.account, login.id)
        if login.role == "admin":
            s._put(s._admin_of, login.customer_id, login.id)
        s._put(s._members(s._logins_of, login.customer_id), login.id, None)

    def _unindex(self, login: Login) -> None:
        s = self._s
        s._drop(s._logins, login.id)
        s._drop(s._login_by_email, login.email_key)
        if login.account is not None:
            s._drop(s._login_by_account, login.account)
        if login.role == "admin":
            s._drop(s._admin_of, login.customer_id)
        s._drop(s._members(s._logins_of, login.customer_id), login.id)


class Sessions(_Base):
    def insert(self, session: Session) -> None:
        s = self._s._check()
        if session.id in s._sessions:
            raise ConstraintViolation("id")
        if session.digest in s._session_by_digest:
            raise ConstraintViolation("digest")
        s._put(s._sessions, session.id, attrs.evolve(session))
        s._put(s._session_by_digest, session.digest, session.id)
        s._put(s._members(s._sessions_of, session.login_id), session.id, None)

    def by_digest(self, digest: str) -> Session | None:
        s = self._s._check()
        session_id = s._session_by_digest.get(digest)
        return None if session_id is None else attrs.evolve(s._sessions[session_id])

    def end(self, session_id: str) -> None:
        """End the session; ending an unknown or ended one does nothing."""
        s = self._s._check()
        session = s._sessions.get(session_id)
        if session is not None:
            s._drop(s._sessions, session_id)
            s._drop(s._session_by_digest, session.digest)
            s._drop(s._members(s._sessions_of, session.login_id), session_id)

    def end_of_login(self, login_id: str, *, keep: str | None = None) -> int:
        s = self._s._check()
        ending = [i for i in s._sessions_of.get(login_id, ()) if i != keep]
        return self.end_many(ending)

    def of_login(self, login_id: str) -> list[Session]:
        s = self._s._check()
        found = [s._sessions[i] for i in s._sessions_of.get(login_id, ())]
        return [attrs.evolve(x) for x in sorted(found, key=lambda x: (x.created_at, x.id))]

    def end_many(self, session_ids: list[str]) -> int:
        """End these sessions; how many."""
        for session_id in session_ids:
            self.end(session_id)
        return len(session_ids)


class Codes(_Base):
    def latest(self, flow_id: str, purpose: str) -> Code | None:
        """The code issued last for the flow and purpose (issue order, not the clock)."""
        s = self._s._check()
        issued = s._codes_of.get((flow_id, purpose))
        return attrs.evolve(s._codes[issued[-1]]) if issued else None

    def insert(self, code: Code) -> None:
        s = self._s._check()
        if code.id in s._codes:
            raise ConstraintViolation("id")
        s._put(s._codes, code.id, attrs.evolve(code))
        s._append(s._codes_of, (code.flow_id, code.purpose), code.id)
        s._put(s._members(s._codes_for, code.email_key), code.id, None)

    def update(self, code: Code) -> None:
        """Save a code's state; its flow, purpose, address and creation stay as issued."""
        s = self._s._check()
        old = s._codes.get(code.id)
        if old is None:
            raise StoreError(f"no code {code.id!r} to update")
        kept = attrs.evolve(
            code,
            flow_id=old.flow_id,
            purpose=old.purpose,
            email_key=old.email_key,
            created_at=old.created_at,
        )
        s._put(s._codes, code.id, kept)

    def void_for(self, email_key: str) -> int:
        s = self._s._check()
        live = [s._codes[i] for i in s._codes_for.get(email_key, ())]
        live = [c for c in live if c.used_at is None and not c.void]
        for code in live:
            s._put(s._codes, code.id, attrs.evolve(code, void=True))
        return len(live)


class Outbox(_Base):
    def database_now(self) -> None:
        """None: one process, one clock; a lease is judged by the ``now`` it is given."""

    def enqueue(self, mail: OutboxMail) -> None:
        s = self._s._check()
        if mail.id in s._outbox:
            raise ConstraintViolation("id")
        self._save(mail)

    def _save(self, mail: OutboxMail) -> None:
        s = self._s
        s._put(s._outbox, mail.id, attrs.evolve(mail))
        if mail.status in ("queued", "sending"):  # sending: due again once its lease passed
            s._put(s._queued, mail.id, None)
        else:
            s._drop(s._queued, mail.id)

    def due(self, now: datetime, limit: int) -> list[OutboxMail]:
        s = self._s._check()
        waiting = (s._outbox[i] for i in s._queued)
        due = [m for m in waiting if m.next_attempt_at is None or m.next_attempt_at <= now]
        due.sort(key=lambda m: (m.created_at, m.id))
        return [attrs.evolve(m) for m in due[:limit]]

    def update(self, mail: OutboxMail) -> None:
        if mail.id not in self._s._check()._outbox:
            raise StoreError(f"no mail {mail.id!r} to update")
        self._save(mail)

    def get(self, mail_id: str) -> OutboxMail | None:
        mail = self._s._check()._outbox.get(mail_id)
        return None if mail is None else attrs.evolve(mail)


class Limits(_Base):
    def add(self, hit: LimitHit) -> None:
        s = self._s._check()
        clients = s._members(s._hits, (hit.kind, hit.subject))
        s._append(clients, hit.client, hit)

    def _hits(self, kind: str, subject: str, client: str | None) -> list[LimitHit]:
        clients = self._s._check()._hits.get((kind, subject), {})
        if client is not None:
            return list(clients.get(client, ()))
        return [hit for hits in clients.values() for hit in hits]

    def count(self, kind: str, subject: str, client: str | None,
              since: datetime) -> tuple[int, datetime | None]:
        later = [hit.at for hit in self._hits(kind, subject, client) if hit.at > since]
        return len(later), min(later, default=None)

    def last(self, kind: str, subject: str, client: str) -> LimitHit | None:
        hits = self._hits(kind, subject, client)
        return max(hits, key=lambda hit: hit.at) if hits else None

    def clear(self, kind: str, subject: str, client: str | None = None) -> int:
        s = self._s._check()
        clients = s._hits.get((kind, subject))
        if clients is None:
            return 0
        names = [client] if client is not None else list(clients)
        cleared = 0
        for name in names:
            if name in clients:
                cleared += len(clients[name])
                s._drop(clients, name)
        return cleared


    def lock(self, subject: str) -> None:
        """Nothing to do: the transaction holds the store's lock already."""
        self._s._check()


def purge(s: MemoryData, cut: Cutoffs) -> dict[str, int]:
    """Delete, inside the store's transaction, what ``cut`` says retention no longer keeps."""
    ended = [f.id for f in s._flows.values() if f.status != "active" and f.updated_at < cut.flows]
    for flow_id in ended:
        s._drop(s._flows, flow_id)
        s._set_due(flow_id, None)
    gone = set(ended)
    codes = [c for c in s._codes.values() if c.flow_id in gone or (
        (c.used_at is not None or c.void or c.expires_at < cut.codes) and c.created_at < cut.codes)]
    for code in codes:
        s._drop(s._codes, code.id)
        issued = s._codes_of.get((code.flow_id, code.purpose))
        if issued is not None and code.id in issued:
            s._put(s._codes_of, (code.flow_id, code.purpose), [i for i in issued if i != code.id])
        s._drop(s._members(s._codes_for, code.email_key), code.id)
    sessions = [x.id for x in s._sessions.values() if x.expires_at < cut.sessions]
    Sessions(s).end_many(sessions)
    mail = [m.id for m in s._outbox.values()
            if m.status in ("sent", "failed", "decoy") and m.created_at < cut.mail]
    for mail_id in mail:
        s._drop(s._outbox, mail_id)
    answers = [k for k, r in s._idempotency.items() if r.created_at < cut.idempotency or k[0] in gone]
    for key in answers:
        s._drop(s._idempotency, key)
    hits = 0
    for clients in s._hits.values():
        for name, items in list(clients.items()):
            kept = [h for h in items if h.at >= cut.limits or (h.until is not None and h.until >= cut.limits)]
            if len(kept) != len(items):
                hits += len(items) - len(kept)
                s._put(clients, name, kept)
    journal = 0
    for flow_id, entries in list(s._journal.items()):
        kept_entries = [e for e in entries if e.at >= cut.journal]
        if len(kept_entries) != len(entries):
            journal += len(entries) - len(kept_entries)
            s._put(s._journal, flow_id, kept_entries)
    return {"flows": len(ended), "codes": len(codes), "sessions": len(sessions), "mail": len(mail),
            "idempotency": len(answers), "limits": hits, "journal": journal}
