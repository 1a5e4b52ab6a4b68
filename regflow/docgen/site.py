"""The generated pages of the documentation site (``make docs``), written to ``docs/gen/``.

From the built-in definitions: one reference page per flow (its diagram, settings with the
meaning its TOML file gives them, states, transitions, fields, messages, and a section per state
with the screenshots the browser tests take), an index of the flows, the overview of all flows
and their hand-overs (``regflow.docgen.overview``), the JSON API's OpenAPI document with a page
that reads it, and the changelog. The output depends only on its inputs (and Graphviz, which
draws the diagrams), so it is checked in and ``tests/test_docs_current.py`` compares it with a
fresh run.

A flow's diagram is Graphviz' SVG written into its page, not an image: each state's box links to
its section (``#state-<name>``), where its screenshots are, and a link inside the page is a plain
fragment, right wherever the site puts the page. It is drawn at most 1000 px wide
(``tests/test_diagrams.py``), which the text column holds at full size or nearly: the site
integrates the table of contents into the navigation (``toc.integrate``), so the column is the
width of the page less the navigation.

The pages link to the hand-written ones by paths relative to ``<docs>/gen/``, where they belong:
``python -m regflow.docgen [OUT]`` (default ``docs/gen``) writes them and, with ``--mermaid``,
copies Mermaid's browser bundle to ``<docs>/assets/`` so the site draws its diagrams offline.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from regflow.definitions.model import (
    FlowDefinition,
    Setting,
    StateDef,
    TransitionDef,
    format_duration,
    parse_duration,
)
from regflow.diagrams.render import GraphvizFailed, to_svg
from regflow.diagrams.text import after_text, describe_policy
from regflow.docgen.apidocs import api_page, changelog_page
from regflow.docgen.markdown import MARKER
from regflow.docgen.markdown import both as _both
from regflow.docgen.markdown import code as _code
from regflow.docgen.markdown import codes as _codes
from regflow.docgen.markdown import table as _table
from regflow.docgen.markdown import text as _text
from regflow.docgen.overview import write_overview
from regflow.docgen.setting_notes import meanings, setting_comments
from regflow.docgen.traffic import traffic_pages
from regflow.ground.catalog import Catalog
from regflow.machines import BUILTIN_FLOWS, builtin_library
from regflow.runtime.presenter import AUTOCOMPLETE
from regflow.web.openapi import openapi_document

__all__ = ["MARKER", "bundle_mermaid", "diagram_svg", "generate", "main", "pages", "setting_comments",
           "state_anchor"]

MERMAID_BUNDLE = Path("tools/mermaid/node_modules/mermaid/dist/mermaid.min.js")
AUTH = {
    "none": "none: anyone may start it",
    "session": "session: a signed-in login's session token",
    "admin": "admin: the session token of the customer's admin",
}
_JA, _EN = Catalog("ja"), Catalog("en")
DIAGRAM_LANG = "ja"  # the screens' titles in the diagrams: the product's language, as the screenshots


# ---- one flow --------------------------------------------------------------------------------

def state_anchor(name: str) -> str:
    """The id of a state's section on its flow's page: ``state-enter_code``."""
    return "state-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


_COMMENT = re.compile(r"<!--.*?-->", re.S)


def diagram_svg(defn: FlowDefinition) -> str:
    """The flow's SVG to write into its page: each box links to its state's section; Graphviz'
    prolog, doctype and comments (its version among them) left out, and no blank line, which
    would end Markdown's raw HTML block."""
    links = {name: f"#{state_anchor(name)}" for name in defn.states}
    svg = to_svg(defn, lang=DIAGRAM_LANG, links=links).decode("utf-8")
    svg = _COMMENT.sub("", svg[svg.index("<svg"):])
    return "\n".join(line for line in svg.splitlines() if line.strip())


def _setting_value(value: Setting) -> str:
    if isinstance(value, bool):
        return _code("true" if value else "false")
    try:
        seconds = parse_duration(value) if isinstance(value, str) else None
    except ValueError:
        seconds = None
    shown = _code(value)
    return f"{shown} ({format_duration(seconds)})" if seconds is not None else shown


