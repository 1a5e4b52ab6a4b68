"""The overview of the built-in flows (issue 19): every flow on one page, with the hand-overs
between them, as Graphviz DOT/SVG and as Mermaid, and the documentation page that shows it.

A hand-over (``create_account`` on the sign-in screen, ``forgot_password``, ``continue_with``
after provisioning) is not guessed from the definitions: it is read from the approved paths
(``regflow/machines/approved/<flow>.json``), which record every hand-over a reviewed path
observed — the event sent (``do``), the state it was sent in (the outcome before the step) and
the flow continued with (``continue_with``). A hand-over no approved path takes is not drawn.

Flows are grouped by who may start them (``FlowDefinition.auth``): anyone (the screens a user
reaches from the product: sign-in, registration, password reset), a signed-in login, or the
customer's admin — the web front end starts those from アカウント管理, the admin page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any

import attrs

from regflow.definitions.model import FlowDefinition
from regflow.diagrams.render import render_svg
from regflow.docgen.markdown import MARKER, both, code, table, text
from regflow.ground.catalog import Catalog
from regflow.machines import BUILTIN_FLOWS, builtin_library

__all__ = [
    "FlowBox",
    "HandOver",
    "Overview",
    "hand_overs",
    "overview",
    "overview_dot",
    "overview_mermaid",
    "overview_page",
    "overview_svg",
    "write_overview",
]

TITLE = "All flows and their hand-overs"
GROUPS = ("none", "session", "admin")  # drawing order: the user's flows first
ROW = 3  # admin flows to a row: the picture stays within 1000 px
_WORDS = {  # the diagram's own words
    "ja": {
        "title": "すべての手続きと引き継ぎ",
        "screens": "画面 {n}",
        "screen": "画面 1",
        "session": "サインイン中のアカウントのセッションで開始",
        "admin": "アカウント管理（管理者の画面）から管理者のセッションで開始",
    },
    "en": {
        "title": TITLE,
        "screens": "{n} screens",
        "screen": "1 screen",
        "session": "started with a signed-in login's session",
        "admin": "started from アカウント管理 (the admin page) with an admin session",
    },
}
_STARTED = {  # who starts a flow, by its auth, in the page's table
    "none": "anyone",
    "session": "a signed-in login",
    "admin": "the customer's admin, from アカウント管理 (the admin page)",
}


@attrs.frozen
class FlowBox:
    """A flow: its title (its first screen's, in the overview's language), what it does, who
    may start it, how many of its states have a screen."""

    name: str
    title: str
    description: str
    auth: str
    screens: int
    states: int


@attrs.frozen
class HandOver:
    """``source`` handed over to ``target`` when ``event`` was sent in ``state``."""

    source: str
    state: str
    event: str
    target: str

    @property
    def label(self) -> str:
        """``credentials · create_account``."""
        return f"{self.state} · {self.event}"


@attrs.frozen
class Overview:
    """The built-in flows in ``BUILTIN_FLOWS`` order and their hand-overs, each once."""

    lang: str
    flows: tuple[FlowBox, ...]
    hand_overs: tuple[HandOver, ...]

    def flow(self, name: str) -> FlowBox:
        """The box of a flow."""
        return next(f for f in self.flows if f.name == name)

    def group(self, auth: str) -> tuple[FlowBox, ...]:
        """The flows started with ``auth`` (none, session or admin)."""
        return tuple(f for f in self.flows if f.auth == auth)

    def arrows(self) -> dict[tuple[str, str], list[HandOver]]:
        """The hand-overs by (source, target): one arrow per pair, a line per hand-over."""
        out: dict[tuple[str, str], list[HandOver]] = {}
        for hand_over in self.hand_overs:
            out.setdefault((hand_over.source, hand_over.target), []).append(hand_over)
        return out


# ---- the model -------------------------------------------------------------------------------

def _approved(name: str) -> dict[str, Any]:
    """The approved paths of a built-in flow (``regflow/machines/approved/<name>.json``)."""
    path = resources.files("regflow.machines").joinpath(f"approved/{name}.json")
    found: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return found


def hand_overs(record: Mapping[str, Any]) -> list[HandOver]:
    """The hand-overs the paths of one approved file observed, in the order first seen: the
    state is the outcome before the step, the event the step's (or the timers it fired)."""
    out: dict[HandOver, None] = {}
    for path in record.get("paths", ()):
        state = path["start"]["state"]
        for step in path.get("steps", ()):
            target = (step.get("continue_with") or {}).get("flow")
            if target:
                do = step.get("do", {})
                event = do.get("event") or ", ".join(step.get("fired") or ()) or "—"
                out[HandOver(record["flow"], state, event, target)] = None
            state = step["state"]
    return list(out)


