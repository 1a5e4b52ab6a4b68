"""The Mermaid diagram of every built-in flow, of the docs' invitation example and of a flow with
odd names, as a reader sees it (issue 19): Mermaid parses it, and the bundled Mermaid draws it in
chromium at 100 % at most 1000 px wide, no two texts over each other, with every state and every
branch of the definition on it — counted against the definition itself, not against the layout
the diagram was drawn from.

Where a branch is drawn: one that stays (or re-enters) as a line of its state's box; one that
moves on the edge to its target, or — an event several states take alike — as its state's line in
a note whose single edge to the target carries the event. A line that starts a branch begins with
its event (after ``⏱``/``↻``, or ``after … · `` for a timer's); a continued line is indented.
"""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chromium import launched
from test_diagrams import TOOLS, mermaid_errors, mermaid_parser, weird  # noqa: F401 - a fixture

from regflow import FlowDefinition, FlowLibrary
from regflow.diagrams.mermaid import to_mermaid
from regflow.machines import BUILTIN_FLOWS, builtin_library, builtin_registry

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "regflow" / "examples"
BUNDLES = [ROOT / "docs" / "assets" / "mermaid.min.js",  # what the site loads (make docs copies it)
           TOOLS / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"]
MAX_WIDTH = 1000  # CSS px at 100 %
LIBRARY = builtin_library()


def invitation() -> FlowDefinition:
    """regflow/examples/invitation.yaml with its own guards and actions (invitation_steps.py) and
    the built-in validators."""
    spec = importlib.util.spec_from_file_location("invitation_steps", EXAMPLES / "invitation_steps.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return FlowLibrary(builtin_registry() | module.steps).add(EXAMPLES / "invitation.yaml")


FLOWS = {name: LIBRARY.latest(name) for name in BUILTIN_FLOWS} | {"invitation": invitation()}
CASES = [(name, lang) for name in FLOWS for lang in ("ja", "en")]


@pytest.mark.parametrize(("flow", "lang"), CASES)
def test_mermaid_parses(mermaid_parser: list[str], flow: str, lang: str) -> None:  # noqa: F811
    """Mermaid's own parser accepts every flow's diagram in either language."""
    assert mermaid_errors(mermaid_parser, to_mermaid(FLOWS[flow], lang=lang)) == ""


# ---- drawn by the bundled Mermaid in chromium ---------------------------------------------------

DRAW = """async (text) => {
    const out = document.getElementById('out');
    out.innerHTML = '';
    const {svg} = await mermaid.render('d' + (window.drawn = (window.drawn || 0) + 1), text);
    out.innerHTML = svg;
    const root = out.querySelector('svg');
    const rect = (r) => ({left: r.left, right: r.right, top: r.top, bottom: r.bottom});
    const words = (el) => (el.innerText ?? el.textContent ?? '').replace(/\\s+$/, '');
    const html = (el) => el.querySelector('foreignObject > *') || el;  // innerText: <br> as a line break
    const texts = [];  // every text box: the union of its text's line boxes
    for (const el of root.querySelectorAll('foreignObject, text')) {
        if (el.tagName === 'text' && el.closest('foreignObject')) continue;
        const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
        let box = null;
        while (walker.nextNode()) {
            if (!walker.currentNode.textContent.trim()) continue;
            const range = document.createRange();
            range.selectNodeContents(walker.currentNode);
            for (const r of range.getClientRects()) {
                box = box ? {left: Math.min(box.left, r.left), right: Math.max(box.right, r.right),
                             top: Math.min(box.top, r.top), bottom: Math.max(box.bottom, r.bottom)}
                          : rect(r);
            }
        }
        if (box) texts.push({text: el.textContent.trim().slice(0, 60), ...box});
    }
    const nodes = [...root.querySelectorAll('g.node')].map((g) => {
        const labels = [...g.querySelectorAll('foreignObject')].map((f) => words(f.firstElementChild || f));
        return {title: labels[0] ?? '', lines: labels.slice(1).join('\\n').split('\\n').filter((l) => l),
                ...rect(g.getBoundingClientRect())};
    });
    const nearest = (p) => {
        let best = -1, gap = Infinity;
        nodes.forEach((n, i) => {
            const dx = Math.max(n.left - p.x, 0, p.x - n.right);
            const dy = Math.max(n.top - p.y, 0, p.y - n.bottom);
            if (Math.hypot(dx, dy) < gap) { gap = Math.hypot(dx, dy); best = i; }
        });
        return best;
    };
    const edges = [...root.querySelectorAll('path[data-edge="true"]:not(.note-edge)')].map((path) => {
        const ctm = path.getScreenCTM();
        const at = (len) => path.getPointAtLength(len).matrixTransform(ctm);
        const label = root.querySelector(`g.label[data-id="${CSS.escape(path.dataset.id)}"]`);
        return {source: nearest(at(0)), target: nearest(at(path.getTotalLength())),
                lines: label ? words(html(label)).split('\\n').filter((l) => l.trim()) : []};
    });
    return {width: root.getBoundingClientRect().width, texts, nodes, edges};
}"""


@pytest.fixture(scope="module")
def page(mermaid_parser: list[str]) -> Iterator[Any]:  # noqa: F811 - installs tools/mermaid
    """A chromium page at 100 % with the bundled Mermaid loaded, or a one-line skip."""
    bundle = next((path for path in BUNDLES if path.is_file()), None)
    if bundle is None:
        pytest.skip("no mermaid.min.js (npm ci --prefix tools/mermaid): Mermaid's drawing not checked")
    with launched() as browser:
        context = browser.new_context(viewport={"width": 1600, "height": 1000}, device_scale_factor=1)
        tab = context.new_page()
        tab.set_content("<!doctype html><html><head><meta charset='utf-8'></head>"
                        "<body style='margin:0'><div id='out'></div></body></html>")
        tab.add_script_tag(path=str(bundle))
        tab.evaluate("() => mermaid.initialize({startOnLoad: false})")
        yield tab


def overlaps(texts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The pairs of text boxes that share more than half a pixel each way."""
    found = []
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            if (min(a["right"], b["right"]) - max(a["left"], b["left"]) > 0.5
                    and min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > 0.5):
                found.append((a["text"], b["text"]))
    return found


def starts(lines: list[str], defn: FlowDefinition, state: str, event: str) -> int:
    """How many of ``lines`` start a branch of ``event`` (a timer's reads ``after … · event``)."""
    head = r"after .+? · " if event in defn.states[state].timer_events else ""
    pattern = re.compile(rf"(?:[⏱↻] )?{head}{re.escape(event)}(?: |$)")
    return sum(1 for line in lines if pattern.match(line))


def check_drawing(defn: FlowDefinition, found: dict[str, Any]) -> None:
    """Width, overlaps, and every state and branch of ``defn`` where it belongs (module docstring)."""
    assert 0 < found["width"] <= MAX_WIDTH, found["width"]
    assert overlaps(found["texts"]) == []
    nodes = found["nodes"]
    titles = [node["title"] for node in nodes]
    assert [name for name in defn.states if titles.count(name) != 1] == [], titles
    index = {name: titles.index(name) for name in defn.states}
    notes = {i for i, node in enumerate(nodes) if re.fullmatch(r"from \d+ states", node["title"])}
    edges: dict[tuple[int, int], list[str]] = {}
    for edge in found["edges"]:
        assert (edge["source"], edge["target"]) not in edges, "a pair of boxes joined twice"
        edges[(edge["source"], edge["target"])] = edge["lines"]
    for name, state in defn.states.items():
        box = nodes[index[name]]["lines"]
        for event, branches in state.on.items():
            stays = sum(1 for b in branches if b.target in (None, name))
            assert starts(box, defn, name, event) == stays, (name, event, box)
            for target in {b.target for b in branches if b.target not in (None, name)}:
                wanted = sum(1 for b in branches if b.target == target)
                on_edge = starts(edges.get((index[name], index[target]), []), defn, name, event)
                listed = re.compile(rf"{re.escape(name)}(?: |$)")
                in_notes = sum(1 for note in notes if event in edges.get((note, index[target]), [])
                               and any(listed.match(line) for line in nodes[note]["lines"]))
                assert on_edge + in_notes == wanted, (name, event, target)
    for (source, target), lines in edges.items():  # no line on an edge that is no branch
        if source in index.values() and target in index.values():
            name = titles[source]
            drawn = [line for line in lines if not line.startswith("\u00a0")]
            branches = [b for bs in defn.states[name].on.values() for b in bs if b.target == titles[target]]
            assert len(drawn) == len(branches), (name, lines)
    if "expired" in defn.states:  # the inactivity expiry: one box, one edge
        expiry = titles.index("any active state")
        assert any(re.search(r"without activity", line) for line in nodes[expiry]["lines"])
        assert (expiry, index["expired"]) in edges


@pytest.mark.parametrize(("flow", "lang"), CASES)
def test_drawn_whole_and_readable(page: Any, flow: str, lang: str) -> None:
    """≤ 1000 px at 100 %, no text over another, every state and branch of the definition."""
    check_drawing(FLOWS[flow], page.evaluate(DRAW, to_mermaid(FLOWS[flow], lang=lang)))


def test_odd_names_are_drawn_as_written(page: Any) -> None:
    """Quotes, <>, &, %, {}, #, colons and line breaks in names reach the picture as written."""
    defn = weird()
    found = page.evaluate(DRAW, to_mermaid(defn, links={"état 1": 'https://example.com/"a"'}))
    check_drawing(defn, found)
    lines = [line for node in found["nodes"] for line in node["lines"]]
    lines += [line for edge in found["edges"] for line in edge["lines"]]
    text = "\n".join(lines)
    assert "m:1 %% <br/> & {x}" in text
    assert "retry slow {x}" in text
    assert any(t["text"] == 'odd "flow"\\x v2' for t in found["texts"])


def test_every_builtin_flow_reaches_its_states() -> None:
    """The cases cover every built-in flow in both languages, and the invitation example."""
    assert Counter(flow for flow, _ in CASES) == Counter(dict.fromkeys((*BUILTIN_FLOWS, "invitation"), 2))