def _screen_title(defn: FlowDefinition, state_name: str, state: StateDef, catalog: Catalog) -> str | None:
    keys = [state.screen.title] if state.screen is not None and state.screen.title else []
    keys += [f"screen.{defn.name}.{state_name}.title", f"screen.{state_name}.title"]
    return Catalog(catalog.lang, defn.texts).find(*keys)


def _action_label(defn: FlowDefinition, state_name: str, event: str, label: str | None,
                  catalog: Catalog) -> str | None:
    keys = [label] if label else []
    keys += [f"action.{defn.name}.{state_name}.{event}", f"action.{event}"]
    return Catalog(catalog.lang, defn.texts).find(*keys)


def _state_rows(defn: FlowDefinition) -> list[list[str]]:
    langs = (_JA, _EN)
    rows = []
    for name, state in defn.states.items():
        title = _both(_screen_title(defn, name, state, _JA), _screen_title(defn, name, state, _EN))
        if state.screen is None:
            screen, fields, actions = ("no screen" if not state.final else title), "—", "—"
        else:
            screen, fields = title, _codes(state.screen.fields)
            actions = "<br>".join(
                f"{_code(a.event)} {_both(*(_action_label(defn, name, a.event, a.label, c) for c in langs))}"
                + (f" (while {_code(a.when)})" if a.when else "")
                for a in state.screen.actions) or "—"
        notes = [f"on entry {_codes(state.enter)}"] if state.enter else []
        notes += [f"{_text(after_text(defn, t.after))} → {_code(t.event)}" for t in state.after]
        notes += [f"final: {_code(state.status or 'completed')}"] if state.final else []
        initial = " (initial)" if name == defn.initial else ""
        rows.append([f"[{_code(name)}](#{state_anchor(name)}){initial}", screen, fields, actions,
                     "<br>".join(notes)])
    return rows


def _condition(branches: Sequence[TransitionDef], index: int) -> str:
    branch = branches[index]
    if branch.guarded:
        return ", ".join([*(_code(g) for g in branch.guard), *(f"not {_code(u)}" for u in branch.unless)])
    return "else" if any(b.guarded for b in branches[:index]) else "always"


def _transition_rows(defn: FlowDefinition) -> tuple[list[str], list[list[str]]]:
    retries = any(b.retry != "default" for s in defn.states.values() for bs in s.on.values() for b in bs)
    header = ["state", "event", "when", "target", "actions", "message"] + (["retry"] if retries else [])
    rows = []
    for name, state in defn.states.items():
        for event, branches in state.on.items():
            timers = [t for t in state.after if t.event == event]
            shown = _code(event) + "".join(f" (timer, {_text(after_text(defn, t.after))})" for t in timers)
            for index, branch in enumerate(branches):
                if branch.target is None:
                    target = "stays"
                elif branch.target == name:
                    target = f"{_code(name)} (re-entered)"
                else:
                    target = _code(branch.target)
                message = "" if branch.message is None else _code(branch.message) + (
                    f" ({branch.level})" if branch.level != "error" else "")
                row = [_code(name), shown, _condition(branches, index), target,
                       _codes(branch.actions, ""), message]
                rows.append(row + ([_code(branch.retry)] if retries else []))
    return header, rows


def _field_rows(defn: FlowDefinition) -> list[list[str]]:
    rows = []
    for name, field in defn.fields.items():
        constraints = ", ".join(f"{key} {_code(json.dumps(value, ensure_ascii=False))}"
                                for key, value in field.constraints.items())
        autocomplete = field.autocomplete or AUTOCOMPLETE.get(field.type)
        label = _both(_JA.find(field.label or f"field.{name}"), _EN.find(field.label or f"field.{name}"))
        rows.append([_code(name), label, _code(field.type), "yes" if field.required else "no",
                     _codes(field.validate, ""), constraints, _code(autocomplete) if autocomplete else "",
                     "yes" if field.is_secret else ""])
    return rows


