"""Diagrams from the definition model: Mermaid that Mermaid parses, DOT that Graphviz renders.

Mermaid's own parser runs in Node from ``tools/mermaid`` (mermaid + jsdom, pinned by its
lockfile; no browser), installed with ``npm ci`` once when its ``node_modules`` is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from regflow import FlowDefinition, FlowLibrary, Registry
from regflow.cli import main
from regflow.diagrams import GraphvizMissing, to_dot, to_mermaid, to_svg
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


@pytest.mark.parametrize("flow", BUILTIN_FLOWS)
def test_dot_of_builtin_flow_renders_in_graphviz(dot: str, flow: str) -> None:
    """Graphviz renders every built-in flow without a warning, and to_svg returns its SVG."""
    done = subprocess.run([dot, "-Tsvg"], input=to_dot(LIBRARY.latest(flow)), capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0
    assert done.stderr == ""
    assert b"<svg" in to_svg(LIBRARY.latest(flow))


def test_dot_with_names_to_escape_renders(dot: str) -> None:
    """Quotes and backslashes are escaped; the names appear in the SVG as written."""
    text = to_dot(weird())
    assert 'digraph "odd \\"flow\\"\\\\x" {' in text
    svg = to_svg(weird()).decode()
    assert "a&#45;b&lt;c&gt;" in svg
    assert "say &quot;hi&quot;: now" in svg
    assert "&amp; {x} retry slow {x}</text>" in svg
    assert ">odd &quot;flow&quot;\\x v2</text>" in svg


def test_labels_carry_guards_timers_retries_and_finals() -> None:
    """Guard outcomes, else-branches, timers with their setting, stays, finals and the retry legend."""
    reg = LIBRARY.latest("registration")
    for text in (to_mermaid(reg), to_dot(reg)):
        assert "submit [contract_matches, seat_free] / create_login" in text
        assert "submit [contract_matches] ⟶ license_full (stay)" in text
        assert "submit [else] / count_mismatch ⟶ contract_mismatch_limit" in text
        assert "after code_ttl (30 min) · code_timeout ⟶ code_expired (stay)" in text
        assert "after provisioning_delay (10 min) · provisioned" in text
        assert "3 attempts, 0.2 s ×2 ≤ 2 s, full jitter" in text
        assert "resend_code [else] / send_code ⟶ code_resent" in text
        assert "(1 h) without activity" in text
    mermaid = to_mermaid(reg)
    assert "[*] --> s_enter_email" in mermaid
    assert "s_ready --> [*]" in mermaid
    assert "s_ready : final#58; completed" in mermaid
    assert "s_failed : final#58; failed" in mermaid
    assert "s_provisioning --> s_provisioning : ok / continue_with_sign_in (stay)" in mermaid
    waiting = FlowLibrary(Registry()).add({  # a state without a screen waits for its timer
        "name": "waits", "version": 1, "initial": "wait",
        "states": {"wait": {"after": [{"after": "60", "event": "tick"}], "on": {"tick": "done"}},
                   "done": {"final": True}}})
    assert "class s_wait noscreen" in to_mermaid(waiting)
    assert "(stay)<br/>resend_code [else] / send_code ⟶ code_resent\n" in mermaid  # a re-entry
    pairs = [line.split(" : ")[0] for line in mermaid.splitlines() if " --> " in line]
    assert len(pairs) == len(set(pairs))  # Mermaid would draw only one edge of a repeated pair
    sign_in = to_mermaid(LIBRARY.latest("sign_in"))
    assert "submit [!password_matches] / count_failed_sign_in ⟶ credentials_invalid (stay)" in sign_in
    dot_text = to_dot(reg)
    assert '"__start__" -> "enter_email";' in dot_text
    assert '"ready" [label="ready\\nfinal: completed", style="rounded,bold", peripheries=2];' in dot_text
    assert '"wait" [label="wait\\nno screen", style="rounded,dashed"];' in to_dot(waiting)
    stays = [line for line in dot_text.splitlines() if '"enter_code" -> "enter_code"' in line]
    assert len(stays) == 3  # the timer's stay, the other stays, the re-entry
    assert sum("style=dashed" in line for line in stays) == 2


def test_non_default_retry_policy_is_named_on_its_branch() -> None:
    """A branch with its own retry policy names it; the legend describes every policy once."""
    text = to_dot(weird())
    assert "retry slow {x}" in text
    assert "retry slow {x}: 5 attempts, 1 s ×2 ≤ 2 s, no jitter" in text
    assert "after 90 s · tick" in text
    assert "go:now [else]" in text


def test_output_is_deterministic() -> None:
    """Two loads of the same flow draw the same text."""
    again = builtin_library().latest("sign_in")
    assert to_mermaid(again) == to_mermaid(LIBRARY.latest("sign_in"))
    assert to_dot(again) == to_dot(LIBRARY.latest("sign_in"))


def test_svg_without_graphviz_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """No dot on PATH: a RegflowError with message id graphviz_missing, also from the CLI."""
    monkeypatch.setattr("regflow.diagrams.shutil.which", lambda name: None)
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
    assert '"a" -> "done" [label="submit"];' in result.stdout
    broken = Path(__file__).parent / "data" / "broken.toml"
    result = CliRunner().invoke(main, ["diagram", str(broken)])
    assert result.exit_code == 1
    assert "broken.states.start.on.submit[0]: unknown guard 'contract_match'" in result.stderr
    result = CliRunner().invoke(main, ["diagram", "no_such_flow"])
    assert result.exit_code == 2
    assert "regflow: flow_not_found:" in result.stderr
