"""regflow: account registration and administration flows as declarative state machines."""

import logging
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regflow.definitions.library import FlowLibrary
    from regflow.definitions.model import FlowDefinition
    from regflow.definitions.registry import Registry
    from regflow.engine import Engine
    from regflow.ground.clock import ManualClock, SystemClock
    from regflow.ground.exceptions import (
        ConcurrentUpdate,
        ConstraintViolation,
        DefinitionError,
        EventNotAllowed,
        FlowGone,
        FlowNotFound,
        Forbidden,
        IdempotencyConflict,
        IdempotencyKeyInvalid,
        Invalid,
        InvalidContext,
        NotSignedIn,
        RateLimited,
        RegflowError,
        StoreError,
        TransientError,
        VersionUnavailable,
    )
    from regflow.ground.screens import Action, Field, Message, Screen, Snapshot, Timer
    from regflow.runtime.limits import Limits, Rate
    from regflow.runtime.retention import Retention

try:
    __version__: str = version("regflow")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

# The public names load on first use (PEP 562), so that ``import regflow`` — and with it
# ``regflow --version`` and the pytest plugin — costs nothing until the engine is needed.
_LAZY: dict[str, str] = {
    "ManualClock": "regflow.ground.clock",
    "SystemClock": "regflow.ground.clock",
    "FlowDefinition": "regflow.definitions.model",
    "Engine": "regflow.engine",
    "ConcurrentUpdate": "regflow.ground.exceptions",
    "ConstraintViolation": "regflow.ground.exceptions",
    "DefinitionError": "regflow.ground.exceptions",
    "EventNotAllowed": "regflow.ground.exceptions",
    "FlowGone": "regflow.ground.exceptions",
    "FlowNotFound": "regflow.ground.exceptions",
    "Forbidden": "regflow.ground.exceptions",
    "IdempotencyConflict": "regflow.ground.exceptions",
    "IdempotencyKeyInvalid": "regflow.ground.exceptions",
    "InvalidContext": "regflow.ground.exceptions",
    "NotSignedIn": "regflow.ground.exceptions",
    "RateLimited": "regflow.ground.exceptions",
    "RegflowError": "regflow.ground.exceptions",
    "StoreError": "regflow.ground.exceptions",
    "TransientError": "regflow.ground.exceptions",
    "VersionUnavailable": "regflow.ground.exceptions",
    "FlowLibrary": "regflow.definitions.library",
    "Limits": "regflow.runtime.limits",
    "Rate": "regflow.runtime.limits",
    "Registry": "regflow.definitions.registry",
    "Retention": "regflow.runtime.retention",
    "Action": "regflow.ground.screens",
    "Field": "regflow.ground.screens",
    "Message": "regflow.ground.screens",
    "Screen": "regflow.ground.screens",
    "Snapshot": "regflow.ground.screens",
    "Timer": "regflow.ground.screens",
    "Invalid": "regflow.ground.exceptions",
}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use; else a submodule (``regflow.engine``)."""
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return import_module(f"regflow.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"regflow.{name}":
            raise
        raise AttributeError(f"module 'regflow' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


# A library says nothing unless its embedding configures logging (the audit records included).
logging.getLogger("regflow").addHandler(logging.NullHandler())

__all__ = [
    "Action",
    "ConcurrentUpdate",
    "ConstraintViolation",
    "DefinitionError",
    "Engine",
    "EventNotAllowed",
    "Field",
    "FlowDefinition",
    "FlowGone",
    "FlowLibrary",
    "FlowNotFound",
    "Forbidden",
    "IdempotencyConflict",
    "IdempotencyKeyInvalid",
    "Invalid",
    "InvalidContext",
    "Limits",
    "ManualClock",
    "Message",
    "NotSignedIn",
    "Rate",
    "RateLimited",
    "RegflowError",
    "Registry",
    "Retention",
    "Screen",
    "Snapshot",
    "StoreError",
    "SystemClock",
    "Timer",
    "TransientError",
    "VersionUnavailable",
    "__version__",
]
