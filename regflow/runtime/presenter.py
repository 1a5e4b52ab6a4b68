"""From a stored flow to the neutral screen model, in the language asked for."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from regflow.definitions.model import ScreenDef
from regflow.ground.catalog import Catalog, _Params
from regflow.ground.records import FlowRecord
from regflow.ground.screens import Action, Field, Message, Screen, Snapshot, Timer
from regflow.runtime import kept_secrets, steps
from regflow.runtime.compiled import CompiledFlow
from regflow.runtime.context import FlowContext, Services

AUTOCOMPLETE = {"email": "email", "password": "new-password", "code": "one-time-code", "tel": "tel"}


@attrs.frozen
class _Texts:
    """What a screen shows that depends on its state and language only, looked up once: the
    title and text templates (formatted with the flow's data on each answer), field labels and
    action labels."""

    title: tuple[str, bool]  # (text, whether it is a template to format)
    text: tuple[str, bool] | None
    labels: tuple[str, ...]  # of the screen's fields, in order
    actions: dict[str, str]  # event -> label


def _template(catalog: Catalog, *keys: str) -> tuple[str, bool]:
    """The text of the first key found (a template to format), or the first key as it is."""
    found = catalog.find(*keys)
    return (keys[0], False) if found is None else (found, "{" in found or "}" in found)


def _texts(compiled: CompiledFlow, catalog: Catalog, state: str) -> _Texts:
    key = (state, catalog.lang)
    found: _Texts | None = compiled.screen_texts.get(key)
    if found is not None:
        return found
    definition = compiled.definition
    screen = definition.states[state].screen or ScreenDef()
    prefix = f"screen.{definition.name}.{state}"
    text_key = screen.text or f"{prefix}.text"
    texts = _Texts(
        title=_template(catalog, *((screen.title,) if screen.title else ()), f"{prefix}.title",
                        f"screen.{state}.title"),
        text=(_template(catalog, text_key, f"screen.{state}.text")
              if catalog.find(text_key, f"screen.{state}.text") is not None else None),
        labels=tuple(catalog.text(*((definition.fields[n].label,) if definition.fields[n].label
                                    else ()), f"field.{n}") for n in screen.fields),
        actions={a.event: catalog.text(*((a.label,) if a.label else ()),
                                       f"action.{definition.name}.{state}.{a.event}",
                                       f"action.{a.event}") for a in screen.actions},
    )
    compiled.screen_texts[key] = texts
    return texts


def _formatted(template: tuple[str, bool], params: dict[str, Any]) -> str:
    text, formats = template
    return text.format_map(_Params(params)) if formats else text


def present(compiled: CompiledFlow, flow: FlowRecord, lang: str | None = None,
            session: str | None = None, withheld: frozenset[str] = frozenset(),
            now: datetime | None = None, flow_token: str | None = None) -> Snapshot:
    """The snapshot of ``flow`` as it is ``now``, without the ``withheld`` actions."""
    definition = compiled.definition
    catalog = compiled.catalog(lang or str(flow.data.get("_lang", "ja")))
    screen = definition.states[flow.state].screen or ScreenDef()
    texts = _texts(compiled, catalog, flow.state)
    said = flow.data.get("_messages", [])
    formats = said or texts.title[1] or (texts.text is not None and texts.text[1])
    params = public_data(flow) if formats else {}  # what templates and messages may mention
    title = _formatted(texts.title, params)
    text = None if texts.text is None else _formatted(texts.text, params)
    form = flow.data.get("_form", {})
    kept = kept_secrets.shown(flow, now)
    fields = []
    for name, label in zip(screen.fields, texts.labels, strict=True):
        fdef = definition.fields[name]
        fields.append(Field(
            name=name, type=fdef.type, label=label,
            required=fdef.required and name not in kept,
            value=None if fdef.is_secret else form.get(name),
            constraints=dict(fdef.constraints),
            autocomplete=fdef.autocomplete or AUTOCOMPLETE.get(fdef.type),
            kept=name in kept,
        ))
    offered = [a for a in screen.actions if flow.status == "active" and a.event not in withheld]
    primary = "submit" if len(offered) != 1 else offered[0].event  # else a dialog's only button
    actions = tuple(Action(event=a.event, label=texts.actions[a.event], primary=a.event == primary)
                    for a in offered)
    messages = tuple(
        Message(id=m["id"], level=m["level"],
                text=catalog.text(f"message.{m['id']}", **{**params, **m["params"]}),
                field=m["field"], params=dict(m["params"]))
        for m in said
    )
    return Snapshot(
        id=flow.id, flow=flow.flow, state=flow.state, status=flow.status, version=flow.version,
        expires_at=flow.expires_at, timers=tuple(Timer(e, at) for e, at in flow.timers),
        screen=Screen(id=flow.state, title=title, text=text, fields=tuple(fields),
                      actions=actions, messages=messages),
        session=session, continue_with=flow.data.get("_continue_with"), lang=catalog.lang,
        flow_token=flow_token,
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
    return present(compiled, record, lang, session=ctx.session_token, now=ctx.now,
                   withheld=steps.withheld(compiled, ctx) if record.status == "active"
                   else frozenset(), flow_token=ctx.flow_token or None)
