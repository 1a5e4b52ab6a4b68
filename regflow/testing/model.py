"""Paths and coverage: what ``regflow paths`` prints and what the runner replays.

A definition has three kinds of coverage items, each with a stable id:

- a **transition** — one branch of an event in a state: ``enter_code.submit[2]`` (the index is
  left out when the event has a single branch: ``enter_email.cancel``);
- a **guard outcome** — a guard asked by one branch of an event, true or false:
  ``details.submit[2]?contract_matches=false`` (index as for transitions). It is reached in a
  step where every earlier branch failed and this branch's conditions (its ``guard`` list,
  then its ``unless`` list, stopping at the first that fails) were evaluated up to that guard
  with that answer. An action's ``when`` guard counts when its action is sent (false: the
  event is refused): ``credentials.continue_legacy?before_enforcement=false``;
- a **timer** at one second before, exactly at, and one second after its deadline:
  ``enter_code.after[0]@-1s``, ``…@0s``, ``…@+1s``; the inactivity expiry is
  ``<state>.expiry@…`` in every active state that lets it fire (no timer of that state falls
  due first). Deadlines are the definition's: the instant a timer was armed (its state
  entered) or the last user event was applied, plus the declared duration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from regflow.definitions.model import FlowDefinition, TransitionDef

KINDS = ("transitions", "guard_outcomes", "timers")
OFFSETS = {-1: "-1s", 0: "0s", 1: "+1s"}
EXPIRY = "expiry"


@attrs.frozen
class Item:
    """One thing to cover: its id and its kind (one of ``KINDS``)."""

    id: str
    kind: str


def transition_id(state: str, event: str, index: int, count: int) -> str:
    """``state.event[i]``, or ``state.event`` for an event with a single branch."""
    return f"{state}.{event}" + (f"[{index}]" if count > 1 else "")


def guard_id(state: str, event: str, guard: str, outcome: bool, index: int = 0, count: int = 1) -> str:
    """``state.event[i]?guard=true`` (``state.event?guard=true`` for an event with a single
    branch, and for an action's ``when`` guard)."""
    return f"{transition_id(state, event, index, count)}?{guard}={'true' if outcome else 'false'}"


def expiry_label(state: str) -> str:
    """``state.expiry``: the label of the inactivity expiry tried in ``state``."""
    return f"{state}.{EXPIRY}"


def is_expiry(label: str) -> bool:
    """Whether a timer label names the inactivity expiry (``state.expiry``, or ``expiry``)."""
    return label == EXPIRY or label.endswith(f".{EXPIRY}")


def timer_id(label: str, offset: int) -> str:
    """``state.after[i]@-1s`` / ``@0s`` / ``@+1s`` (label ``state.expiry`` for the inactivity
    expiry)."""
    return f"{label}@{OFFSETS[offset]}"


def parse_timer(item: str) -> tuple[str, int]:
    """``enter_code.after[0]@-1s`` → ``("enter_code.after[0]", -1)``."""
    label, _, offset = item.rpartition("@")
    return label, {text: off for off, text in OFFSETS.items()}[offset]


def conditions(branch: TransitionDef) -> list[str]:
    """The guards one branch asks, in the order it asks them (``guard``, then ``unless``)."""
    names: list[str] = []
    for g in (*branch.guard, *branch.unless):
        if g not in names:
            names.append(g)
    return names


def branch_guards(defn: FlowDefinition, state: str, event: str) -> list[str]:
    """The guards the branches of an event name, in the order they are asked, once each."""
    names: list[str] = []
    for branch in defn.states[state].on.get(event, ()):
        names += [g for g in conditions(branch) if g not in names]
    return names


def walk_branches(defn: FlowDefinition, state: str, event: str,
                  answers: Mapping[str, bool]) -> tuple[list[str], int | None]:
    """Replay the engine's choice of a branch from the guards' answers of one step: the
    per-branch guard outcomes it evaluated (branches in order, each one's conditions in order,
    stopping at the first that fails) and the branch taken (None when the answers stop short:
    the step chose no branch, or asked no guard)."""
    branches = defn.states[state].on.get(event, ()) if state in defn.states else ()
    reached: list[str] = []
    for i, branch in enumerate(branches):
        holds = True
        for g in conditions(branch):
            if g not in answers:
                return reached, None
            answer = answers[g]
            reached.append(guard_id(state, event, g, answer, i, len(branches)))
            if answer != (g in branch.guard):
                holds = False
                break
        if holds:
            return reached, i
    return reached, None


def when_guards(defn: FlowDefinition, state: str) -> dict[str, str]:
    """The ``when`` guard of each action of a state's screen that has one, by event."""
    screen = defn.states[state].screen
    return {a.event: a.when for a in (screen.actions if screen else ()) if a.when is not None}


def guards_at(defn: FlowDefinition, state: str, event: str) -> list[str]:
    """Every guard asked at a state and event (branch guards, then ``when``), once each."""
    names = branch_guards(defn, state, event)
    when = when_guards(defn, state).get(event)
    return names + ([when] if when is not None and when not in names else [])


def guard_items(defn: FlowDefinition, state: str, event: str) -> list[str]:
    """The guard-outcome items of a state and event: each branch's guards, true then false,
    then the ``when`` guard of its action."""
    branches = defn.states[state].on.get(event, ())
    ids = [guard_id(state, event, g, o, i, len(branches))
           for i, branch in enumerate(branches) for g in conditions(branch) for o in (True, False)]
    when = when_guards(defn, state).get(event)
    if when is not None:
        ids += [i for o in (True, False) if (i := guard_id(state, event, when, o)) not in ids]
    return ids


def expiry_states(defn: FlowDefinition) -> list[str]:
    """States where the inactivity expiry can fire: active ones without an earlier timer."""
    expiry = defn.seconds(defn.expiry)
    return [name for name, state in defn.states.items()
            if not state.final and all(defn.seconds(t.after) > expiry for t in state.after)]


def items_of(defn: FlowDefinition) -> list[Item]:
    """Every coverage item of a definition, in a stable order (states as declared)."""
    items: list[Item] = []
    expiring = set(expiry_states(defn))
    for sname, state in defn.states.items():
        for event, branches in state.on.items():
            items += [Item(transition_id(sname, event, i, len(branches)), "transitions")
                      for i in range(len(branches))]
        for event in state.on:
            items += [Item(i, "guard_outcomes") for i in guard_items(defn, sname, event)]
        items += [Item(timer_id(f"{sname}.after[{i}]", off), "timers")
                  for i in range(len(state.after)) for off in OFFSETS]
        if sname in expiring:
            items += [Item(timer_id(expiry_label(sname), off), "timers") for off in OFFSETS]
    return items


@attrs.frozen
class Step:
    """One step of a path: an event with its data, a clock advance, or a change of the world.

    ``expect`` is the flow's state after the step (``refused`` when the state does not take the
    event, ``gone`` when the flow has ended, ``forbidden`` when the session may not act);
    ``fired`` lists the timer events (and ``expire``) applied during an advance; ``timer``
    names the timer item an advance tests. ``meanwhile`` is a change of the world that lands
    while the event is applied, just before its guard is asked (a race, made deterministic).
    """

    event: str | None = None
    data: dict[str, Any] = attrs.field(factory=dict)
    advance: int | str | None = None
    world: dict[str, Any] | None = None
    meanwhile: dict[str, Any] | None = None
    expect: str | None = None
    fired: tuple[str, ...] | None = None
    timer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"event", "data", "expect"}``, ``{"advance", "expect", "fired"}``
        or ``{"world": op, ...}``."""
        if self.world is not None:
            return dict(self.world)
        out: dict[str, Any]
        if self.event is not None:
            out = {"event": self.event, "data": dict(self.data)}
            if self.meanwhile is not None:
                out["meanwhile"] = dict(self.meanwhile)
        else:
            out = {"advance": self.advance}
            if self.timer is not None:
                out["timer"] = self.timer
        if self.expect is not None:
            out["expect"] = self.expect
        if self.fired is not None and self.event is None:
            out["fired"] = list(self.fired)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Step:
        """The inverse of ``to_dict``."""
        if "world" in raw:
            return cls(world=dict(raw))
        fired = raw.get("fired")
        return cls(event=raw.get("event"), data=dict(raw.get("data") or {}),
                   advance=raw.get("advance"), meanwhile=raw.get("meanwhile"),
                   expect=raw.get("expect"), timer=raw.get("timer"),
                   fired=tuple(fired) if fired is not None else None)

    def describe(self) -> str:
        """A short text for messages: ``submit {'code': '$code'}``, ``advance 60 s``."""
        if self.world is not None:
            args = {k: v for k, v in self.world.items() if k != "world"}
            if isinstance(args.get("to"), Mapping):  # a migration to an inline definition
                args["to"] = f"{args['to'].get('name')} v{args['to'].get('version')}"
            return f"world {self.world['world']} {args}"
        if self.event is not None:
            return f"{self.event} {self.data}" if self.data else self.event
        return f"advance {self.advance} s" + (f" ({self.timer})" if self.timer else "")
