"""Diagrams of a flow definition: Mermaid ``stateDiagram-v2``, Graphviz DOT and SVG.

Drawn from the definition model itself (no transitions GraphMachine): every branch of every event
is written ``event [guard, !unless] / actions ⟶ message``. A branch that follows guarded ones
without a guard of its own is ``[else]``. Timer events read ``after code_ttl (30 min) ·
code_timeout``. A branch with a retry policy other than ``default`` names it; the policies
themselves are described once, in the legend.

Mermaid is drawn by ``regflow.diagrams.mermaid`` from the layout of ``regflow.diagrams.model``
(issue 19): stays inside their state's box, one edge per pair of states. DOT and SVG are drawn
by ``regflow.diagrams.dot`` from the same layout, top to bottom. The output depends only on the
definition, in its own order: it can be checked in and compared.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping

from regflow.definitions.model import FlowDefinition
from regflow.diagrams import dot as diagram_dot
from regflow.diagrams import mermaid as diagram_mermaid
from regflow.diagrams.text import legend
from regflow.ground.exceptions import RegflowError

__all__ = [
    "GraphvizFailed",
    "GraphvizMissing",
    "legend",
    "render_svg",
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


def to_mermaid(defn: FlowDefinition, *, lang: str = "ja", links: Mapping[str, str] | None = None) -> str:
    """The flow as a Mermaid ``stateDiagram-v2``, top to bottom, titles in ``lang``: drawn from
    the same layout as the DOT diagram by ``regflow.diagrams.mermaid`` (see there; ``links`` are
    ``click`` lines, which Mermaid 11 does not apply to state boxes with descriptions)."""
    return diagram_mermaid.to_mermaid(defn, lang=lang, links=links)


# ---- Graphviz ------------------------------------------------------------------------------

def to_dot(defn: FlowDefinition, *, lang: str = "ja", links: Mapping[str, str] | None = None) -> str:
    """The flow as a Graphviz digraph, top to bottom, titles in ``lang``: drawn from the same
    layout as the Mermaid diagram by ``regflow.diagrams.dot`` (see there); ``links`` maps a
    state's name to the URL its box links to."""
    return diagram_dot.to_dot(defn, lang=lang, links=links)


def to_svg(defn: FlowDefinition, *, lang: str = "ja", links: Mapping[str, str] | None = None,
           timeout: float = 60.0) -> bytes:
    """The DOT diagram rendered by Graphviz' ``dot`` as SVG; GraphvizMissing when it is absent."""
    return render_svg(to_dot(defn, lang=lang, links=links), timeout=timeout)


def render_svg(dot_text: str, *, timeout: float = 60.0) -> bytes:
    """DOT text rendered by Graphviz' ``dot`` as SVG; GraphvizMissing when it is absent,
    GraphvizFailed when it refuses or cannot run."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissing()
    try:
        done = subprocess.run([dot, "-Tsvg"], input=dot_text.encode("utf-8"),
                              capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GraphvizFailed(f"dot could not render the diagram: {exc}") from exc
    if done.returncode != 0:
        problem = done.stderr.decode("utf-8", "replace").strip()
        raise GraphvizFailed(f"dot exited with {done.returncode}: {problem}")
    return done.stdout
