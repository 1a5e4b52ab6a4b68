"""A flow's layout (``regflow.diagrams.model``) drawn as a Graphviz digraph, top to bottom.

Each state is a box (an HTML-like table): its name in bold, its screen's title, then — UML's
internal transitions — a compartment with a line per branch that stays in it (a timer's in its
own colour with its duration, ``↻`` one that re-enters the state), its entry actions and a final
state's status. One arrow joins two states, a line per branch; long lines break between their
pieces (after the condition, before the message) so the drawing stays narrow. The spine — the
path to the successful end — is one straight column; the other ends sit below it, in rows. An
event several states take the same way (``cancel``) is one note naming those states with one
arrow to its target; the inactivity expiry is another, to ``expired``. The title and the retry
policies are the graph's label.

The rows are planned (``regflow.diagrams.ranks``) and pinned by an invisible ruler: the spine's
arrows carry their labels, every other arrow is drawn through a node holding its label (class
``arrow``, named ``source → target``) on the row chosen for it.

Names and texts may hold anything: HTML-like labels escape ``& < > "``, control characters are
shown as ``\\xNN``, and a node id is the state's name only when DOT can quote it as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from regflow.definitions.model import FlowDefinition
from regflow.diagrams.model import Arrow, Box, Layout, Line, layout
from regflow.diagrams.ranks import Ranks, plan
from regflow.diagrams.text import WRAP, columns, wrap

if TYPE_CHECKING:
    from regflow.diagrams.overlay import Overlay

__all__ = ["WRAP", "to_dot", "wrap"]

ROW_WIDTH = 450.0  # points: the widest row of ends at the bottom (as estimated by _width)
LABEL_ROOM = 220.0  # points of labels and notes a row between two states takes before the next
HOLD = 5  # how hard the rows of ends are held under the spine's end
NODESEP = 12.0  # points between neighbours on a row
TIMER = "#1f5fa8"
SPINE_FILL = "#eef4fb"
NOTE = 'shape=note, fillcolor="#fff8dc", color="#b8a040"'
REENTRY = "↻"
_UNQUOTABLE = re.compile(r"[\\\x00-\x1f\x7f]")  # DOT cannot quote every backslash as it is
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_TABLE = 'BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1"'


def to_dot(defn: FlowDefinition, *, lang: str = "ja", links: Mapping[str, str] | None = None,
           overlay: Overlay | None = None) -> str:
    """The flow as a Graphviz digraph (rankdir TB), titles in ``lang``; ``links`` maps a state's
    name to a URL its box links to (``target="_top"``); ``overlay`` draws traffic on it
    (``regflow.diagrams.traffic``)."""
    drawn = layout(defn, lang) if overlay is None else overlay.layout
    notes = _notes(drawn)
    for key, extra in (overlay.notes if overlay is not None else {}).items():
        if key in notes:
            notes[key] = ([*notes[key][0], *map(_html, extra)], [*notes[key][1], *extra])
    arrows = [[row for line in arrow.lines for row in _line_rows(line)] for arrow in drawn.arrows]
    arrows_plain = [[_plain(row) for row in rows] for rows in arrows]
    boxes = {box.name: _box_rows(defn, box, overlay.rows.get(box.name, ()) if overlay else ())
             for box in drawn.boxes}
    ranks = plan(drawn, lambda name: _width(boxes[name][1]) + NODESEP,
                 lambda index: _width(arrows_plain[index]) + NODESEP,
                 {key: _width(plain) + NODESEP for key, (_, plain) in notes.items()},
                 row_width=ROW_WIDTH, label_room=LABEL_ROOM)
    ids = _ids(drawn, ranks.last)
    title = [f"<B>{_html(f'{drawn.name} v{drawn.version}')}</B>",
             *map(_html, overlay.caption if overlay is not None else ()), *map(_html, drawn.legend)]
    out = [
        f"digraph {_quote(ids[_GRAPH])} {{",
        f"    graph [rankdir=TB, newrank=true, nodesep={NODESEP / 72:.3f}, ranksep=0.12,"
        f" fontname=Helvetica, fontsize=10, labelloc=t, labeljust=l, label=<{_table(title)}>];",
        '    node [shape=box, style="rounded,filled", fillcolor=white, color="#444444",'
        ' fontname=Helvetica, fontsize=9, margin="0.06,0.03"];',
        '    edge [fontname=Helvetica, fontsize=9, color="#555555", arrowsize=0.7];',
        f"    {_quote(ids[_START])} [shape=point, width=0.12, fillcolor=black, group=spine];",
        f"    {_quote(ids[_START])} -> {_quote(ids[drawn.initial])} [weight=10{_traffic(overlay, 'start')}];",
    ]
    for box in drawn.boxes:
        out.append(_node(box, boxes[box.name][0], ids[box.name], (links or {}).get(box.name),
                         overlay.dot_box(box.name) if overlay is not None else []))
    for index, arrow in enumerate(drawn.arrows):
        out += _arrow(arrow, arrows[index], ids, ranks, index,
                      overlay.dot_edge((arrow.source, arrow.target)) if overlay is not None else [])
    for key, (rows, _) in notes.items():
        out.append(f"    {_quote(ids[_NOTE + key])} [{NOTE}, class=note, label=<{_table(rows)}>];")
    for shared in drawn.shared:
        more = _traffic(overlay, shared.key, shared.event)
        out.append(f"    {_quote(ids[_NOTE + shared.key])} -> {_quote(ids[shared.target])}"
                   f" [style=dashed, label=<{_html(shared.event)}>{more}];")
    if "expiry" in notes:
        expiry, expired = _quote(ids[_NOTE + "expiry"]), _quote(ids["expired"])
        out.append(f'    {expiry} -> {expired} [style=dashed, color="{TIMER}"{_traffic(overlay, "expiry")}];')
    out += _ruler(drawn, ids, ranks)
    out.append("}")
    return "\n".join(out) + "\n"


def _traffic(overlay: Overlay | None, key: str, event: str = "") -> str:
    """More attributes of an edge without branch texts (the start's, a note's): its count and
    width; nothing without traffic."""
    if overlay is None:
        return ""
    return ", " + ", ".join([f"label=<{_html(overlay.label(key, event))}>", *overlay.dot_edge(key)])


# keys of the drawing's own nodes in the ids (a NUL never starts a state's name)
_START, _GRAPH, _NOTE, _ARROW, _ROW = "\0start", "\0graph", "\0note ", "\0arrow ", "\0row "


def _notes(drawn: Layout) -> dict[str, tuple[list[str], list[str]]]:
    """Each note's label rows (markup, plain): a shared event's states (``enter_code /
    void_code``: what differs follows the name), the inactivity expiry's words."""
    notes = {}
    for shared in drawn.shared:
        plain = [f"from {len(shared.sources)} states",
                 *(row for line in shared.lines for row in wrap([line.state, *line.parts[1:]]))]
        notes[shared.key] = ([f"<B>{_html(plain[0])}</B>", *map(_html, plain[1:])], plain)
    if any(box.name == "expired" for box in drawn.boxes):
        plain = ["any active state", *wrap(_pieces(drawn.expiry, " without "))]
        notes["expiry"] = ([_html(plain[0]), *(_coloured(row) for row in plain[1:])], plain)
    return notes


