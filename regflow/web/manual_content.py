"""The 管理者用操作マニュアル (the guide's admin manual): its content, built from the admin flows.

A hand-written introduction per language (``regflow/data/manual/intro.<lang>.md``: the admin's
rules from the guide) comes first; then one section per admin flow, generated from the flow's
definition in the engine's library and the texts of the page's language: the button that starts
it on アカウント管理, its confirm screen (title, text, fields, buttons and the screen each
leads to), its done screen and the messages it can show, with what follows each. Nothing in a
section is written twice: a text changed in the catalog or a definition changes the manual.

Screenshots (``admin.<lang>.png``, ``<flow>-<state>.<lang>.png``) are package data in the same
folder, rewritten by ``tests/test_manual.py`` in a real browser; a missing one is left out.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from importlib.resources.abc import Traversable

import attrs
from markupsafe import Markup, escape

from regflow.definitions.library import FlowLibrary
from regflow.definitions.model import FlowDefinition, StateDef, TransitionDef
from regflow.ground.catalog import Catalog
from regflow.web.forms import Texts

FOLDER = "data/manual"
SHOT_NAME = re.compile(r"[a-z_]+(?:-[a-z_]+)?\.(?:ja|en)\.png")
ADMIN_BUTTONS = {  # flow → the key of its button on アカウント管理 (admin.html.j2)
    "unlink_login": "admin.unlink", "delete_login": "admin.delete", "transfer_admin": "admin.transfer",
    "unlock_login": "admin.unlock", "require_two_factor": "admin.require_two_factor",
    "set_two_factor": "admin.set_two_factor",
}
_REFERENCE = re.compile(r"\{([a-z_]+(?:\.[a-z_]+)+)\}")  # a catalog key: {web.admin_link}
_STRONG = re.compile(r"\*\*(.+?)\*\*")


@attrs.frozen
class Shot:
    """A screenshot: its file name in the package and what it shows."""

    name: str
    caption: str


@attrs.frozen
class ScreenView:
    """One screen of a flow as the manual describes it."""

    title: str
    text: str | None
    fields: tuple[str, ...] = ()
    shot: Shot | None = None


@attrs.frozen
class Row:
    """A line of a section's table: a button or a message, and what follows it."""

    what: str
    then: str


@attrs.frozen
class Section:
    """What the manual says about one admin flow."""

    flow: str
    heading: str
    where: str
    when: str | None
    confirm: ScreenView
    buttons: tuple[Row, ...]
    done: ScreenView | None
    messages: tuple[Row, ...]


@attrs.frozen
class Manual:
    """The whole manual in one language."""

    lang: str
    title: str
    intro: Markup
    admin_shot: Shot | None
    sections: tuple[Section, ...]

    @property
    def shots(self) -> tuple[Shot, ...]:
        """Every screenshot the manual shows, in order."""
        found = [self.admin_shot] if self.admin_shot else []
        for section in self.sections:
            found += [v.shot for v in (section.confirm, section.done) if v is not None and v.shot]
        return tuple(found)


def build_manual(library: FlowLibrary, flows: Mapping[str, bool], lang: str) -> Manual:
    """The manual in ``lang`` for the admin ``flows`` (flow → whether its button is on a login's
    row of the list, as ``pages.ADMIN_FLOWS``) as ``library`` defines them now."""
    texts = Texts(lang)
    admin = shot_named(f"admin.{texts.lang}.png", texts("admin.title"))
    return Manual(lang=texts.lang, title=texts("manual.title"), intro=intro(texts), admin_shot=admin,
                  sections=tuple(_section(library.latest(name), on_a_row, texts)
                                 for name, on_a_row in flows.items()))


def _section(definition: FlowDefinition, on_a_row: bool, texts: Texts) -> Section:
    catalog = Catalog(texts.lang, definition.texts)
    name = definition.name
    confirm_name = definition.initial
    confirm = definition.states[confirm_name]
    button = texts(ADMIN_BUTTONS[name]) if name in ADMIN_BUTTONS else name
    where = (texts("manual.where_row", list=texts("admin.caption"), button=button) if on_a_row
             else texts("manual.where_settings", heading=texts("admin.settings"), button=button))
    done_name = next((s for s, state in definition.states.items()
                      if state.final and (state.status or "completed") == "completed"), None)
    return Section(
        flow=name, heading=_title(definition, confirm_name, catalog), where=where,
        when=catalog.find(f"web.manual.when.{name}"),
        confirm=_screen(definition, confirm_name, catalog, texts),
        buttons=tuple(_buttons(definition, confirm_name, confirm, catalog)),
        done=_screen(definition, done_name, catalog, texts) if done_name else None,
        messages=tuple(_messages(definition, catalog, texts)),
    )


def _title(definition: FlowDefinition, state_name: str, catalog: Catalog) -> str:
    """A state's screen title, looked up as the presenter does."""
    screen = definition.states[state_name].screen
    keys = [screen.title] if screen is not None and screen.title else []
    keys += [f"screen.{definition.name}.{state_name}.title", f"screen.{state_name}.title"]
    return fill(catalog, catalog.find(*keys) or state_name)


