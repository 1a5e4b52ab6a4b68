"""How a caller names a flow, proves it may act on it, and what a flow may start with: the
flow token checked against its stored digest, references by id or by snapshot, the context."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from regflow.ground.exceptions import EventNotAllowed, FlowGone, Forbidden, InvalidContext
from regflow.ground.records import FlowRecord
from regflow.ground.screens import Snapshot
from regflow.runtime import sessions, steps
from regflow.runtime.compiled import CompiledFlow
from regflow.runtime.context import FlowContext, token_digest

FlowRef = str | Snapshot  # a flow id, or a snapshot (its id and the flow token it carries)


def checked_context(compiled: CompiledFlow, context: Mapping[str, Any] | None) -> dict[str, str]:
    """The context a flow starts with: exactly its declared keys, non-empty strings, trimmed."""
    definition = compiled.definition
    given = dict(context or {})
    for key in definition.context:
        value = given.get(key)
        if (not isinstance(value, str) or not value.strip() or len(value) > 128
                or not steps.storable(value)):
            raise InvalidContext(f"{definition.name} needs a context value {key!r}", key=key)
    unknown = sorted(set(given) - set(definition.context))
    if unknown:
        raise InvalidContext(f"{definition.name} does not take context {unknown}", key=unknown[0])
    return {k: given[k].strip() for k in definition.context}


def reference(flow: FlowRef, token: str | None) -> tuple[str, str | None]:
    """The id and token a caller names a flow by: an id and ``token``, or a snapshot."""
    if isinstance(flow, Snapshot):
        return flow.id, token if token is not None else flow.flow_token
    return flow, token


def holds(record: FlowRecord, token: str | None) -> bool:
    """Whether ``token`` is the flow's token (compared as digests, in constant time)."""
    if not isinstance(token, str) or not token or len(token) > 256:
        return False
    return hmac.compare_digest(token_digest(token), record.token_digest)


def refusal(compiled: CompiledFlow, ctx: FlowContext, session: str | None) -> Exception | None:
    """Why the event cannot be applied at all (gone, not allowed, not yours), or None."""
    record = ctx.flow
    if record.status != "active":
        return FlowGone(record.id, record.status)
    definition = compiled.definition
    if definition.auth != "none":
        try:
            login = sessions.require(ctx.tx, session, ctx.now, admin=definition.auth == "admin")
        except Forbidden as exc:
            return exc
        if login.id != record.data.get("_actor"):
            return Forbidden("this flow was started by another login")
        ctx.actor, ctx.actor_login = login.id, login
    state = definition.states[record.state]
    allowed = [e for e in state.user_events if e not in steps.withheld(compiled, ctx)]
    if ctx.event not in allowed:
        return EventNotAllowed(ctx.event, record.state, allowed)
    return None
