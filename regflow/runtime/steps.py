"""Applying one event, one due timer or an expiry to a flow record, inside a transaction.

The engine calls these with the record loaded and a transaction open; nothing here commits,
delivers mail, sleeps or reads a clock: time is the ``now`` it is given (a timer applies at its
own deadline, so a provisioning that ends at 10:00 is journaled at 10:00).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from regflow.definitions.model import ScreenDef, TransitionDef
from regflow.ground.exceptions import Forbidden, Invalid
from regflow.ground.ports import Transaction
from regflow.ground.records import FlowRecord, JournalEntry
from regflow.runtime import audit, kept_secrets, sessions
from regflow.runtime.compiled import CompiledFlow
from regflow.runtime.context import FlowContext, Services, new_id, token_digest

MAX_TIMER_STEPS = 64  # bound on timers fired in one catch-up; a loop of 0 s timers stops here


def context(compiled: CompiledFlow, flow: FlowRecord, tx: Transaction, services: Services,
            now: datetime, event: str, actor: str) -> FlowContext:
    """A fresh step context."""
    return FlowContext(flow=flow, definition=compiled.definition, tx=tx, services=services,
                       now=now, event=event, actor=actor)


def enter(compiled: CompiledFlow, ctx: FlowContext, target: str) -> None:
    """Enter ``target``: (re)start its timers, run its entry actions, end the flow if final."""
    flow, definition = ctx.flow, compiled.definition
    state = definition.states[target]
    flow.state = target
    flow.data.pop("_form", None)
    flow.data.pop(kept_secrets.KEY, None)
    flow.timers = sorted(
        ((t.event, ctx.now + timedelta(seconds=compiled.seconds(t.after))) for t in state.after),
        key=lambda pair: pair[1],
    )
    compiled.run(state.enter, ctx)
    if state.final:
        flow.status = state.status or "completed"
        flow.timers = []
        flow.expires_at = None


def take(compiled: CompiledFlow, ctx: FlowContext, branch: TransitionDef) -> None:
    """Run a chosen branch: its actions, its message, then the target's entry; journal it."""
    source = ctx.flow.state
    ctx.retry = branch.retry
    compiled.run(branch.actions, ctx)
    if branch.message:
        ctx.say(branch.message, level=branch.level, **ctx.params)
    if branch.target is not None:
        enter(compiled, ctx, branch.target)
    journal(ctx, source, outcome(ctx))


def outcome(ctx: FlowContext) -> str:
    """What the journal records: the first error's id, or ``ok``."""
    errors = [m["id"] for m in ctx.messages if m["level"] == "error"]
    return errors[0] if errors else "ok"


def journal(ctx: FlowContext, source: str, result: str) -> None:
    """Append the step to the flow's journal (and to the audit log, once committed)."""
    entry = JournalEntry(
        flow_id=ctx.flow.id, from_state=source, to_state=ctx.flow.state, event=ctx.event,
        actor=ctx.actor, at=ctx.now, outcome=result,
    )
    ctx.tx.flows.journal(entry)
    audit.record(ctx.definition.name, ctx.definition.security_log, entry)


def apply_event(compiled: CompiledFlow, ctx: FlowContext, data: dict[str, Any]) -> None:
    """A person's event: validate the screen's fields if the action asks, then take a branch."""
    flow = ctx.flow
    state = compiled.definition.states[flow.state]
    screen = state.screen or ScreenDef()
    validates = next((a.validates for a in screen.actions if a.event == ctx.event), False)
    ctx.raw = {name: data[name] for name in screen.fields if name in data}  # nothing else gets in
    if validates:
        keep_form(compiled, flow, screen, data)
        ctx.input = validate(compiled, ctx, screen, data)
        if ctx.messages:
            journal(ctx, flow.state, "invalid")
            return
    else:
        ctx.input = dict(data)
    branch = compiled.choose(flow.state, ctx.event, ctx)
    if branch is None:
        ctx.say("event_refused")
        journal(ctx, flow.state, "event_refused")
        return
    take(compiled, ctx, branch)


def keep_form(compiled: CompiledFlow, flow: FlowRecord, screen: ScreenDef,
              data: dict[str, Any]) -> None:
    """Remember what was typed (secrets excepted) so the screen can show it again."""
    fields = compiled.definition.fields
    flow.data["_form"] = {
        name: data[name] for name in screen.fields
        if name in data and not fields[name].is_secret
        and (isinstance(data[name], bool)
             or (isinstance(data[name], str) and len(data[name]) <= 4096 and storable(data[name])))
    }


def keep_passwords(compiled: CompiledFlow, ctx: FlowContext, screen: ScreenDef,
                   data: dict[str, Any]) -> None:
    """The step's retries are spent: if its data still validates (silently), keep its passwords
    as hashes for a press of 次へ again (``regflow.runtime.kept_secrets``)."""
    if not next((a.validates for a in screen.actions if a.event == ctx.event), False):
        return
    said, ctx.messages = ctx.messages, []
    ctx.raw = {name: data[name] for name in screen.fields if name in data}
    try:
        clean = validate(compiled, ctx, screen, data)
        failed = bool(ctx.messages)
    finally:
        ctx.messages = said
    if not failed:
        kept_secrets.keep(compiled, ctx, screen, data, clean)


