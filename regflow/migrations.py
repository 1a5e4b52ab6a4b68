"""Moving flows in flight to a newer definition version, by the migration it declares."""

from __future__ import annotations

from datetime import datetime

from regflow.exceptions import VersionUnavailable
from regflow.library import FlowLibrary
from regflow.ports import Transaction
from regflow.records import FlowRecord, JournalEntry


def migrate(flows: FlowLibrary, tx: Transaction, record: FlowRecord, now: datetime) -> None:
    """Move a flow whose version was retired to the latest one (journaled), or refuse it with
    VersionUnavailable when that version declares no migration from the flow's."""
    if record.flow not in flows:
        raise VersionUnavailable(f"flow {record.id}: no definition named {record.flow!r}")
    latest = flows.latest(record.flow)
    migration = latest.migrations.get(str(record.version))
    if migration is None:
        raise VersionUnavailable(
            f"flow {record.id} runs on {record.flow} v{record.version}, which is not loaded, "
            f"and v{latest.version} declares no migration from it")
    source = record.state
    target = migration.states.get(source, source)
    if target not in latest.states:
        raise VersionUnavailable(
            f"flow {record.id}: v{latest.version} has no state {target!r} for {source!r}")
    timer_events = latest.states[target].timer_events
    record.state, record.version = target, latest.version
    record.timers = [(event, at) for event, at in record.timers if event in timer_events]
    tx.flows.journal(JournalEntry(
        flow_id=record.id, from_state=source, to_state=target, event="migrate",
        actor="system", at=now, outcome=f"v{latest.version}"))
