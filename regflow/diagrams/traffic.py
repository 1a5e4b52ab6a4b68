"""A flow's diagram with its traffic drawn on it (issue 17): the counts of a ``FlowReport``
(``regflow.reports.funnel``) on the same layout (``regflow.diagrams.model``) that the plain diagrams
draw, in Graphviz DOT/SVG and in Mermaid.

What the numbers say — each is a count of journal rows of the report's range, never a person:

- **A branch** ends in ``× N``: how many times its event took people from its state to its
  target (a stay: back into the state — a wrong code, a resend). The journal knows the event,
  not which of its branches ran, so when several branches of one event lead the same way their
  count is one line after the last of them, ``Σ submit × N``. A shared event's note has a
  count per state, its edge the total; the inactivity expiry's note names the states it ended
  flows in.
- **A box** says how many entered it, how long a visit took (median and 90th percentile), how
  many are still there at the end of the range and how many **dropped off** there (left it for
  a cancelled, expired or failed end); a final state, how many ended there and their share of
  the flows started. The start's arrow carries the number started.
- **Marks**: a state where people dropped off has a red frame, an end that is not a success
  and was reached is tinted red, and a state nobody entered is greyed, its arrows too.
- **Widths** (DOT/SVG): an arrow's line is as thick as its share of the busiest arrow. Mermaid's
  state diagrams cannot style a single edge (``linkStyle`` is for flowcharts only,
  mermaid-js/mermaid#1352): there the counts are in the labels.

Without a report the diagrams are drawn as they always are, byte for byte: the traffic reaches
the drawing only through the ``overlay`` argument of ``diagram_dot.to_dot`` and
``diagram_mermaid.to_mermaid``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import attrs

from regflow.definitions.model import FlowDefinition
from regflow.diagrams import dot as diagram_dot
from regflow.diagrams import mermaid as diagram_mermaid
from regflow.diagrams.model import Line, layout
from regflow.diagrams.overlay import EXPIRY, START, Key, Overlay
from regflow.diagrams.render import render_svg
from regflow.reports.funnel import FlowReport

__all__ = ["DROP_OFF", "Overlay", "overlay", "traffic_dot", "traffic_mermaid", "traffic_svg"]

DROP_OFF = ("cancelled", "expired", "failed")  # the ends a person drops off into
def traffic_dot(defn: FlowDefinition, report: FlowReport, *, lang: str = "ja",
                links: Mapping[str, str] | None = None) -> str:
    """The flow as a Graphviz digraph with the report's traffic (see the module's docstring)."""
    return diagram_dot.to_dot(defn, lang=lang, links=links, overlay=overlay(defn, report, lang))


def traffic_svg(defn: FlowDefinition, report: FlowReport, *, lang: str = "ja",
                links: Mapping[str, str] | None = None, timeout: float = 60.0) -> bytes:
    """``traffic_dot`` rendered by Graphviz as SVG (GraphvizMissing without ``dot``)."""
    return render_svg(traffic_dot(defn, report, lang=lang, links=links), timeout=timeout)


def traffic_mermaid(defn: FlowDefinition, report: FlowReport, *, lang: str = "ja") -> str:
    """The flow as a Mermaid ``stateDiagram-v2`` with the report's traffic."""
    return diagram_mermaid.to_mermaid(defn, lang=lang, overlay=overlay(defn, report, lang))