def _screen(definition: FlowDefinition, state_name: str, catalog: Catalog, texts: Texts) -> ScreenView:
    screen = definition.states[state_name].screen
    keys = [screen.text] if screen is not None and screen.text else []
    keys += [f"screen.{definition.name}.{state_name}.text", f"screen.{state_name}.text"]
    text = catalog.find(*keys)
    labels = []
    for name in screen.fields if screen is not None else ():
        label = definition.fields[name].label
        keys = [label] if label else []
        labels.append(fill(catalog, catalog.find(*keys, f"field.{name}") or name))
    title = _title(definition, state_name, catalog)
    shot = shot_named(f"{definition.name}-{state_name}.{texts.lang}.png", title)
    return ScreenView(title=title, text=fill(catalog, text) if text else None, fields=tuple(labels),
                      shot=shot)


def _buttons(definition: FlowDefinition, state_name: str, state: StateDef,
             catalog: Catalog) -> Iterator[Row]:
    """Each button of the screen, with the title of the screen its last branch leads to."""
    for action in state.screen.actions if state.screen is not None else ():
        keys = [action.label] if action.label else []
        keys += [f"action.{definition.name}.{state_name}.{action.event}", f"action.{action.event}"]
        branches = state.on.get(action.event, ())
        target = branches[-1].target if branches else None
        then = _title(definition, target or state_name, catalog)
        yield Row(what=fill(catalog, catalog.find(*keys) or action.event), then=then)


def _messages(definition: FlowDefinition, catalog: Catalog, texts: Texts) -> Iterator[Row]:
    """The messages the flow's branches can show, once each, with what follows them."""
    seen: set[str] = set()
    for state_name, state in definition.states.items():
        for branches in state.on.values():
            for branch in branches:
                if branch.message is None or branch.message in seen:
                    continue
                seen.add(branch.message)
                text = catalog.find(f"message.{branch.message}") or branch.message
                yield Row(what=fill(catalog, text),
                          then=_after(definition, state_name, branch, catalog, texts))


def _after(definition: FlowDefinition, state_name: str, branch: TransitionDef, catalog: Catalog,
           texts: Texts) -> str:
    if branch.target is None or branch.target == state_name:
        then = texts("manual.stays")
    else:
        then = texts("manual.ends", title=_title(definition, branch.target, catalog))
    return then if branch.actions else _joined([then, texts("manual.unchanged")])


class _Placeholders(dict[str, str]):
    """The words a manual shows where a screen shows a login's data (``{target_name}``)."""

    def __init__(self, catalog: Catalog) -> None:
        super().__init__()
        self.catalog = catalog

    def __missing__(self, key: str) -> str:
        return self.catalog.find(f"web.manual.placeholder.{key}") or "…"


def fill(catalog: Catalog, text: str) -> str:
    """A catalog text with its placeholders named in words (the manual has no flow's data)."""
    return text.format_map(_Placeholders(catalog))


# ---- package data --------------------------------------------------------------------------------


def _folder() -> Traversable:
    return resources.files("regflow").joinpath(FOLDER)


def shot_named(name: str, caption: str) -> Shot | None:
    """The screenshot of that name, when the package has it."""
    return Shot(name, caption) if _folder().joinpath(name).is_file() else None


def screenshot(name: str) -> bytes | None:
    """A screenshot's PNG bytes; None for a name that is not one of the package's screenshots."""
    if not SHOT_NAME.fullmatch(name):
        return None
    path = _folder().joinpath(name)
    return path.read_bytes() if path.is_file() else None


def intro(texts: Texts) -> Markup:
    """The hand-written introduction, its ``{catalog.key}`` references replaced by their texts."""
    source = _folder().joinpath(f"intro.{texts.lang}.md").read_text("utf-8")
    return markdown_html(_REFERENCE.sub(lambda m: texts.catalog.find(m[1]) or m[0], source))


def markdown_html(source: str) -> Markup:
    """The small Markdown the introduction uses, as HTML: ``##``/``###`` headings, ``-`` and
    ``1.`` lists, paragraphs and ``**strong**``; everything else is text (escaped)."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", source.strip()):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if lines[0].startswith(("## ", "### ")):
            level = 2 if lines[0].startswith("## ") else 3
            out.append(f"<h{level}>{_inline(lines[0][level + 1:])}</h{level}>")
            lines = lines[1:]
        if not lines:
            continue
        if all(line.startswith("- ") for line in lines):
            out.append(_list("ul", (line[2:] for line in lines)))
        elif all(re.match(r"\d+\. ", line) for line in lines):
            out.append(_list("ol", (line.split(" ", 1)[1] for line in lines)))
        else:
            out.append(f"<p>{_inline(_joined(lines))}</p>")
    return Markup("\n".join(out))


def _joined(lines: list[str]) -> str:
    """A paragraph's lines as one: with a space between them, except between two Japanese
    characters (Japanese has no spaces between words)."""
    text = lines[0]
    for line in lines[1:]:
        text += ("" if not text[-1].isascii() and not line[0].isascii() else " ") + line
    return text


def _list(tag: str, items: Iterable[str]) -> str:
    return f"<{tag}>" + "".join(f"<li>{_inline(item)}</li>" for item in items) + f"</{tag}>"


def _inline(text: str) -> str:
    return _STRONG.sub(lambda m: f"<strong>{m[1]}</strong>", str(escape(text)))


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI (for the self-contained download)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
