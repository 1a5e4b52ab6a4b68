"""The engine: ``start``, ``send`` and ``get`` flows; timers, retries, idempotency, mail relay.

It knows only the ports (``regflow.ground.ports``); ``regflow.bootstrap`` wires adapters to it.
Every call reads the clock once, at call time, and works in one store transaction; mail written
in that transaction is delivered right after it commits (``regflow.runtime.call_frame`` holds
that frame of a call: transaction, retries, client limits, mail after commit).
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, TypeVar

from regflow.definitions.library import FlowLibrary
from regflow.definitions.model import RetryPolicy, Setting
from regflow.ground.clock import SystemClock
from regflow.ground.exceptions import (
    ConcurrentUpdate,
    FlowNotFound,
    IdempotencyKeyInvalid,
    TransientError,
)
from regflow.ground.ports import (
    Clock,
    ContractDirectory,
    Mailer,
    PasswordHasher,
    Provisioner,
    Store,
    Transaction,
)
from regflow.ground.records import FlowRecord, IdempotencyRecord, JournalEntry
from regflow.ground.screens import Snapshot
from regflow.mail.relay import MailRelay
from regflow.rules.contracts import StoreContracts
from regflow.runtime import call_frame, hand_over, sessions, steps
from regflow.runtime.compiled import CompiledFlow
from regflow.runtime.context import (
    Composer,
    FlowContext,
    Services,
    new_token,
)
from regflow.runtime.flow_access import FlowRef, checked_context, holds, reference, refusal
from regflow.runtime.idempotency import remembered, replay, request_hash
from regflow.runtime.limits import Limits
from regflow.runtime.migrations import migrate
from regflow.runtime.presenter import answer
from regflow.runtime.provisioning import NoProvisioner
from regflow.runtime.retention import Retention
from regflow.runtime.slow_work import SlowWorkHasher
from regflow.runtime.sweeping import Sweeper, SweepReport

T = TypeVar("T")
Outcome = tuple[Snapshot, list[str]]  # the answer, and the outbox ids to deliver after commit


class Engine:
    """Runs flows of a library on a store, sending mail through a mailer."""

    def __init__(
        self,
        store: Store,
        mailer: Mailer,
        *,
        hasher: PasswordHasher,
        clock: Clock | None = None,
        contracts: ContractDirectory | None = None,
        provisioner: Provisioner | None = None,
        composer: Composer | None = None,
        flows: FlowLibrary | None = None,
        settings: Mapping[str, Mapping[str, Setting]] | None = None,
        product: str = "regflow",
        secret: bytes | None = None,
        session_ttl: timedelta = timedelta(hours=12),
        rng: random.Random | None = None,
        flow_tokens: bool = True,
        limits: Limits | None = None,
        retention: Retention | None = None,
    ) -> None:
        if flows is None:
            from regflow.machines import builtin_library

            flows = builtin_library()
        if composer is None:
            from regflow.mail.composer import MailComposer

            composer = MailComposer()
        self.store = store
        self.mailer = mailer
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.flows = flows
        for name, overrides in (settings or {}).items():
            flows.configure(name, overrides)
        # contracts follow the number and phone rules of the library's registration flow
        self.contracts: ContractDirectory = (contracts if contracts is not None
                                             else StoreContracts(store, flows))
        self.services = Services(
            hasher=hasher if isinstance(hasher, SlowWorkHasher) else SlowWorkHasher(hasher),
            contracts=self.contracts,
            provisioner=provisioner if provisioner is not None else NoProvisioner(),
            composer=composer, product=product,
            secret=secret if secret is not None else store.shared_secret(),
            limits=limits if limits is not None else Limits(),
            session_ttl=int(session_ttl.total_seconds()),
            # verified for addresses without a login: made now, so that the first such sign-in
            # costs what every other does (no hash to make first)
            dummy_hash=hasher.hash(secrets.token_urlsafe(16)),
        )
        self.flow_tokens = flow_tokens
        self.retention = retention if retention is not None else Retention()
        self._rng = rng if rng is not None else random.Random()
        self._compiled: dict[tuple[str, int], CompiledFlow] = {}
        self.relay = MailRelay(store, mailer, self.clock, rng=self._rng)

    @classmethod
    def from_url(cls, db: str = "memory://", mail: str = "memory", **options: Any) -> Engine:
        """An engine on the store at ``db`` and the mailer of ``mail``; ``options`` are the
        ``Engine`` arguments and those of ``regflow.bootstrap.engine_arguments`` (``hasher``
        by name, ``product``, ``mail_from``, ``secret``, ``template_dirs``, ``echo_mail``)."""
        from regflow.bootstrap import engine_arguments

        return cls(**engine_arguments(db, mail, **options))

    def compiled(self, name: str, version: int | None = None) -> CompiledFlow:
        """The compiled machine of a definition version (latest when not given), built once."""
        definition = self.flows.latest(name) if version is None else self.flows.get(name, version)
        key = (definition.name, definition.version)
        compiled = self._compiled.get(key)
        if compiled is None or compiled.definition is not definition:
            compiled = self._compiled[key] = CompiledFlow(definition, self.flows.registry)
        return compiled

    # ---- the public contract -----------------------------------------------------------------

    def start(self, flow: str, context: Mapping[str, Any] | None = None, *,
              session: str | None = None, lang: str | None = None,
              actor: str = "user", client: str | None = None) -> Snapshot:
        """Start a flow on the latest version of its definition.

        The snapshot carries ``flow_token``, the flow's secret: given to the starter only and
        needed by every later ``get`` and ``send`` of the flow (see ``flow_tokens``). ``client``
        (an IP address, as a front end tells) is counted against ``Limits.starts``.

        Flows whose definition says ``auth = "session"`` or ``"admin"`` need ``session``, the
        token of a signed-in login (its customer's admin for ``admin``); a ``target`` login in the
        context must belong to the same customer. Otherwise ``regflow.Forbidden``.
        """
        compiled = self.compiled(flow)
        checked = checked_context(compiled, context)

        def once() -> Outcome:
            now = self.clock.now()
            with self._transaction() as tx:
                who = call_frame.client(self.services.secret, tx, now, client, "start",
                                        self.services.limits.starts)
                record, ctx = steps.create(self.services, tx, compiled, checked, now, lang, actor, session,
                                           token=new_token(), client=who)
                return answer(self.services, compiled, ctx, record, lang), ctx.mails

        snapshot, mails = self._retry(compiled.definition.retry["default"], once)
        call_frame.after_commit(self.relay, mails)
        return snapshot

    def send(self, flow: FlowRef, event: str, data: Mapping[str, Any] | None = None, *,
             token: str | None = None, idempotency_key: str | None = None,
             session: str | None = None, lang: str | None = None, actor: str = "user",
             client: str | None = None) -> Snapshot:
        """Send an event with its data; timers due by now are applied first.

        ``flow`` is the flow's id with its ``token``, or the last snapshot of it (which carries
        both). A wrong or missing token is ``FlowNotFound``, as for an unknown id.
        """
        flow_id, token = reference(flow, token)
        payload = dict(data or {})
        if idempotency_key is not None and not (
                isinstance(idempotency_key, str) and 0 < len(idempotency_key) <= 255
                and steps.storable(idempotency_key)):
            raise IdempotencyKeyInvalid("an idempotency key is 1-255 characters of text")
        policy = [RetryPolicy()]
        exhausted: list[TransientError] = []

        def once() -> Outcome:
            now = self.clock.now()
            with self._transaction() as tx:
                record = self._load(tx, flow_id, token, now=now)
                compiled = self.compiled(record.flow, record.version)
                request = (request_hash(compiled, event, payload, self.services.secret)
                           if idempotency_key else "")
                if idempotency_key:
                    prior = tx.flows.idempotent(flow_id, idempotency_key)
                    if prior is not None:
                        return replay(prior, request, token), []
                who = call_frame.client(self.services.secret, tx, now, client, "event",
                                        self.services.limits.events)
                policy[0] = compiled.definition.retry["default"]
                expected = record.rev
                due = steps.apply_due(compiled, record, tx, self.services, now)
                ctx = steps.context(compiled, record, tx, self.services, now, event, actor)
                ctx.flow_token, ctx.client = token, who
                failure = refusal(compiled, ctx, session)
                if failure is None:
                    self._step(compiled, ctx, payload, exhausted, policy)
                if failure is None or due:  # a refusal still keeps what the timers did
                    self._save(tx, record, expected)
                snapshot = answer(self.services, compiled, ctx, record, lang)
                if failure is None and idempotency_key and not exhausted:
                    tx.flows.remember(IdempotencyRecord(
                        flow_id=flow_id, key=idempotency_key, request_hash=request,
                        response=remembered(snapshot, ctx), created_at=now))
            if failure is not None:
                raise failure
            return snapshot, ctx.mails

        def last_resort(exc: TransientError) -> Outcome:
            if not exhausted:  # run again after slow work it asked for: said once
                exhausted.append(exc)
            return once()

        snapshot, mails = self._retry(lambda: policy[0], once, on_exhausted=last_resort)
        call_frame.after_commit(self.relay, mails)
        return snapshot

    def get(self, flow: FlowRef, *, token: str | None = None,
            lang: str | None = None) -> Snapshot:
        """The flow as it is now, after applying what fell due (the token as for ``send``)."""
        flow_id, token = reference(flow, token)
        snapshot, _ = self._catch_up(flow_id, lang, token, checked=True)
        return snapshot

    def history(self, flow_id: str) -> list[JournalEntry]:
        """The flow's journal, oldest first (an operator's view: no flow token needed)."""
        with self._transaction(write=False) as tx:
            self._load(tx, flow_id, None, checked=False, migrating=False)
            return tx.flows.history(flow_id)

    def sweep(self, limit: int = 100) -> int:
        """Apply due timers and expiries of up to ``limit`` flows found by index; how many
        changed. A flow that fails is set aside, not raised: see ``sweep_pass``."""
        return self.sweep_pass(limit).changed

    def sweep_pass(self, limit: int = 100) -> SweepReport:
        """``sweep``, telling which flows were set aside: a flow that cannot be stepped (its
        version not loaded here, a guard or action raising…) is moved later in the due index
        with a growing wait (1 min doubling, at most 1 h), logged (``regflow.worker``), and the
        pass goes on; only a failing store raises. See ``regflow.runtime.sweeping``."""
        return self._sweeper.sweep(
            self.store, self.clock,
            lambda flow_id: self._catch_up(flow_id, None, None, checked=False,
                                           read_first=False)[1], limit)

    @cached_property
    def _sweeper(self) -> Sweeper:
        """The engine's sweeper, made on first use; it remembers the flows it set aside."""
        return Sweeper()

    def deliver(self, limit: int = 100) -> int:
        """Run the mail relay once over queued mail; how many were sent."""
        return self.relay.deliver_due(limit)

    @contextmanager
    def deferred_mail(self) -> Iterator[list[str]]:
        """Inside the block, mail written by ``start``/``send`` is not delivered by the call but
        collected in the list yielded, for the caller to deliver later (``relay.deliver``): a web
        request delivers after its response went out, so that no answer takes longer because a
        mail was sent (which would tell registered addresses from others)."""
        with call_frame.deferred_mail() as pending:
            yield pending

    def purge(self) -> dict[str, int]:
        """Delete what the retention settings no longer keep; how many rows, by table."""
        return self.store.purge(self.retention.cutoffs(self.clock.now(), self.services.limits))

    def admin_logins(self, session: str) -> list[dict[str, Any]]:
        """The logins of the admin's customer, or ``regflow.Forbidden``; see
        ``sessions.customer_logins``."""
        now = self.clock.now()
        with self._transaction(write=False) as tx:
            admin = sessions.require(tx, session, now, admin=True)
            return sessions.customer_logins(tx, admin.customer_id, now, self.services.secret,
                                             window=self._lockout_window())

    def _lockout_window(self) -> int:
        """The sign-in flow's ``lockout_window`` in seconds (an hour without that flow)."""
        try:
            definition = self.flows.latest("sign_in")
        except FlowNotFound:
            return 3600
        if "lockout_window" not in definition.settings:
            return 3600
        return definition.seconds("@lockout_window")

    def end_session(self, session: str) -> bool:
        """Sign out: end the session of a token; whether there was one."""
        now = self.clock.now()
        with self._transaction() as tx:
            found = sessions.resolve(tx, session, now)
            if found is not None:
                tx.sessions.end(found[0].id)
            return found is not None

    # ---- steps -------------------------------------------------------------------------------

    def _step(self, compiled: CompiledFlow, ctx: FlowContext, payload: dict[str, Any],
              exhausted: list[TransientError], policy: list[RetryPolicy]) -> None:
        """Apply the event (or, retries spent, only say so), then hand over if asked."""
        record, definition = ctx.flow, compiled.definition
        if exhausted:
            screen = definition.states[record.state].screen
            if screen is not None:
                steps.keep_form(compiled, record, screen, payload)
                steps.keep_passwords(compiled, ctx, screen, payload)
            ctx.say("transient_error")
            steps.journal(ctx, record.state, "transient_error")
        else:
            try:
                steps.apply_event(compiled, ctx, payload)
            except TransientError:
                policy[0] = definition.retry[ctx.retry]
                raise
        record.data["_messages"] = ctx.messages
        record.expires_at = None if record.status != "active" else ctx.now + timedelta(
            seconds=compiled.seconds(definition.expiry))
        record.updated_at = ctx.now
        if ctx.continue_with is not None:
            hand_over.start(self.compiled, self.services, ctx, record)

    # ---- internals ---------------------------------------------------------------------------

    def _catch_up(self, flow_id: str, lang: str | None, token: str | None, *,
                  checked: bool, read_first: bool = True) -> tuple[Snapshot, bool]:
        """The flow as it is now: read in a transaction that writes nothing (on SQLite a plain
        BEGIN, which waits for no writer) unless a timer, its expiry or a migration is due, which
        a write transaction then applies (at once without ``read_first``: the sweep's flows are
        due by index)."""
        def once(write: bool) -> tuple[tuple[Snapshot, bool], list[str]]:
            now = self.clock.now()
            with self._transaction(write=write) as tx:
                record = self._load(tx, flow_id, token, checked=checked, migrating=write,
                                    now=now)
                if not write and (record.version not in self.flows.versions(record.flow) or (
                        record.next_due_at is not None and record.next_due_at <= now)):
                    raise call_frame.WriteNeeded
                compiled = self.compiled(record.flow, record.version)
                expected = record.rev
                changed = write and steps.apply_due(compiled, record, tx, self.services, now)
                if changed:
                    self._save(tx, record, expected)
                ctx = steps.context(compiled, record, tx, self.services, now, "", "timer")
                ctx.flow_token = token if checked else None
                return (answer(self.services, compiled, ctx, record, lang), changed), []

        result, _ = self._retry(RetryPolicy(), lambda: call_frame.reading(once, read_first=read_first))
        return result

    def _retry(self, policy: RetryPolicy | Callable[[], RetryPolicy],
               once: Callable[[], tuple[T, list[str]]],
               on_exhausted: Callable[[TransientError], tuple[T, list[str]]] | None = None,
               ) -> tuple[T, list[str]]:
        return call_frame.retry(self.services.hasher, self.clock, self._rng, policy, once, on_exhausted)

    def _transaction(self, *, write: bool = True) -> AbstractContextManager[Transaction]:
        """``call_frame.transaction`` on the engine's store."""
        return call_frame.transaction(self.store, write=write)

    def _load(self, tx: Transaction, flow_id: str, token: str | None, *,
              checked: bool = True, migrating: bool = True,
              now: datetime | None = None) -> FlowRecord:
        """The flow, if it exists and (``checked``, with ``flow_tokens`` on) ``token`` is its
        token; ``FlowNotFound`` otherwise, the same answer for a wrong token as for no flow.
        A flow on a retired version is migrated at ``now`` (the call's instant)."""
        known_shape = isinstance(flow_id, str) and len(flow_id) <= 64 and flow_id.isascii()
        record = tx.flows.load(flow_id) if known_shape else None
        if record is None or (checked and self.flow_tokens and not holds(record, token)):
            raise FlowNotFound(f"no flow with id {flow_id!r}")
        if migrating and record.version not in self.flows.versions(record.flow):
            migrate(self.flows, tx, record, now if now is not None else self.clock.now())
            self._save(tx, record, record.rev)
        return record

    def _save(self, tx: Transaction, record: FlowRecord, expected: int) -> None:
        if not tx.flows.update(record, expected):
            raise ConcurrentUpdate(f"flow {record.id} changed while this step ran")
