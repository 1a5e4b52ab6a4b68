"""Diagrams of a flow definition: Mermaid ``stateDiagram-v2``, Graphviz DOT and SVG (SPEC 3).

Drawn from the definition model itself (no transitions GraphMachine): every branch of every event
is an edge labelled ``event [guard, !unless] / actions ⟶ message``. A branch that follows guarded
ones without a guard of its own is ``[else]``; a branch that stays without re-entering its state
is a self-loop marked ``(stay)`` (dashed in DOT); a re-entry is a plain self-loop. Timer events
read ``after code_ttl (30 min) · code_timeout``. A branch with a retry policy other than
``default`` names it; the policies themselves are described once, in the legend.

Mermaid keeps one edge per pair of states, so there the branches between two states share one
edge, a line each. Graphviz stacks many self-loops on top of each other, so in DOT the
self-loops of one state and kind (stay or re-entry, timer or not) are one loop, a line each.
The output depends only on the definition, in its own order: it can be checked in and compared.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import attrs

from regflow.definition import FlowDefinition, StateDef
from regflow.diagrams_text import branch_text, legend
from regflow.exceptions import RegflowError

__all__ = [
    "DiagramEdge",
    "GraphvizFailed",
    "GraphvizMissing",
    "branch_label",
    "edges",
    "legend",
    "state_lines",
    "to_dot",
    "to_mermaid",
    "to_svg",
]


class GraphvizFailed(RegflowError):
    """Graphviz' ``dot`` refused the diagram or could not be run."""

    message_id = "graphviz_failed"


class GraphvizMissing(GraphvizFailed):
    """SVG needs Graphviz' ``dot`` executable, and it is not installed."""

    message_id = "graphviz_missing"

    def __init__(self) -> None:
        super().__init__("the 'dot' executable was not found; "
                         "install Graphviz (apt-get install graphviz) to render SVG")


@attrs.frozen
class DiagramEdge:
    """One drawn branch: ``internal`` when it stays without re-entry, ``timer`` when a timer sends it."""

    source: str
    target: str
    label: str
    internal: bool
    timer: bool


# ---- the model both formats draw -----------------------------------------------------------

def branch_label(defn: FlowDefinition, state: StateDef, event: str, index: int) -> str:
    """The label of one branch: ``event [guards] / actions ⟶ message retry NAME (stay)``."""
    text = branch_text(defn, state, event, index)
    return f"{text} (stay)" if state.on[event][index].target is None else text


def edges(defn: FlowDefinition) -> list[DiagramEdge]:
    """Every branch of every state, in definition order."""
    out = []
    for name, state in defn.states.items():
        for event, branches in state.on.items():
            for index, branch in enumerate(branches):
                out.append(DiagramEdge(
                    source=name, target=branch.target if branch.target is not None else name,
                    label=branch_label(defn, state, event, index), internal=branch.target is None,
                    timer=event in state.timer_events))
    return out


def state_lines(state: StateDef) -> list[str]:
    """What a state box says below its name: its screen (or none), entry actions, final status."""
    lines = []
    if state.screen is not None:
        fields = ", ".join(state.screen.fields)
        lines.append(f"screen: {fields}" if fields else "screen")
    elif not state.final:
        lines.append("no screen")
    if state.enter:
        lines.append("enter / " + ", ".join(state.enter))
    if state.final:
        lines.append(f"final: {state.status or 'completed'}")
    return lines


# ---- Mermaid -------------------------------------------------------------------------------

_MERMAID_SAFE = re.compile(r"[\w .,\-\[\]()/!'*+=?@|~·⟶×≤]")
_MERMAID_ID = re.compile(r"[A-Za-z0-9_]+")


def _mermaid_text(text: str) -> str:
    """Text for a Mermaid label: anything outside a plain set becomes an entity code ``#58;``."""
    return "".join(ch if _MERMAID_SAFE.fullmatch(ch) else f"#{ord(ch)};" for ch in text)


def _mermaid_ids(defn: FlowDefinition) -> dict[str, str]:
    """Safe, distinct state ids: ``s_name``, or ``x3_`` + a cleaned name for unusual names."""
    return {name: f"s_{name}" if _MERMAID_ID.fullmatch(name)
            else f"x{i}_" + re.sub(r"[^A-Za-z0-9_]", "_", name)
            for i, name in enumerate(defn.states)}


