"""regflow: account registration and administration flows as declarative state machines."""

import logging

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
from regflow.validation import Invalid

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
]
