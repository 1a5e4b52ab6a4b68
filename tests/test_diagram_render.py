"""Every built-in flow's SVG diagram (and the docs' invitation flow), rendered in chromium at
100 % (device scale 1), as a person would see it (issue 19):

- at most 1000 px wide;
- no two text boxes overlapping (touching within 0.5 px is allowed);
- every state and every branch of the DEFINITION present — counted from ``defn.states`` and
  their ``on`` branches here, not from the layout the drawing is made from. A state is a node
  titled with its name. A branch that moves from S to T is a line opening with its event in the
  arrow S → T (the edge titled ``S->T``, or the node of class ``arrow`` titled ``S → T`` that
  carries the label of an arrow off the spine), or — an event shared by several states — a line
  in the edge from a note to T while the note names S on a line of its own. A branch that stays
  (or re-enters) is a line opening with its event inside S's node; a timer's opens with
  ``after …`` and names the event after ``·``. The number of such lines is the number of
  branches.

The measured widths are printed in a table at the end (``-s`` or ``-rA`` shows it).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chromium import launched, unavailable

if (_why := unavailable()) is not None:
    pytest.skip(_why, allow_module_level=True)
if shutil.which("dot") is None:
    pytest.skip("Graphviz (dot) not installed: SVG not rendered", allow_module_level=True)

from playwright.sync_api import Page

import regflow
from regflow.definitions.model import FlowDefinition
from regflow.diagrams.render import to_svg
from regflow.machines import BUILTIN_FLOWS, builtin_library, builtin_registry
from regflow.testing import load_registry

MAX_WIDTH = 1000.0  # px at 100 %
TOUCH = 0.5  # px two text boxes may share
EXAMPLES = Path(__file__).resolve().parent.parent / "regflow" / "examples"
CASES = [(flow, lang) for flow in (*BUILTIN_FLOWS, "invitation") for lang in ("ja", "en")]
WIDTHS: dict[tuple[str, str], tuple[float, float, int]] = {}  # (flow, lang) → width, height, texts

MEASURE = """() => {
  const svg = document.querySelector('svg');
  const rect = r => [r.left, r.top, r.right, r.bottom];
  const groups = [...svg.querySelectorAll('g.node, g.edge')].map(g => ({
    kind: g.classList.contains('node') ? 'node' : 'edge',
    classes: [...g.classList],
    title: (g.querySelector(':scope > title') || {textContent: ''}).textContent,
    texts: [...g.querySelectorAll('text')].map(t => t.textContent),
  }));
  const texts = [...svg.querySelectorAll('text')]
    .filter(t => t.textContent.trim() !== '')
    .map(t => [t.textContent, ...rect(t.getBoundingClientRect())]);
  const box = svg.getBoundingClientRect();
  return {width: box.width, height: box.height, groups, texts};
}"""


def definition(flow: str) -> FlowDefinition:
    """A built-in flow, or the docs' invitation flow with its own registry (docs/testing.md)."""
    if flow != "invitation":
        return builtin_library().latest(flow)
    steps = load_registry("invitation_steps:steps", EXAMPLES)
    return regflow.FlowLibrary(builtin_registry() | steps).add(EXAMPLES / "invitation.yaml")


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    """One chromium page at device scale 1 for the module."""
    with launched() as browser:
        yield browser.new_page(viewport={"width": 1600, "height": 1200}, device_scale_factor=1)


def rendered(page: Page, svg: bytes) -> dict[str, Any]:
    """The SVG inline in a page, unscaled: its size in px, its text boxes, its nodes and edges."""
    text = svg.decode("utf-8")
    page.set_content("<!doctype html><html><body style='margin:0'>" + text[text.index("<svg"):]
                     + "</body></html>")
    found: dict[str, Any] = page.evaluate(MEASURE)
    return found


def overlaps(texts: list[list[Any]]) -> list[str]:
    """Pairs of text boxes sharing more than TOUCH px both ways, with their texts."""
    out = []
    for i, (a, *one) in enumerate(texts):
        for b, *two in texts[i + 1:]:
            across = min(one[2], two[2]) - max(one[0], two[0])
            down = min(one[3], two[3]) - max(one[1], two[1])
            if across > TOUCH and down > TOUCH:
                out.append(f"{a!r} / {b!r} ({across:.1f} × {down:.1f} px)")
    return out


def opens(line: str, event: str, timer: bool) -> bool:
    """A line that starts a branch of ``event``: ``submit [else] …``; a timer's ``after … · tick``;
    a re-entry's mark ``↻`` before it."""
    line = line.removeprefix("↻ ")
    if timer:
        return line.startswith("after ") and re.search(rf" · {re.escape(event)}(?: |$)", line) is not None
    return line == event or line.startswith(event + " ")


