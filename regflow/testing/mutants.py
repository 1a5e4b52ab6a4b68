"""The mutants of a flow (``regflow mutate``): one small change each, to its definition or to
its registry, with a stable, readable id (``guard-dropped:details.submit[1]:seat_free``,
``retarget:enter_code.back:enter_email->details``, ``setting:code_ttl:+1s``,
``registry:guard-true:code_matches``). ``regflow.testing.mutation`` judges them."""

from __future__ import annotations

import contextlib
import inspect
import pickle
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs
import cattrs

from regflow.definitions.model import FlowDefinition, parse_duration
from regflow.definitions.registry import Registry
from regflow.testing.engines import FlowSource
from regflow.testing.model import OFFSETS, expiry_label, timer_id, transition_id
from regflow.testing.scenario import Scenario

DEFINITION_KINDS = ("guard-dropped", "guard-negated", "branches-swapped", "retarget", "action-dropped",
                    "enter-dropped", "message-dropped", "setting", "timer", "expiry")
REGISTRY_KINDS = ("registry:guard-true", "registry:guard-false", "registry:action-noop")
KINDS = DEFINITION_KINDS + REGISTRY_KINDS
STATUSES = ("killed", "survived", "equivalent", "invalid")
STAY = "stay"  # a branch without a target, in retarget ids


@attrs.frozen
class Mutant:
    """One change of a flow. ``mapping`` is the mutated definition (definition mutants);
    ``registry`` is ``(kind, name)`` for registry mutants (``guard-true``, ``guard-false``,
    ``action-noop``). ``near`` names what the change lives in — coverage items (``state.event[i]``,
    ``…?guard=true``, ``…after[0]@0s``), ``state.event`` pairs and states: approved paths that
    cover or go through them are tried first."""

    id: str
    kind: str
    change: str
    mapping: dict[str, Any] | None = attrs.field(default=None, repr=False, eq=False)
    registry: tuple[str, str] | None = None
    near: tuple[str, ...] = ()


# ---- making mutants ---------------------------------------------------------------------------

def definition_mapping(defn: FlowDefinition) -> dict[str, Any]:
    """The definition as plain data (what the mutants change and the loader reads back)."""
    mapping: dict[str, Any] = cattrs.Converter().unstructure(defn)
    return mapping


def used_guards(defn: FlowDefinition) -> list[str]:
    """The guards a definition asks (branch conditions and screen actions' ``when``), in order."""
    names: list[str] = []
    for state in defn.states.values():
        for branches in state.on.values():
            for branch in branches:
                names += [g for g in (*branch.guard, *branch.unless) if g not in names]
        for action in state.screen.actions if state.screen else ():
            if action.when is not None and action.when not in names:
                names.append(action.when)
    return names


def used_actions(defn: FlowDefinition) -> list[str]:
    """The actions a definition runs (states' ``enter`` and branches' ``actions``), in order."""
    names: list[str] = []
    for state in defn.states.values():
        names += [a for a in state.enter if a not in names]
        for branches in state.on.values():
            for branch in branches:
                names += [a for a in branch.actions if a not in names]
    return names


def mutants(defn: FlowDefinition, registry: Registry | None = None) -> list[Mutant]:
    """Every mutant of a flow: of its definition, then of its registry (stable order).
    ``registry`` (the flow's guards and actions) only helps order the paths tried: a setting's
    mutants try first the paths where a guard or action whose code reads it runs."""
    return definition_mutants(defn, registry) + registry_mutants(defn)


def places(defn: FlowDefinition) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Where each guard is asked (its coverage items without the outcome, ``tid?guard``) and
    where each action runs (transitions, and states that run it on entry)."""
    asked: dict[str, list[str]] = {}
    runs: dict[str, list[str]] = {}
    for sname, state in defn.states.items():
        for action in state.enter:
            runs.setdefault(action, []).append(sname)
        for event, branches in state.on.items():
            for i, branch in enumerate(branches):
                tid = transition_id(sname, event, i, len(branches))
                for g in (*branch.guard, *branch.unless):
                    asked.setdefault(g, []).append(f"{tid}?{g}")
                for action in branch.actions:
                    runs.setdefault(action, []).append(tid)
        for act in state.screen.actions if state.screen else ():
            if act.when is not None:
                asked.setdefault(act.when, []).append(f"{sname}.{act.event}?{act.when}")
    return asked, runs


def _code_of(fn: Callable[..., Any]) -> str:
    """A function's source with that of the module functions it calls (one level down)."""
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        return ""
    called = set(re.findall(r"\b(_?[A-Za-z]\w*)\(", text))
    names = getattr(fn, "__globals__", {})
    for name in sorted(called):
        helper = names.get(name)
        if inspect.isfunction(helper) and helper is not fn:
            with contextlib.suppress(OSError, TypeError):
                text += inspect.getsource(helper)
    return text