def _title(defn: FlowDefinition, lang: str) -> str:
    """The title of the flow's first screen in ``lang``, else its description, else its name."""
    state = defn.states[defn.initial]
    keys = (state.screen.title,) if state.screen is not None and state.screen.title else ()
    found = Catalog(lang, defn.texts).find(
        *keys, f"screen.{defn.name}.{defn.initial}.title", f"screen.{defn.initial}.title")
    return found or defn.description or defn.name


def overview(lang: str = "ja") -> Overview:
    """The built-in flows and the hand-overs their approved paths record, titles in ``lang``."""
    lang = Catalog(lang).lang
    library = builtin_library()
    definitions = [library.latest(name) for name in BUILTIN_FLOWS]
    flows = tuple(FlowBox(
        name=defn.name, title=_title(defn, lang), description=defn.description, auth=defn.auth,
        screens=sum(1 for s in defn.states.values() if s.screen is not None),
        states=len(defn.states)) for defn in definitions)
    order = {defn.name: (i, list(defn.states)) for i, defn in enumerate(definitions)}

    def key(h: HandOver) -> tuple[int, int, str, int, str]:
        index, states = order[h.source]
        flow_index = order[h.target][0] if h.target in order else len(order)
        return (index, states.index(h.state) if h.state in states else len(states), h.event,
                flow_index, h.target)

    found = dict.fromkeys(h for name in BUILTIN_FLOWS for h in hand_overs(_approved(name)))
    return Overview(lang=lang, flows=flows, hand_overs=tuple(sorted(found, key=key)))


# ---- Graphviz --------------------------------------------------------------------------------

def _lines(box: FlowBox, lang: str) -> tuple[str, ...]:
    """What a flow's box says: its title, then its name and how many screens it has."""
    count = _WORDS[lang]["screen" if box.screens == 1 else "screens"].format(n=box.screens)
    return (box.title, f"{box.name} · {count}")


def _dot(*lines: str) -> str:
    """A quoted DOT string, its lines joined by centred line breaks."""
    return '"' + "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in lines) + '"'


