"""Hand-overs (regflow.runtime.hand_over): what an action's ``ctx.hand_over`` may ask, and replays.

The rules: a hand-over that hands on an event the new flow's first state does not take is
refused whole (nothing of either flow is written); a replay of the step under its idempotency
key answers the same new flow with the same token (derived from the caller's).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flows import PASSWORD, EngineFactory, register, submit_email
from freezegun.api import FrozenDateTimeFactory

import regflow
from regflow.definitions.registry import Registry
from regflow.machines import builtin_library
from regflow.runtime.context import FlowContext


def _jumping_engine() -> regflow.Engine:
    """A flow whose only step hands over to sign-in with an event sign-in's first screen lacks."""
    steps = Registry()

    @steps.action
    def jump_with_ok(ctx: FlowContext) -> None:
        ctx.hand_over("sign_in", {"account": "abcd8-01"}, event="ok", data={})

    library = builtin_library(steps)
    library.add({"name": "jump", "version": 1, "initial": "start", "states": {
        "start": {"screen": {"actions": ["submit"]},
                  "on": {"submit": {"target": "gone", "actions": ["jump_with_ok"]}}},
        "gone": {"final": True}}})
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast", flows=library)
    engine.contracts.add(customer_id="281234", phone="03-1234-5678", licenses=3,
                         accounts=["abcd8-01"])
    return engine


def test_a_hand_over_with_an_event_the_new_flow_does_not_take_is_refused_whole() -> None:
    engine = _jumping_engine()
    snap = engine.start("jump")
    before = sorted(engine.store.iter_flow_ids())
    with pytest.raises(regflow.EventNotAllowed):
        engine.send(snap, "submit")
    assert engine.get(snap).state == "start"  # the step was rolled back …
    assert sorted(engine.store.iter_flow_ids()) == before  # … and no sign-in flow was made


def test_a_replayed_hand_over_answers_the_same_flow_and_token(
        make_engine: EngineFactory, frozen: FrozenDateTimeFactory) -> None:
    """The password screen's サインイン sent twice under one key (a double click): one sign-in
    flow, the same id and token both times."""
    engine = make_engine()
    assert register(engine, "abcd8-01", "taro@example.jp").state == "provisioning"
    frozen.tick(timedelta(minutes=10))
    taken = submit_email(engine, "taro@example.jp", account="abcd8-02")
    first = engine.send(taken, "submit", {"current_password": PASSWORD}, idempotency_key="k1")
    again = engine.send(taken, "submit", {"current_password": PASSWORD}, idempotency_key="k1")
    assert (again.flow, again.id, again.flow_token) == (first.flow, first.id, first.flow_token)
    assert first.state == "link_prompt"
    assert engine.get(first).state == "link_prompt"  # the token opens the new flow
