"""The MemoryStore's journal figures for reports: the same aggregation as the SQL of
``peewee_report`` (see ``regflow.reports.funnel`` for what each figure means), in Python."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from regflow.ground.records import JournalFigures, Visits

_MICROSECOND = timedelta(microseconds=1)


def nearest_rank(sorted_values: list[int], percentile: int) -> int | None:
    """The nearest-rank ``percentile`` of ascending ``sorted_values``: the value at 1-based rank
    ``ceil(percentile * n / 100)``; None for no values."""
    n = len(sorted_values)
    if n == 0:
        return None
    return sorted_values[max(1, (percentile * n + 99) // 100) - 1]


def figures_of(rows: Iterable[tuple[str, str, str, str, str, datetime]]) -> JournalFigures:
    """The figures of journal rows ``(flow_id, from_state, to_state, event, outcome, at)`` given
    in the order the journal holds them (each flow's rows in the order appended): the memory
    store's aggregation, the same as the SQL of ``regflow.adapters.peewee_report``."""
    moves: dict[tuple[str, str, str], int] = {}
    outcomes: dict[str, int] = {}
    of_flow: dict[str, list[tuple[str, datetime]]] = {}
    for flow_id, source, target, event, result, at in rows:
        moves[(source, event, target)] = moves.get((source, event, target), 0) + 1
        if result != "ok":
            outcomes[result] = outcomes.get(result, 0) + 1
        if source != target:
            of_flow.setdefault(flow_id, []).append((target, at))
    spent: dict[str, list[int]] = {}
    still: dict[str, int] = {}
    for entries in of_flow.values():
        entries.sort(key=lambda entry: entry[1])  # stable: (at, journal order), as in SQL
        for (state, at), following in zip(entries, [*entries[1:], None], strict=True):
            if following is None:
                still[state] = still.get(state, 0) + 1
            else:
                spent.setdefault(state, []).append((following[1] - at) // _MICROSECOND)
    visits = {}
    for state in {*spent, *still}:
        durations = sorted(spent.get(state, []))
        visits[state] = Visits(finished=len(durations), open=still.get(state, 0),
                               median_us=nearest_rank(durations, 50),
                               p90_us=nearest_rank(durations, 90))
    return JournalFigures(moves=moves, outcomes=outcomes, visits=visits)
