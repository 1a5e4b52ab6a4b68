"""The engine: ``start``, ``send`` and ``get`` flows; timers, retries, idempotency, mail relay.

It knows only the ports (``regflow.ports``); ``regflow.bootstrap`` wires adapters to it.
Every call reads the clock once, at call time, and works in one store transaction; mail written
in that transaction is delivered right after it commits.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from regflow import steps
from regflow.clock import SystemClock
from regflow.compiled import CompiledFlow
from regflow.context import Composer, Services, new_id
from regflow.contracts import StoreContracts
from regflow.definition import RetryPolicy, Setting
from regflow.exceptions import (
    ConcurrentUpdate,
    ConstraintViolation,
    EventNotAllowed,
    FlowGone,
    FlowNotFound,
    IdempotencyConflict,
    InvalidContext,
    RegflowError,
    TransientError,
)
from regflow.library import FlowLibrary
from regflow.mail_relay import MailRelay
from regflow.ports import (
    Clock,
    ContractDirectory,
    Mailer,
    PasswordHasher,
    Provisioner,
    Store,
    Transaction,
)
from regflow.presenter import present
from regflow.provisioning import NoProvisioner
from regflow.records import FlowRecord, IdempotencyRecord, JournalEntry
from regflow.screens import Snapshot

T = TypeVar("T")
CONFLICT_RETRIES = 8


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
        rng: random.Random | None = None,
    ) -> None:
        if flows is None:
            from regflow.machines import builtin_library

            flows = builtin_library()
        if composer is None:
            from regflow.mail import MailComposer

            composer = MailComposer()
        self.store = store
        self.mailer = mailer
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.flows = flows
        for name, overrides in (settings or {}).items():
            flows.configure(name, overrides)
        self.contracts: ContractDirectory = contracts if contracts is not None else StoreContracts(store)
        self.services = Services(
            hasher=hasher, contracts=self.contracts,
            provisioner=provisioner if provisioner is not None else NoProvisioner(),
            composer=composer, product=product,
        )
        self._rng = rng if rng is not None else random.Random()
        self._compiled: dict[tuple[str, int], CompiledFlow] = {}
        self.relay = MailRelay(store, mailer, self.clock)

    @classmethod
    def from_url(cls, db: str = "memory://", mail: str = "memory", **options: Any) -> Engine:
        """An engine on a store URL and a mail spec (see ``regflow.bootstrap``)."""
        from regflow.bootstrap import build_engine

        return build_engine(db, mail, **options)

    # ---- definitions -------------------------------------------------------------------------

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
              actor: str = "user") -> Snapshot:
        """Start a flow on the latest version of its definition."""
        compiled = self.compiled(flow)
        definition = compiled.definition
        context = dict(context or {})
        for key in definition.context:
            value = context.get(key)
            if not isinstance(value, str) or not value.strip() or len(value) > 128:
                raise InvalidContext(f"{flow} needs a context value {key!r}", key=key)
        unknown = sorted(set(context) - set(definition.context))
        if unknown:
            raise InvalidContext(f"{flow} does not take context {unknown}", key=unknown[0])

        def once() -> tuple[Snapshot, list[str]]:
            now = self.clock.now()
            record = FlowRecord(
                id=new_id(), flow=definition.name, version=definition.version,
                state=definition.initial, status="active",
                data={**{k: context[k].strip() for k in definition.context},
                      "_lang": lang or "ja"},
                timers=[], expires_at=now + timedelta(seconds=definition.seconds(definition.expiry)),
                created_at=now, updated_at=now,
            )
            with self.store.transaction() as tx:
                ctx = steps.context(compiled, record, tx, self.services, now, "start", actor)
                ctx.session = session
                steps.enter(compiled, ctx, definition.initial)
                record.data["_messages"] = ctx.messages
                steps.journal(ctx, "", steps.outcome(ctx))
                tx.flows.insert(record)
                return present(compiled, record, lang), ctx.mails

        snapshot, mails = self._retrying(definition.retry["default"], once)
        self.relay.deliver(mails)
        return snapshot

    def send(self, flow_id: str, event: str, data: Mapping[str, Any] | None = None, *,
             idempotency_key: str | None = None, lang: str | None = None,
             actor: str = "user") -> Snapshot:
        """Send an event with its data; timers due by now are applied first."""
        payload = dict(data or {})
        request_hash = _request_hash(event, payload) if idempotency_key else ""
        policy = RetryPolicy()
        transient: list[str] = []

        def once() -> tuple[Snapshot, list[str]]:
            nonlocal policy
            now = self.clock.now()
            failure: RegflowError | None = None
            with self.store.transaction() as tx:
                record = self._load(tx, flow_id)
                if idempotency_key:
                    prior = tx.flows.idempotent(flow_id, idempotency_key)
                    if prior is not None:
                        if prior.request_hash != request_hash:
                            raise IdempotencyConflict(
                                f"idempotency key {idempotency_key!r} was used with another payload")
                        return Snapshot.from_dict(prior.response), []
                compiled = self.compiled(record.flow, record.version)
                policy = compiled.definition.retry["default"]
                expected = record.rev
                mails: list[str] = []
                changed = steps.apply_due(compiled, record, tx, self.services, now)
                state = compiled.definition.states[record.state]
                if record.status != "active":
                    failure = FlowGone(flow_id, record.status)
                elif event not in state.user_events:
                    failure = EventNotAllowed(event, record.state, state.user_events)
                else:
                    ctx = steps.context(compiled, record, tx, self.services, now, event, actor)
                    if transient:
                        self._keep_transient(compiled, record, payload)
                        ctx.say("transient_error")
                        steps.journal(ctx, record.state, "transient_error")
                    else:
                        try:
                            steps.apply_event(compiled, ctx, payload)
                        except TransientError:
                            policy = compiled.definition.retry[ctx.retry]
                            raise
                    record.data["_messages"] = ctx.messages
                    record.expires_at = None if record.status != "active" else now + timedelta(
                        seconds=compiled.definition.seconds(compiled.definition.expiry))
                    record.updated_at = now
                    mails = ctx.mails
                    changed = True
                if changed:
                    self._save(tx, record, expected)
                snapshot = present(compiled, record, lang)
                if failure is None and idempotency_key and not transient:
                    tx.flows.remember(IdempotencyRecord(
                        flow_id=flow_id, key=idempotency_key, request_hash=request_hash,
                        response=snapshot.to_dict(), created_at=now))
            if failure is not None:
                raise failure
            return snapshot, mails

        def last_resort(exc: TransientError) -> tuple[Snapshot, list[str]]:
            transient.append(str(exc))
            return once()

        snapshot, mails = self._retrying(lambda: policy, once, on_exhausted=last_resort)
        self.relay.deliver(mails)
        return snapshot

    def get(self, flow_id: str, *, lang: str | None = None) -> Snapshot:
        """The flow as it is now, after applying what fell due."""
        snapshot, _ = self._catch_up(flow_id, lang)
        return snapshot

    def history(self, flow_id: str) -> list[JournalEntry]:
        """The flow's journal, oldest first."""
        with self.store.transaction() as tx:
            self._load(tx, flow_id)
            return tx.flows.history(flow_id)

    def sweep(self, limit: int = 100) -> int:
        """Apply due timers and expiries of up to ``limit`` flows found by index; how many."""
        count = 0
        for flow_id in self.store.due_flows(self.clock.now(), limit):
            _, changed = self._catch_up(flow_id, None)
            count += changed
        return count

    def deliver(self, limit: int = 100) -> int:
        """Run the mail relay once over queued mail; how many were sent."""
        return self.relay.deliver_due(limit)

    # ---- internals ---------------------------------------------------------------------------

    def _catch_up(self, flow_id: str, lang: str | None) -> tuple[Snapshot, bool]:
        def once() -> tuple[tuple[Snapshot, bool], list[str]]:
            now = self.clock.now()
            with self.store.transaction() as tx:
                record = self._load(tx, flow_id)
                compiled = self.compiled(record.flow, record.version)
                expected = record.rev
                changed = steps.apply_due(compiled, record, tx, self.services, now)
                if changed:
                    self._save(tx, record, expected)
                return (present(compiled, record, lang), changed), []

        result, _ = self._retrying(RetryPolicy(), once)
        return result

    def _load(self, tx: Transaction, flow_id: str) -> FlowRecord:
        record = tx.flows.load(flow_id) if isinstance(flow_id, str) else None
        if record is None:
            raise FlowNotFound(f"no flow with id {flow_id!r}")
        return record

    def _save(self, tx: Transaction, record: FlowRecord, expected: int) -> None:
        if not tx.flows.update(record, expected):
            raise ConcurrentUpdate(f"flow {record.id} changed while this step ran")

    def _keep_transient(self, compiled: CompiledFlow, record: FlowRecord,
                        payload: dict[str, Any]) -> None:
        screen = compiled.definition.states[record.state].screen
        if screen is not None:
            steps.keep_form(compiled, record, screen, payload)

    def _retrying(
        self,
        policy: RetryPolicy | Callable[[], RetryPolicy],
        once: Callable[[], tuple[T, list[str]]],
        on_exhausted: Callable[[TransientError], tuple[T, list[str]]] | None = None,
    ) -> tuple[T, list[str]]:
        """Run ``once``; retry TransientError by the policy, and conflicts at once.

        A conflict is a flow saved by someone else meanwhile, or a uniqueness rule (I1–I4) that
        refused a write: run again, the guards then see the winner's row and choose accordingly.
        """
        attempt = conflicts = 0
        while True:
            try:
                return once()
            except (ConcurrentUpdate, ConstraintViolation):
                conflicts += 1
                if conflicts >= CONFLICT_RETRIES:
                    raise
            except TransientError as exc:
                current = policy() if callable(policy) else policy
                attempt += 1
                if attempt >= current.attempts:
                    if on_exhausted is None:
                        raise
                    return on_exhausted(exc)
                self.clock.sleep(backoff(current, attempt, self._rng))


def backoff(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): exponential, capped, jittered."""
    ceiling = min(policy.max, policy.initial * policy.factor ** (attempt - 1))
    return rng.uniform(0, ceiling) if policy.jitter == "full" else ceiling


def _request_hash(event: str, payload: Mapping[str, Any]) -> str:
    body = json.dumps({"event": event, "data": payload}, sort_keys=True, ensure_ascii=False,
                      default=str)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()