def setting_readers(defn: FlowDefinition, registry: Registry) -> dict[str, set[str]]:
    """For each setting, the guards and actions of the flow whose code names it (a hint)."""
    code = {name: _code_of(fn) for name, fn in
            [*((g, registry.guards[g]) for g in used_guards(defn) if g in registry.guards),
             *((a, registry.actions[a]) for a in used_actions(defn) if a in registry.actions)]}
    return {key: {name for name, text in code.items() if f'"{key}"' in text or f"'{key}'" in text}
            for key in defn.settings}


def registry_mutants(defn: FlowDefinition) -> list[Mutant]:
    """Each guard the flow asks forced true and false; each action it runs made a no-op."""
    asked, runs = places(defn)
    out: list[Mutant] = []
    for guard in used_guards(defn):
        for side, other in (("true", "false"), ("false", "true")):  # near: where it answered otherwise
            out.append(Mutant(f"registry:guard-{side}:{guard}", f"registry:guard-{side}",
                              f"guard {guard} always answers {side}", registry=(f"guard-{side}", guard),
                              near=tuple(f"{item}={other}" for item in asked.get(guard, ()))))
    out += [Mutant(f"registry:action-noop:{action}", "registry:action-noop",
                   f"action {action} does nothing", registry=("action-noop", action),
                   near=tuple(runs.get(action, ())))
            for action in used_actions(defn)]
    return out


def definition_mutants(defn: FlowDefinition, registry: Registry | None = None) -> list[Mutant]:
    """The mutants of a definition, in the order of its states, events and branches, then
    its expiry and settings."""
    base = pickle.dumps(definition_mapping(defn))  # plain data: a pickle copies it fast
    states = list(defn.states)
    out: list[Mutant] = []

    def mutant(kind: str, where: str, change: str, edit: Callable[[dict[str, Any]], None],
               near: Sequence[str]) -> None:
        mapping: dict[str, Any] = pickle.loads(base)  # our own bytes, made just above
        edit(mapping)
        out.append(Mutant(f"{kind}:{where}", kind, change, mapping, near=tuple(near)))

    for sname, state in defn.states.items():
        for a, action in enumerate(state.enter):
            def drop_enter(m: dict[str, Any], s: str = sname, i: int = a) -> None:
                del m["states"][s]["enter"][i]
            mutant("enter-dropped", f"{sname}:{action}", f"{sname}: entry action {action} dropped",
                   drop_enter, [sname])
        for event, branches in state.on.items():
            count = len(branches)
            for i, branch in enumerate(branches):
                tid = transition_id(sname, event, i, count)
                near = [tid, f"{sname}.{event}"]

                def branch_of(m: dict[str, Any], s: str = sname, e: str = event, n: int = i
                              ) -> dict[str, Any]:
                    found: dict[str, Any] = m["states"][s]["on"][e][n]
                    return found

                for side, other in (("guard", "unless"), ("unless", "guard")):
                    for g in getattr(branch, side):
                        def drop(m: dict[str, Any], s: str = side, g: str = g,
                                 b: Callable[[dict[str, Any]], dict[str, Any]] = branch_of) -> None:
                            b(m)[s].remove(g)

                        def negate(m: dict[str, Any], s: str = side, o: str = other, g: str = g,
                                   b: Callable[[dict[str, Any]], dict[str, Any]] = branch_of) -> None:
                            b(m)[s].remove(g)
                            b(m)[o].append(g)
                        outcomes = [f"{tid}?{g}=true", f"{tid}?{g}=false", *near]
                        mutant("guard-dropped", f"{tid}:{g}", f"{tid}: {side} {g} dropped", drop, outcomes)
                        mutant("guard-negated", f"{tid}:{g}", f"{tid}: {side} {g} made {other} {g}",
                               negate, outcomes)
                old = branch.target if branch.target is not None else STAY
                for target in states:
                    if target == branch.target:
                        continue

                    def retarget(m: dict[str, Any], t: str = target,
                                 b: Callable[[dict[str, Any]], dict[str, Any]] = branch_of) -> None:
                        b(m)["target"] = t
                    was = "stays (no target)" if branch.target is None else f"target {branch.target}"
                    mutant("retarget", f"{tid}:{old}->{target}", f"{tid}: {was} → target {target}",
                           retarget, near)
                for a, action in enumerate(branch.actions):
                    def drop_action(m: dict[str, Any], n: int = a,
                                    b: Callable[[dict[str, Any]], dict[str, Any]] = branch_of) -> None:
                        del b(m)["actions"][n]
                    mutant("action-dropped", f"{tid}:{action}", f"{tid}: action {action} dropped",
                           drop_action, near)
                if branch.message is not None:
                    def drop_message(m: dict[str, Any],
                                     b: Callable[[dict[str, Any]], dict[str, Any]] = branch_of) -> None:
                        b(m)["message"] = None
                    mutant("message-dropped", f"{tid}:{branch.message}",
                           f"{tid}: message {branch.message} dropped", drop_message, near)
            for i in range(count - 1):
                def swap(m: dict[str, Any], s: str = sname, e: str = event, n: int = i) -> None:
                    on = m["states"][s]["on"][e]
                    on[n], on[n + 1] = on[n + 1], on[n]
                mutant("branches-swapped", f"{sname}.{event}[{i}]<>[{i + 1}]",
                       f"{sname}.{event}: branches [{i}] and [{i + 1}] swapped", swap,
                       [f"{sname}.{event}[{i}]", f"{sname}.{event}[{i + 1}]", f"{sname}.{event}"])
        for t, timer in enumerate(state.after):
            if timer.after.startswith("@"):
                continue  # its setting's mutants move it
            for delta in (1, -1):
                value = f"{parse_duration(timer.after) + delta}s"

                def move_timer(m: dict[str, Any], s: str = sname, n: int = t, v: str = value) -> None:
                    m["states"][s]["after"][n]["after"] = v
                mutant("timer", f"{sname}.after[{t}]:{delta:+d}s",
                       f"{sname}.after[{t}] ({timer.event}): {timer.after} → {value}", move_timer,
                       [*_timer_items(f"{sname}.after[{t}]"), sname])
    expiring = [_timer_items(expiry_label(s)) for s, st in defn.states.items() if not st.final]
    expiry_near = [item for items in expiring for item in items]
    if not defn.expiry.startswith("@"):
        for delta in (1, -1):
            value = f"{parse_duration(defn.expiry) + delta}s"

            def move_expiry(m: dict[str, Any], v: str = value) -> None:
                m["expiry"] = v
            mutant("expiry", f"{delta:+d}s", f"expiry: {defn.expiry} → {value}", move_expiry, expiry_near)
    guard_places, action_places = places(defn)
    readers = setting_readers(defn, registry) if registry is not None else {}
    for key, default in defn.settings.items():
        near = [item for name in sorted(readers.get(key, ())) for place in guard_places.get(name, [])
                for item in (f"{place}=true", f"{place}=false")]
        near += [item for name in sorted(readers.get(key, ())) for item in action_places.get(name, [])]
        near += [item for s, st in defn.states.items() for t, timer in enumerate(st.after)
                if timer.after == f"@{key}" for item in _timer_items(f"{s}.after[{t}]")]
        if defn.expiry == f"@{key}":
            near += expiry_near
        for suffix, value in setting_moves(defn, key, default):
            def set_value(m: dict[str, Any], k: str = key, v: Any = value) -> None:
                m["settings"][k] = v
            mutant("setting", f"{key}:{suffix}", f"setting {key}: {default!r} → {value!r}", set_value, near)
    return out


