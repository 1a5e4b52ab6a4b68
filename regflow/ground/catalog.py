"""One message catalog for screens and mails, per language, overridable by definitions.

Keys are dotted: ``screen.registration.enter_code.title``, ``field.email``, ``action.submit``,
``message.code_invalid``. Texts are ``str.format`` templates over the message's params.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("ja", "en")
DEFAULT_LANGUAGE = "ja"


class _Params(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = str(value)
    return out


@cache
def packaged(lang: str) -> dict[str, str]:
    """The texts shipped with regflow for a language."""
    path = resources.files("regflow").joinpath(f"locales/{lang}.toml")
    return _flatten(tomllib.loads(path.read_text("utf-8")))


def pick_language(lang: str | None) -> str:
    """A supported language from a tag such as ``en-US`` or ``ja``; Japanese by default."""
    if lang:
        base = lang.split(",")[0].split(";")[0].strip().lower().split("-")[0]
        if base in LANGUAGES:
            return base
    return DEFAULT_LANGUAGE


class Catalog:
    """Texts of one language: a definition's own texts first, then the packaged ones."""

    def __init__(self, lang: str, overrides: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.lang = pick_language(lang)
        self._texts = dict(packaged(self.lang))
        if overrides:
            self._texts.update(overrides.get(self.lang, {}))

    def find(self, *keys: str) -> str | None:
        """The text of the first key that has one."""
        for key in keys:
            if key in self._texts:
                return self._texts[key]
        return None

    def text(self, *keys: str, **params: Any) -> str:
        """The formatted text of the first key found, or the first key itself when none is."""
        found = self.find(*keys)
        if found is None:
            return keys[0]
        return found.format_map(_Params(params))
