"""Diagrams from the definition model: Mermaid that Mermaid parses, DOT that Graphviz renders.

Mermaid's own parser runs in Node from ``tools/mermaid`` (mermaid + jsdom, pinned by its
lockfile; no browser), installed with ``npm ci`` once when its ``node_modules`` is missing.
"""

from __future__ import annotations

import html
import itertools
import re
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner

from regflow import FlowDefinition, FlowLibrary, Registry
from regflow.cli import main
from regflow.diagrams.render import GraphvizMissing, to_dot, to_mermaid, to_svg
from regflow.machines import BUILTIN_FLOWS, builtin_library

TOOLS = Path(__file__).resolve().parents[1] / "tools" / "mermaid"
LIBRARY = builtin_library()


@pytest.fixture(scope="session")
def mermaid_parser() -> list[str]:
    """The command that parses Mermaid from stdin; installs tools/mermaid once if needed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node/npm not installed: Mermaid syntax not checked")
    if not (TOOLS / "node_modules" / "mermaid").is_dir():
        try:
            done = subprocess.run([npm, "ci", "--prefix", str(TOOLS), "--no-audit", "--no-fund"],
                                  capture_output=True, text=True, timeout=600, check=False)
        except subprocess.TimeoutExpired:
            pytest.skip("npm ci in tools/mermaid timed out: Mermaid syntax not checked")
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["?"])[-1]
            pytest.skip(f"npm ci in tools/mermaid failed ({last}): Mermaid syntax not checked")
    return [node, str(TOOLS / "parse.mjs")]


def mermaid_errors(parser: list[str], text: str) -> str:
    """Mermaid's parse error for ``text``, or "" when it parses."""
    done = subprocess.run(parser, input=text, capture_output=True, text=True, timeout=120, check=False)
    return "" if done.returncode == 0 else done.stderr or done.stdout or f"exit {done.returncode}"


@pytest.fixture(scope="session")
def dot() -> str:
    """Graphviz' dot, or a one-line skip."""
    found = shutil.which("dot")
    if found is None:
        pytest.skip("Graphviz (dot) not installed: DOT rendering not checked")
    return found


def weird() -> FlowDefinition:
    """A flow whose names and messages need escaping in both formats."""
    registry = Registry()
    registry.guards['say "hi": now'] = lambda ctx: True
    registry.actions["act;#1"] = lambda ctx: None
    raw = {
        "name": 'odd "flow"\\x', "version": 2, "initial": "état 1",
        "retry": {"default": {}, "slow {x}": {"attempts": 5, "initial": 1, "jitter": "none"}},
        "states": {
            "état 1": {
                "screen": {"actions": ["go:now", "loop"]},
                "after": [{"after": "90", "event": "tick"}],
                "on": {
                    "go:now": [{"guard": 'say "hi": now', "target": "a-b<c>", "actions": ["act;#1"],
                                "message": "m:1 %% <br/> & {x}", "retry": "slow {x}"},
                               {"target": "état 1"}],
                    "loop": {"message": "line\nbreak"},
                    "tick": "a-b<c>",
                },
            },
            "a-b<c>": {"final": True, "status": "completed"},
        },
    }
    return FlowLibrary(registry).add(raw)


@pytest.mark.parametrize("flow", BUILTIN_FLOWS)
def test_mermaid_of_builtin_flow_parses_in_mermaid(mermaid_parser: list[str], flow: str) -> None:
    """Every built-in flow's Mermaid text is accepted by Mermaid's own parser."""
    assert mermaid_errors(mermaid_parser, to_mermaid(LIBRARY.latest(flow))) == ""


def test_mermaid_with_names_to_escape_parses(mermaid_parser: list[str]) -> None:
    """Quotes, colons, semicolons, brackets, line breaks and non-ASCII survive Mermaid's parser."""
    text = to_mermaid(weird())
    assert mermaid_errors(mermaid_parser, text) == ""
    assert 'state "#233;tat 1" as x0_' not in text  # letters stay letters
    assert 'state "état 1" as x0__tat_1' in text
    assert "a-b#60;c#62;" in text
    assert "#58;" in text
    assert "line#10;break" in text


def test_parser_rejects_broken_mermaid(mermaid_parser: list[str]) -> None:
    """The check is real: an unescaped colon in a state description is a parse error."""
    assert "Parse error" in mermaid_errors(mermaid_parser, "stateDiagram-v2\n    s_a : a: b\n")


