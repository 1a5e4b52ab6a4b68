"""Moving flows in flight to a newer definition version, by the migration it declares.

A flow migrates when it is next loaded (a ``get``, a ``send``, or the sweep that finds its
next deadline due), at that instant: its state is mapped (``states``) and the timers of the new
state are armed as the migration's ``timers`` say for the old state — ``carry`` (the default)
keeps the deadline of the old timer that corresponds to each new one (the same event, or the
one ``events`` maps it to) and arms a new timer without one from the migration instant;
``restart`` arms them all from the migration instant. Old timers no timer of the new state
corresponds to are dropped with the old state (the load-time check of
``regflow.definitions.loader.migration_faults`` refuses a migration where that looks like a renamed timer).

The inactivity expiry is the person's deadline, not the state's: it is kept, except that a
timer armed from the migration instant pushes it to at least the migration instant plus the
new version's ``expiry`` (a flow still waiting for its own timer does not expire first). A flow
whose expiry had passed before it migrated still expires. An active flow mapped to a final
state ends there, with that state's status.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs

from regflow.definitions.library import FlowLibrary
from regflow.definitions.model import FlowDefinition, MigrationDef
from regflow.ground.exceptions import VersionUnavailable
from regflow.ground.ports import Transaction
from regflow.ground.records import FlowRecord, JournalEntry

MIGRATE_EVENT = "migrate"  # the journal's event of a migration (actor "system")


@attrs.frozen
class Rearmed:
    """The deadlines of a migrated flow: one per timer of the new state, in the order of its
    ``after``, and the inactivity expiry."""

    deadlines: tuple[datetime, ...]
    expires_at: datetime | None


def rearm(definition: FlowDefinition, migration: MigrationDef, source: str,
          timers: Sequence[tuple[str, datetime]], expires_at: datetime | None,
          now: datetime) -> Rearmed:
    """The deadlines of an active flow that migrates at ``now`` from the old state ``source``,
    with the old pending ``timers`` (event, instant) and ``expires_at``, into ``definition``."""
    rule = migration.timers_of(source)
    pending = sorted(timers, key=lambda pair: pair[1])
    deadlines: list[datetime] = []
    anew = False
    for timer in definition.states[migration.target(source)].after:
        old = None
        if rule.arm == "carry":
            old = next((pair for pair in pending if rule.events.get(pair[0], pair[0]) == timer.event),
                       None)
        if old is not None:
            pending.remove(old)
            deadlines.append(old[1])
        else:
            deadlines.append(now + timedelta(seconds=definition.seconds(timer.after)))
            anew = True
    if anew and expires_at is not None and expires_at > now:
        expires_at = max(expires_at, now + timedelta(seconds=definition.seconds(definition.expiry)))
    return Rearmed(tuple(deadlines), expires_at)


def migrate(flows: FlowLibrary, tx: Transaction, record: FlowRecord, now: datetime) -> None:
    """Move a flow whose version was retired to the latest one at ``now`` (journaled), its
    timers armed as the migration says, or refuse it with VersionUnavailable when that version
    declares no migration from the flow's."""
    if record.flow not in flows:
        raise VersionUnavailable(f"flow {record.id}: no definition named {record.flow!r}")
    latest = flows.latest(record.flow)
    migration = latest.migrations.get(str(record.version))
    if migration is None:
        raise VersionUnavailable(
            f"flow {record.id} runs on {record.flow} v{record.version}, which is not loaded, "
            f"and v{latest.version} declares no migration from it")
    source = record.state
    target = migration.target(source)
    if target not in latest.states:
        raise VersionUnavailable(
            f"flow {record.id}: v{latest.version} has no state {target!r} for {source!r}")
    if record.status == "active" and latest.states[target].final:  # mapped to an end: it ends
        record.status = latest.states[target].status or "completed"
        record.timers, record.expires_at = [], None
    elif record.status == "active":
        armed = rearm(latest, migration, source, record.timers, record.expires_at, now)
        events = [t.event for t in latest.states[target].after]
        record.timers = sorted(zip(events, armed.deadlines, strict=True), key=lambda pair: pair[1])
        record.expires_at = armed.expires_at
    else:
        record.timers = []
    record.state, record.version = target, latest.version
    tx.flows.journal(JournalEntry(
        flow_id=record.id, from_state=source, to_state=target, event=MIGRATE_EVENT,
        actor="system", at=now, outcome=f"v{latest.version}"))