def overview_dot(lang: str = "ja") -> str:
    """The overview as a Graphviz digraph, top to bottom: the user's flows with their
    hand-overs (``state · event``), the signed-in login's beside them, the admin's below in
    rows of ``ROW``."""
    view = overview(lang)
    words = _WORDS[view.lang]
    out = [
        "digraph overview {",
        "    graph [rankdir=TB, labelloc=t, fontname=Helvetica, fontsize=16, nodesep=0.3, "
        f"ranksep=0.45, newrank=true, label={_dot(words['title'])}];",
        "    node [shape=box, style=rounded, fontname=Helvetica, fontsize=12];",
        "    edge [fontname=Helvetica, fontsize=10];",
    ]
    users = view.group("none")
    out += [f"    {_dot(box.name)} [label={_dot(*_lines(box, view.lang))}];" for box in users]
    for auth in GROUPS[1:]:
        boxes = view.group(auth)
        if not boxes:
            continue
        out += [f"    subgraph cluster_{auth} {{",
                f'        graph [label={_dot(words[auth])}, style="rounded,dashed", fontsize=11];']
        out += [f"        {_dot(box.name)} [label={_dot(*_lines(box, view.lang))}];" for box in boxes]
        out += _rows([box.name for box in boxes]) if auth == "admin" else []
        out.append("    }")
        if auth == "admin":  # below the user's flows: no hand-overs join them
            first = boxes[min(len(boxes), ROW) // 2].name
            out += [f"    {_dot(box.name)} -> {_dot(first)} [style=invis];" for box in users]
    known = {box.name for box in view.flows}
    out += [f'    {_dot(name)} [label={_dot(name)}, style="rounded,dotted"];'
            for name in dict.fromkeys(h.target for h in view.hand_overs) if name not in known]
    for (source, target), found in view.arrows().items():
        out.append(f"    {_dot(source)} -> {_dot(target)} [label={_dot(*(h.label for h in found))}];")
    out.append("}")
    return "\n".join(out) + "\n"


def _rows(names: list[str]) -> list[str]:
    """Invisible edges that put ``names`` in rows of ROW, in their order, left to right."""
    rows = [names[i:i + ROW] for i in range(0, len(names), ROW)]
    out = []
    for row in rows:
        out.append("        { rank=same; " + " ".join(f"{_dot(n)};" for n in row) + " }")
        out += [f"        {_dot(a)} -> {_dot(b)} [style=invis];" for a, b in pairwise(row)]
    out += [f"        {_dot(a[0])} -> {_dot(b[0])} [style=invis];" for a, b in pairwise(rows)]
    return out


_VERSION = re.compile(rb"<!-- Generated by graphviz[^>]*-->\n")


def overview_svg(lang: str = "ja", *, timeout: float = 60.0) -> bytes:
    """The DOT overview rendered by Graphviz' ``dot``, without its version comment (so a
    checked-in copy does not change with that alone); GraphvizMissing when it is absent."""
    return _VERSION.sub(b"", render_svg(overview_dot(lang), timeout=timeout))


# ---- Mermaid ---------------------------------------------------------------------------------

_MERMAID_SAFE = re.compile(r"[\w .,\-/()·']")


def _mermaid(*lines: str) -> str:
    """A quoted Mermaid label: lines joined by ``<br/>``, anything outside a plain set written
    as an entity code (``#35;``)."""
    return '"' + "<br/>".join("".join(ch if _MERMAID_SAFE.fullmatch(ch) else f"#{ord(ch)};" for ch in line)
                              for line in lines) + '"'


def _mermaid_id(name: str) -> str:
    return "f_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def overview_mermaid(lang: str = "ja") -> str:
    """The overview as a Mermaid ``flowchart TB``: the same boxes, groups and arrows as the DOT."""
    view = overview(lang)
    words = _WORDS[view.lang]
    out = ["---", f"title: {json.dumps(words['title'], ensure_ascii=False)}", "---", "flowchart TB"]
    for auth in GROUPS:
        boxes = view.group(auth)
        if auth == "none":
            out += [f"    {_mermaid_id(box.name)}[{_mermaid(*_lines(box, view.lang))}]" for box in boxes]
        elif boxes:
            out += [f"    subgraph group_{auth}[{_mermaid(words[auth])}]", "        direction TB"]
            out += [f"        {_mermaid_id(box.name)}[{_mermaid(*_lines(box, view.lang))}]" for box in boxes]
            out.append("    end")
    known = {box.name for box in view.flows}
    out += [f"    {_mermaid_id(name)}[{_mermaid(name)}]"
            for name in dict.fromkeys(h.target for h in view.hand_overs) if name not in known]
    for (source, target), found in view.arrows().items():
        out.append(f"    {_mermaid_id(source)} -->|{_mermaid(*(h.label for h in found))}| "
                   f"{_mermaid_id(target)}")
    return "\n".join(out) + "\n"


# ---- the documentation page ------------------------------------------------------------------

def overview_page() -> str:
    """``overview.md``: the picture (``overview.svg``), the flows with their titles in both
    languages and the hand-overs, with links to each flow's generated page (``flows/<flow>.md``)."""
    view, en = overview("ja"), overview("en")
    out = [MARKER, "", f"# {TITLE}", "",
           "Every built-in flow and where one hands over to another: the arrow from a flow is "
           "labelled with the state and the event that hand over (`state · event`), a box "
           "names the flow's first screen and how many screens it has; the dashed groups need a "
           "session. The hand-overs are those the approved paths "
           "(`regflow/machines/approved/<flow>.json`) observed. `regflow diagram --overview "
           "--format svg --lang en` draws it in English.", "",
           f"![{TITLE}](overview.svg)", "", "## Flows", ""]
    links = {box.name: f"[{code(box.name)}](flows/{box.name}.md)" for box in view.flows}
    out += table(["flow", "first screen (ja / en)", "what it does", "started by", "screens"],
                 [[links[box.name], both(box.title, en.flow(box.name).title),
                   text(box.description), _STARTED[box.auth] if box.auth in _STARTED else code(box.auth),
                   str(box.screens)] for box in view.flows])
    out += ["## Hand-overs", "",
            "Each row is a hand-over an approved path observed: the event sent in the state, and "
            "the flow the answer's `continue_with` names.", ""]
    out += table(["from", "state", "event", "to"],
                 [[links.get(h.source, code(h.source)), code(h.state), code(h.event),
                   links.get(h.target, code(h.target))] for h in view.hand_overs])
    return "\n".join(out).rstrip("\n") + "\n"


def write_overview(folder: Path) -> list[Path]:
    """Write ``overview.md`` and ``overview.svg`` (Japanese titles) to ``folder`` (meant to be
    ``<docs>/gen``), each only when its bytes change. The paths, sorted."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"overview.md": overview_page().encode("utf-8"), "overview.svg": overview_svg()}
    written = []
    for name, data in files.items():
        path = folder / name
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
        written.append(path)
    return sorted(written)
