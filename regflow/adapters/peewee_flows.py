"""The PeeweeStore's flow table view: the statements of every step (load, versioned update,
journal insert), written once per store as plain SQL with each column's conversion, and the
flow's idempotency records and timers.

The step's hot path lives here. Like the other views (``peewee_tables``), every method refuses
use outside a transaction and translates driver errors; on PostgreSQL the load takes the flow's
row lock (``FOR UPDATE``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs
import peewee as pw

from regflow.adapters.peewee_models import (
    InstantField,
    JsonField,
    Tables,
    flow_values,
    from_micros,
    record_of,
    to_micros,
    values_of,
)
from regflow.adapters.peewee_tables import _guarded, _Table
from regflow.ground.records import FlowRecord, IdempotencyRecord, JournalEntry

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # as JsonField writes
_RECORD_FIELDS = frozenset(field.name for field in attrs.fields(FlowRecord))


def _converter(field: Any, *, reading: bool) -> Callable[[Any], Any] | None:
    """What turns a column's value into the row's (``reading``) or back, written out for the
    field types of the hot path (peewee's ``db_value``/``python_value`` cost a call each more);
    None where the driver's value is the value."""
    if isinstance(field, InstantField):
        return (lambda v: from_micros(int(v))) if reading else to_micros
    if isinstance(field, JsonField):
        return json.loads if reading else _JSON
    if type(field) in (pw.TextField, pw.IntegerField):
        return None
    convert: Callable[[Any], Any] = field.python_value if reading else field.db_value
    return convert


class _FlowStatements:
    """The three statements of every step — load, versioned update, journal insert — written
    once per store from the models' columns, with the conversion of each column. Building them
    through peewee's query builder, or converting through its fields, on each call cost more
    than SQLite spent running them (see docs/benchmarks.md)."""

    def __init__(self, db: pw.Database, tables: Tables, *, row_locks: bool) -> None:
        param = db.param

        def quote(name: str) -> str:  # standard SQL identifiers, as SQLite and PostgreSQL take
            return f'"{name}"'

        flows, journal = tables.flows, tables.journal
        # Read: the record's own columns (next_due_at and other derived columns are written only).
        read = [f for f in flows._meta.sorted_fields if f.name in _RECORD_FIELDS]
        self.readers = [(f.name, _converter(f, reading=True)) for f in read]
        self.load = (f"SELECT {', '.join(quote(f.column_name) for f in read)} "
                     f"FROM {quote(flows._meta.table_name)} "
                     f"WHERE {quote('id')} = {param}" + (" FOR UPDATE" if row_locks else ""))
        changed = [f for f in flows._meta.sorted_fields if f.name != "id"]  # rev last
        self.writers = [(f.name, _converter(f, reading=False)) for f in changed]
        assignments = ", ".join(f"{quote(f.column_name)} = {param}" for f in changed)
        self.update = (f"UPDATE {quote(flows._meta.table_name)} SET {assignments} "
                       f"WHERE {quote('id')} = {param} AND {quote('rev')} = {param}")
        entries = [f for f in journal._meta.sorted_fields if f.name != "id"]
        self.journal_writers = [(f.name, _converter(f, reading=False)) for f in entries]
        self.journal = (
            f"INSERT INTO {quote(journal._meta.table_name)} "
            f"({', '.join(quote(f.column_name) for f in entries)}) "
            f"VALUES ({', '.join(param for _ in entries)})")


class Flows(_Table):
    def __init__(self, db: pw.Database, tables: Tables) -> None:
        super().__init__(db, tables)
        self._sql = _FlowStatements(db, tables, row_locks=self._row_locks)

    def _run(self, sql: str, params: tuple[Any, ...]) -> Any:
        run: Any = self._db.execute_sql  # peewee is untyped
        return run(sql, params)

    @_guarded
    def load(self, flow_id: str) -> FlowRecord | None:
        row = self._run(self._sql.load, (flow_id,)).fetchone()
        if row is None:
            return None
        values = {name: value if read is None or value is None else read(value)
                  for (name, read), value in zip(self._sql.readers, row, strict=True)}
        values["timers"] = [(str(event), from_micros(int(micros)))
                            for event, micros in values["timers"]]
        return FlowRecord(**values)

    @_guarded
    def insert(self, flow: FlowRecord) -> None:
        with self._db.atomic():  # a savepoint: a refused id leaves the transaction usable
            self._t.flows.insert(id=flow.id, rev=flow.rev, **flow_values(flow)).execute()

    @_guarded
    def update(self, flow: FlowRecord, expected_rev: int) -> bool:
        values = flow_values(flow)
        values["rev"] = expected_rev + 1
        params = [value if write is None or value is None else write(value)
                  for name, write in self._sql.writers for value in (values[name],)]
        params += (flow.id, expected_rev)
        if self._run(self._sql.update, tuple(params)).rowcount != 1:
            return False
        flow.rev = expected_rev + 1
        return True

    @_guarded
    def journal(self, entry: JournalEntry) -> None:
        self._run(self._sql.journal, tuple(
            value if write is None or value is None else write(value)
            for name, write in self._sql.journal_writers for value in (getattr(entry, name),)))

    @_guarded
    def history(self, flow_id: str) -> list[JournalEntry]:
        model = self._t.journal
        rows = model.select().where(model.flow_id == flow_id).order_by(model.id)
        return [record_of(JournalEntry, row) for row in rows]

    @_guarded
    def idempotent(self, flow_id: str, key: str) -> IdempotencyRecord | None:
        model = self._t.idempotency
        row = model.get_or_none((model.flow_id == flow_id) & (model.key == key))
        return None if row is None else record_of(IdempotencyRecord, row)

    @_guarded
    def remember(self, record: IdempotencyRecord) -> None:
        with self._db.atomic():  # a savepoint: a refused key leaves the transaction usable
            self._t.idempotency.insert(**values_of(record)).execute()

    @_guarded
    def defer(self, flow_id: str, due_by: datetime, until: datetime) -> bool:
        model = self._t.flows  # next_due_at is NULL for ended flows: they never match
        due = (model.id == flow_id) & (model.next_due_at <= due_by)
        return int(model.update(next_due_at=until).where(due).execute()) == 1