def missing(defn: FlowDefinition, groups: list[dict[str, Any]]) -> list[str]:
    """What of the definition the drawing lacks or miscounts (see the module's docstring): for
    every state S, event E of S and state T, the lines of E in S's box (T = S) or in the arrow
    S → T against the branches of S.E that lead to T — none, for an arrow that should not say E."""
    nodes = {g["title"]: g for g in groups if g["kind"] == "node"}
    edges = {g["title"]: g["texts"] for g in groups if g["kind"] == "edge"}
    notes = [(title, g["texts"]) for title, g in nodes.items() if "note" in g["classes"]]
    faults = [f"state {name}: no node" for name in defn.states if name not in nodes]

    def lines(source: str, target: str) -> tuple[list[str], str]:
        if source == target:
            box = nodes.get(source, {"texts": []})["texts"]
            return [t for t in box if t != source], f"the box of {source}"
        label = nodes.get(f"{source} → {target}", {"classes": [], "texts": []})
        texts = edges.get(f"{source}->{target}", []) + (label["texts"] if "arrow" in label["classes"] else [])
        return texts, f"the arrow {source} → {target}"

    def noted(source: str, event: str, target: str) -> bool:
        """A note naming ``source`` on a line of its own, its edge to ``target`` saying ``event``."""
        return any(any(opens(line, event, False) for line in edges.get(f"{title}->{target}", []))
                   and any(line == source or line.startswith(source + " ") for line in texts)
                   for title, texts in notes)

    for name, state in defn.states.items():
        for event, branches in state.on.items():
            timer = event in state.timer_events
            targets = [branch.target if branch.target is not None else name for branch in branches]
            for target in defn.states:
                wanted = targets.count(target)
                texts, where = lines(name, target)
                drawn = sum(opens(line, event, timer) for line in texts)
                if target != name and wanted and not drawn and noted(name, event, target):
                    drawn = 1
                if drawn != wanted:
                    faults.append(f"{name}.{event} → {target}: {wanted} branch(es), "
                                  f"{drawn} line(s) in {where}")
    return faults


@pytest.mark.parametrize(("flow", "lang"), CASES, ids=[f"{flow}-{lang}" for flow, lang in CASES])
def test_svg_fits_reads_and_shows_the_whole_definition(page: Page, flow: str, lang: str) -> None:
    """≤ 1000 px wide at 100 %, no text over another, every state and branch of the definition."""
    defn = definition(flow)
    found = rendered(page, to_svg(defn, lang=lang))
    WIDTHS[flow, lang] = (found["width"], found["height"], len(found["texts"]))
    assert found["width"] <= MAX_WIDTH, f"{flow} ({lang}) is {found['width']:.0f} px wide"
    assert overlaps(found["texts"]) == []
    assert missing(defn, found["groups"]) == []
    if "expired" in defn.states:  # the inactivity expiry: once, from a note, to expired
        into = [g for g in found["groups"] if g["kind"] == "edge" and g["title"].endswith("->expired")]
        assert len(into) == 1
        note = next(g for g in found["groups"] if g["title"] == into[0]["title"].removesuffix("->expired"))
        assert "note" in note["classes"]
        assert any(line.startswith("after ") for line in note["texts"])


def test_the_check_sees_what_is_missing(page: Page) -> None:
    """The oracle is real: a branch dropped or drawn on the wrong arrow, a note that does not
    name a state, and text drawn over text are caught."""
    defn = definition("registration")
    found = rendered(page, to_svg(defn, lang="en"))

    def edited(title: str, texts: list[str]) -> list[dict[str, Any]]:
        return [g if g["title"] != title else {**g, "texts": texts} for g in found["groups"]]

    box = next(g["texts"] for g in found["groups"] if g["title"] == "enter_code")
    assert missing(defn, edited("enter_code", [t for t in box if "code_void" not in t])) == [
        "enter_code.submit → enter_code: 4 branch(es), 3 line(s) in the box of enter_code"]
    assert missing(defn, edited("email_taken → enter_email", ["back", "back"])) == [
        "email_taken.back → enter_email: 1 branch(es), 2 line(s) in the arrow email_taken → enter_email"]
    note = next(g for g in found["groups"] if "note" in g["classes"] and "details" in g["texts"])
    assert missing(defn, edited(note["title"], [t for t in note["texts"] if t != "details"])) == [
        "details.cancel → cancelled: 1 branch(es), 0 line(s) in the arrow details → cancelled"]
    assert overlaps([["a", 0, 0, 10, 10], ["b", 9.6, 9.6, 20, 20]]) == []
    assert overlaps([["a", 0, 0, 10, 10], ["b", 9, 9, 20, 20]]) == ["'a' / 'b' (1.0 × 1.0 px)"]


def test_zz_widths_table(capsys: pytest.CaptureFixture[str]) -> None:
    """The measured sizes of every drawing above, as a table (runs last in this module)."""
    if not WIDTHS:
        pytest.skip("no drawing was measured")
    rows = [f"{flow:<20} {lang}  {width:7.0f} × {height:5.0f} px  {texts:3d} texts"
            for (flow, lang), (width, height, texts) in WIDTHS.items()]
    with capsys.disabled():
        print("\nSVG diagrams at 100 % in chromium:\n" + "\n".join(rows))
    assert max(width for width, _, _ in WIDTHS.values()) <= MAX_WIDTH
