"""The PeeweeStore's view of the limits across flows (``limit_hits``): counted attempts by kind,
subject and client, read as sliding windows by index."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import peewee as pw

from regflow.adapters.peewee_models import from_micros, record_of, values_of
from regflow.adapters.peewee_tables import _guarded, _Table
from regflow.ground.records import LimitHit


class Limits(_Table):
    def _key(self, kind: str, subject: str, client: str | None) -> Any:
        model = self._t.limits
        condition = (model.kind == kind) & (model.subject == subject)
        return condition if client is None else condition & (model.client == client)

    @_guarded
    def add(self, hit: LimitHit) -> None:
        self._t.limits.insert(**values_of(hit)).execute()

    @_guarded
    def count(self, kind: str, subject: str, client: str | None,
              since: datetime) -> tuple[int, datetime | None]:
        model = self._t.limits
        query = model.select(pw.fn.COUNT(model.id), pw.fn.MIN(model.at))
        number, earliest = query.where(self._key(kind, subject, client) & (model.at > since)).tuples()[0]
        if earliest is not None and not isinstance(earliest, datetime):  # peewee converts MIN(at)
            earliest = from_micros(int(earliest))  # through the field, or leaves the integer
        return int(number), earliest

    @_guarded
    def last(self, kind: str, subject: str, client: str) -> LimitHit | None:
        model = self._t.limits
        row = model.select().where(self._key(kind, subject, client)).order_by(model.at.desc()).first()
        return None if row is None else record_of(LimitHit, row)

    @_guarded
    def clear(self, kind: str, subject: str, client: str | None = None) -> int:
        model = self._t.limits
        return int(model.delete().where(self._key(kind, subject, client)).execute())


    @_guarded
    def lock(self, subject: str) -> None:
        if self._row_locks:  # PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers
            run: Any = self._db.execute_sql  # peewee is untyped
            run("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"regflow.limit:{subject}",))
