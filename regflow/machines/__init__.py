"""The built-in flows, as definition files, and the registry of what they reference."""

from __future__ import annotations

import tomllib
from importlib import resources

from regflow.library import FlowLibrary
from regflow.machines.common import common
from regflow.machines.registration import registration
from regflow.registry import Registry

BUILTIN_FLOWS = ("registration",)


def builtin_registry() -> Registry:
    """Guards, actions and validators of every built-in flow."""
    return common | registration


def builtin_library(registry: Registry | None = None) -> FlowLibrary:
    """A fresh library with the built-in flows (and the user's own names, if given)."""
    names = builtin_registry()
    library = FlowLibrary(names | registry if registry is not None else names)
    for name in BUILTIN_FLOWS:
        text = resources.files("regflow.machines").joinpath(f"{name}.toml").read_text("utf-8")
        library.add(tomllib.loads(text), root=name)
    return library
