"""regflow: account registration and administration flows as declarative state machines."""

import logging
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regflow.clock import ManualClock, SystemClock
    from regflow.definition import FlowDefinition
    from regflow.engine import Engine
    from regflow.exceptions import (
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
    from regflow.library import FlowLibrary
    from regflow.limits import Limits, Rate
    from regflow.registry import Registry
    from regflow.retention import Retention
    from regflow.screens import Action, Field, Message, Screen, Snapshot, Timer

try:
    __version__: str = version("regflow")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

# The public names load on first use (PEP 562), so that ``import regflow`` — and with it
# ``regflow --version`` and the pytest plugin — costs nothing until the engine is needed.
_LAZY: dict[str, str] = {
    "ManualClock": "regflow.clock",
    "SystemClock": "regflow.clock",
    "FlowDefinition": "regflow.definition",
    "Engine": "regflow.engine",
    "ConcurrentUpdate": "regflow.exceptions",
    "ConstraintViolation": "regflow.exceptions",
    "DefinitionError": "regflow.exceptions",
    "EventNotAllowed": "regflow.exceptions",
    "FlowGone": "regflow.exceptions",
    "FlowNotFound": "regflow.exceptions",
    "Forbidden": "regflow.exceptions",
    "IdempotencyConflict": "regflow.exceptions",
    "IdempotencyKeyInvalid": "regflow.exceptions",
    "InvalidContext": "regflow.exceptions",
    "NotSignedIn": "regflow.exceptions",
    "RateLimited": "regflow.exceptions",
    "RegflowError": "regflow.exceptions",
    "StoreError": "regflow.exceptions",
    "TransientError": "regflow.exceptions",
    "VersionUnavailable": "regflow.exceptions",
    "FlowLibrary": "regflow.library",
    "Limits": "regflow.limits",
    "Rate": "regflow.limits",
    "Registry": "regflow.registry",
    "Retention": "regflow.retention",
    "Action": "regflow.screens",
    "Field": "regflow.screens",
    "Message": "regflow.screens",
    "Screen": "regflow.screens",
    "Snapshot": "regflow.screens",
    "Timer": "regflow.screens",
    "Invalid": "regflow.exceptions",
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
