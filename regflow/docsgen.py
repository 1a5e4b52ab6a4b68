"""The generated pages of the documentation site (``make docs``), written to ``docs/gen/``.

From the built-in definitions: one reference page per flow (its settings with the meaning its
TOML file gives them, states, transitions, fields, messages, the Mermaid diagram and the
screenshots the browser tests take), an index of the flows, the JSON API's OpenAPI document with
a page that reads it, and the changelog. The output depends only on its inputs, so it is checked
in and ``tests/test_docs_current.py`` compares it with a fresh run.

The pages link to the hand-written ones by paths relative to ``<docs>/gen/``, where they belong:
``python -m regflow.docsgen [OUT]`` (default ``docs/gen``) writes them and, with ``--mermaid``,
copies Mermaid's browser bundle to ``<docs>/assets/`` so the site draws its diagrams offline.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from regflow.apidocs import api_page, changelog_page
from regflow.catalog import Catalog
from regflow.definition import (
    FlowDefinition,
    Setting,
    StateDef,
    TransitionDef,
    format_duration,
    parse_duration,
)
from regflow.diagrams import to_mermaid
from regflow.diagrams_text import after_text, describe_policy
from regflow.machines import BUILTIN_FLOWS, builtin_library
from regflow.markdown import MARKER
from regflow.markdown import both as _both
from regflow.markdown import code as _code
from regflow.markdown import codes as _codes
from regflow.markdown import table as _table
from regflow.markdown import text as _text
from regflow.presenter import AUTOCOMPLETE
from regflow.setting_notes import meanings, setting_comments
from regflow.web.openapi import openapi_document

__all__ = ["MARKER", "bundle_mermaid", "generate", "main", "pages", "setting_comments"]

MERMAID_BUNDLE = Path("tools/mermaid/node_modules/mermaid/dist/mermaid.min.js")
AUTH = {
    "none": "none: anyone may start it",
    "session": "session: a signed-in login's session token",
    "admin": "admin: the session token of the customer's admin",
}
_JA, _EN = Catalog("ja"), Catalog("en")


# ---- one flow --------------------------------------------------------------------------------

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
        rows.append([_code(name) + (" (initial)" if name == defn.initial else ""), screen, fields,
                     actions, "<br>".join(notes)])
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


def _screenshots(defn: FlowDefinition, docs: Path) -> list[str]:
    """The flow's screenshots (``<docs>/screenshots/<flow>-<state>[-variant].png``), a row of
    thumbnails per state in the definition's order, each a link to the full picture."""
    folder = docs / "screenshots"
    shots = sorted(folder.glob(f"{defn.name}-*.png")) if folder.is_dir() else []
    order = {name: i for i, name in enumerate(defn.states)}
    groups: dict[str, list[tuple[str, str]]] = {}
    for path in shots:
        state, _, variant = path.stem[len(defn.name) + 1:].partition("-")
        groups.setdefault(state, []).append((variant, path.name))
    out: list[str] = []
    for state in sorted(groups, key=lambda s: (order.get(s, len(order)), s)):
        variants = sorted(groups[state])
        known = defn.states.get(state)
        title = _screen_title(defn, state, known, _JA) if known is not None else None
        out += [f"### {_code(state)}" + (f" — {_text(title)}" if title else ""), ""]
        images = []
        for variant, name in variants:
            caption = " — ".join(t for t in (title or state, variant.replace("_", " ")) if t)
            link = f"../../screenshots/{name}"
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


def _diagram(defn: FlowDefinition) -> str:
    """``to_mermaid`` at its natural size (the page scrolls it sideways) rather than shrunk to the
    width of the text: a ``config`` key added to its front matter."""
    lines = to_mermaid(defn).rstrip("\n").split("\n")
    if lines[0] == "---" and "---" in lines[1:]:
        end = lines.index("---", 1)
        lines[end:end] = ["config:", "  state:", "    useMaxWidth: false"]
    return "\n".join(lines)


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
            "Each edge reads `event [guards] / actions ⟶ message`; `(stay)` stays without re-entering "
            "the state; a dashed box has no screen, a thick one is final. It is drawn at full size: scroll "
            "it sideways.", "",
            "```mermaid", _diagram(defn), "```", ""]
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
    shots = _screenshots(defn, docs)
    if shots:
        out += ["## Screenshots", "",
                "Taken by the browser tests (`tests/test_browser.py`) on a phone-sized window; click "
                "one for the full picture. Every screen of the web front end is in "
                "[the screens](../../screens.md).", "", *shots]
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
           "has the flow's settings, states, transitions, fields and messages, its diagram and its "
           "screenshots.", ""]
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
    return dict(sorted(out.items()))


def _generated(path: Path) -> bool:
    """Whether a file in the output folder is one of ours (safe to remove when no longer made)."""
    if path.suffix == ".md":
        with path.open(encoding="utf-8") as handle:
            return handle.readline().rstrip("\n") == MARKER
    return path.name == "openapi.json"


def generate(out: Path, *, docs: Path | None = None, changelog: Path | None = None) -> list[Path]:
    """Write the generated pages to ``out`` (meant to be ``<docs>/gen``); remove pages of ours that
    are no longer made. ``docs`` defaults to ``out``'s parent, ``changelog`` to the CHANGELOG.md
    beside ``docs``. The paths written, sorted."""
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
    if out.is_dir():
        for path in sorted(out.rglob("*")):
            if path.is_file() and path.relative_to(out).as_posix() not in made and _generated(path):
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
    """``python -m regflow.docsgen [OUT] [--mermaid FILE]``."""
    parser = argparse.ArgumentParser(prog="python -m regflow.docsgen", description=(
        "Write the generated pages of the documentation site (flow references, API, changelog)."))
    parser.add_argument("out", nargs="?", default="docs/gen", type=Path,
                        help="the folder to write, <docs>/gen (default: docs/gen)")
    parser.add_argument("--mermaid", type=Path, default=None, metavar="FILE",
                        help=f"Mermaid's mermaid.min.js to copy to <docs>/assets/ (e.g. {MERMAID_BUNDLE})")
    args = parser.parse_args(argv)
    docs = args.out.resolve().parent
    written = generate(args.out)
    print(f"regflow.docsgen: {len(written)} files in {args.out}")
    if args.mermaid is not None:
        try:
            target = bundle_mermaid(args.mermaid, docs)
        except FileNotFoundError as exc:
            print(f"regflow.docsgen: {exc}", file=sys.stderr)
            return 2
        print(f"regflow.docsgen: Mermaid bundled as {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