def dot_rows(dot_text: str, head: str) -> list[str]:
    """The label rows of the DOT statement that starts with ``head`` (a node's ``"name" [`` or an
    edge's ``"a" -> "b" [``) as text: markup dropped, entities read, a continuation row (indented)
    joined to the row it continues."""
    line = next(line for line in dot_text.splitlines() if line.startswith("    " + head))
    rows: list[str] = []
    for cell in re.findall(r"<TD[^>]*>(.*?)</TD>", line):
        text = html.unescape(re.sub(r"<[^>]*>", "", cell))
        if text.startswith("\u00a0") and rows:
            rows[-1] += " " + text.lstrip("\u00a0")
        else:
            rows.append(text)
    return rows


def arrow_rows(dot_text: str, source: str, target: str) -> list[str]:
    """The branches written on the arrow from ``source`` to ``target``: the spine's edge label, or
    the node of class ``arrow`` named ``source → target`` that carries it."""
    if f'    "{source}" -> "{target}" [label=' in dot_text:
        return dot_rows(dot_text, f'"{source}" -> "{target}" [')
    return dot_rows(dot_text, f'"{source} → {target}" [')


def ranks(dot_text: str) -> dict[str, int]:
    """The planned row of every node, from the ``{ rank=same; "row N"; … }`` lines."""
    found = {}
    for row, members in re.findall(r'\{ rank=same; "row (\d+)"; (.*); \}', dot_text):
        found |= {name: int(row) for name in re.findall(r'"([^"]+)"', members)}
    return found


