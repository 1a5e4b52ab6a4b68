"""Clocks: the system clock (read at call time, so freezegun moves it) and a manual one for tests."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


class SystemClock:
    """The wall clock. ``datetime.now`` is looked up on every call, never saved as a reference."""

    def now(self) -> datetime:
        """The current instant in UTC."""
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        """Really wait."""
        time.sleep(seconds)


class ManualClock:
    """A clock that only moves when told to; ``sleep`` advances it instead of waiting."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start if start is not None else datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
        self.slept: list[float] = []

    def now(self) -> datetime:
        """The instant the clock was last set or advanced to."""
        return self._now

    def sleep(self, seconds: float) -> None:
        """Advance instead of waiting, and remember the wait."""
        self.slept.append(seconds)
        self._now += timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self._now += timedelta(seconds=seconds)

    def set(self, instant: datetime) -> None:
        """Put the clock at ``instant`` (timezone-aware)."""
        self._now = instant


def shown_minute(instant: datetime, zone: str) -> str:
    """``HH:MM`` of an instant in a time zone, rounded **up** to the minute: a time shown to a
    person as "from then on" is never earlier than the instant it stands for (09:10:30 → 09:11)."""
    local = instant.astimezone(ZoneInfo(zone))
    if local.second or local.microsecond:
        local = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return local.strftime("%H:%M")
