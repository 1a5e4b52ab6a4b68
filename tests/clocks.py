"""A skewed clock for tests: the system clock moved by a fixed offset, as on a host whose clock
is off (imported by the child processes of ``test_clock_skew`` too)."""

from __future__ import annotations

from datetime import datetime, timedelta

from regflow.ground.clock import SystemClock


class OffsetClock(SystemClock):
    """The system clock, ``offset`` seconds ahead (negative: behind); it really waits."""

    def __init__(self, offset: float) -> None:
        self.offset = timedelta(seconds=offset)

    def now(self) -> datetime:
        """The system clock's instant plus the offset."""
        return super().now() + self.offset
