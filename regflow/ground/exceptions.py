"""The errors regflow raises, one tree, each with a stable ``message_id``.

    RegflowError
    ├── DefinitionError          a flow definition is broken (carries the path of each fault)
    ├── FlowNotFound             unknown flow id or flow name            (HTTP 404)
    ├── FlowGone                 the flow has ended and takes no events  (HTTP 410)
    ├── VersionUnavailable       the flow's definition version is gone, no migration (HTTP 410)
    ├── EventNotAllowed          the state does not take that event      (HTTP 409, ``allowed``)
    ├── IdempotencyConflict      same Idempotency-Key, other payload     (HTTP 422)
    │   └── IdempotencyKeyInvalid  a key that is empty, too long or not text (HTTP 400)
    ├── Forbidden                no admin session of the same customer   (HTTP 403)
    │   └── NotSignedIn          no live session at all                  (HTTP 401)
    ├── InvalidContext           start() got a context the flow cannot use (HTTP 422)
    ├── RateLimited              a limit across flows was reached        (HTTP 429, ``retry_after``)
    ├── ConcurrentUpdate         the flow changed under us; retried, then raised
    ├── TransientError           an adapter failed in a way worth retrying
    └── StoreError               a storage driver failed (wraps the driver's error)
        ├── ConstraintViolation  a uniqueness rule held the line (I1–I4)
        ├── SchemaNewer          the database's schema is newer than the code
        ├── SchemaOutdated       the database's schema is older: run ``regflow migrate``
        ├── SchemaMigrationFailed  a schema migration failed, rolled back
        └── SchemaUnknown        tables regflow did not make, or a version it cannot read
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class RegflowError(Exception):
    """Base of every error regflow raises; ``message_id`` is stable for UIs and tests."""

    message_id = "error"


class DefinitionError(RegflowError):
    """A definition failed to load; ``faults`` lists ``"path: problem"`` lines."""

    message_id = "definition_invalid"

    def __init__(self, faults: Sequence[str]) -> None:
        self.faults = list(faults)
        super().__init__("\n".join(self.faults))


class FlowNotFound(RegflowError):
    """No flow with that id, or no definition with that name."""

    message_id = "flow_not_found"


class FlowGone(RegflowError):
    """The flow has ended (expired, cancelled, failed, completed) and takes no events."""

    message_id = "flow_gone"

    def __init__(self, flow_id: str, status: str) -> None:
        self.flow_id = flow_id
        self.status = status
        super().__init__(f"flow {flow_id} is {status}")


class VersionUnavailable(RegflowError):
    """The flow runs on a definition version no longer loaded, and no migration is declared."""

    message_id = "flow_version_unavailable"


class EventNotAllowed(RegflowError):
    """The flow's current state does not take the event; ``allowed`` lists what it takes."""

    message_id = "event_not_allowed"

    def __init__(self, event: str, state: str, allowed: Sequence[str]) -> None:
        self.event = event
        self.state = state
        self.allowed = list(allowed)
        super().__init__(f"event {event!r} is not allowed in state {state!r}; allowed: {self.allowed}")


class IdempotencyConflict(RegflowError):
    """An idempotency key was reused with a different payload."""

    message_id = "idempotency_key_reused"


class IdempotencyKeyInvalid(IdempotencyConflict):
    """An idempotency key must be 1–255 characters of storable text."""

    message_id = "idempotency_key_invalid"


class Forbidden(RegflowError):
    """The caller has no admin session of the customer it acts on."""

    message_id = "forbidden"


class NotSignedIn(Forbidden):
    """No session, or one that ended or expired: sign in first."""

    message_id = "not_signed_in"


class ConcurrentUpdate(RegflowError):
    """The flow was changed by someone else between load and save, more often than retried."""

    message_id = "concurrent_update"


class TransientError(RegflowError):
    """An adapter call failed in a way that may succeed when tried again."""

    message_id = "transient_error"


class StoreError(RegflowError):
    """A storage driver failed; the driver's exception is the ``__cause__``."""

    message_id = "store_error"


class ConstraintViolation(StoreError):
    """A uniqueness constraint refused a write; ``constraint`` names the rule (e.g. ``email``)."""

    message_id = "constraint_violation"

    def __init__(self, constraint: str) -> None:
        self.constraint = constraint
        super().__init__(f"constraint {constraint!r} refused the write")


class SchemaNewer(StoreError):
    """The database is at a schema version newer than this code's: never opened."""

    message_id = "schema_newer"


class SchemaOutdated(StoreError):
    """The database is at an older schema version and the store was not asked to migrate."""

    message_id = "schema_outdated"


class SchemaMigrationFailed(StoreError):
    """A schema migration failed; its transaction was rolled back, the version is unchanged."""

    message_id = "schema_migration_failed"


class SchemaUnknown(StoreError):
    """The database holds tables regflow did not make, or a schema version it cannot read."""

    message_id = "schema_unknown"


class InvalidContext(RegflowError):
    """``start`` was given a context the flow cannot run with (missing, unknown or bad keys)."""

    message_id = "context_invalid"

    def __init__(self, message: str, *, key: str | None = None,
                 message_id: str | None = None) -> None:
        self.key = key
        if message_id is not None:
            self.message_id = message_id
        super().__init__(message)


class RateLimited(RegflowError):
    """A limit that spans flows was reached (mails to an address, wrong codes, requests from
    one client); ``retry_after`` is the number of seconds until one more is allowed."""

    message_id = "rate_limited"

    def __init__(self, limit: str, retry_after: int) -> None:
        self.limit = limit
        self.retry_after = max(1, int(retry_after))
        super().__init__(f"too many attempts ({limit}); try again in {self.retry_after} s")


class Invalid(Exception):
    """A value a person typed was refused (by a field validator or a check of
    ``regflow.definitions.validation``); ``message_id`` and ``params`` say why, for the person. Not a
    ``RegflowError``: the step shows it next to the field and the flow stays where it is."""

    def __init__(self, message_id: str, **params: Any) -> None:
        self.message_id = message_id
        self.params = params
        super().__init__(message_id)
