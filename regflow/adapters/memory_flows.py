"""The MemoryStore's flow table view: flows, their journal and idempotency records and timers,
with the copies it makes of them (the step's hot path: a flow is copied in and out on every
step, so the copy is written out for speed).

Like the other views (``memory_tables``), it checks that the calling thread runs a transaction
on the store and writes through the store's undo-logging helpers.
"""

from __future__ import annotations

import copy
import marshal
from datetime import datetime
from typing import Any

import attrs

from regflow.adapters.memory_tables import _Base
from regflow.ground.exceptions import ConstraintViolation
from regflow.ground.records import FlowRecord, IdempotencyRecord, JournalEntry


def _json_copy(value: Any) -> Any:
    """A deep copy of JSON values (dicts, lists, text, numbers), through ``marshal`` (several
    times quicker than ``copy.deepcopy`` on them); anything else through ``copy.deepcopy``."""
    try:
        return marshal.loads(marshal.dumps(value))
    except ValueError:  # a value marshal does not take (a dict subclass, an object)
        return copy.deepcopy(value)


_FLOW_FIELDS = tuple(field.name for field in attrs.fields(FlowRecord))


def _flow_copy(flow: FlowRecord, rev: int | None = None) -> FlowRecord:
    """A copy sharing nothing mutable with ``flow`` (with ``rev`` instead of its own, if given);
    made without ``attrs.evolve``, which cost more than the rest of a memory step's save."""
    values = {name: getattr(flow, name) for name in _FLOW_FIELDS}
    values["data"], values["timers"] = _json_copy(flow.data), list(flow.timers)
    if rev is not None:
        values["rev"] = rev
    return FlowRecord(**values)


def _answer_copy(record: IdempotencyRecord) -> IdempotencyRecord:
    """A copy sharing nothing mutable with ``record``."""
    return attrs.evolve(record, response=copy.deepcopy(record.response))


class Flows(_Base):
    def load(self, flow_id: str) -> FlowRecord | None:
        flow = self._s._check()._flows.get(flow_id)
        return None if flow is None else _flow_copy(flow)

    def insert(self, flow: FlowRecord) -> None:
        s = self._s._check()
        if flow.id in s._flows:
            raise ConstraintViolation("id")
        s._put(s._flows, flow.id, _flow_copy(flow))
        s._set_due(flow.id, flow.next_due_at)

    def update(self, flow: FlowRecord, expected_rev: int) -> bool:
        s = self._s._check()
        stored = s._flows.get(flow.id)
        if stored is None or stored.rev != expected_rev:
            return False
        s._put(s._flows, flow.id, _flow_copy(flow, expected_rev + 1))
        s._set_due(flow.id, flow.next_due_at)
        flow.rev = expected_rev + 1
        return True

    def journal(self, entry: JournalEntry) -> None:
        s = self._s._check()
        s._append(s._journal, entry.flow_id, entry)  # frozen, immutable fields: no copy needed

    def history(self, flow_id: str) -> list[JournalEntry]:
        return list(self._s._check()._journal.get(flow_id, ()))

    def idempotent(self, flow_id: str, key: str) -> IdempotencyRecord | None:
        record = self._s._check()._idempotency.get((flow_id, key))
        return None if record is None else _answer_copy(record)

    def remember(self, record: IdempotencyRecord) -> None:
        s = self._s._check()
        if (record.flow_id, record.key) in s._idempotency:
            raise ConstraintViolation("idempotency")
        s._put(s._idempotency, (record.flow_id, record.key), _answer_copy(record))

    def defer(self, flow_id: str, due_by: datetime, until: datetime) -> bool:
        s = self._s._check()
        due = s._due.get(flow_id)  # active flows with something due only
        if due is None or due > due_by:
            return False
        s._set_due(flow_id, until)
        return True
