"""The generated pages of the documentation site (``make docs``), written to ``docs/gen/``.

From the built-in definitions: one reference page per flow and an index of the flows
(``regflow.docgen.flow_pages``, which also tells how a flow's diagram sits in its page), the
overview of all flows and their hand-overs (``regflow.docgen.overview``), the JSON API's OpenAPI
document with a page that reads it, and the changelog. The output depends only on its inputs (and
Graphviz, which draws the diagrams), so it is checked in and ``tests/test_docs_current.py``
compares it with a fresh run.

The pages link to the hand-written ones by paths relative to ``<docs>/gen/``, where they belong:
``python -m regflow.docgen [OUT]`` (default ``docs/gen``) writes them and, with ``--mermaid``,
copies Mermaid's browser bundle to ``<docs>/assets/`` so the site draws its diagrams offline.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from regflow.diagrams.render import GraphvizFailed
from regflow.docgen.apidocs import api_page, changelog_page
from regflow.docgen.flow_pages import diagram_svg, flow_page, flows_index, state_anchor
from regflow.docgen.markdown import MARKER
from regflow.docgen.overview import write_overview
from regflow.docgen.setting_notes import setting_comments
from regflow.docgen.traffic import traffic_pages
from regflow.machines import BUILTIN_FLOWS, builtin_library
from regflow.web.openapi import openapi_document

__all__ = ["MARKER", "bundle_mermaid", "diagram_svg", "generate", "main", "pages", "setting_comments",
           "state_anchor"]

MERMAID_BUNDLE = Path("tools/mermaid/node_modules/mermaid/dist/mermaid.min.js")


# ---- writing ---------------------------------------------------------------------------------

def pages(docs: Path, changelog: Path | None = None) -> dict[str, str]:
    """Every generated file by its path under ``<docs>/gen/``, and its text."""
    library = builtin_library()
    definitions = [library.latest(name) for name in BUILTIN_FLOWS]
    out = {"flows/index.md": flows_index(definitions, docs)}
    out.update({f"flows/{defn.name}.md": flow_page(defn, docs) for defn in definitions})
    document = openapi_document(library)
    out["openapi.json"] = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    out["api.md"] = api_page(document)
    if changelog is not None and changelog.is_file():
        out["changelog.md"] = changelog_page(changelog.read_text("utf-8"))
    out.update(traffic_pages())  # "Watching your flows": the demo's day, reported and drawn
    return dict(sorted(out.items()))


def _generated(path: Path) -> bool:
    """Whether a file in the output folder is one of ours (safe to remove when no longer made)."""
    if path.suffix == ".md":
        with path.open(encoding="utf-8") as handle:
            return handle.readline().rstrip("\n") == MARKER
    return path.name == "openapi.json"


def generate(out: Path, *, docs: Path | None = None, changelog: Path | None = None) -> list[Path]:
    """Write the generated pages to ``out`` (meant to be ``<docs>/gen``), the overview's among
    them; remove pages of ours that are no longer made. ``docs`` defaults to ``out``'s parent,
    ``changelog`` to the CHANGELOG.md beside ``docs``. The paths written, sorted; GraphvizFailed
    (GraphvizMissing) when Graphviz cannot draw the diagrams."""
    out = Path(out)
    docs = Path(docs) if docs is not None else out.resolve().parent
    changelog = Path(changelog) if changelog is not None else docs.parent / "CHANGELOG.md"
    made = pages(docs, changelog)
    written = []
    for relative, text in made.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
        written.append(path)
    written += write_overview(out)  # overview.md and overview.svg: every flow on one page
    kept = {path.relative_to(out).as_posix() for path in written}
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.relative_to(out).as_posix() not in kept and _generated(path):
            path.unlink()
    return sorted(written)


def bundle_mermaid(source: Path, docs: Path) -> Path:
    """Copy Mermaid's browser bundle to ``<docs>/assets/mermaid.min.js``, where mkdocs.yml loads
    it from, so the site draws diagrams without a CDN. FileNotFoundError when it is missing."""
    if not source.is_file():
        raise FileNotFoundError(f"{source}: not found; run `npm ci --prefix tools/mermaid`")
    target = docs / "assets" / "mermaid.min.js"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m regflow.docgen [OUT] [--mermaid FILE]``."""
    parser = argparse.ArgumentParser(prog="python -m regflow.docgen", description=(
        "Write the generated pages of the documentation site (flow references and their diagrams, "
        "the overview, API, changelog); the diagrams need Graphviz."))
    parser.add_argument("out", nargs="?", default="docs/gen", type=Path,
                        help="the folder to write, <docs>/gen (default: docs/gen)")
    parser.add_argument("--mermaid", type=Path, default=None, metavar="FILE",
                        help=f"Mermaid's mermaid.min.js to copy to <docs>/assets/ (e.g. {MERMAID_BUNDLE})")
    args = parser.parse_args(argv)
    docs = args.out.resolve().parent
    try:
        written = generate(args.out)
    except GraphvizFailed as exc:  # the diagrams need Graphviz' dot
        print(f"regflow.docgen: {exc}", file=sys.stderr)
        return 2
    print(f"regflow.docgen: {len(written)} files in {args.out}")
    if args.mermaid is not None:
        try:
            target = bundle_mermaid(args.mermaid, docs)
        except FileNotFoundError as exc:
            print(f"regflow.docgen: {exc}", file=sys.stderr)
            return 2
        print(f"regflow.docgen: Mermaid bundled as {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
