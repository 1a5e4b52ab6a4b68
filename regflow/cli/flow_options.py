"""What ``regflow paths`` and ``regflow mutate`` share: the flow under test (a built-in name or a
definition file), its scenario, its registry and its approved file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import click

from regflow.cli.base import CommandFailed
from regflow.definitions.registry import Registry
from regflow.machines import BUILTIN_FLOWS
from regflow.testing.engines import FlowSource, flow_source
from regflow.testing.scenario import Scenario, builtin_scenario, load_registry, load_scenario

F = TypeVar("F", bound=Callable[..., Any])


def flow_options(command: F) -> F:
    """``--scenario``, ``--registry`` and ``--approved``."""
    for option in reversed((
        click.option("--scenario", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Witnesses and world (TOML/YAML/JSON); built in for the built-in flows."),
        click.option("--registry", metavar="MODULE:ATTR",
                     help="A regflow.Registry with the flow's own guards and actions (else the scenario's)."),
        click.option("--approved", type=click.Path(dir_okay=False, path_type=Path),
                     help="The approved file (default: shipped for the built-in flows, else "
                          "DEFINITION.approved.json beside the definition file)."),
    )):
        command = option(command)
    return command


def registry_option(registry: str | None, scenario: Path | None) -> Registry | None:
    """The Registry a ``--registry MODULE:ATTR`` option names (a module file in the current
    folder or next to the scenario, or any importable module), or None without the option."""
    if not registry:
        return None
    try:
        return load_registry(registry, Path.cwd(), scenario.resolve().parent if scenario else None)
    except ImportError as exc:
        raise CommandFailed("scenario_invalid", f"--registry {registry}: {exc}") from exc


@attrs.frozen
class FlowUnderTest:
    """The flow a command works on, as its options name it."""

    target: str | Path  # a built-in name, or the definition file
    scenario: Scenario
    names: Registry | None  # the ``--registry`` option's, if given
    source: FlowSource


def flow_under_test(flow: str, scenario: Path | None, registry: str | None) -> FlowUnderTest:
    """The flow, scenario and registry of the options; a flow that is not built in needs its
    scenario. Definition and scenario faults are raised for the command to print."""
    if flow not in BUILTIN_FLOWS and scenario is None:
        raise CommandFailed("scenario_invalid", f"{flow} is not a built-in flow: give its --scenario FILE")
    names = registry_option(registry, scenario)
    loaded = load_scenario(scenario) if scenario is not None else builtin_scenario(flow)
    target: str | Path = flow if flow in BUILTIN_FLOWS else Path(flow)
    source = flow_source(target, names if names is not None else loaded.load_registry())
    return FlowUnderTest(target, loaded, names, source)
