"""What a flow diagram shows, decided once for every format (issue 19): the layout description
that ``regflow.diagrams.render`` draws as Graphviz DOT/SVG and as Mermaid, so the two agree.

A person reading a flow wants its main path, top to bottom, and the words of its screens:

- **Boxes** are states. A box says the state's name, its screen's title in the diagram's
  language, and — as UML's internal transitions, a compartment inside the box — every branch
  that stays in the state: a message, a counter, a resend that re-enters it (``↻``: its timers
  start again), a timer that only says something. No loops are drawn.
- **Arrows** join two different states, one per pair, a line per branch.
- **Shared** events — the same event taken the same way by several states (``cancel`` from every
  screen, to ``cancelled``) and the inactivity expiry — are drawn once each, from a note that
  names the states, not once per state.
- **The spine**: the path from the initial state to the flow's successful end is the straight
  column; the other ends (cancelled, expired, failed, a hand-over) sit together at the bottom.
  The successful end is the completed final state farthest from the start by its shortest path
  (ties: by its longest), so a short cut (signed in without a link prompt) does not make it.

Every branch of the definition appears exactly once: as a line of an arrow, of a box or of a
shared note (``Line.branch`` says which).
"""

from __future__ import annotations

from collections import deque
from itertools import pairwise
from typing import Literal

import attrs

from regflow.definitions.model import FlowDefinition, StateDef, TransitionDef
from regflow.diagrams.text import after_text, branch_parts, legend
from regflow.ground.catalog import Catalog

SHARED_MIN = 3  # an event taken the same way by this many states is drawn once
Kind = Literal["screen", "automatic", "final"]


@attrs.frozen
class Line:
    """One branch as written: ``submit [code_matches] / use_code ⟶ code_invalid``."""

    state: str
    event: str
    index: int  # the branch's position among the event's branches
    text: str
    timer: bool  # sent by a timer of the state
    reenters: bool = False  # a stay that re-enters the state (its timers restart)
    parts: tuple[str, ...] = ()  # the text in pieces a drawing may break between (joined: text)

    @property
    def branch(self) -> str:
        """The coverage id of the branch: ``state.event[index]``."""
        return f"{self.state}.{self.event}[{self.index}]"


@attrs.frozen
class Box:
    """A state."""

    name: str
    kind: Kind
    title: str | None  # the screen's title in the diagram's language
    status: str | None  # a final state's status
    enter: tuple[str, ...]  # entry actions
    timers: tuple[str, ...]  # ``after 30 min · code_timeout``
    stays: tuple[Line, ...]  # the compartment: branches that stay (or re-enter)
    spine: bool


@attrs.frozen
class Arrow:
    """The branches from one state to another."""

    source: str
    target: str
    lines: tuple[Line, ...]
    spine: bool

    @property
    def timer(self) -> bool:
        """Every branch of the arrow is sent by a timer."""
        return all(line.timer for line in self.lines)


@attrs.frozen
class Shared:
    """An event several states take the same way, drawn once from a note naming them."""

    event: str
    target: str
    sources: tuple[str, ...]
    lines: tuple[Line, ...]  # one per source (their texts may differ: actions)

    @property
    def key(self) -> str:
        """A name for the note: ``shared_cancel_cancelled``."""
        return f"shared_{self.event}_{self.target}"


@attrs.frozen
class Layout:
    """The whole diagram: boxes in drawing order (spine first), arrows, shared notes."""

    name: str
    version: int
    lang: str
    initial: str
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...]
    shared: tuple[Shared, ...]
    expiry: str  # ``after flow_expiry (1 h) without activity`` (to ``expired``, from any active state)
    legend: tuple[str, ...]  # retry policies
    spine: tuple[str, ...]  # the successful path, state names in order

    def box(self, name: str) -> Box:
        """The box of a state."""
        return next(b for b in self.boxes if b.name == name)

    def lines(self) -> list[Line]:
        """Every branch drawn, wherever it is drawn."""
        out = [line for box in self.boxes for line in box.stays]
        out += [line for arrow in self.arrows for line in arrow.lines]
        out += [line for shared in self.shared for line in shared.lines]
        return out


