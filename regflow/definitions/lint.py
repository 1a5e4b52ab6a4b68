"""Lint a loaded flow definition: what loads but cannot work as written.

Each fault has the path of what is wrong, in the load errors' style
(``registration.states.details.on.submit[2]``), a stable ``code`` and a message:

==========================  ================================================================
code                        meaning
==========================  ================================================================
``unreachable_state``       no path of branches and timers leads there from ``initial``
``dead_end``                a state that is not final takes no event and has no timer
``timer_on_final``          a final state has a timer (a finished flow never fires it)
``event_on_final``          a final state has branches (a finished flow takes no event)
``action_without_branch``   a screen offers an event the state has no branch for
``action_is_timer_event``   a screen offers an event only the state's timers may send
``timer_without_branch``    a timer sends an event the state has no branch for
``timer_not_armed``         branches for a timer event that no timer of this state sends
``event_never_sent``        branches for an event that is neither a screen action nor a timer
``unknown_field``           a screen names a field the definition does not declare
``no_alternative``          every branch of an event is guarded: some input takes none
``duplicate_branch``        a branch has the same guards as an earlier one: never taken
``unreachable_branch``      a branch after an unguarded one: never taken
==========================  ================================================================

The standard finals ``cancelled``, ``expired`` and ``failed`` that no branch names are not
unreachable: every flow has them, and the engine's inactivity expiry reaches ``expired``.
"""

from __future__ import annotations

import itertools

import attrs

from regflow.definitions.model import STANDARD_FINALS, FlowDefinition, StateDef, TransitionDef

__all__ = ["Fault", "lint"]

_MAX_GUARDS = 12  # an event with more distinct guards is not searched for uncovered inputs


@attrs.frozen
class Fault:
    """One lint finding: where, what kind, and what is wrong."""

    path: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def lint(defn: FlowDefinition) -> list[Fault]:
    """Every lint fault of a loaded definition, state by state in definition order."""
    reachable = _reachable(defn)
    timer_events = {t.event for s in defn.states.values() for t in s.after}
    faults: list[Fault] = []
    for name, state in defn.states.items():
        here = f"{defn.name}.states.{name}"
        if name not in reachable and not _exempt(defn, name):
            faults.append(Fault(here, "unreachable_state",
                                f"state {name!r} cannot be reached from {defn.initial!r}"))
        if not state.final and not state.on and not state.after:
            faults.append(Fault(here, "dead_end",
                                f"state {name!r} is not final but takes no event and has no timer"))
        faults += _final_faults(here, state)
        faults += _screen_faults(defn, here, state)
        faults += _event_faults(here, state, timer_events)
        for event, branches in state.on.items():
            faults += _branch_faults(f"{here}.on.{event}", event, branches)
    return faults


def _branch_path(at: str, branches: tuple[TransitionDef, ...], index: int) -> str:
    return at + (f"[{index}]" if len(branches) > 1 else "")


def _takeable(branches: tuple[TransitionDef, ...]) -> list[TransitionDef]:
    """The branches that some input can reach: none after an unguarded one, no repeated guards."""
    out: list[TransitionDef] = []
    for branch in branches:
        if any(not b.guarded for b in out):
            break
        if all(_conditions(b) != _conditions(branch) for b in out):
            out.append(branch)
    return out


def _conditions(branch: TransitionDef) -> tuple[frozenset[str], frozenset[str]]:
    return frozenset(branch.guard), frozenset(branch.unless)


def _reachable(defn: FlowDefinition) -> set[str]:
    """States reachable from ``initial`` by the branches (user events and timers) that can be taken."""
    seen = {defn.initial} if defn.initial in defn.states else set()
    todo = list(seen)
    while todo:
        state = defn.states[todo.pop()]
        for branches in state.on.values():
            for branch in _takeable(branches):
                target = branch.target
                if target is not None and target in defn.states and target not in seen:
                    seen.add(target)
                    todo.append(target)
    return seen


def _exempt(defn: FlowDefinition, name: str) -> bool:
    """A standard final state that no branch names: present in every flow, reached by expiry."""
    if name not in STANDARD_FINALS or not defn.states[name].final:
        return False
    return not any(b.target == name for s in defn.states.values()
                   for branches in s.on.values() for b in branches)


