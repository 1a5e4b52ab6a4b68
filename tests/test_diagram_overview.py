"""The overview of the built-in flows (issue 19): every flow, exactly the hand-overs the approved
paths record, a picture that fits 1000 px in chromium without overlapping text, Mermaid that
Mermaid parses, and ``regflow diagram --overview`` / ``--lang``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_diagrams import mermaid_errors, mermaid_parser  # noqa: F401 - mermaid_parser: a fixture

from regflow.cli import main
from regflow.docgen.overview import (
    HandOver,
    hand_overs,
    overview,
    overview_dot,
    overview_mermaid,
    overview_svg,
    write_overview,
)
from regflow.machines import BUILTIN_FLOWS, builtin_library

APPROVED = Path(__file__).resolve().parents[1] / "regflow" / "machines" / "approved"
LIBRARY = builtin_library()
MAX_WIDTH = 1000  # CSS px


def expected_hand_overs() -> set[tuple[str, str, str, str]]:
    """(flow, state, event, flow continued with) of every step with a ``continue_with``, read
    straight from the approved files."""
    found = set()
    for path in sorted(APPROVED.glob("*.json")):
        record = json.loads(path.read_text("utf-8"))
        for walk in record["paths"]:
            before = walk["start"]["state"]
            for step in walk["steps"]:
                if step.get("continue_with"):
                    found.add((record["flow"], before, step["do"]["event"], step["continue_with"]["flow"]))
                before = step["state"]
    return found


def test_every_builtin_flow_and_exactly_the_approved_hand_overs() -> None:
    """The flows in BUILTIN_FLOWS order; each hand-over of the approved files once, no other."""
    view = overview()
    assert [box.name for box in view.flows] == list(BUILTIN_FLOWS)
    got = [(h.source, h.state, h.event, h.target) for h in view.hand_overs]
    assert len(got) == len(set(got))
    assert set(got) == expected_hand_overs()
    assert ("sign_in", "credentials", "create_account", "registration") in got
    assert ("registration", "provisioning", "ok", "sign_in") in got
    for box in view.flows:
        defn = LIBRARY.latest(box.name)
        assert (box.description, box.auth) == (defn.description, defn.auth)
        assert box.screens == sum(1 for s in defn.states.values() if s.screen is not None) > 0


def test_titles_follow_the_language() -> None:
    """A flow is titled by its first screen, in Japanese by default or in English."""
    assert overview().flow("sign_in").title == "サインイン"
    assert overview("en").flow("sign_in").title == "Sign in"
    assert overview("en").flow("registration").title == "Create an account"
    assert overview("fr").lang == "ja"


def test_hand_overs_of_a_record_deduplicated_with_the_state_before_the_step() -> None:
    """Two paths taking the same hand-over give it once; a timer's hand-over names what fired."""
    step = {"do": {"event": "go", "data": {}}, "state": "gone", "continue_with": {"flow": "b"}}
    timed = {"do": {"advance": 60}, "fired": ["tick"], "state": "gone", "continue_with": {"flow": "c"}}
    record: dict[str, Any] = {"flow": "a", "paths": [
        {"start": {"state": "s"}, "steps": [{"do": {"event": "next"}, "state": "t"}, step]},
        {"start": {"state": "s"}, "steps": [{"do": {"event": "next"}, "state": "t"}, step, timed]},
    ]}
    assert hand_overs(record) == [HandOver("a", "t", "go", "b"), HandOver("a", "gone", "tick", "c")]


def test_dot_labels_hand_overs_and_groups_admin_flows() -> None:
    """Arrows read ``state · event``; the admin flows (auth = "admin") sit in one cluster that
    says they start from アカウント管理."""
    text = overview_dot("en")
    for label in ("credentials · create_account", "credentials · forgot_password",
                  "email_taken · submit", "provisioning · ok", "email_taken · forgot_password"):
        assert label in text
    cluster = text.split("subgraph cluster_admin {", 1)[1].split("\n    }", 1)[0]
    admins = [n for n in BUILTIN_FLOWS if LIBRARY.latest(n).auth == "admin"]
    assert admins
    for name in BUILTIN_FLOWS:
        assert (f'"{name}" [label=' in cluster) == (name in admins), name
    assert "アカウント管理" in cluster
    assert "アカウント管理" in overview_dot("ja")


