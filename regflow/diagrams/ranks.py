"""The rows of a flow's Graphviz drawing, decided before Graphviz lays it out (issue 19).

Left to itself, dot puts an arrow's label halfway along it; the long arrows of a flow — to the
ends at the bottom, back to the first screen — then meet with their labels in the same few rows
and the drawing grows wide. So the rows are planned here and dot is told them:

- the spine's states on even rows 2, 4, 6 …, the start on row 0; a state beside the spine two
  rows below the first state that leads to it;
- the other ends below everything, in rows no wider than ``row_width`` (those arrows lead to
  first: the notes then sit above a row no arrow passes);
- the odd rows between hold labels: the spine's arrows' and the notes' where they fall, every
  other arrow's label on the row nearest its source, between its two states, that still has
  room (``label_room``), else on the emptiest of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping

import attrs

from regflow.diagrams.model import Layout

__all__ = ["Ranks", "plan"]


@attrs.frozen
class Ranks:
    """Rows for states, notes (by key; ``expired``'s inactivity note under ``"expiry"``) and the
    labels of the arrows off the spine (by the arrow's index in ``Layout.arrows``)."""

    states: dict[str, int]
    notes: dict[str, int]
    labels: dict[int, int]

    @property
    def last(self) -> int:
        """The lowest row used."""
        return max([*self.states.values(), *self.notes.values(), *self.labels.values(), 0])


def plan(drawn: Layout, width: Callable[[str], float], label_width: Callable[[int], float],
         note_width: Mapping[str, float], *, row_width: float, label_room: float) -> Ranks:
    """Rows for ``drawn``; widths in points: of a box by its state's name, of an arrow's label
    by its index, of a note by its key."""
    states = {name: 2 + 2 * i for i, name in enumerate(drawn.spine)}
    _beside(drawn, states)
    _ends(drawn, states, width, row_width)
    load: dict[int, float] = defaultdict(float)
    for index, arrow in enumerate(drawn.arrows):
        if arrow.spine:
            load[states[arrow.source] + 1] += label_width(index)
    notes = {}
    targets = {shared.key: shared.target for shared in drawn.shared}
    if "expired" in states:
        targets["expiry"] = "expired"
    for key, target in targets.items():
        notes[key] = states[target] - 1
        load[notes[key]] += note_width[key]
    labels = {}
    for index, arrow in enumerate(drawn.arrows):
        if not arrow.spine:
            rows = _between(states[arrow.source], states[arrow.target])
            wanted = label_width(index)
            labels[index] = next((row for row in rows if load[row] + wanted <= label_room),
                                 min(rows, key=lambda row: load[row]))
            load[labels[index]] += wanted
    return Ranks(states=states, notes=notes, labels=labels)


def _beside(drawn: Layout, states: dict[str, int]) -> None:
    """States off the spine (not ends): two rows below the highest state leading to them;
    one nothing leads to, beside the first state."""
    waiting = [box.name for box in drawn.boxes if box.kind != "final" and box.name not in states]
    placed = True
    while placed:
        placed = False
        for name in waiting:
            sources = [states[a.source] for a in drawn.arrows if a.target == name and a.source in states]
            if name not in states and sources:
                states[name] = min(sources) + 2
                placed = True
    for name in waiting:
        states.setdefault(name, 2)


def _ends(drawn: Layout, states: dict[str, int], width: Callable[[str], float], row_width: float) -> None:
    """The other ends in rows below everything: those arrows lead to first, so that the
    arrows end before the rows of notes, which sit above the ends they lead to."""
    reached = {arrow.target for arrow in drawn.arrows}
    ends = sorted((box.name for box in drawn.boxes if box.kind == "final" and box.name not in states),
                  key=lambda name: name not in reached)
    rows: list[list[str]] = []
    for name in ends:
        if rows and sum(map(width, rows[-1])) + width(name) <= row_width:
            rows[-1].append(name)
        else:
            rows.append([name])
    bottom = max(states.values(), default=0) + 2
    for number, row in enumerate(rows):
        for name in row:
            states[name] = bottom + 2 * number


def _between(source: int, target: int) -> list[int]:
    """The odd rows between two states' rows, nearest the source first; beside a state on the
    same row, the rows below and above it."""
    if target > source:
        return list(range(source + 1, target, 2))
    if target < source:
        return list(range(source - 1, target, -2))
    return [source + 1, source - 1]
