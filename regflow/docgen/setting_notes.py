"""What the built-in definition files say in comments that the definitions do not: the
meaning of each setting (the comment at the end of its line in ``[settings]``)."""

from __future__ import annotations

import re
from importlib import resources

from regflow.machines import BUILTIN_FLOWS

_SECTION = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_SETTING = re.compile(
    r"""^\s*([A-Za-z0-9_-]+)\s*=\s*(?:"(?:[^"\\]|\\.)*"|'[^']*'|[^#"']*?)\s*(?:#\s*(.*?))?\s*$""")


def setting_comments(toml_text: str) -> dict[str, str]:
    """The comment at the end of each line of a definition's ``[settings]`` table, by setting."""
    out: dict[str, str] = {}
    section = ""
    for line in toml_text.splitlines():
        header = _SECTION.match(line)
        if header is not None:
            section = header.group(1)
            continue
        if section != "settings":
            continue
        match = _SETTING.match(line)
        if match is not None and match.group(2):
            out[match.group(1)] = match.group(2)
    return out


def _source(name: str) -> str:
    return resources.files("regflow.machines").joinpath(f"{name}.toml").read_text("utf-8")


def meanings(name: str) -> dict[str, str]:
    """What each setting of a built-in flow means: the comment in its own file, else the comment
    of the same setting in the first other built-in flow that has one (they share their names)."""
    if name not in BUILTIN_FLOWS:
        return {}
    out: dict[str, str] = {}
    for other in sorted(BUILTIN_FLOWS, key=lambda flow: flow != name):
        for key, comment in setting_comments(_source(other)).items():
            out.setdefault(key, comment)
    return out
