"""A flow's layout (``regflow.diagrams.model``) drawn as a Mermaid ``stateDiagram-v2``, top to
bottom: the same boxes, arrows and notes as the Graphviz drawing (``regflow.diagrams.dot``).

Each state is a box: its name, then as description lines its screen's title, its entry actions
and — UML's internal transitions — the branches that stay in it (``⏱`` a timer's, ``↻`` one that
re-enters the state and restarts its timers). One edge joins two states, a line per branch. An
event several states take the same way (``cancel``) is one note-like box naming those states,
with one edge to the target; the inactivity expiry is another box, with one edge to ``expired``.
The retry policies are a note under the successful end. Finals are drawn thick, the spine (the
path to the successful end) tinted, states without a screen dashed.

Mermaid's layout (dagre) cannot be told to keep a column straight or to put ends on the bottom
rank; what keeps a flow within 1000 px is the text: 12 px type, lines broken between their
pieces as in the Graphviz drawing (boxes at ``WRAP`` columns, edge labels narrower, at
``EDGE_WRAP``: a label sits beside the long edges it shares a rank with), the expiry written in
its note rather than on its edge, the legend below the end, and tight spacing (set through the
``flowchart`` section of the configuration, which Mermaid's dagre layout reads for every kind of
diagram).

Mermaid's text is fragile: every label goes through :func:`mermaid_text` (anything outside a plain
set becomes an entity code ``#58;``), and ids are made, never names (:func:`mermaid_ids`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from regflow.definitions.model import FlowDefinition
from regflow.diagrams.model import Box, Layout, Line, layout
from regflow.diagrams.text import wrap

if TYPE_CHECKING:
    from regflow.diagrams.overlay import Overlay

__all__ = ["CONFIG", "EDGE_WRAP", "REENTRY", "TIMER", "WRAP", "mermaid_ids", "mermaid_text", "to_mermaid"]

TIMER = "⏱"
REENTRY = "↻"
WRAP = 34  # columns of a line in a box before it breaks between its pieces
EDGE_WRAP = 18  # the same on an edge: narrow labels keep a rank of long edges narrow
INDENT = "\u00a0\u00a0"  # a continued line (Mermaid trims ordinary spaces)
CONFIG = {
    "flowchart": {"nodeSpacing": 15, "rankSpacing": 30},  # read by the dagre layout of any diagram
    "themeVariables": {"fontSize": "12px"},
}
_CLASSES = {
    "final": "stroke-width:3px",
    "spine": "fill:#eef4fb,stroke:#1f5fa8,color:#1a1a1a",
    "noscreen": "stroke-dasharray:4 3",
    "note": "fill:#fff8dc,stroke:#b8a040,stroke-dasharray:2 2,color:#1a1a1a",
}
_SAFE = re.compile(r"[\w .,\-\[\]()/!'*+=?@|~·⟶×≤]")
_ID = re.compile(r"[A-Za-z0-9_]+")


def mermaid_text(text: str) -> str:
    """Text for a Mermaid label: anything outside a plain set becomes an entity code ``#58;``."""
    return "".join(ch if _SAFE.fullmatch(ch) else f"#{ord(ch)};" for ch in text)


def mermaid_ids(defn: FlowDefinition) -> dict[str, str]:
    """Safe, distinct state ids: ``s_name``, or ``x3_`` + a cleaned name for unusual names (the
    notes' ids, ``n_…``, cannot collide with either)."""
    return {name: f"s_{name}" if _ID.fullmatch(name)
            else f"x{i}_" + re.sub(r"[^A-Za-z0-9_]", "_", name)
            for i, name in enumerate(defn.states)}


def to_mermaid(defn: FlowDefinition, *, lang: str = "ja",
               links: Mapping[str, str] | None = None, overlay: Overlay | None = None) -> str:
    """The flow as a Mermaid ``stateDiagram-v2`` (direction TB), titles in ``lang``.

    ``links`` (state name → URL) become ``click`` lines. Mermaid 11 parses them but, in a state
    diagram, links only a box whose whole text is its id — never one with a description, as
    every box here has — so a page that wants clickable states shows its links beside the
    diagram (as ``regflow.docgen.flow_pages`` does) or uses the SVG.

    ``overlay`` draws traffic on it (``regflow.diagrams.traffic``): counts in the texts, marks
    as classes."""
    drawn = layout(defn, lang) if overlay is None else overlay.layout
    ids = mermaid_ids(defn)
    caption = overlay.caption if overlay is not None else ()
    title = json.dumps(" · ".join([f"{defn.name} v{defn.version}", *caption]), ensure_ascii=False)
    out = ["---", f"title: {title}", f"config: {json.dumps(CONFIG, ensure_ascii=False)}", "---",
           "stateDiagram-v2", "    direction TB"]
    for box in drawn.boxes:
        out.append(f'    state "{mermaid_text(box.name)}" as {ids[box.name]}')
        rows = _box_rows(defn, box)
        if overlay is not None:
            rows[1 if box.title else 0:0] = overlay.rows.get(box.name, ())
        out += [f"    {ids[box.name]} : {mermaid_text(row)}" for row in rows]
    start = f" : {mermaid_text(overlay.label('start'))}" if overlay is not None else ""
    out.append(f"    [*] --> {ids[drawn.initial]}{start}")
    for arrow in drawn.arrows:
        rows = [row for line in arrow.lines for row in _line_rows(line, EDGE_WRAP)]
        out.append(f"    {ids[arrow.source]} --> {ids[arrow.target]} : "
                   + "<br/>".join(map(mermaid_text, rows)))
    out += _notes(drawn, ids, overlay)
    out += _legend(drawn, ids)
    out += _classes(drawn, ids)
    out += overlay.mermaid_classes(ids) if overlay is not None else []
    for name, url in (links or {}).items():
        if name in ids:
            out.append(f'    click {ids[name]} href "{_url(url)}"')
    return "\n".join(out) + "\n"