def layout(defn: FlowDefinition, lang: str = "ja") -> Layout:
    """The layout of a definition, titles in ``lang``."""
    catalog = Catalog(lang, defn.texts)
    lines = [_line(defn, name, state, event, index)
             for name, state in defn.states.items()
             for event, branches in state.on.items() for index in range(len(branches))]
    shared = _shared(defn, lines)
    in_shared = {line.branch for s in shared for line in s.lines}
    moving = [line for line in lines if line.branch not in in_shared and _target(defn, line) != line.state]
    spine = _spine(defn, moving)
    spine_pairs = set(pairwise(spine))
    arrows: dict[tuple[str, str], list[Line]] = {}
    for line in moving:
        arrows.setdefault((line.state, _target(defn, line)), []).append(line)
    boxes = [_box(defn, catalog, name, [line for line in lines if line.state == name
                                         and _target(defn, line) == name
                                         and line.branch not in in_shared], name in spine)
             for name in _order(defn, spine)]
    return Layout(
        name=defn.name, version=defn.version, lang=catalog.lang, initial=defn.initial,
        boxes=tuple(boxes),
        arrows=tuple(Arrow(source, target, tuple(found), (source, target) in spine_pairs)
                     for (source, target), found in arrows.items()),
        shared=tuple(shared),
        expiry=f"{after_text(defn, defn.expiry)} without activity",
        legend=tuple(line for line in legend(defn) if not line.startswith("expired ")),
        spine=tuple(spine),
    )


def _target(defn: FlowDefinition, line: Line) -> str:
    branch = defn.states[line.state].on[line.event][line.index]
    return branch.target if branch.target is not None else line.state


def _line(defn: FlowDefinition, name: str, state: StateDef, event: str, index: int) -> Line:
    branch: TransitionDef = state.on[event][index]
    parts = branch_parts(defn, state, event, index)
    return Line(state=name, event=event, index=index, text=" ".join(parts),
                timer=event in state.timer_events, reenters=branch.target == name, parts=parts)


def _shared(defn: FlowDefinition, lines: list[Line]) -> list[Shared]:
    """(event, target) pairs taken by one branch without a guard in at least SHARED_MIN states."""
    found: dict[tuple[str, str], list[Line]] = {}
    for line in lines:
        branches = defn.states[line.state].on[line.event]
        target = _target(defn, line)
        if len(branches) == 1 and not branches[0].guarded and target != line.state and not line.timer:
            found.setdefault((line.event, target), []).append(line)
    return [Shared(event, target, tuple(line.state for line in group), tuple(group))
            for (event, target), group in found.items() if len(group) >= SHARED_MIN]


def _spine(defn: FlowDefinition, moving: list[Line]) -> list[str]:
    """The path to the successful end: see the module's docstring."""
    graph: dict[str, list[str]] = {name: [] for name in defn.states}
    for line in moving:
        target = _target(defn, line)
        if target not in graph[line.state]:
            graph[line.state].append(target)
    distance = _distances(graph, defn.initial)
    ends = [name for name, state in defn.states.items()
            if state.final and (state.status or "completed") == "completed" and name in distance]
    if not ends:
        return [defn.initial]
    longest = {end: _longest(graph, defn.initial, end) for end in ends}
    best = max(ends, key=lambda end: (distance[end], len(longest[end])))
    return longest[best]


def _distances(graph: dict[str, list[str]], start: str) -> dict[str, int]:
    seen = {start: 0}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        for there in graph[here]:
            if there not in seen:
                seen[there] = seen[here] + 1
                queue.append(there)
    return seen


def _longest(graph: dict[str, list[str]], start: str, end: str) -> list[str]:
    """The longest simple path (flows are small: a depth-first search is enough), first found
    in definition order on ties."""
    best: list[str] = []

    def walk(path: list[str]) -> None:
        nonlocal best
        here = path[-1]
        if here == end:
            if len(path) > len(best):
                best = list(path)
            return
        for there in graph[here]:
            if there not in path:
                walk([*path, there])

    walk([start])
    return best or [start, end]


def _order(defn: FlowDefinition, spine: list[str]) -> list[str]:
    """Spine first, then the other non-final states, then the other finals (definition order)."""
    rest = [n for n in defn.states if n not in spine]
    return [*spine, *[n for n in rest if not defn.states[n].final],
            *[n for n in rest if defn.states[n].final]]


def _box(defn: FlowDefinition, catalog: Catalog, name: str, stays: list[Line], spine: bool) -> Box:
    state = defn.states[name]
    kind: Kind = "final" if state.final else "screen" if state.screen is not None else "automatic"
    title = None
    if state.screen is not None or state.final:
        own: tuple[str, ...] = ((state.screen.title,) if state.screen is not None
                                and state.screen.title else ())
        keys = (*own, f"screen.{defn.name}.{name}.title", f"screen.{name}.title")
        found = catalog.find(*keys)
        title = catalog.text(*keys) if found is not None else None
    return Box(
        name=name, kind=kind, title=title,
        status=(state.status or "completed") if state.final else None,
        enter=tuple(state.enter),
        timers=tuple(f"{after_text(defn, t.after)} · {t.event}" for t in state.after),
        stays=tuple(stays), spine=spine,
    )
