"""A definition compiled once into a shared ``transitions`` machine, driven with a tiny model.

One ``Machine(model=None, auto_transitions=False)`` per definition version; each step makes a
``_Cursor`` holding only the state name and triggers the event on it. Guards are evaluated by
transitions in declaration order (first branch whose conditions hold wins); the branch taken is
recorded so the engine can apply the definition's own semantics (actions, messages, timers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transitions import EventData, Machine

from regflow.definitions.model import FlowDefinition, TransitionDef
from regflow.definitions.registry import Registry
from regflow.ground.catalog import Catalog
from regflow.runtime.context import FlowContext


class _Cursor:
    """The per-step model: transitions reads and writes ``state`` and nothing else."""

    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


class CompiledFlow:
    """A definition with its machine and resolved callables, built once and shared."""

    def __init__(self, definition: FlowDefinition, registry: Registry) -> None:
        self.definition = definition
        self.registry = registry
        self.actions = {name: registry.actions[name] for name in _action_names(definition)}
        rows: list[dict[str, Any]] = []
        for sname, state in definition.states.items():
            for event, branches in state.on.items():
                for branch in branches:
                    rows.append({
                        "trigger": event, "source": sname, "dest": branch.target,
                        "conditions": [self._guard(g) for g in branch.guard],
                        "unless": [self._guard(g) for g in branch.unless],
                        "before": [_recorder(branch)],
                    })
        self.machine = Machine(
            model=None, states=list(definition.states), transitions=rows,
            initial=definition.initial, auto_transitions=False, send_event=True,
        )
        self._catalogs: dict[str, Catalog] = {}
        self.screen_texts: dict[tuple[str, str], Any] = {}  # (state, lang): regflow.runtime.presenter's
        self._seconds: dict[str, int] = {}

    def catalog(self, lang: str) -> Catalog:
        """The texts of ``lang`` with the definition's own, made once per language asked for
        (a catalog copies the packaged texts: too much to do on every answer)."""
        found = self._catalogs.get(lang)
        if found is None:
            found = Catalog(lang, self.definition.texts)
            if len(self._catalogs) < 64:  # the tags a client sends are not ours to keep them all
                self._catalogs[lang] = found
        return found

    def seconds(self, duration: str) -> int:
        """``definition.seconds(duration)``, parsed once per duration (a changed setting makes
        a new definition, and so a new compiled flow)."""
        found = self._seconds.get(duration)
        if found is None:
            found = self._seconds[duration] = self.definition.seconds(duration)
        return found

    def _guard(self, name: str) -> Callable[[EventData], bool]:
        guard = self.registry.guards[name]

        def check(event_data: EventData) -> bool:
            ctx: FlowContext = event_data.kwargs["ctx"]
            if name not in ctx.guard_results:  # a guard is asked once per step
                ctx.guard_results[name] = bool(guard(ctx))
            return ctx.guard_results[name]

        return check

    def choose(self, state: str, event: str, ctx: FlowContext) -> TransitionDef | None:
        """The branch of ``event`` whose guards hold in ``state``, or None when none does."""
        cursor = _Cursor(state)
        taken: list[TransitionDef] = []
        self.machine.events[event].trigger(cursor, ctx=ctx, taken=taken)
        return taken[0] if taken else None

    def run(self, names: tuple[str, ...], ctx: FlowContext) -> None:
        """Run named actions in order."""
        for name in names:
            self.actions[name](ctx)


def _recorder(branch: TransitionDef) -> Callable[[EventData], None]:
    def record(event_data: EventData) -> None:
        event_data.kwargs["taken"].append(branch)

    return record


def _action_names(definition: FlowDefinition) -> set[str]:
    names: set[str] = set()
    for state in definition.states.values():
        names.update(state.enter)
        for branches in state.on.values():
            for branch in branches:
                names.update(branch.actions)
    return names