def overlay(defn: FlowDefinition, report: FlowReport, lang: str = "ja") -> Overlay:
    """The traffic of ``report`` laid over the layout of ``defn`` in ``lang``."""
    if report.flow != defn.name:
        raise ValueError(f"a report of {report.flow!r} drawn on {defn.name!r}")
    drawn = layout(defn, lang)
    moves: dict[tuple[str, str, str], int] = {}
    for edge in report.edges:
        move = (edge.source, edge.event, edge.target)
        moves[move] = moves.get(move, 0) + edge.count
    claimed: set[tuple[str, str, str]] = set()

    def counted(lines: tuple[Line, ...], target: str) -> tuple[Line, ...]:
        """The lines with their counts: ``× N`` ending an event's only line to the target, a
        line ``Σ event × N`` after the last of several."""
        groups = [(line.state, line.event) for line in lines]
        last = {group: index for index, group in enumerate(groups)}
        out = []
        for index, line in enumerate(lines):
            move = (line.state, line.event, target)
            claimed.add(move)
            piece = f"× {moves.get(move, 0)}"
            if groups.count(groups[index]) == 1:
                out.append(attrs.evolve(line, text=f"{line.text} {piece}", parts=(*line.parts, piece)))
                continue
            out.append(line)
            if last[groups[index]] == index:
                head = f"Σ {line.event}"
                out.append(Line(state=line.state, event=line.event, index=-1, text=f"{head} {piece}",
                                timer=line.timer, parts=(head, piece)))
        return tuple(out)

    counts: dict[Key, int] = {START: report.started}
    boxes = tuple(attrs.evolve(box, stays=counted(box.stays, box.name)) for box in drawn.boxes)
    arrows = tuple(attrs.evolve(arrow, lines=counted(arrow.lines, arrow.target)) for arrow in drawn.arrows)
    shared = tuple(attrs.evolve(note, lines=counted(note.lines, note.target)) for note in drawn.shared)
    for arrow in drawn.arrows:
        counts[(arrow.source, arrow.target)] = _total(moves, arrow.source, arrow.lines, arrow.target)
    for note in drawn.shared:
        counts[note.key] = sum(moves.get((s, note.event, note.target), 0) for s in note.sources)
    expired = {source: n for (source, event, target), n in moves.items()
               if event == "expire" and target == "expired" and (source, event, target) not in claimed}
    claimed |= {(source, "expire", "expired") for source in expired}
    notes: dict[str, tuple[str, ...]] = {}
    if "expired" in defn.states:
        counts[EXPIRY] = sum(expired.values())
        notes[EXPIRY] = tuple(f"{name} × {expired[name]}" for name in defn.states if expired.get(name))
    rows, marks = _boxes(defn, report)
    stray = sum(n for move, n in moves.items() if move not in claimed)  # another version's
    return Overlay(
        layout=attrs.evolve(drawn, boxes=boxes, arrows=arrows, shared=shared),
        rows=rows, marks=marks, counts=counts, notes=notes,
        caption=_caption(defn, report, stray),
    )


def _total(moves: Mapping[tuple[str, str, str], int], source: str, lines: tuple[Line, ...],
           target: str) -> int:
    """The rows an arrow stands for: each of its events counted once."""
    return sum(moves.get((source, event, target), 0) for event in dict.fromkeys(line.event for line in lines))


def _boxes(defn: FlowDefinition, report: FlowReport) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """Each state's rows and mark (see the module's docstring)."""
    rows: dict[str, tuple[str, ...]] = {}
    marks: dict[str, str] = {}
    for traffic in report.states:
        state = defn.states.get(traffic.state)
        if state is None:
            continue
        name = traffic.state
        if state.final:
            share = f" ({100 * traffic.entered / report.started:.1f} % of started)" if report.started else ""
            rows[name] = (f"{traffic.entered} ended here{share}",)
            if traffic.entered and (state.status or "completed") in DROP_OFF:
                marks[name] = "lost"
        else:
            found = [f"{traffic.entered} in" + _times(traffic.median_s, traffic.p90_s)]
            if traffic.ended.get("active"):
                found.append(f"{traffic.ended['active']} still here")
            dropped = sum(traffic.ended.get(status, 0) for status in DROP_OFF)
            if dropped:
                found.append(f"{dropped} dropped off ({_by_status(traffic.ended)})")
                marks[name] = "dropoff"
            rows[name] = tuple(found)
        if not traffic.entered:
            marks[name] = "unreached"
    return rows, marks


def _by_status(ended: Mapping[str, int]) -> str:
    return ", ".join(f"{status} {ended[status]}" for status in DROP_OFF if ended.get(status))


def _times(median: float | None, p90: float | None) -> str:
    """`` · median 2 min · p90 9 min`` (nothing when no visit finished)."""
    if median is None or p90 is None:
        return ""
    return f" · median {duration(median)} · p90 {duration(p90)}"


def duration(seconds: float) -> str:
    """A time in a state for people: ``0.4 s``, ``45 s``, ``2 min 30 s``, ``1 h 5 min``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(whole // 60, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _caption(defn: FlowDefinition, report: FlowReport, stray: int) -> tuple[str, ...]:
    """The range and customer; the flows started and how many reached each end."""
    since, until = _instant(report.since), _instant(report.until)
    span = ("traffic " + (f"{since} – {until}" if since and until else f"since {since}" if since
                          else f"until {until}" if until else "of all time"))
    if report.customer is not None:
        span += f" · customer {report.customer}"
    ends = [f"{name} {n}" for name, n in report.finals.items() if n and name in defn.states]
    out = [span, f"{report.started} started" + (" · " + ", ".join(ends) if ends else "")]
    if stray:
        out.append(f"{stray} steps not on this version's diagram")
    return tuple(out)


def _instant(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
