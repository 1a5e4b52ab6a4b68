"""The journal aggregates of ``regflow.reports.funnel`` in SQL, the same statements on SQLite and
PostgreSQL (window functions; no ``percentile_cont``, whose interpolation is not nearest-rank).

Every statement starts from the journal rows of the range, found by the ``journal_at`` index,
and reads each row's flow by primary key (the flow's definition name and customer): the work is
O(rows in the range), whatever the journal and the flows table hold outside it (``explain``
shows the plan; ``python -m benchmarks.journal_report`` prints it with the timings).
Instants are integer microseconds, so durations and their percentiles are exact integers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import peewee as pw

from regflow.adapters.peewee_models import Tables, to_micros
from regflow.ground.records import JournalFigures, Visits

# The rows of the range of one flow definition (and customer): {join} and {where} are filled
# in below. Over a range, the flow's name and customer are read per row by primary key (scalar
# subqueries, which PostgreSQL does not turn into a hash join over every flow): O(rows in the
# range). Over the whole journal, PostgreSQL joins (a hash join reads each flow once; there are
# no more flows than rows).
_RANGE = """
SELECT j.flow_id AS flow_id, j.from_state AS from_state, j.to_state AS to_state,
       j.event AS event, j.outcome AS outcome, j.at AS at, j.id AS id
FROM journal AS j{join}
WHERE {where}
"""
_FLOW_OF_ROW = "(SELECT f.{column} FROM flows AS f WHERE f.id = j.flow_id)"
_JOIN = " JOIN flows AS f ON f.id = j.flow_id"

# The rows by transition and outcome: the moves and the messages in one pass.
_MOVES = ("SELECT from_state, event, to_state, outcome, COUNT(*) FROM r "
          "GROUP BY from_state, event, to_state, outcome")

# A visit begins at a row entering a state (from another one, or the start) and ends at the
# flow's next such row, which leaves it; rows staying in the state are not moves.
_VISITS = """
, moves AS (
  SELECT to_state AS state,
         LEAD(at) OVER (PARTITION BY flow_id ORDER BY at, id) - at AS spent
  FROM r WHERE from_state <> to_state
), ranked AS (
  SELECT state, spent,
         ROW_NUMBER() OVER (PARTITION BY state ORDER BY spent) AS pos,
         COUNT(*) OVER (PARTITION BY state) AS n
  FROM moves WHERE spent IS NOT NULL
)
SELECT state, 'open', COUNT(*) FROM moves WHERE spent IS NULL GROUP BY state
UNION ALL
SELECT state, 'finished', MAX(n) FROM ranked GROUP BY state
UNION ALL
SELECT state, 'p50', spent FROM ranked WHERE pos = (n * 50 + 99) / 100
UNION ALL
SELECT state, 'p90', spent FROM ranked WHERE pos = (n * 90 + 99) / 100
"""


def _range(db: pw.Database, flow: str, since: datetime | None, until: datetime | None,
           customer: str | None) -> tuple[str, list[Any]]:
    """The ``WITH r AS (…)`` clause of the range and its parameters."""
    p = db.param
    join = since is None and until is None and isinstance(db, pw.PostgresqlDatabase)

    def of_flow(column: str) -> str:
        return f"f.{column}" if join else _FLOW_OF_ROW.format(column=column)

    where: list[str] = [f"{of_flow('flow')} = {p}"]
    params: list[Any] = [flow]
    if since is not None:
        where.append(f"j.at >= {p}")
        params.append(to_micros(since))
    if until is not None:
        where.append(f"j.at < {p}")
        params.append(to_micros(until))
    if customer is not None:
        where.append(f"{of_flow('customer_id')} = {p}")
        params.append(customer)
    body = _RANGE.format(join=_JOIN if join else "", where=" AND ".join(where))
    return "WITH r AS (" + body + ")", params


def journal_figures(db: pw.Database, tables: Tables, flow: str, *, since: datetime | None,
                    until: datetime | None, customer: str | None) -> JournalFigures:
    """The figures of ``regflow.reports.funnel`` for one flow definition, run in the current
    transaction (a read-only one will do)."""
    del tables  # the statements name the tables by their SQL names
    head, params = _range(db, flow, since, until, customer)
    run: Any = db.execute_sql  # peewee is untyped
    moves: dict[tuple[str, str, str], int] = {}
    outcomes: dict[str, int] = {}
    for source, event, target, outcome, count in run(f"{head} {_MOVES}", params):
        key = (str(source), str(event), str(target))
        moves[key] = moves.get(key, 0) + int(count)
        if outcome != "ok":
            outcomes[str(outcome)] = outcomes.get(str(outcome), 0) + int(count)
    found: dict[str, dict[str, int | None]] = {}
    for state, kind, value in run(f"{head} {_VISITS}", params):
        found.setdefault(str(state), {})[str(kind)] = int(value)
    visits = {
        state: Visits(finished=int(v.get("finished") or 0), open=int(v.get("open") or 0),
                      median_us=v.get("p50"), p90_us=v.get("p90"))
        for state, v in found.items()
    }
    return JournalFigures(moves=moves, outcomes=outcomes, visits=visits)


def explain(db: pw.Database, flow: str, *, since: datetime | None, until: datetime | None,
            customer: str | None = None) -> list[str]:
    """The database's plan of the moves statement (``EXPLAIN QUERY PLAN`` on SQLite,
    ``EXPLAIN`` on PostgreSQL), one line per step: for the benchmark's proof of index use."""
    head, params = _range(db, flow, since, until, customer)
    run: Any = db.execute_sql
    if isinstance(db, pw.SqliteDatabase):
        return [str(row[-1]) for row in run(f"EXPLAIN QUERY PLAN {head} {_MOVES}", params)]
    return [str(row[0]) for row in run(f"EXPLAIN {head} {_MOVES}", params)]