def _ruler(drawn: Layout, ids: Mapping[str, str], ranks: Ranks) -> list[str]:
    """The planned rows: an invisible column of points, one a row, and each row's members
    held on its point's rank."""
    rows: dict[int, list[str]] = {0: [ids[_START]]}
    for name, rank in ranks.states.items():
        rows.setdefault(rank, []).append(ids[name])
    for key, rank in ranks.notes.items():
        rows.setdefault(rank, []).append(ids[_NOTE + key])
    for index, rank in ranks.labels.items():
        rows.setdefault(rank, []).append(ids[f"{_ARROW}{index}"])
    ruler = [ids[f"{_ROW}{rank}"] for rank in range(ranks.last + 1)]
    out = [f"    {_quote(point)} [style=invis, shape=point, width=0, label=\"\"];" for point in ruler]
    out.append("    " + " -> ".join(map(_quote, ruler)) + " [style=invis];" if len(ruler) > 1 else "")
    for rank, members in sorted(rows.items()):
        out.append(f"    {{ rank=same; {'; '.join(map(_quote, [ruler[rank], *members]))}; }}")
    ends: dict[int, list[str]] = {}  # the ends' rows held under the spine's end, each together
    for box in drawn.boxes:
        if box.kind == "final" and not box.spine:
            ends.setdefault(ranks.states[box.name], []).append(ids[box.name])
    for row in ends.values():
        chain = " -> ".join(map(_quote, [ids[drawn.spine[-1]], *row]))
        out.append(f"    {chain} [style=invis, weight={HOLD}];")
    return [line for line in out if line]


