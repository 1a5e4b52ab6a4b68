"""The definitions an engine knows, by name and version, with the registry they reference."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from regflow.definitions.model import FlowDefinition, Setting
from regflow.definitions.registry import Registry
from regflow.ground.exceptions import DefinitionError, FlowNotFound


class FlowLibrary:
    """Definitions by name and version; a newly added version becomes the one new flows start on."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry if registry is not None else Registry()
        self._versions: dict[str, dict[int, FlowDefinition]] = {}

    def add(self, source: Mapping[str, Any] | str | Path, *, root: str | None = None) -> FlowDefinition:
        """Load, check and add a definition; a name + version already present is an error, and
        so is a migration between it and another loaded version that does not fit the older
        one (``regflow.definitions.loader.migration_faults``)."""
        from regflow.definitions.loader import (  # cattrs is loaded with the first definition
            load,
            migration_faults,
        )

        definition = load(source, self.registry.names(), root)
        versions = self._versions.setdefault(definition.name, {})
        if definition.version in versions and versions[definition.version] != definition:
            raise DefinitionError(
                [f"{definition.name}.version: version {definition.version} is already loaded"])
        faults: list[str] = []
        for other in versions.values():
            if other.version < definition.version:
                faults += migration_faults(definition, other, root or definition.name)
            elif other.version > definition.version:
                faults += migration_faults(other, definition, other.name)
        if faults:
            raise DefinitionError(faults)
        versions[definition.version] = definition
        return definition

    def configure(self, name: str, settings: Mapping[str, Setting]) -> None:
        """Override settings of every loaded version of a flow."""
        versions = self._versions.get(name)
        if versions is None:
            raise FlowNotFound(f"no flow named {name!r}")
        for version, definition in list(versions.items()):
            versions[version] = definition.with_settings(settings)

    def latest(self, name: str) -> FlowDefinition:
        """The newest version of a flow."""
        versions = self._versions.get(name)
        if not versions:
            raise FlowNotFound(f"no flow named {name!r}")
        return versions[max(versions)]

    def get(self, name: str, version: int) -> FlowDefinition:
        """A given version of a flow."""
        try:
            return self._versions[name][version]
        except KeyError:
            raise FlowNotFound(f"no flow {name!r} version {version}") from None

    def versions(self, name: str) -> list[int]:
        """The versions of a flow that are loaded, oldest first."""
        return sorted(self._versions.get(name, {}))

    def retire(self, name: str, version: int) -> None:
        """Unload a version (after a deploy): its flows in flight then migrate or are refused."""
        versions = self._versions.get(name, {})
        if version not in versions or len(versions) == 1:
            raise DefinitionError([f"{name}.version: cannot retire version {version}"])
        del versions[version]

    def names(self) -> list[str]:
        """The flows known, sorted."""
        return sorted(self._versions)

    def __contains__(self, name: object) -> bool:
        return name in self._versions
