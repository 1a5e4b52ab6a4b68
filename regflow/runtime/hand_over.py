"""Hand-overs: a step that ends by starting another flow (sign-in → registration, the
registration's password screen → sign-in, …), in the step's own transaction.

An action asks for one with ``FlowContext.hand_over(flow, context, form=, event=, data=)``; the
engine calls ``start`` after the step. The new flow's token is derived from the caller's, so an
idempotent replay hands the same token back; its first screen shows ``form`` filled in; an
``event`` is applied to it at once with ``data`` (e.g. the credentials typed on the screen that
handed over), which is used and never stored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from regflow.ground.exceptions import ConcurrentUpdate
from regflow.ground.records import FlowRecord
from regflow.runtime import steps
from regflow.runtime.compiled import CompiledFlow
from regflow.runtime.context import FlowContext, Services, derived_token, new_id, new_token
from regflow.runtime.flow_access import checked_context, refusal


def start(compiled: Callable[[str], CompiledFlow], services: Services, ctx: FlowContext,
          record: FlowRecord) -> None:
    """Start the flow ``ctx.continue_with`` asks for; ``ctx.handed_over`` then names it (with
    its token and the token of a session its first event opened) for the answer."""
    ask = ctx.continue_with
    assert ask is not None
    target = compiled(ask.flow)
    new_flow_id = new_id()
    token = derived_token(ctx.flow_token, new_flow_id) if ctx.flow_token else new_token()
    new, new_ctx = steps.create(
        services, ctx.tx, target, checked_context(target, ask.context), ctx.now,
        str(record.data.get("_lang")), ctx.actor, None, came_from=record.id,
        flow_id=new_flow_id, client=ctx.client, token=token)
    if record.status != "active":  # it ended there: later answers of it name the new flow
        record.data["_continue_with"] = {"flow": new.flow, "id": new.id}
    ctx.mails += new_ctx.mails
    ctx.continue_with = None
    if ask.form or ask.event is not None:
        steps.prefill(target, new, ask.form)
        if ask.event is not None:
            first = steps.context(target, new, ctx.tx, services, ctx.now, ask.event, ctx.actor)
            first.flow_token, first.client = token, ctx.client
            failure = refusal(target, first, None)
            if failure is not None:  # a hand-over that asks what the new flow does not take
                raise failure
            steps.apply_event(target, first, ask.data)
            new.data["_messages"] = first.messages
            new.expires_at = None if new.status != "active" else ctx.now + timedelta(
                seconds=target.definition.seconds(target.definition.expiry))
            ctx.mails += first.mails
            ctx.opened_session = first.opened_session
            new_ctx.session_token = first.session_token
        if not ctx.tx.flows.update(new, new.rev):
            raise ConcurrentUpdate(f"flow {new.id} changed while this step ran")
    ctx.handed_over = (target, new, new_ctx.flow_token, new_ctx.session_token)