def _final_faults(here: str, state: StateDef) -> list[Fault]:
    if not state.final:
        return []
    faults = [Fault(f"{here}.after[{i}]", "timer_on_final",
                    f"a final state never fires its timer ({timer.event!r})")
              for i, timer in enumerate(state.after)]
    faults += [Fault(f"{here}.on.{event}", "event_on_final",
                     f"a final state takes no event, so {event!r} is never taken")
               for event in state.on]
    return faults


def _screen_faults(defn: FlowDefinition, here: str, state: StateDef) -> list[Fault]:
    if state.screen is None:
        return []
    faults = [Fault(f"{here}.screen.fields[{i}]", "unknown_field", f"unknown field {field!r}")
              for i, field in enumerate(state.screen.fields) if field not in defn.fields]
    for i, action in enumerate(state.screen.actions):
        at = f"{here}.screen.actions[{i}]"
        if action.event not in state.on:
            faults.append(Fault(at, "action_without_branch",
                                f"the screen offers {action.event!r} but the state has no branch for it"))
        elif action.event in state.timer_events:
            faults.append(Fault(at, "action_is_timer_event",
                                f"{action.event!r} is sent by a timer of this state; the engine "
                                "refuses it from the screen"))
    return faults


def _event_faults(here: str, state: StateDef, timer_events: set[str]) -> list[Fault]:
    faults = [Fault(f"{here}.after[{i}]", "timer_without_branch",
                    f"the timer sends {timer.event!r} but the state has no branch for it")
              for i, timer in enumerate(state.after) if timer.event not in state.on]
    if state.final:
        return faults
    offered = {a.event for a in state.screen.actions} if state.screen is not None else set()
    for event in state.on:
        if event in offered or event in state.timer_events:
            continue
        if event in timer_events:
            faults.append(Fault(f"{here}.on.{event}", "timer_not_armed",
                                f"{event!r} is a timer event, but no timer of this state sends it"))
        else:
            faults.append(Fault(f"{here}.on.{event}", "event_never_sent",
                                f"{event!r} is neither an action of the state's screen nor sent by "
                                "one of its timers"))
    return faults


def _branch_faults(at: str, event: str, branches: tuple[TransitionDef, ...]) -> list[Fault]:
    faults: list[Fault] = []
    for i, branch in enumerate(branches):
        earlier = branches[:i]
        unguarded = next((j for j, b in enumerate(earlier) if not b.guarded), None)
        same = next((j for j, b in enumerate(earlier) if _conditions(b) == _conditions(branch)), None)
        if unguarded is not None:
            faults.append(Fault(_branch_path(at, branches, i), "unreachable_branch",
                                f"never taken: branch [{unguarded}] of {event!r} before it has no guard"))
        elif same is not None:
            faults.append(Fault(_branch_path(at, branches, i), "duplicate_branch",
                                f"never taken: same guards as branch [{same}] of {event!r}"))
    uncovered = _uncovered(branches)
    if uncovered is not None:
        faults.append(Fault(at, "no_alternative",
                            f"every branch of {event!r} is guarded and none is taken {uncovered}; "
                            "add an unguarded branch last"))
    return faults


def _uncovered(branches: tuple[TransitionDef, ...]) -> str | None:
    """When no branch is taken (``when a, !b``: an assignment of the guards, taken as independent
    of each other), or None when every assignment takes one."""
    if not branches or any(not b.guarded for b in branches):
        return None
    names = sorted({g for b in branches for g in (*b.guard, *b.unless)})
    if len(names) > _MAX_GUARDS:
        return f"for some of the {len(names)} guards' outcomes (too many to enumerate)"
    for values in itertools.product((False, True), repeat=len(names)):
        holds = dict(zip(names, values, strict=True))
        if not any(all(holds[g] for g in b.guard) and not any(holds[u] for u in b.unless)
                   for b in branches):
            return "when " + ", ".join(name if holds[name] else f"!{name}" for name in names)
    return None