def _message_rows(defn: FlowDefinition) -> list[list[str]]:
    levels: dict[str, list[str]] = {}
    for state in defn.states.values():
        for branches in state.on.values():
            for branch in branches:
                if branch.message is not None:
                    found = levels.setdefault(branch.message, [])
                    if branch.level not in found:
                        found.append(branch.level)
    ja, en = Catalog("ja", defn.texts), Catalog("en", defn.texts)
    return [[_code(mid), ", ".join(found), _text(en.find(f"message.{mid}") or "—"),
             _text(ja.find(f"message.{mid}") or "—")] for mid, found in levels.items()]


def _screenshots(defn: FlowDefinition, docs: Path) -> dict[str, list[tuple[str, str]]]:
    """The flow's screenshots (``<docs>/screenshots/<flow>-<state>[-variant].png``) by state:
    (variant, file name), sorted."""
    folder = docs / "screenshots"
    shots = sorted(folder.glob(f"{defn.name}-*.png")) if folder.is_dir() else []
    groups: dict[str, list[tuple[str, str]]] = {}
    for path in shots:
        state, _, variant = path.stem[len(defn.name) + 1:].partition("-")
        groups.setdefault(state, []).append((variant, path.name))
    return {state: sorted(found) for state, found in groups.items()}


def _state_sections(defn: FlowDefinition, docs: Path) -> list[str]:
    """A section per state, in the definition's order, the diagram's boxes link to
    (``#state-<name>``): its titles and its screenshots, thumbnails each a link to the picture."""
    shots = _screenshots(defn, docs)
    out: list[str] = []
    for name, state in defn.states.items():
        title = _both(_screen_title(defn, name, state, _JA), _screen_title(defn, name, state, _EN))
        out += [f'### <a id="{state_anchor(name)}"></a>{_code(name)}' + (f" — {title}" if title else ""), ""]
        variants = shots.get(name, [])
        if not variants:
            kind = ("final" if state.final else "no screen" if state.screen is None else "a screen")
            out += [f"No screenshot ({kind}).", ""]
            continue
        images = []
        for variant, file in variants:
            caption = " — ".join(t for t in (_screen_title(defn, name, state, _JA) or name,
                                             variant.replace("_", " ")) if t)
            link = f"../../screenshots/{file}"
            images.append(f'[![{_text(caption)}]({link} "{caption.replace(chr(34), chr(39))}")]({link})')
        out += [" ".join(images), ""]
        if len(variants) > 1:
            names = ", ".join("the screen" if not v else _code(v) for v, _ in variants)
            out += [f"From the left: {names}.", ""]
    return out


def _hand_written(name: str, docs: Path) -> list[tuple[str, str]]:
    """The hand-written flow pages about ``name``: ``flows/<name>.md``, else those naming it."""
    folder = docs / "flows"
    if not folder.is_dir():
        return []
    own = folder / f"{name}.md"
    candidates = [own] if own.is_file() else [
        p for p in sorted(folder.glob("*.md")) if f"`{name}`" in p.read_text("utf-8")]
    out = []
    for page in candidates:
        text = page.read_text("utf-8")
        heading = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), page.stem)
        out.append((heading, f"../../flows/{page.name}"))
    return out


