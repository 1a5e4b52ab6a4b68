"""The built-in flows, as definition files, and the registry of what they reference."""

from __future__ import annotations

import tomllib
from importlib import resources

from regflow.definitions.library import FlowLibrary
from regflow.definitions.registry import Registry
from regflow.machines.admin import admin
from regflow.machines.code_steps import code_steps
from regflow.machines.common import common
from regflow.machines.password_reset import password_reset
from regflow.machines.registration import registration
from regflow.machines.sign_in import sign_in

BUILTIN_FLOWS = (
    "registration", "sign_in", "password_reset",
    "unlink_login", "delete_login", "transfer_admin", "unlock_login", "require_two_factor",
    "set_two_factor",
)


def builtin_registry() -> Registry:
    """Guards, actions and validators of every built-in flow."""
    return common | code_steps | registration | sign_in | password_reset | admin


def builtin_library(registry: Registry | None = None) -> FlowLibrary:
    """A fresh library with the built-in flows (and the user's own names, if given)."""
    names = builtin_registry()
    library = FlowLibrary(names | registry if registry is not None else names)
    for name in BUILTIN_FLOWS:
        text = resources.files("regflow.machines").joinpath(f"{name}.toml").read_text("utf-8")
        library.add(tomllib.loads(text), root=name)
    return library
