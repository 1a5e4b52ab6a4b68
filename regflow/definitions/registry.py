"""Named behaviour: the guards, actions and field validators that definitions reference by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from regflow.definitions.model import Names

# Each takes the step's context (``regflow.runtime.context.FlowContext``), typed ``Any`` here so that the
# definitions do not import the runtime that runs them.
Guard = Callable[[Any], bool]
Action = Callable[[Any], None]
# A validator gets the raw value and returns the normalised one, or raises regflow.Invalid.
Validator = Callable[[Any, Any], Any]
F = TypeVar("F", bound=Callable[..., Any])


class Registry:
    """A namespace of guards, actions and validators; registries combine with ``|``."""

    def __init__(self) -> None:
        self.guards: dict[str, Guard] = {}
        self.actions: dict[str, Action] = {}
        self.validators: dict[str, Validator] = {}

    def guard(self, fn: F) -> F:
        """Register ``fn`` as a guard under its own name."""
        self.guards[fn.__name__] = fn
        return fn

    def action(self, fn: F) -> F:
        """Register ``fn`` as an action under its own name."""
        self.actions[fn.__name__] = fn
        return fn

    def validator(self, fn: F) -> F:
        """Register ``fn`` as a field validator under its own name."""
        self.validators[fn.__name__] = fn
        return fn

    def names(self) -> Names:
        """What a definition loaded against this registry may reference."""
        return Names(set(self.guards), set(self.actions), set(self.validators))

    def __or__(self, other: Registry) -> Registry:
        merged = Registry()
        for reg in (self, other):
            merged.guards.update(reg.guards)
            merged.actions.update(reg.actions)
            merged.validators.update(reg.validators)
        return merged