def to_mermaid(defn: FlowDefinition) -> str:
    """The flow as a Mermaid ``stateDiagram-v2`` (title in front matter, legend as a note)."""
    ids = _mermaid_ids(defn)
    title = json.dumps(f"{defn.name} v{defn.version}", ensure_ascii=False)
    out = ["---", f"title: {title}", "---", "stateDiagram-v2"]
    for name, state in defn.states.items():
        out.append(f'    state "{_mermaid_text(name)}" as {ids[name]}')
        out += [f"    {ids[name]} : {_mermaid_text(line)}" for line in state_lines(state)]
    out.append(f"    [*] --> {ids[defn.initial]}")
    pairs: dict[tuple[str, str], list[str]] = {}
    for edge in edges(defn):  # Mermaid draws one edge per pair of states: the branches share it
        pairs.setdefault((edge.source, edge.target), []).append(_mermaid_text(edge.label))
    for (source, target), labels in pairs.items():
        out.append(f"    {ids[source]} --> {ids[target]} : {'<br/>'.join(labels)}")
    out += [f"    {ids[name]} --> [*]" for name, state in defn.states.items() if state.final]
    out.append(f"    note left of {ids[defn.initial]}")
    out += [f"        {_mermaid_text(line)}" for line in legend(defn)]
    out.append("    end note")
    out.append("    classDef final stroke-width:3px")
    out.append("    classDef noscreen stroke-dasharray:4 3")
    finals = [ids[n] for n, s in defn.states.items() if s.final]
    automatic = [ids[n] for n, s in defn.states.items() if s.screen is None and not s.final]
    for cls, members in (("final", finals), ("noscreen", automatic)):
        if members:
            out.append(f"    class {','.join(members)} {cls}")
    return "\n".join(out) + "\n"


# ---- Graphviz ------------------------------------------------------------------------------

def _dot_string(text: str) -> str:
    """A quoted DOT string; line breaks become centred ``\\n`` breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n") + '"'


def _dot_label(lines: list[str]) -> str:
    """Lines of a node or graph label: each escaped on its own, joined by DOT line breaks."""
    return '"' + "\\n".join(_dot_string(line)[1:-1] for line in lines) + '"'


def to_dot(defn: FlowDefinition) -> str:
    """The flow as a Graphviz digraph: screens are boxes, automatic states dashed, finals doubled."""
    start = "__start__"
    while start in defn.states:
        start += "_"
    title = [f"{defn.name} v{defn.version}", *legend(defn)]
    out = [
        f"digraph {_dot_string(defn.name)} {{",
        f"    graph [rankdir=LR, labelloc=t, fontname=Helvetica, label={_dot_label(title)}];",
        "    node [shape=box, style=rounded, fontname=Helvetica];",
        "    edge [fontname=Helvetica, fontsize=10];",
        f"    {_dot_string(start)} [shape=point, width=0.15, label=\"\"];",
    ]
    for name, state in defn.states.items():
        attrs_ = [f"label={_dot_label([name, *state_lines(state)])}"]
        if state.final:
            attrs_.append('style="rounded,bold", peripheries=2')
        elif state.screen is None:
            attrs_.append('style="rounded,dashed"')
        out.append(f"    {_dot_string(name)} [{', '.join(attrs_)}];")
    out.append(f"    {_dot_string(start)} -> {_dot_string(defn.initial)};")
    for source, target, internal, timer, labels in _dot_edges(defn):
        if len(labels) == 1:
            attrs_ = [f"label={_dot_string(labels[0])}"]
        else:  # one loop listing its branches, left-aligned: Graphviz stacks many loops badly
            attrs_ = ['label="' + "".join(_dot_string(t)[1:-1] + "\\l" for t in labels) + '"']
        if internal:
            attrs_.append("style=dashed")
        if timer:
            attrs_.append('color="#1f5fa8", fontcolor="#1f5fa8"')
        out.append(f"    {_dot_string(source)} -> {_dot_string(target)} [{', '.join(attrs_)}];")
    finals = [_dot_string(name) for name, state in defn.states.items() if state.final]
    if finals:  # the ends in the last column, clear of the loops' labels
        out.append(f"    {{ rank=sink; {'; '.join(finals)}; }}")
    out.append("}")
    return "\n".join(out) + "\n"


def _dot_edges(defn: FlowDefinition) -> list[tuple[str, str, bool, bool, list[str]]]:
    """Edges in order, the self-loops of a state of one kind (stay or re-entry, timer or not)
    drawn as one loop whose label has a line per branch."""
    out: list[tuple[str, str, bool, bool, list[str]]] = []
    loops: dict[tuple[str, bool, bool], list[str]] = {}
    for edge in edges(defn):
        if edge.source != edge.target:
            out.append((edge.source, edge.target, edge.internal, edge.timer, [edge.label]))
            continue
        key = (edge.source, edge.internal, edge.timer)
        if key not in loops:
            loops[key] = []
            out.append((edge.source, edge.target, edge.internal, edge.timer, loops[key]))
        loops[key].append(edge.label)
    return out


def to_svg(defn: FlowDefinition, *, timeout: float = 60.0) -> bytes:
    """The DOT diagram rendered by Graphviz' ``dot`` as SVG; GraphvizMissing when it is absent."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissing()
    try:
        done = subprocess.run([dot, "-Tsvg"], input=to_dot(defn).encode("utf-8"),
                              capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GraphvizFailed(f"dot could not render the diagram: {exc}") from exc
    if done.returncode != 0:
        problem = done.stderr.decode("utf-8", "replace").strip()
        raise GraphvizFailed(f"dot exited with {done.returncode}: {problem}")
    return done.stdout
