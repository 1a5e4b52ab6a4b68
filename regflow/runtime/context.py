"""What guards and actions see while one event (or timer) is applied to one flow."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

import attrs

from regflow.definitions.model import FlowDefinition, Setting
from regflow.ground.ports import ContractDirectory, PasswordHasher, Provisioner, Transaction
from regflow.ground.records import FlowRecord, Login, OutboxMail
from regflow.runtime.limits import Limits


class Composer(Protocol):
    """Renders a mail template into an EmailMessage (see ``regflow.mail.composer.MailComposer``)."""

    def compose(self, template: str, lang: str, to: str, params: Mapping[str, Any], *,
                message_id: str | None = None) -> Any: ...


@attrs.define
class Services:
    """What the engine lends to guards and actions besides the transaction."""

    hasher: PasswordHasher
    contracts: ContractDirectory
    provisioner: Provisioner
    composer: Composer
    secret: bytes = b""  # keys code digests, request hashes and limit subjects (REGFLOW_SECRET)
    limits: Limits = attrs.field(factory=Limits)
    session_ttl: int = 12 * 3600
    product: str = "regflow"
    timezone: str = "Asia/Tokyo"
    dummy_hash: str | None = None  # verified for unknown addresses, so they cost the same


@attrs.frozen
class HandOver:
    """A hand-over asked for by an action: start ``flow`` with ``context``, its first screen
    showing ``form`` (non-secret values) filled in; with ``event``, send it to the new flow at
    once with ``data`` (e.g. the credentials typed on this screen), in the same transaction, so
    that what was typed is used and never stored."""

    flow: str
    context: dict[str, str]
    form: dict[str, str] = attrs.field(factory=dict)
    event: str | None = None
    data: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class FlowContext:
    """One step of one flow: its record, the submitted input, the time, and the transaction.

    Guards read; actions change ``data`` (kept with the flow), write through ``tx``, ``say``
    messages for the screen and ``mail`` through the outbox — all in the step's transaction.
    """

    flow: FlowRecord
    definition: FlowDefinition
    tx: Transaction
    services: Services
    now: datetime
    event: str
    input: dict[str, Any] = attrs.field(factory=dict)  # the event's data, checked and normalised
    raw: dict[str, Any] = attrs.field(factory=dict)  # the event's data as sent
    actor: str = "user"
    params: dict[str, Any] = attrs.field(factory=dict)  # message params found by guards (JSON)
    scratch: dict[str, Any] = attrs.field(factory=dict)  # what guards look up once per step
    messages: list[dict[str, Any]] = attrs.field(factory=list)
    mails: list[str] = attrs.field(factory=list)  # outbox ids written in this step
    guard_results: dict[str, bool] = attrs.field(factory=dict)
    actor_login: Login | None = None  # the signed-in login acting, for flows that need one
    opened_session: str | None = None  # a session id opened in this step (its token is shown)
    session_token: str | None = None  # that session's token, for this answer only
    flow_token: str | None = None  # the flow's token as the caller presented it (never stored)
    client: str = ""  # the caller's client, as a keyed digest ("" in-process)
    continue_with: HandOver | None = None  # asked for by ``hand_over``
    handed_over: tuple[Any, FlowRecord, str | None, str | None] | None = None  # the flow
    #   handed over to (its CompiledFlow: the context does not import the machine that runs it),
    #   its record, its token and the token of a session its first step opened
    retry: str = "default"  # the retry policy of the branch being run
    kept: dict[str, str] = attrs.field(factory=dict)  # password hashes kept from a spent try,
    #   used for the fields left empty (see regflow.runtime.kept_secrets)

    @property
    def data(self) -> dict[str, Any]:
        """The flow's own data, kept between steps (JSON values only)."""
        return self.flow.data

    @property
    def lang(self) -> str:
        """The language the flow was started in."""
        return str(self.flow.data.get("_lang", "ja"))

    def setting(self, name: str) -> Setting:
        """A setting of the definition (after the engine's overrides)."""
        return self.definition.settings[name]

    def seconds(self, name: str) -> int:
        """A duration setting in seconds."""
        return self.definition.seconds(f"@{name}")

    def password_hash(self, name: str) -> str:
        """The hash of a password field: of what was typed, else the one kept when a try of
        this step failed for a passing reason (``regflow.runtime.kept_secrets``)."""
        if name in self.input:
            return self.services.hasher.hash(str(self.input[name]))
        return self.kept[name]

    def hand_over(self, flow: str, context: Mapping[str, str], *,
                  form: Mapping[str, str] | None = None, event: str | None = None,
                  data: Mapping[str, Any] | None = None) -> None:
        """End this step by handing over to a new ``flow`` (see ``HandOver``); the answer is
        the new flow's snapshot, ``continue_with`` names it."""
        self.continue_with = HandOver(flow, dict(context), dict(form or {}), event,
                                      dict(data or {}))

    def say(self, message_id: str, *, level: str = "error", field: str | None = None,
            **params: Any) -> None:
        """Show a message on the next screen."""
        self.messages.append({"id": message_id, "level": level, "field": field, "params": params})

    def mail(self, template: str, to: str, *, decoy: bool = False, **params: Any) -> str:
        """Queue a mail in the outbox, in this step's transaction; returns its outbox id.

        A ``decoy`` is composed and stored like any mail but never sent (and purged like a sent
        one): the same work for an address that must not be told apart from a registered one.
        """
        mail_id = uuid.uuid4().hex
        message = self.services.composer.compose(
            template, self.lang, to,
            {"product": self.services.product, "date": self.now, **params},
            message_id=f"<{mail_id}@regflow.invalid>",  # stable per outbox row
        )
        self.tx.outbox.enqueue(OutboxMail(
            id=mail_id, flow_id=self.flow.id, to=to, message=bytes(message),
            created_at=self.now, status="decoy" if decoy else "queued",
        ))
        if not decoy:
            self.mails.append(mail_id)
        return mail_id


def new_id() -> str:
    """A 128-bit random id from ``secrets``, URL-safe."""
    return secrets.token_urlsafe(16)


def new_token() -> str:
    """A 256-bit random secret from ``secrets``, URL-safe (flow tokens)."""
    return secrets.token_urlsafe(32)


def derived_token(parent: str, flow_id: str) -> str:
    """The token of a flow handed over to by the holder of ``parent``: as unpredictable as the
    parent, and given again to that holder on a replay, while the store keeps only hashes."""
    mac = hmac.new(parent.encode(), b"regflow.flow\x00" + flow_id.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def token_digest(token: str) -> str:
    """What the store keeps of a flow token (SHA-256, hex)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