# ---- boxes and arrows --------------------------------------------------------------------------

def _box_rows(defn: FlowDefinition, box: Box,
              traffic: tuple[str, ...] = ()) -> tuple[list[list[str]], list[str]]:
    """A box's sections of label rows (markup): name and title; its traffic; no screen; entry
    actions; stays (and timers no branch of the state takes); final status — and its plain lines."""
    sections = [[f'<FONT POINT-SIZE="10"><B>{_html(box.name)}</B></FONT>',
                 *([_html(box.title)] if box.title else [])]]
    if traffic:
        sections.append([f"<B>{_html(row)}</B>" for row in traffic])
    plain = [box.name, box.name, *([box.title] if box.title else [])]  # the bold name is wider
    if box.kind == "automatic":
        sections.append(["(no screen)"])
    if box.enter:
        sections.append([_html(row) for row in wrap(["enter / " + ", ".join(box.enter)])])
    state = defn.states[box.name]
    idle = [_coloured(row) for timer, text in zip(state.after, box.timers, strict=True)
            if timer.event not in state.on for row in wrap(_pieces(text, " · "))]
    stays = [row for line in box.stays for row in _line_rows(line)]
    if idle or stays:
        sections.append([*idle, *stays])
    if box.kind == "final":
        sections.append([_html(f"final · {box.status}")])
    plain += [_plain(row) for section in sections[1:] for row in section]
    return sections, plain


def _node(box: Box, sections: list[list[str]], node_id: str, url: str | None,
          extra: list[str] | None = None) -> str:
    """A state's box: its sections, ruled apart; linked to ``url`` when given; ``extra``
    attributes last (a later attribute overrides an earlier one)."""
    body = "<HR/>".join(_cells(rows, "CENTER" if number == 0 else "LEFT")
                        for number, rows in enumerate(sections))
    attrs = [f"label=<<TABLE {_TABLE}>{body}</TABLE>>", f"tooltip={_esc(box.name)}"]
    if box.spine:
        attrs += ["group=spine", f'fillcolor="{SPINE_FILL}"']
    if box.kind == "final":
        attrs.append("peripheries=2")
    elif box.kind == "automatic":
        attrs.append('style="rounded,filled,dashed"')
    if url is not None:
        attrs += [f'URL="{_url(url)}"', 'target="_top"']
    attrs += extra or []
    return f"    {_quote(node_id)} [{', '.join(attrs)}];"


def _line_rows(line: Line) -> list[str]:
    """A branch as label rows (markup): the event and its condition together, then the other
    pieces as they fit; a re-entry marked, a timer's in the timer colour."""
    parts = list(line.parts or [line.text])
    if len(parts) > 1 and parts[1].startswith("["):
        parts[:2] = [f"{parts[0]} {parts[1]}"]
    rows = wrap(parts)
    if line.reenters:
        rows[0] = f"{REENTRY} {rows[0]}"
    return [_coloured(row) for row in rows] if line.timer else [_html(row) for row in rows]


