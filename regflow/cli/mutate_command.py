"""``regflow mutate FLOW``: mutation testing of a flow against its approved paths.

Every mutant of the flow (a guard dropped or negated, branches swapped, a transition
retargeted, an action or message dropped, a duration or setting moved by one unit; a guard of
the registry forced true or false, an action made a no-op) is judged by the check of
``regflow paths FLOW --check``. Prints the survivors and the score; exits 1 under
``--min-score``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from regflow.cli.base import CommandFailed, main
from regflow.cli.flow_options import flow_options, flow_under_test
from regflow.definitions.loader import read_source
from regflow.ground.exceptions import DefinitionError
from regflow.testing import approval, mutants, mutation
from regflow.testing.scenario import ScenarioError


@main.command("mutate")
@click.argument("flow")
@flow_options
@click.option("--equivalent", "equivalent_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Mutants declared equivalent: a TOML/YAML/JSON table of mutant id = reason "
                   "(added to the scenario's 'equivalent' table).")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: the CPU count).")
@click.option("--min-score", type=click.FloatRange(0, 100), default=None, metavar="PERCENT",
              help="Exit 1 when the score is below PERCENT.")
@click.option("--only", multiple=True, metavar="KIND",
              help="Only mutants whose id starts with KIND (e.g. retarget, guard-dropped, setting, "
                   "registry, registry:guard-true, setting:code_ttl); repeatable or comma-separated.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--db", hidden=True, help="Accepted like every command; mutants run on private memory engines.")
@click.option("--mail", hidden=True, help="Accepted like every command; unused.")
def mutate(flow: str, scenario: Path | None, registry: str | None, approved: Path | None,
           equivalent_file: Path | None, jobs: int | None, min_score: float | None, only: tuple[str, ...],
           as_json: bool, db: str | None, mail: str | None) -> None:
    """Judge the mutants of FLOW (a built-in name or a definition file) by its approved paths:
    killed when the approved paths see a difference, survived when they do not. Prints the
    survivors (id and what changed), the counts of killed, survived, equivalent (declared, with
    a reason) and invalid (not loadable) mutants, and the score, killed / (killed + survived)."""
    del db, mail
    kinds = [k.strip() for part in only for k in part.split(",") if k.strip()]
    unknown = [k for k in kinds if k.split(":")[0] not in {*mutants.DEFINITION_KINDS, "registry"}]
    if unknown:
        raise CommandFailed("usage", f"--only {', '.join(unknown)}: a kind is one of "
                                     f"{', '.join((*mutants.DEFINITION_KINDS, *mutants.REGISTRY_KINDS))}")
    try:
        chosen = flow_under_test(flow, scenario, registry)
        loaded, source = chosen.scenario, chosen.source
    except (DefinitionError, ScenarioError) as exc:
        for fault in exc.faults:
            click.echo(fault, err=True)
        raise CommandFailed(exc.message_id, f"{len(exc.faults)} fault(s); no mutants judged") from exc
    file = approval.approved_file(source, approved)
    document = _document(file, source.describe())
    declared = {**mutants.declared_equivalents(loaded), **_equivalent_file(equivalent_file)}

    def progress(done: int, total: int, seconds: float) -> None:
        click.echo(f"{source.name}: {done}/{total} mutants judged, {seconds:.0f} s", err=True)

    try:
        report = mutation.mutate(source, loaded, document, jobs=jobs or os.cpu_count(), only=kinds,
                                 equivalent=declared, approved=_shown(file), progress=progress)
    except mutation.BaselineFailed as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        raise CommandFailed("paths_not_approved",
                            f"the approved paths in {file} do not hold on the unchanged flow, so no "
                            f"mutant can be judged: see `regflow paths {source.describe()} --check`") from exc
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        for line in report.lines():
            click.echo(line)
    if min_score is not None and report.score < min_score:
        click.echo(f"{source.name}: score {report.score:.1f}% is below --min-score {min_score:g}%", err=True)
        sys.exit(1)


def _equivalent_file(file: Path | None) -> dict[str, str]:
    if file is None:
        return {}
    try:
        raw: Mapping[str, Any] = read_source(file)
    except (DefinitionError, OSError) as exc:
        raise CommandFailed("usage", f"--equivalent {file}: {exc}") from exc
    table = raw.get("equivalent", raw)
    if not isinstance(table, Mapping):
        raise CommandFailed("usage", f"--equivalent {file}: a table of mutant id = reason")
    empty = [str(k) for k, v in table.items() if not isinstance(v, str) or not v.strip()]
    if empty:
        raise CommandFailed("usage", f"--equivalent {file}: a mutant is equivalent only with its "
                                     f"reason; none given for {', '.join(empty)}")
    return {str(k): str(v) for k, v in table.items()}


def _document(file: Path, described: str) -> dict[str, Any]:
    if not file.is_file():
        command = approval.approve_command(described)
        raise CommandFailed("paths_not_approved",
                            f"no approved paths at {file}: run `{command}`, review the file and commit it")
    try:
        return approval.load(file)
    except ValueError as exc:
        raise CommandFailed("paths_not_approved", str(exc)) from exc


def _shown(file: Path) -> str:
    try:
        return str(file.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(file)