@pytest.mark.parametrize("flow", BUILTIN_FLOWS)
def test_dot_of_builtin_flow_renders_in_graphviz(dot: str, flow: str) -> None:
    """Graphviz renders every built-in flow in both languages without a warning; to_svg returns it."""
    for lang in ("ja", "en"):
        done = subprocess.run([dot, "-Tsvg"], input=to_dot(LIBRARY.latest(flow), lang=lang),
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0
        assert done.stderr == ""
        assert b"<svg" in to_svg(LIBRARY.latest(flow), lang=lang)


def test_dot_with_names_to_escape_renders(dot: str) -> None:
    """Quotes, angle brackets, ampersands, backslashes and line breaks survive as written; the SVG
    is well-formed XML, links included."""
    links = {"état 1": 'https://example.org/?a=1&b="2"<x>\\', "a-b<c>": "#a-b"}
    svg = to_svg(weird(), links=links).decode()
    ElementTree.fromstring(svg)  # well-formed, the URL's & " < > \\ included
    assert "a&#45;b&lt;c&gt;</text>" in svg
    assert "go:now [say &quot;hi&quot;: now]</text>" in svg
    assert "⟶ m:1 %% &lt;br/&gt; &amp; {x}</text>" in svg
    assert "loop ⟶ line\\nbreak</text>" in svg  # shown, not obeyed
    assert ">odd &quot;flow&quot;\\x v2</text>" in svg
    assert 'xlink:href="https://example.org/?a=1&amp;b=%222%22%3Cx%3E%5C"' in svg
    assert 'xlink:href="#a&#45;b"' in svg or 'xlink:href="#a-b"' in svg
    assert svg.count('target="_top"') == 2


def test_boxes_hold_their_stays_titles_entries_and_finals() -> None:
    """A state's box: name, its screen's title in the language asked for, entry actions, every
    branch that stays (a timer's with its setting and duration, a re-entry marked) — no loops."""
    reg = to_dot(LIBRARY.latest("registration"), lang="ja")
    assert dot_rows(reg, '"enter_code" [') == [
        "enter_code", "コードの入力",
        "after code_ttl (30 min) · code_timeout ⟶ code_expired",  # code_ttl = "30m"
        "submit [code_expired] ⟶ code_expired",
        "submit [code_void] ⟶ code_void",
        "submit [last_code_try] / count_wrong_code ⟶ code_tries_exhausted",
        "submit [else] / count_wrong_code ⟶ code_invalid",
        "resend_code [send_limit_reached] ⟶ send_limit",
        "resend_code [send_too_soon] ⟶ resend_too_soon",
        "↻ resend_code [else] / send_code ⟶ code_resent",
    ]
    assert '"enter_code" -> "enter_code"' not in reg
    assert dot_rows(reg, '"enter_email" [')[:3] == [
        "enter_email", "アカウントの作成", "enter / require_known_account"]
    assert dot_rows(reg, '"ready" [') == ["ready", "アカウント登録が完了しました", "final · completed"]
    assert dot_rows(reg, '"failed" [')[-1] == "final · failed"
    assert dot_rows(to_dot(LIBRARY.latest("registration"), lang="en"), '"enter_code" [')[:2] == [
        "enter_code", "Enter code"]
    sign_in = to_dot(LIBRARY.latest("sign_in"))
    assert ("submit [!password_matches] / count_failed_sign_in ⟶ credentials_invalid"
            in dot_rows(sign_in, '"credentials" ['))
    waiting = to_dot(FlowLibrary(Registry()).add({  # a state without a screen waits for its timer
        "name": "waits", "version": 1, "initial": "wait",
        "states": {"wait": {"after": [{"after": "60", "event": "tick"}], "on": {"tick": "done"}},
                   "done": {"final": True}}}))
    assert dot_rows(waiting, '"wait" [') == ["wait", "(no screen)"]
    assert 'style="rounded,filled,dashed"' in next(line for line in waiting.splitlines()
                                                   if line.startswith('    "wait" ['))
    assert arrow_rows(waiting, "wait", "done") == ["after 1 min · tick"]  # after = "60" (seconds)


def test_arrows_carry_a_line_per_branch_and_the_spine_runs_straight() -> None:
    """One arrow a pair of states, a line per branch; the spine to the successful end is heavy and
    one column, each of its states a row further down; the other ends below it."""
    reg = to_dot(LIBRARY.latest("registration"))
    assert arrow_rows(reg, "details", "failed") == [
        "submit [seat_linked] ⟶ seat_registered",
        "submit [else] / count_mismatch ⟶ contract_mismatch_limit"]
    assert arrow_rows(reg, "details", "provisioning") == [
        "submit [contract_matches, seat_free] / create_login"]
    assert arrow_rows(reg, "provisioning", "ready") == ["after provisioning_delay (10 min) · provisioned"]
    assert arrow_rows(reg, "email_taken", "handed_over") == [
        "submit / sign_in_with_password", "forgot_password / continue_with_password_reset"]
    spine = ["enter_email", "enter_code", "details", "provisioning", "ready"]
    for source, target in itertools.pairwise(spine):
        edge = next(line for line in reg.splitlines() if line.startswith(f'    "{source}" -> "{target}" ['))
        assert "weight=10" in edge
    for name in spine:
        assert "group=spine" in next(line for line in reg.splitlines() if line.startswith(f'    "{name}" ['))
    rows = ranks(reg)
    assert [rows[name] for name in spine] == [2, 4, 6, 8, 10]
    assert rows["email_taken"] == 4  # beside the spine, a row below enter_email, which leads to it
    assert min(rows[name] for name in ("handed_over", "cancelled", "expired", "failed")) > rows["ready"]
    assert rows["__start__"] == 0


def test_shared_events_and_the_expiry_are_drawn_once() -> None:
    """cancel, the same from every screen, is one note naming the states with one edge to
    cancelled; the inactivity expiry (flow_expiry = "60m") one note to expired."""
    reg = to_dot(LIBRARY.latest("registration"))
    assert dot_rows(reg, '"shared_cancel_cancelled" [') == [
        "from 4 states", "enter_email", "email_taken", "enter_code / void_code", "details"]
    assert '"shared_cancel_cancelled" -> "cancelled" [style=dashed, label=<cancel>];' in reg
    assert [line for line in reg.splitlines() if '-> "cancelled"' in line and "invis" not in line] == [
        '    "shared_cancel_cancelled" -> "cancelled" [style=dashed, label=<cancel>];']
    assert dot_rows(reg, '"expiry" [') == ["any active state", "after flow_expiry (1 h) without activity"]
    assert '"expiry" -> "expired" [style=dashed' in reg
    reset = to_dot(LIBRARY.latest("password_reset"))
    assert dot_rows(reset, '"shared_cancel_cancelled" [')[0] == "from 3 states"
    unlink = to_dot(LIBRARY.latest("unlink_login"))  # one state: an arrow, not a note
    assert arrow_rows(unlink, "confirm", "cancelled") == ["cancel"]
    assert "shared_" not in unlink


def test_legend_and_non_default_retry_policy() -> None:
    """The graph's label: title and every retry policy; a branch with its own policy names it."""
    reg = to_dot(LIBRARY.latest("registration"))
    assert "<B>registration v1</B>" in reg
    assert "retry: 3 attempts, 0.2 s ×2 ≤ 2 s, full jitter" in reg  # [retry.default] of registration.toml
    text = to_dot(weird())
    assert arrow_rows(text, "état 1", "a-b<c>") == [
        'go:now [say "hi": now] / act;#1 ⟶ m:1 %% <br/> & {x} retry slow {x}', "after 90 s · tick"]
    assert "retry slow {x}: 5 attempts, 1 s ×2 ≤ 2 s, no jitter" in text
    assert "↻ go:now [else]" in dot_rows(text, '"état 1" [')


def test_links_point_each_box_to_its_page() -> None:
    """``links`` (state → URL) link the boxes, opening in the whole window."""
    text = to_dot(LIBRARY.latest("unlink_login"), links={"confirm": "screens.html#confirm", "x": "y"})
    line = next(line for line in text.splitlines() if line.startswith('    "confirm" ['))
    assert 'URL="screens.html#confirm", target="_top"' in line
    assert text.count("URL=") == 1


def test_mermaid_keeps_one_edge_per_pair() -> None:
    """Mermaid draws one edge of a repeated pair: the branches between two states share it; a
    state without a screen is marked."""
    mermaid = to_mermaid(LIBRARY.latest("registration"))
    assert "[*] --> s_enter_email" in mermaid
    pairs = [line.split(" : ")[0] for line in mermaid.splitlines() if " --> " in line]
    assert len(pairs) == len(set(pairs))
    waiting = FlowLibrary(Registry()).add({  # a state without a screen waits for its timer
        "name": "waits", "version": 1, "initial": "wait",
        "states": {"wait": {"after": [{"after": "60", "event": "tick"}], "on": {"tick": "done"}},
                   "done": {"final": True}}})
    assert "class s_wait noscreen" in to_mermaid(waiting)


def test_output_is_deterministic() -> None:
    """Two loads of the same flow draw the same text."""
    again = builtin_library().latest("sign_in")
    assert to_mermaid(again) == to_mermaid(LIBRARY.latest("sign_in"))
    assert to_dot(again) == to_dot(LIBRARY.latest("sign_in"))


def test_svg_without_graphviz_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """No dot on PATH: a RegflowError with message id graphviz_missing, also from the CLI."""
    monkeypatch.setattr("regflow.diagrams.render.shutil.which", lambda name: None)
    with pytest.raises(GraphvizMissing, match=r"apt-get install graphviz") as info:
        to_svg(LIBRARY.latest("registration"))
    assert info.value.message_id == "graphviz_missing"
    result = CliRunner().invoke(main, ["diagram", "registration", "--format", "svg"])
    assert result.exit_code == 2
    assert result.stderr.startswith("regflow: graphviz_missing: ")


def test_cli_diagram_formats(tmp_path: Path) -> None:
    """mermaid on stdout by default, dot and svg into --output files."""
    runner = CliRunner()
    result = runner.invoke(main, ["diagram", "password_reset"])
    assert result.exit_code == 0
    assert result.stdout == to_mermaid(LIBRARY.latest("password_reset"))
    out = tmp_path / "reset.dot"
    result = runner.invoke(main, ["diagram", "password_reset", "--format", "dot", "--output", str(out)])
    assert result.exit_code == 0
    assert out.read_text() == to_dot(LIBRARY.latest("password_reset"))
    if shutil.which("dot"):
        svg = tmp_path / "reset.svg"
        result = runner.invoke(main, ["diagram", "password_reset", "--format", "svg", "-o", str(svg)])
        assert result.exit_code == 0
        assert b"</svg>" in svg.read_bytes()


def test_cli_diagram_of_a_file_and_of_nothing(tmp_path: Path) -> None:
    """A definition file is drawn; a broken one lists its faults (exit 1); an unknown name exits 2."""
    good = tmp_path / "mini.toml"
    good.write_text('name = "mini"\nversion = 1\ninitial = "a"\n[states.a]\n'
                    'screen = { actions = ["submit"] }\non.submit = "done"\n[states.done]\nfinal = true\n')
    result = CliRunner().invoke(main, ["diagram", str(good), "--format", "dot"])
    assert result.exit_code == 0
    assert arrow_rows(result.stdout, "a", "done") == ["submit"]
    broken = Path(__file__).parent / "data" / "broken.toml"
    result = CliRunner().invoke(main, ["diagram", str(broken)])
    assert result.exit_code == 1
    assert "broken.states.start.on.submit[0]: unknown guard 'contract_match'" in result.stderr
    result = CliRunner().invoke(main, ["diagram", "no_such_flow"])
    assert result.exit_code == 2
    assert "regflow: flow_not_found:" in result.stderr