@pytest.fixture(scope="module")
def dot() -> str:
    """Graphviz' dot, or a one-line skip."""
    found = shutil.which("dot")
    if found is None:
        pytest.skip("Graphviz (dot) not installed: the overview's SVG not checked")
    return found


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_dot_renders_without_warnings(dot: str, lang: str) -> None:
    """Graphviz renders the overview silently; the SVG carries no Graphviz version comment."""
    done = subprocess.run([dot, "-Tsvg"], input=overview_dot(lang), capture_output=True, text=True,
                          timeout=120, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    svg = overview_svg(lang)
    assert b"<svg" in svg
    assert b"Generated by graphviz" not in svg


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_mermaid_parses_in_mermaid(mermaid_parser: list[str], lang: str) -> None:  # noqa: F811
    """The Mermaid flowchart is accepted by Mermaid's own parser, one arrow per pair of flows."""
    text = overview_mermaid(lang)
    assert mermaid_errors(mermaid_parser, text) == ""
    assert text.count(" -->|") == len({(h.source, h.target) for h in overview(lang).hand_overs})
    assert "f_sign_in -->|" in text


MEASURE = """() => {
    const svg = document.querySelector('svg').getBoundingClientRect();
    const texts = [...document.querySelectorAll('svg text')].map((t) => {
        const r = t.getBoundingClientRect();
        return {text: t.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom};
    });
    return {width: svg.width, height: svg.height, texts};
}"""


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_svg_fits_1000_px_without_overlapping_text(dot: str, chromium: Any, lang: str) -> None:
    """In chromium the picture is at most 1000 px wide, and no two texts overlap."""
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    try:
        svg = overview_svg(lang).decode("utf-8")
        page.set_content("<!doctype html><html><body style='margin:0'>" + svg[svg.index("<svg"):]
                         + "</body></html>")
        found = page.evaluate(MEASURE)
    finally:
        page.close()
    assert 0 < found["width"] <= MAX_WIDTH, found["width"]
    texts = found["texts"]
    assert len(texts) >= 2 * len(BUILTIN_FLOWS)
    for i, a in enumerate(texts):
        assert a["right"] <= found["width"] + 0.5, a["text"]
        for b in texts[i + 1:]:
            overlap = (min(a["right"], b["right"]) - max(a["left"], b["left"]) > 0.5
                       and min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > 0.5)
            assert not overlap, (a["text"], b["text"])


def test_write_overview_page_and_picture(dot: str, tmp_path: Path) -> None:
    """overview.md embeds overview.svg and links every flow's page; a rerun writes the same bytes."""
    written = write_overview(tmp_path)
    assert written == [tmp_path / "overview.md", tmp_path / "overview.svg"]
    page = (tmp_path / "overview.md").read_text("utf-8")
    assert page.startswith("<!-- Generated by")
    assert "\n# All flows and their hand-overs\n" in page
    assert "](overview.svg)" in page
    for name in BUILTIN_FLOWS:
        assert f"[`{name}`](flows/{name}.md)" in page
    for source, state, event, target in expected_hand_overs():
        assert (f"| [`{source}`](flows/{source}.md) | `{state}` | `{event}` | "
                f"[`{target}`](flows/{target}.md) |") in page
    first = {p.name: p.read_bytes() for p in written}
    assert {p.name: p.read_bytes() for p in write_overview(tmp_path)} == first
    assert first["overview.svg"] == overview_svg("ja")


# ---- the command line --------------------------------------------------------------------------

@pytest.mark.parametrize(("fmt", "drawn"), [("mermaid", overview_mermaid), ("dot", overview_dot)])
def test_cli_overview(fmt: str, drawn: Any) -> None:
    """``regflow diagram --overview`` draws the overview, in Japanese or with --lang en."""
    runner = CliRunner()
    result = runner.invoke(main, ["diagram", "--overview", "--format", fmt])
    assert result.exit_code == 0, result.output
    assert result.stdout == drawn("ja")
    result = runner.invoke(main, ["diagram", "--overview", "--format", fmt, "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert result.stdout == drawn("en")
    assert "Sign in" in result.stdout


def test_cli_overview_svg_to_a_file(dot: str, tmp_path: Path) -> None:
    """``--overview --format svg -o FILE`` writes the SVG and says so on stderr."""
    out = tmp_path / "overview.svg"
    result = CliRunner().invoke(main, ["diagram", "--overview", "--format", "svg", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == overview_svg("ja")
    assert "the built-in flows" in result.stderr


@pytest.mark.parametrize(("args", "message_id"), [
    (["diagram", "sign_in", "--overview"], "diagram_flow_and_overview"),
    (["diagram"], "diagram_flow_missing"),
    (["diagram", "--format", "dot"], "diagram_flow_missing"),
    (["diagram", "--overview", "--registry", "steps:steps"], "registry_unused"),
])
def test_cli_flow_or_overview(args: list[str], message_id: str) -> None:
    """FLOW and --overview together, or neither: one line with a stable message id, exit 2."""
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"regflow: {message_id}: ")
    assert result.stdout == ""


def test_cli_lang_is_ja_or_en() -> None:
    """--lang takes the catalog's languages only."""
    result = CliRunner().invoke(main, ["diagram", "--overview", "--lang", "fr"])
    assert result.exit_code == 2
    assert "'fr' is not one of 'ja', 'en'" in result.stderr


@pytest.mark.parametrize(("lang", "title"), [("ja", "サインイン"), ("en", "Sign in")])
@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_cli_flow_diagram_in_a_language(fmt: str, lang: str, title: str) -> None:
    """--lang is passed to the flow's diagram: its screens' titles are in that language."""
    from regflow.diagrams import render as diagrams

    drawn = diagrams.to_mermaid if fmt == "mermaid" else diagrams.to_dot
    result = CliRunner().invoke(main, ["diagram", "sign_in", "--format", fmt, "--lang", lang])
    assert result.exit_code == 0, result.output
    assert result.stdout == drawn(LIBRARY.latest("sign_in"), lang=lang)
    assert title in result.stdout


def test_cli_flow_svg_in_english(dot: str) -> None:
    """--lang reaches the SVG too."""
    result = CliRunner().invoke(main, ["diagram", "sign_in", "--format", "svg", "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert b"Sign in" in result.stdout_bytes
    assert "サインイン".encode() not in result.stdout_bytes