def _timer_items(label: str) -> list[str]:
    return [timer_id(label, offset) for offset in OFFSETS]


def setting_moves(defn: FlowDefinition, key: str, default: Any) -> list[tuple[str, Any]]:
    """A setting's mutations as ``(id suffix, value)``: each other choice (a boolean: the
    other value), a number ±1, a duration or an instant ±1 s; none for other text."""
    if key in defn.choices:
        return [(f"={c}", c) for c in defn.choices[key] if c != default]
    if isinstance(default, bool):
        return [(f"={str(not default).lower()}", not default)]
    if isinstance(default, int | float):
        return [("+1", default + 1), ("-1", default - 1)]
    try:
        seconds = parse_duration(default)
    except ValueError:
        pass
    else:
        return [("+1s", f"{seconds + 1}s"), ("-1s", f"{seconds - 1}s")]
    try:
        instant = datetime.fromisoformat(default)
    except ValueError:
        return []
    if instant.tzinfo is None:
        return []
    return [(f"{d:+d}s", (instant + timedelta(seconds=d)).isoformat()) for d in (1, -1)]


def declared_equivalents(scenario: Scenario) -> dict[str, str]:
    """The mutants the scenario declares equivalent (its ``equivalent`` table: id → reason)."""
    return dict(scenario.equivalent)


def select(found: Sequence[Mutant], only: Sequence[str]) -> list[Mutant]:
    """The mutants whose id starts with one of ``only`` (a kind such as ``retarget`` or
    ``registry``, or a longer prefix such as ``setting:code_ttl``); all when ``only`` is empty."""
    if not only:
        return list(found)
    return [m for m in found if any(m.id == p or m.id.startswith(p.rstrip(":") + ":") for p in only)]


# ---- making a mutant runnable --------------------------------------------------------------

def _forced(name: str, answer: bool) -> Callable[[Any], bool]:
    def guard(ctx: Any) -> bool:
        return answer
    guard.__name__ = name
    return guard


def _noop(name: str) -> Callable[[Any], None]:
    def action(ctx: Any) -> None:
        return None
    action.__name__ = name
    return action


def mutant_source(base: FlowSource, mutant: Mutant) -> FlowSource:
    """The FlowSource of a mutant: its definition standing in for the flow's (``replaces``),
    or the flow's registry with the guard or action overridden. ``base`` is the flow's own
    source as a mapping (see ``base_source``)."""
    if mutant.mapping is not None:
        return attrs.evolve(base, mapping=mutant.mapping)
    assert mutant.registry is not None
    kind, name = mutant.registry
    override = Registry()
    if kind == "action-noop":
        override.actions[name] = _noop(name)
    else:
        override.guards[name] = _forced(name, kind == "guard-true")
    return attrs.evolve(base, registry=base.registry | override if base.registry is not None else override)
