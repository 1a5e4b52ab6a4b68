"""The reference pages of the built-in flows in the generated documentation (``docs/gen/flows/``,
written by ``regflow.docgen.site``): one page per flow (its diagram, settings with the meaning
its TOML file gives them, states, transitions, fields, messages, and a section per state with
the screenshots the browser tests take) and the index of the flows.

A flow's diagram is Graphviz' SVG written into its page, not an image: each state's box links to
its section (``#state-<name>``), where its screenshots are, and a link inside the page is a plain
fragment, right wherever the site puts the page. It is drawn at most 1000 px wide
(``tests/test_diagrams.py``), which the text column holds at full size or nearly: the site
integrates the table of contents into the navigation (``toc.integrate``), so the column is the
width of the page less the navigation.
"""

from __future__ import annotations

import json
import re
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
from regflow.diagrams.render import to_svg
from regflow.diagrams.text import after_text, describe_policy
from regflow.docgen.markdown import MARKER
from regflow.docgen.markdown import both as _both
from regflow.docgen.markdown import code as _code
from regflow.docgen.markdown import codes as _codes
from regflow.docgen.markdown import table as _table
from regflow.docgen.markdown import text as _text
from regflow.docgen.setting_notes import meanings
from regflow.ground.catalog import Catalog
from regflow.runtime.presenter import AUTOCOMPLETE

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