def _arrow(arrow: Arrow, rows: list[str], ids: Mapping[str, str], ranks: Ranks, index: int,
           extra: list[str] | None = None) -> list[str]:
    """The spine's arrow carries its label; any other goes through its label's node, on its
    planned row: each half written downwards (dot keeps the planned rows), pointing to the target.
    ``extra`` attributes (traffic: width, colour) go on every half."""
    timer = [f'color="{TIMER}"', "style=dashed"] if arrow.timer else []
    timer += extra or []
    source, target = ids[arrow.source], ids[arrow.target]
    if arrow.spine:
        attrs = [f"label=<{_table(rows)}>", "weight=10", "penwidth=1.6", *timer]
        return [f"    {_quote(source)} -> {_quote(target)} [{', '.join(attrs)}];"]
    node, rank = ids[f"{_ARROW}{index}"], ranks.labels[index]
    out = [f"    {_quote(node)} [shape=plain, class=arrow, label=<{_table(rows)}>];"]
    if ranks.states[arrow.source] < rank:
        out.append(f"    {_quote(source)} -> {_quote(node)} [{', '.join(['dir=none', *timer])}];")
    else:
        out.append(f"    {_quote(node)} -> {_quote(source)} [{', '.join(['dir=none', *timer])}];")
    if rank < ranks.states[arrow.target]:
        out.append(f"    {_quote(node)} -> {_quote(target)} [{', '.join(timer)}];".replace(" [];", ";"))
    else:
        out.append(f"    {_quote(target)} -> {_quote(node)} [{', '.join(['dir=back', *timer])}];")
    return out


# ---- text ------------------------------------------------------------------------------------

def _pieces(text: str, before: str) -> list[str]:
    """``a · b`` as ``a`` and ``· b``: a text that may break before each ``before``."""
    first, *rest = text.split(before)
    return [first, *(before.lstrip() + bit for bit in rest)]


def _width(plain: list[str]) -> float:
    """Points a label of these lines takes, roughly (Helvetica 9 pt: 5 pt a column)."""
    return 5.0 * max(map(columns, plain), default=0) + 10.0


def _html(text: str) -> str:
    """Text for an HTML-like label: markup escaped, line breaks and control characters shown."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _plain(markup: str) -> str:
    """The text of a label row, for its width."""
    text = re.sub(r"<[^>]*>", "", markup)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")


def _coloured(row: str) -> str:
    """A row in the timers' colour."""
    return f'<FONT COLOR="{TIMER}">{_html(row)}</FONT>'


def _cells(rows: list[str], align: str = "LEFT") -> str:
    """A table row per line: rows are spaced by their fonts' heights and padding (lines broken
    by ``<BR/>`` are spaced by the height Graphviz measures, which a browser's text may exceed)."""
    return "".join(f'<TR><TD ALIGN="{align}">{row}</TD></TR>' for row in rows)


def _table(rows: list[str]) -> str:
    """Rows as a borderless table: an edge's, a note's or the graph's label."""
    return f"<TABLE {_TABLE}>{_cells(rows)}</TABLE>"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'


def _esc(text: str) -> str:
    """A quoted escString (a tooltip): backslashes doubled, quotes escaped."""
    text = _CONTROL.sub(" ", text).replace("\n", " ")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _url(url: str) -> str:
    """A URL as Graphviz copies it into the SVG unescaped (2.43): ``&`` as an entity, quotes,
    angle brackets, backslashes, spaces and control characters percent-encoded."""
    return "".join("&amp;" if ch == "&" else f"%{ord(ch):02X}" if ch in "\"'<>\\" or ord(ch) <= 32
                   or ord(ch) == 127 else ch for ch in url)


def _ids(drawn: Layout, last: int) -> dict[str, str]:
    """Node ids: a state's name when DOT quotes it as it is, else ``state3``; the start, the
    notes (keyed as in ``_notes``), the arrows' labels (``source → target``), the ruler's points
    (``row 4``) and the graph under names no state has."""
    taken = {box.name for box in drawn.boxes}

    def fresh(wanted: str) -> str:
        wanted = wanted if not _UNQUOTABLE.search(wanted) else "flow"
        while wanted in taken:
            wanted += "_"
        taken.add(wanted)
        return wanted

    ids = {box.name: box.name if not _UNQUOTABLE.search(box.name) else fresh(f"state{i}")
           for i, box in enumerate(drawn.boxes)}
    ids[_START] = fresh("__start__")
    ids[_GRAPH] = fresh(drawn.name)
    ids[_NOTE + "expiry"] = fresh("expiry")
    ids |= {_NOTE + shared.key: fresh(shared.key) for shared in drawn.shared}
    ids |= {f"{_ARROW}{i}": fresh(f"{arrow.source} → {arrow.target}") for i, arrow in enumerate(drawn.arrows)}
    ids |= {f"{_ROW}{rank}": fresh(f"row {rank}") for rank in range(last + 1)}
    return ids
