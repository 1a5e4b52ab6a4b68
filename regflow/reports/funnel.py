"""Funnel and drop-off reports of a flow, read back from the journal (issue 17).

``flow_report(store, "registration", since=…, until=…, customer=…)`` counts what the journal
holds of one flow definition and answers a ``FlowReport``: counts and durations only, never a
flow id, an address or anything a person typed.

What is counted — every figure is over the **journal rows of the range**, the rows with
``since <= at < until`` (either bound may be open) of the flows of that definition (and of
that customer, when given); a flow's rows outside the range are not read, so a report costs
O(rows in the range) on every store:

- ``started``: start rows (the row each flow begins its journal with).
- per state ``entered``: rows whose ``to_state`` is the state and whose ``from_state`` is not
  (the start row included); ``left[event]``: rows from the state to another state, by event
  (the expiry of an abandoned flow is the event ``expire``, timers have their own names);
  ``stayed[event]``: rows from the state back to it (a wrong code, a refused or invalid
  submit, a timer that only says something, a resend).
- ``ended``: for a state that is not final, where people stopped — rows from the state into
  a final state, by that state's status (``cancelled``, ``expired``, ``failed``,
  ``completed``), and ``active``: visits to the state still open at the end of the range (no
  later row of the flow leaves it within the range); for a final state, ``{status: entered}``.
- time in a state, per **visit**: from the row entering the state to the flow's next row
  leaving it (rows that stay do not end a visit), both within the range. ``median_s`` and
  ``p90_s`` are **nearest-rank** percentiles of the finished visits: with the n durations
  sorted ascending, the p-th percentile is the value at rank ``ceil(p * n / 100)`` (1-based),
  so the median of 4 visits is the 2nd; None when no visit finished. The same definition runs
  in SQL (SQLite and PostgreSQL) and in Python (the memory store), on integer microseconds.
- ``finals[state]``: rows entering each final state; ``conversion[state]`` is
  ``finals[state] / started`` (0.0 when nothing started).
- ``edges``: rows by (from_state, event, to_state), start rows excepted.
- ``messages``: rows by ``outcome`` other than ``ok`` — the first error message the step
  showed (``code_invalid``, ``license_full``, ``contract_mismatch``, ``code_expired`` …), or
  ``invalid`` (a form that did not validate), ``event_refused``, ``expired``.

The customer of a flow is the one its seat or its login belongs to (``FlowRecord.customer``);
flows whose customer is not known yet are left out of a report for one customer.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from regflow.ground.exceptions import RegflowError
from regflow.ground.ports import JournalReader
from regflow.ground.records import JournalFigures, Visits

if TYPE_CHECKING:
    from regflow.definitions.model import FlowDefinition



class ReportUnavailable(RegflowError):
    """The store cannot aggregate its journal."""

    message_id = "report_unavailable"


class ReportRangeInvalid(RegflowError, ValueError):
    """A report's bounds are not timezone-aware instants with ``since`` before ``until``."""

    message_id = "report_range_invalid"


@attrs.frozen
class StateTraffic:
    """The traffic through one state of the definition (see the module docstring)."""

    state: str
    entered: int
    left: dict[str, int]
    stayed: dict[str, int]
    ended: dict[str, int]
    median_s: float | None
    p90_s: float | None


@attrs.frozen
class EdgeTraffic:
    """How many rows took one transition."""

    source: str
    event: str
    target: str
    count: int


@attrs.frozen
class FlowReport:
    """The report of one flow definition over a range (counts and durations only)."""

    flow: str
    since: datetime | None
    until: datetime | None
    customer: str | None
    started: int
    finals: dict[str, int]
    conversion: dict[str, float]
    states: tuple[StateTraffic, ...]
    edges: tuple[EdgeTraffic, ...]
    messages: dict[str, int]

    def state(self, name: str) -> StateTraffic:
        """The traffic of the state ``name``."""
        for traffic in self.states:
            if traffic.state == name:
                return traffic
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with stable keys (instants as ISO 8601 UTC with ``Z``)."""

        def instant(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat().replace("+00:00", "Z")

        return {
            "flow": self.flow, "since": instant(self.since), "until": instant(self.until),
            "customer": self.customer, "started": self.started,
            "finals": dict(self.finals), "conversion": dict(self.conversion),
            "states": [attrs.asdict(s) for s in self.states],
            "edges": [attrs.asdict(e) for e in self.edges],
            "messages": dict(self.messages),
        }


def _seconds(micros: int | None) -> float | None:
    return None if micros is None else micros / 1_000_000


def build_report(definition: FlowDefinition, figures: JournalFigures, *, since: datetime | None,
                 until: datetime | None, customer: str | None) -> FlowReport:
    """The report of ``definition`` from a store's ``figures``."""
    finals = {name: s for name, s in definition.states.items() if s.final}
    started = sum(n for (source, event, _), n in figures.moves.items()
                  if source == "" and event == "start")
    states = []
    for name, state in definition.states.items():
        entered = sum(n for (source, _, target), n in figures.moves.items()
                      if target == name and source != name)
        left: dict[str, int] = {}
        stayed: dict[str, int] = {}
        ended: dict[str, int] = {}
        for (source, event, target), n in sorted(figures.moves.items()):
            if source != name:
                continue
            bucket = stayed if target == name else left
            bucket[event] = bucket.get(event, 0) + n
            if target in finals and target != name:
                status = finals[target].status or "completed"
                ended[status] = ended.get(status, 0) + n
        visits = figures.visits.get(name, Visits(0, 0, None, None))
        if state.final:
            ended = {state.status or "completed": entered} if entered else {}
        elif visits.open:
            ended["active"] = visits.open
        states.append(StateTraffic(
            state=name, entered=entered, left=left, stayed=stayed, ended=ended,
            median_s=_seconds(visits.median_us), p90_s=_seconds(visits.p90_us)))
    final_counts = {name: sum(n for (source, _, target), n in figures.moves.items()
                              if target == name and source != name) for name in finals}
    return FlowReport(
        flow=definition.name, since=since, until=until, customer=customer, started=started,
        finals=final_counts,
        conversion={name: (n / started if started else 0.0) for name, n in final_counts.items()},
        states=tuple(states),
        edges=tuple(EdgeTraffic(source, event, target, n)
                    for (source, event, target), n in sorted(figures.moves.items()) if source != ""),
        messages=dict(sorted(figures.outcomes.items())),
    )


def flow_report(store: object, definition: FlowDefinition | str, *, since: datetime | None = None,
                until: datetime | None = None, customer: str | None = None) -> FlowReport:
    """The report of a flow definition (or a built-in flow's name) over ``[since, until)``."""
    if isinstance(definition, str):
        from regflow.machines import builtin_library

        definition = builtin_library().latest(definition)
    if not isinstance(store, JournalReader):
        raise ReportUnavailable(f"the store {type(store).__name__} cannot aggregate its journal")
    for bound in (since, until):
        if bound is not None and (bound.tzinfo is None or bound.utcoffset() is None):
            raise ReportRangeInvalid(f"{bound!r}: report bounds are timezone-aware instants")
    if since is not None and until is not None and since >= until:
        raise ReportRangeInvalid(f"since {since.isoformat()} is not before until {until.isoformat()}")
    figures = store.journal_figures(definition.name, since=since, until=until, customer=customer)
    return build_report(definition, figures, since=since, until=until, customer=customer)