def flow_page(defn: FlowDefinition, docs: Path) -> str:
    """The reference page of one flow, in Markdown."""
    source = f"regflow/machines/{defn.name}.toml"
    comments = meanings(defn.name)
    context = ", ".join(f'"{k}": ...' for k in defn.context)
    start = f'engine.start("{defn.name}"' + (f", {{{context}}}" if defn.context else "") + (
        ", session=token)" if defn.auth != "none" else ")")
    out = [MARKER, "", f"# {_code(defn.name)}", ""]
    if defn.description:
        out += [_text(defn.description), ""]
    pages = _hand_written(defn.name, docs)
    prose = ", ".join(f"[{_text(title)}]({link})" for title, link in pages)
    out += [f"Generated from the definition {_code(source)}."
            + (f" The rules in prose: {prose}." if prose else ""), ""]
    expiry_setting = f" (setting {_code(defn.expiry[1:])})" if defn.expiry.startswith("@") else ""
    facts = [
        ["version", str(defn.version)],
        ["start", _code(start)],
        ["context", _codes(defn.context)],
        ["auth", _text(AUTH.get(defn.auth, defn.auth))],
        ["initial state", _code(defn.initial)],
        ["expiry", f"{format_duration(defn.seconds(defn.expiry))} without activity{expiry_setting}"],
        ["security log", "every step" if defn.security_log else "no"],
        *[[f"retry {_code(name)}", _text(describe_policy(policy))] for name, policy in defn.retry.items()],
    ]
    out += [f"- **{label}**: {value}" for label, value in facts] + [""]
    out += ["## Diagram", "",
            "Read it from the top: the successful path is the tinted column, the other ends are at the "
            "bottom. A box is a state: its name, its screen's title, and the branches that stay in it "
            "(`↻` re-enters it and restarts its timers); an arrow carries the branches to another state, "
            "each `event [guards] / actions ⟶ message`. A timer's branches are blue and say when it "
            "fires. A note stands for an event several states take alike (`cancel`) and for the "
            "inactivity expiry. A dashed box has no screen, a double one is final. Click a state for its "
            "section and screenshots below; "
            f"`regflow diagram {defn.name} --format svg --lang en` draws it with English titles.", "",
            '<div class="regflow-diagram">', diagram_svg(defn), "</div>", ""]
    if defn.settings:
        out += ["## Settings", "",
                "Override them with `Engine.from_url(..., settings={\"" + defn.name + "\": {...}})`; a new "
                "value keeps the shape of the default.", ""]
        rows = []
        for key, value in defn.settings.items():
            meaning = _text(comments.get(key, ""))
            if key in defn.choices:
                meaning = "; ".join(t for t in (meaning, "one of " + _codes(defn.choices[key])) if t)
            rows.append([_code(key), _setting_value(value), meaning])
        out += _table(["setting", "default", "meaning"], rows)
    out += ["## States", ""]
    out += _table(["state", "screen (ja / en)", "fields", "actions", "entry, timers, end"],
                  _state_rows(defn))
    out += ["## Transitions", "",
            "The branches of an event are tried in order; the first whose conditions hold is taken.", ""]
    header, rows = _transition_rows(defn)
    out += _table(header, rows)
    if defn.fields:
        out += ["## Fields", ""]
        out += _table(["field", "label (ja / en)", "type", "required", "validators", "constraints",
                       "autocomplete", "secret"], _field_rows(defn))
    messages = _message_rows(defn)
    if messages:
        out += ["## Messages", "", "Named by the transitions (validators and actions add their own).", ""]
        out += _table(["message", "level", "English", "日本語"], messages)
    out += ["## State by state", "",
            "The screenshots are taken by the browser tests (`tests/test_browser.py`) on a phone-sized "
            "window; click one for the full picture. Every screen of the web front end is in "
            "[the screens](../../screens.md).", "", *_state_sections(defn, docs)]
    return "\n".join(out).rstrip("\n") + "\n"


def flows_index(definitions: Sequence[FlowDefinition], docs: Path) -> str:
    """The list of built-in flows with links to their pages."""
    rows = []
    for defn in definitions:
        prose = ", ".join(f"[{_text(title)}]({link})" for title, link in _hand_written(defn.name, docs))
        rows.append([f"[{_code(defn.name)}]({defn.name}.md)", _text(defn.description),
                     _codes(defn.context), defn.auth, prose or "—"])
    out = [MARKER, "", "# Built-in flows", "",
           "Every flow regflow ships, generated from its definition in `regflow/machines/`. Each page "
           "has the flow's diagram, settings, states, transitions, fields and messages, and a section "
           "per state with its screenshots. All of them on one page, with the hand-overs between them: "
           "[the overview](../overview.md).", ""]
    out += _table(["flow", "what it does", "context", "auth", "in prose"], rows)
    return "\n".join(out).rstrip("\n") + "\n"


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
