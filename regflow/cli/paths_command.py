"""``regflow paths FLOW``: paths that cover every transition, guard outcome and timer (SPEC 4.3)."""

from __future__ import annotations

from pathlib import Path

import click

from regflow.cli.base import CommandFailed, main
from regflow.exceptions import DefinitionError
from regflow.machines import BUILTIN_FLOWS
from regflow.testing.paths import generate_paths
from regflow.testing.scenario import ScenarioError, load_registry


@main.command("paths")
@click.argument("flow")
@click.option("--scenario", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Witnesses and world (TOML/YAML/JSON); built in for the built-in flows.")
@click.option("--registry", metavar="MODULE:ATTR",
              help="A regflow.Registry with the flow's own guards and actions (else the scenario's).")
@click.option("--summary", is_flag=True, help="Print only the coverage line.")
@click.option("--check", "strict", is_flag=True,
              help="Exit 1 unless everything not declared unreachable is covered.")
@click.option("--db", hidden=True, help="Accepted like every command; paths run on a private memory engine.")
@click.option("--mail", hidden=True, help="Accepted like every command; unused.")
def paths(flow: str, scenario: Path | None, registry: str | None, summary: bool, strict: bool,
          db: str | None, mail: str | None) -> None:
    """Print the paths of FLOW (a built-in name or a definition file) as JSON: each path's
    steps (events with their data, clock advances, world changes) with the state expected
    after each, what it covers, and the coverage counts. The same input prints the same JSON."""
    del db, mail
    if flow not in BUILTIN_FLOWS and scenario is None:
        raise CommandFailed("scenario_invalid", f"{flow} is not a built-in flow: give its --scenario FILE")
    names = None
    if registry:
        try:
            names = load_registry(registry, Path.cwd(), scenario.resolve().parent if scenario else None)
        except ImportError as exc:
            raise CommandFailed("scenario_invalid", f"--registry {registry}: {exc}") from exc
    try:
        found = generate_paths(flow if flow in BUILTIN_FLOWS else Path(flow), scenario, registry=names)
    except (DefinitionError, ScenarioError) as exc:
        for fault in exc.faults:
            click.echo(fault, err=True)
        raise CommandFailed(exc.message_id, f"{len(exc.faults)} fault(s); no paths generated") from exc
    line = found.coverage.line(found.flow)
    if summary:
        click.echo(line)
    else:
        click.echo(found.to_json())
        click.echo(line, err=True)
    if strict and not found.coverage.complete:
        raise SystemExit(1)