def _line_rows(line: Line, width: int) -> list[str]:
    """A branch as rows: broken between its pieces, a timer's marked ⏱, a re-entry ↻."""
    rows = wrap(line.parts or [line.text], width)
    mark = TIMER if line.timer else REENTRY if line.reenters else ""
    if mark:
        rows[0] = f"{mark} {rows[0]}"
    return rows


def _box_rows(defn: FlowDefinition, box: Box) -> list[str]:
    """What a box says below its name: title, entry actions, timers that send nothing, stays, status."""
    rows = [box.title] if box.title else []
    if box.kind == "automatic":
        rows.append("(no screen)")
    if box.enter:
        rows += wrap(["enter /", *box.enter], WRAP)
    state = defn.states[box.name]
    rows += [f"{TIMER} {text}" for timer, text in zip(state.after, box.timers, strict=True)
             if timer.event not in state.on]  # a timer with a branch is written on its branch
    rows += [row for line in box.stays for row in _line_rows(line, WRAP)]
    if box.kind == "final":
        rows.append(f"final · {box.status}")
    return rows


def _notes(drawn: Layout, ids: Mapping[str, str], overlay: Overlay | None = None) -> list[str]:
    """A box per shared event naming its states (and what differs: ``enter_code / void_code``)
    with one edge to the target; the inactivity expiry's box with one edge to ``expired``
    (with traffic: their counts)."""
    out = []
    for index, shared in enumerate(drawn.shared):
        note = f"n_shared{index}"
        out.append(f'    state "from {len(shared.sources)} states" as {note}')
        out += [f"    {note} : {mermaid_text(row)}" for line in shared.lines
                for row in wrap([line.state, *line.parts[1:]], WRAP)]
        label = overlay.label(shared.key, shared.event) if overlay is not None else shared.event
        out.append(f"    {note} --> {ids[shared.target]} : {mermaid_text(label)}")
    if "expired" in ids:  # the expiry in its box: a long edge label would cost width
        first, _, rest = drawn.expiry.partition(" without ")
        out.append('    state "any active state" as n_expiry')
        out.append(f"    n_expiry : {mermaid_text(f'{TIMER} {first}')}")
        if rest:
            out.append(f"    n_expiry : {mermaid_text(f'{INDENT}without {rest}')}")
        if overlay is not None:
            out += [f"    n_expiry : {mermaid_text(row)}" for row in overlay.notes.get("expiry", ())]
        label = f" : {mermaid_text(overlay.label('expiry'))}" if overlay is not None else ""
        out.append(f"    n_expiry --> {ids['expired']}{label}")
    return out


def _legend(drawn: Layout, ids: Mapping[str, str]) -> list[str]:
    """The retry policies, a note under the successful end (a rank of its own: no width)."""
    if not drawn.legend:
        return []
    rows = [re.sub(r"(?i)end(\s+)note", "end#32;note", mermaid_text(line)) for line in drawn.legend]
    return [f"    note right of {ids[drawn.spine[-1]]}", *(f"        {row}" for row in rows),
            "    end note"]


def _classes(drawn: Layout, ids: Mapping[str, str]) -> list[str]:
    members = {
        "spine": [ids[b.name] for b in drawn.boxes if b.spine],
        "final": [ids[b.name] for b in drawn.boxes if b.kind == "final"],
        "noscreen": [ids[b.name] for b in drawn.boxes if b.kind == "automatic"],
        "note": [*(f"n_shared{i}" for i in range(len(drawn.shared))),
                 *(["n_expiry"] if "expired" in ids else [])],
    }
    out = [f"    classDef {name} {style}" for name, style in _CLASSES.items()]
    return out + [f"    class {','.join(found)} {name}" for name, found in members.items() if found]


def _url(url: str) -> str:
    """A URL inside Mermaid's double quotes: quotes and line breaks percent-encoded."""
    return url.replace('"', "%22").replace("\n", "%0A").replace("\r", "%0D")
