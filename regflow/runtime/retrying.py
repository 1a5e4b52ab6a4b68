"""Running a step again: at once after a conflict, after a backoff after a transient error."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

from regflow.definitions.model import RetryPolicy
from regflow.ground.exceptions import ConcurrentUpdate, ConstraintViolation, TransientError
from regflow.ground.ports import Clock

T = TypeVar("T")
CONFLICT_RETRIES = 8


def retrying(
    once: Callable[[], T],
    policy: RetryPolicy | Callable[[], RetryPolicy],
    clock: Clock,
    rng: random.Random,
    on_exhausted: Callable[[TransientError], T] | None = None,
) -> T:
    """Run ``once``; retry TransientError by the policy, and conflicts at once.

    A conflict is a flow saved by someone else meanwhile, or a uniqueness rule (I1–I4) that
    refused a write: run again, the guards then see the winner's row and choose accordingly.
    The policy may be a callable: the step learns which branch (and so which policy) it ran.
    """
    attempt = conflicts = 0
    while True:
        try:
            return once()
        except (ConcurrentUpdate, ConstraintViolation):
            conflicts += 1
            if conflicts >= CONFLICT_RETRIES:
                raise
        except TransientError as exc:
            current = policy() if callable(policy) else policy
            attempt += 1
            if attempt >= current.attempts:
                if on_exhausted is None:
                    raise
                return on_exhausted(exc)
            clock.sleep(backoff(current, attempt, rng))


def backoff(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): exponential, capped, jittered."""
    ceiling = min(policy.max, policy.initial * policy.factor ** (attempt - 1))
    return rng.uniform(0, ceiling) if policy.jitter == "full" else ceiling


class Backoff:
    """The pauses of a loop that keeps going through failures (a worker while its database is
    away): ``initial`` seconds after the first failure, doubling up to ``maximum``; a success
    ends the streak and the next failure starts over."""

    def __init__(self, initial: float = 1.0, maximum: float = 30.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0

    def failed(self) -> float:
        """Count a failure; the seconds to wait before the next try."""
        self.failures += 1
        return min(self.maximum, self.initial * 2.0 ** min(self.failures - 1, 32))

    def succeeded(self) -> int:
        """End the streak; how many failures it had."""
        failures, self.failures = self.failures, 0
        return failures