def prefill(compiled: CompiledFlow, flow: FlowRecord, values: dict[str, Any]) -> None:
    """Show ``values`` filled in on the flow's current screen (secret fields never)."""
    screen = compiled.definition.states[flow.state].screen
    if screen is not None:
        keep_form(compiled, flow, screen, values)


def validate(compiled: CompiledFlow, ctx: FlowContext, screen: ScreenDef,
             data: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise the screen's fields in order; errors become messages next to them."""
    clean: dict[str, Any] = {}
    fields = compiled.definition.fields
    validators = compiled.registry.validators
    ctx.kept = kept_secrets.usable(compiled, ctx, screen, data)
    for name in screen.fields:
        field = fields[name]
        raw = data.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if field.required and name not in ctx.kept:
                ctx.say("field_required", field=name)
            continue
        if field.type == "boolean":
            if not isinstance(raw, bool):
                ctx.say("field_type", field=name, expected="boolean")
                continue
        elif not isinstance(raw, str) or len(raw) > 4096 or not storable(raw):
            ctx.say("field_type", field=name, expected="text")
            continue
        value: Any = raw
        ctx.input = clean  # validators may read fields checked before them
        try:
            for check in field.validate:
                value = validators[check](ctx, value)
        except Invalid as exc:
            ctx.say(exc.message_id, field=name, **exc.params)
            continue
        clean[name] = value
    return clean


def storable(text: str) -> bool:
    """Whether a string can be hashed and stored: UTF-8 encodable (no lone surrogates), no NUL."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def apply_due(compiled: CompiledFlow, flow: FlowRecord, tx: Transaction, services: Services,
              now: datetime) -> bool:
    """Fire every timer due by ``now`` and the inactivity expiry, in time order; True if any."""
    changed = False
    for _ in range(MAX_TIMER_STEPS):
        if flow.status != "active":
            break
        timer = flow.timers[0] if flow.timers and flow.timers[0][1] <= now else None
        expiry = flow.expires_at if flow.expires_at is not None and flow.expires_at <= now else None
        if timer is not None and (expiry is None or timer[1] <= expiry):
            event, at = timer
            flow.timers = flow.timers[1:]
            ctx = context(compiled, flow, tx, services, at, event, "timer")
            ctx.messages = list(flow.data.get("_messages", []))
            branch = compiled.choose(flow.state, event, ctx)
            if branch is not None:
                take(compiled, ctx, branch)
            flow.data["_messages"] = ctx.messages
            flow.updated_at = at
        elif expiry is not None:
            expire(compiled, flow, tx, services, expiry)
        else:
            break
        changed = True
    return changed


def expire(compiled: CompiledFlow, flow: FlowRecord, tx: Transaction, services: Services,
           at: datetime) -> None:
    """End an abandoned flow at its expiry instant."""
    ctx = context(compiled, flow, tx, services, at, "expire", "timer")
    source = flow.state
    enter(compiled, ctx, "expired")
    flow.data["_messages"] = [{"id": "flow_expired", "level": "error", "field": None, "params": {}}]
    flow.updated_at = at
    journal(ctx, source, "expired")


def withheld(compiled: CompiledFlow, ctx: FlowContext) -> frozenset[str]:
    """Events of the current screen whose ``when`` guard does not hold now: not offered, refused."""
    screen = compiled.definition.states[ctx.flow.state].screen
    if screen is None:
        return frozenset()
    guards = compiled.registry.guards
    return frozenset(a.event for a in screen.actions
                     if a.when is not None and not guards[a.when](ctx))


def create(services: Services, tx: Transaction, compiled: CompiledFlow, values: dict[str, str],
            now: datetime, lang: str | None, actor: str, session: str | None, *,
            token: str, client: str, flow_id: str | None = None,
            **private: Any) -> tuple[FlowRecord, FlowContext]:
    """A new flow record in ``tx``: its initial state entered, its journal begun; for flows
    with ``auth``, the session's login as actor (and a ``target`` of its own customer only)."""
    definition = compiled.definition
    record = FlowRecord(
        id=flow_id or new_id(), flow=definition.name, version=definition.version,
        state=definition.initial,
        status="active", data={**values, "_lang": lang or "ja",
                               **{f"_{k}": v for k, v in private.items()}},
        timers=[], expires_at=now + timedelta(seconds=compiled.seconds(definition.expiry)),
        created_at=now, updated_at=now, token_digest=token_digest(token),
    )
    ctx = context(compiled, record, tx, services, now, "start", actor)
    ctx.flow_token, ctx.client = token, client
    if definition.auth != "none":
        login = sessions.require(tx, session, now, admin=definition.auth == "admin")
        if "target" in values:
            target = tx.logins.get(values["target"])
            if target is None or target.customer_id != login.customer_id:
                raise Forbidden("the target login is not one of your customer's")
        record.data["_actor"] = ctx.actor = login.id
        record.data["_customer"] = login.customer_id  # reports by customer (regflow.reports.funnel)
        ctx.actor_login = login
    enter(compiled, ctx, definition.initial)
    record.data["_messages"] = ctx.messages
    journal(ctx, "", outcome(ctx))
    tx.flows.insert(record)
    return record, ctx
