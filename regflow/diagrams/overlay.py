"""What traffic adds to a flow's drawing (``regflow.diagrams.traffic`` makes it from a report):
counts, widths and marks that ``diagrams.dot`` and ``diagrams.mermaid`` draw when given one."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from regflow.diagrams.model import Layout

START, EXPIRY = "start", "expiry"  # keys of the start's arrow and the inactivity expiry's note
Key = tuple[str, str] | str  # an arrow's (source, target), a shared note's key, START or EXPIRY
RED, GREY, FAINT = "#c50f1f", "#bbbbbb", "#8a8886"
_DOT_MARKS = {
    "dropoff": (f'color="{RED}"', "penwidth=2.2"),
    "lost": ('fillcolor="#fde7e9"', f'color="{RED}"'),
    "unreached": ('fillcolor="#f4f4f4"', f'color="{GREY}"', f'fontcolor="{FAINT}"'),
}
_MERMAID_MARKS = {
    "dropoff": f"stroke:{RED},stroke-width:3px",
    "lost": f"fill:#fde7e9,stroke:{RED},color:#1a1a1a",
    "unreached": f"fill:#f4f4f4,stroke:{GREY},color:{FAINT}",
}
MIN_WIDTH, MAX_WIDTH = 0.8, 5.0  # DOT penwidth of the quietest and of the busiest arrow


@attrs.frozen
class Overlay:
    """What a report adds to a flow's drawing: its layout with the counts written into the
    branches' texts, rows and marks of the boxes, counts of the arrows and notes, a caption."""

    layout: Layout
    rows: dict[str, tuple[str, ...]]  # state -> rows under its name and title
    marks: dict[str, str]  # state -> "dropoff", "lost" or "unreached"
    counts: dict[Key, int]  # arrow, note or start -> rows that took it
    notes: dict[str, tuple[str, ...]]  # note key -> rows added to the note
    caption: tuple[str, ...]  # the range, the customer, the flows started and how they ended

    def label(self, key: Key, event: str = "") -> str:
        """The count written on an edge that has no branch text of its own: ``cancel × 12``,
        ``60 started``."""
        if key == START:
            return f"{self.counts.get(key, 0)} started"
        return f"{event} × {self.counts.get(key, 0)}".strip()

    def width(self, key: Key) -> float:
        """The DOT penwidth of an arrow: its share of the busiest one."""
        busiest = max(self.counts.values(), default=0)
        share = self.counts.get(key, 0) / busiest if busiest else 0.0
        return round(MIN_WIDTH + (MAX_WIDTH - MIN_WIDTH) * share, 2)

    def dot_edge(self, key: Key) -> list[str]:
        """DOT attributes of an arrow (each of its halves): its width, grey when nobody took it."""
        found = [f"penwidth={self.width(key):g}"]
        return found if self.counts.get(key, 0) else [*found, f'color="{GREY}"']

    def dot_box(self, state: str) -> list[str]:
        """DOT attributes of a state's box by its mark (they follow, and so override, the plain
        drawing's)."""
        return list(_DOT_MARKS.get(self.marks.get(state, ""), ()))

    def mermaid_classes(self, ids: Mapping[str, str]) -> list[str]:
        """Mermaid ``classDef`` and ``class`` lines of the marks."""
        out = []
        for mark, style in _MERMAID_MARKS.items():
            members = [ids[name] for name, found in self.marks.items() if found == mark and name in ids]
            if members:
                out += [f"    classDef {mark} {style}", f"    class {','.join(members)} {mark}"]
        return out
