"""From a stored flow to the neutral screen model, in the language asked for."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from regflow import kept_secrets, steps
from regflow.catalog import Catalog
from regflow.compiled import CompiledFlow
from regflow.context import FlowContext, Services
from regflow.definition import ScreenDef
from regflow.records import FlowRecord
from regflow.screens import Action, Field, Message, Screen, Snapshot, Timer

AUTOCOMPLETE = {"email": "email", "password": "new-password", "code": "one-time-code", "tel": "tel"}


def present(compiled: CompiledFlow, flow: FlowRecord, lang: str | None = None,
            session: str | None = None, withheld: frozenset[str] = frozenset(),
            now: datetime | None = None) -> Snapshot:
    """The snapshot of ``flow`` as it is ``now``, without the ``withheld`` actions."""
    definition = compiled.definition
    catalog = Catalog(lang or str(flow.data.get("_lang", "ja")), definition.texts)
    state = definition.states[flow.state]
    screen = state.screen or ScreenDef()
    params = public_data(flow)
    prefix = f"screen.{definition.name}.{flow.state}"
    title = catalog.text(*((screen.title,) if screen.title else ()), f"{prefix}.title",
                         f"screen.{flow.state}.title", **params)
    text_key = screen.text or f"{prefix}.text"
    text_found = catalog.find(text_key, f"screen.{flow.state}.text")
    text = catalog.text(text_key, f"screen.{flow.state}.text", **params) if text_found else None
    form = flow.data.get("_form", {})
    kept = kept_secrets.shown(flow, now)
    fields = []
    for name in screen.fields:
        fdef = definition.fields[name]
        constraints = dict(fdef.constraints)
        fields.append(Field(
            name=name, type=fdef.type,
            label=catalog.text(*((fdef.label,) if fdef.label else ()), f"field.{name}"),
            required=fdef.required and name not in kept,
            value=None if fdef.is_secret else form.get(name),
            constraints=constraints,
            autocomplete=fdef.autocomplete or AUTOCOMPLETE.get(fdef.type),
            kept=name in kept,
        ))
    offered = [a for a in screen.actions if flow.status == "active" and a.event not in withheld]
    primary = "submit" if len(offered) != 1 else offered[0].event  # else a dialog's only button
    actions = tuple(
        Action(event=a.event,
               label=catalog.text(*((a.label,) if a.label else ()),
                                  f"action.{definition.name}.{flow.state}.{a.event}",
                                  f"action.{a.event}"),
               primary=a.event == primary)
        for a in offered
    )
    messages = tuple(
        Message(id=m["id"], level=m["level"],
                text=catalog.text(f"message.{m['id']}", **{**params, **m["params"]}),
                field=m["field"], params=dict(m["params"]))
        for m in flow.data.get("_messages", [])
    )
    return Snapshot(
        id=flow.id, flow=flow.flow, state=flow.state, status=flow.status, version=flow.version,
        expires_at=flow.expires_at, timers=tuple(Timer(e, at) for e, at in flow.timers),
        screen=Screen(id=flow.state, title=title, text=text, fields=tuple(fields),
                      actions=actions, messages=messages),
        session=session, continue_with=flow.data.get("_continue_with"), lang=catalog.lang,
    )


def public_data(flow: FlowRecord) -> dict[str, Any]:
    """What texts may mention: the flow's data without its private (``_``) keys."""
    return {k: v for k, v in flow.data.items() if not k.startswith("_")}


def answer(services: Services, compiled: CompiledFlow, ctx: FlowContext, record: FlowRecord,
           lang: str | None) -> Snapshot:
    """The answer to a call: the flow's snapshot with the caller's flow token (or, after a
    hand-over, the new flow's snapshot with its token)."""
    if ctx.handed_over is not None:
        target, new, new_token_, session = ctx.handed_over
        new_ctx = steps.context(target, new, ctx.tx, services, ctx.now, "", ctx.actor)
        snapshot = present(target, new, lang, session=session, now=ctx.now,
                           withheld=steps.withheld(target, new_ctx) if new.status == "active"
                           else frozenset())
        return attrs.evolve(snapshot, continue_with={"flow": new.flow, "id": new.id},
                            flow_token=new_token_)
    snapshot = present(compiled, record, lang, session=ctx.session_token, now=ctx.now,
                       withheld=steps.withheld(compiled, ctx) if record.status == "active"
                       else frozenset())
    return attrs.evolve(snapshot, flow_token=ctx.flow_token) if ctx.flow_token else snapshot
