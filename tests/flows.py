"""Helpers that drive the registration flow in tests (plain functions, no fixtures)."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from freezegun.api import FrozenDateTimeFactory

import regflow
from regflow.definitions.validation import email_key
from regflow.ground.records import Login, OutboxMail, Session
from regflow.ground.screens import Message, Snapshot

PASSWORD = "Kx7#mPq2wZ"  # meets the policy, on no list, contains no address or customer number
CUSTOMER_ID = "281234"
TEL = "03-1234-5678"
DISPLAY_NAME = "山田 太郎"
EngineFactory = Callable[..., regflow.Engine]  # the ``make_engine`` fixture
_CODE = re.compile(r"(?<![0-9])[0-9]{8}(?![0-9])")


def plain_body(mail: EmailMessage) -> str:
    """The text/plain part of a mail."""
    part = mail.get_body(("plain",))
    assert part is not None, "mail without a text/plain part"
    return str(part.get_content())  # type: ignore[attr-defined]


def codes_in(mail: EmailMessage) -> list[str]:
    """Every 8-digit number in a mail's plain body."""
    return _CODE.findall(plain_body(mail))


def last_code(engine: regflow.Engine) -> str:
    """The 8-digit code of the newest mail (exactly one in its plain body)."""
    mailer: Any = engine.mailer
    assert mailer.messages, "no mail was sent"
    found = codes_in(mailer.messages[-1])
    assert len(found) == 1, f"expected one 8-digit code in the newest mail, found {found}"
    return found[0]


def wrong_code(code: str) -> str:
    """An 8-digit code that is not ``code``."""
    return f"{(int(code) + 1) % 10**8:08d}"


def mail_count(engine: regflow.Engine) -> int:
    """How many mails the memory mailer holds."""
    mailer: Any = engine.mailer
    return len(mailer.messages)


def message_ids(snapshot: Snapshot) -> list[str]:
    """The ids of the screen's messages, in order."""
    return [m.id for m in snapshot.screen.messages]


def message(snapshot: Snapshot, message_id: str) -> Message:
    """The screen's (only) message with that id."""
    found = [m for m in snapshot.screen.messages if m.id == message_id]
    assert len(found) == 1, f"expected one {message_id!r}, got {message_ids(snapshot)}"
    return found[0]


def field_errors(snapshot: Snapshot) -> dict[str | None, str]:
    """The error messages keyed by the field they are about."""
    return {m.field: m.id for m in snapshot.screen.messages if m.level == "error"}


def field_names(snapshot: Snapshot) -> list[str]:
    """The names of the screen's fields, in order."""
    return [f.name for f in snapshot.screen.fields]


def action_events(snapshot: Snapshot) -> list[str]:
    """The events of the screen's actions, in order."""
    return [a.event for a in snapshot.screen.actions]


def field_values(snapshot: Snapshot) -> dict[str, Any]:
    """The values the screen shows again, by field name."""
    return {f.name: f.value for f in snapshot.screen.fields}


def details(**overrides: str) -> dict[str, str]:
    """A details form that matches the demo contract, with some values replaced."""
    form = {
        "password": PASSWORD, "password_confirm": PASSWORD, "customer_id": CUSTOMER_ID,
        "display_name": DISPLAY_NAME, "tel": TEL,
    }
    form.update(overrides)
    if "password" in overrides and "password_confirm" not in overrides:
        form["password_confirm"] = overrides["password"]
    return form


def submit_email(engine: regflow.Engine, email: str, account: str = "abcd8-01",
                 lang: str | None = None) -> Snapshot:
    """Start a registration on ``account`` and submit ``email``."""
    snap = engine.start("registration", {"account": account}, lang=lang)
    return engine.send(snap, "submit", {"email": email})


def to_details(engine: regflow.Engine, email: str, account: str = "abcd8-01",
               lang: str | None = None) -> Snapshot:
    """Start a registration and get it to the details screen (e-mail and code done)."""
    snap = submit_email(engine, email, account, lang)
    assert snap.state == "enter_code", message_ids(snap)
    snap = engine.send(snap, "submit", {"code": last_code(engine)})
    assert snap.state == "details", message_ids(snap)
    return snap


def register(engine: regflow.Engine, account: str, email: str, *, customer_id: str = CUSTOMER_ID,
             tel: str = TEL, display_name: str = DISPLAY_NAME, password: str = PASSWORD,
             lang: str | None = None) -> Snapshot:
    """Drive a whole registration; the snapshot after the details were submitted."""
    snap = to_details(engine, email, account, lang)
    return engine.send(snap, "submit", details(
        password=password, customer_id=customer_id, tel=tel, display_name=display_name))


def logins_of(engine: regflow.Engine, customer_id: str = CUSTOMER_ID) -> list[Any]:
    """The customer's logins, read from the store."""
    with engine.store.transaction() as tx:
        return list(tx.logins.of_customer(customer_id))


def stored_flow(engine: regflow.Engine, flow_id: str) -> Any:
    """The flow record as stored (no timers applied)."""
    with engine.store.transaction() as tx:
        return tx.flows.load(flow_id)


def ready(engine: regflow.Engine, frozen: FrozenDateTimeFactory,
          *logins: tuple[str, str]) -> None:
    """Register each (seat, address) now (the first becomes admin), then wait until all are ready."""
    for account, email in logins:
        snap = register(engine, account, email)
        assert snap.state == "provisioning", message_ids(snap)
    frozen.tick(timedelta(minutes=10))


def login_of(engine: regflow.Engine, email: str) -> Login:
    """The stored login of an address (which must exist)."""
    with engine.store.transaction() as tx:
        login = tx.logins.by_email(email_key(email))
    assert login is not None, email
    return login


def session_of(engine: regflow.Engine, token: str) -> Session | None:
    """The stored session of a token (looked up by its SHA-256 digest), or None."""
    with engine.store.transaction() as tx:
        return tx.sessions.by_digest(hashlib.sha256(token.encode()).hexdigest())


def newest_mail(engine: regflow.Engine) -> EmailMessage:
    """The newest mail of the memory mailer."""
    mailer: Any = engine.mailer
    message: EmailMessage = mailer.messages[-1]
    return message


def enqueue_mails(engine: regflow.Engine, count: int, at: datetime | None = None) -> set[str]:
    """Write ``count`` mails straight into the outbox (created ``at``, default now); their
    Message-IDs."""
    return {f"<{mail_id}@regflow.invalid>" for mail_id in enqueue_into(engine.store, count, at)}


def enqueue_into(store: Any, count: int, at: datetime | None = None) -> list[str]:
    """Write ``count`` mails into a store's outbox (created ``at``, default now); their outbox
    ids, each mail's Message-ID being ``<ID@regflow.invalid>``."""
    created = at if at is not None else datetime.now(UTC)
    ids: list[str] = []
    with store.transaction() as tx:
        for number in range(count):
            mail_id = uuid.uuid4().hex
            message = EmailMessage()
            message["From"] = "regflow <no-reply@regflow.invalid>"
            message["To"] = f"user{number:03d}@example.jp"
            message["Subject"] = f"mail {number}"
            message["Message-ID"] = f"<{mail_id}@regflow.invalid>"
            message.set_content(f"mail number {number}\n")
            tx.outbox.enqueue(OutboxMail(id=mail_id, flow_id=None, to=str(message["To"]),
                                         message=bytes(message), created_at=created))
            ids.append(mail_id)
    return ids
