"""``regflow paths FLOW``: paths that cover every transition, guard outcome and timer;
``--approve`` writes their observable outcomes as the flow's approved paths, ``--check``
replays the approved paths and fails on any difference."""

from __future__ import annotations

from pathlib import Path

import click

from regflow.cli.base import CommandFailed, main
from regflow.cli.flow_options import flow_options, flow_under_test
from regflow.ground.exceptions import DefinitionError
from regflow.testing import approval
from regflow.testing.engines import FlowSource
from regflow.testing.paths import generate_paths
from regflow.testing.scenario import Scenario, ScenarioError


@main.command("paths")
@click.argument("flow")
@flow_options
@click.option("--summary", is_flag=True, help="Print only the coverage line.")
@click.option("--approve", is_flag=True,
              help="Replay the paths and write their observable outcomes as the approved paths.")
@click.option("--check", "strict", is_flag=True,
              help="Replay the approved paths; exit 1 on any difference, or on items of the "
                   "definition they do not reach (or reach no more).")
@click.option("--db", hidden=True, help="Accepted like every command; paths run on a private memory engine.")
@click.option("--mail", hidden=True, help="Accepted like every command; unused.")
def paths(flow: str, scenario: Path | None, registry: str | None, summary: bool, approve: bool,
          strict: bool, approved: Path | None, db: str | None, mail: str | None) -> None:
    """Print the paths of FLOW (a built-in name or a definition file) as JSON: each path's
    steps (events with their data, clock advances, world changes) with the state expected
    after each, what it covers, and the coverage counts. The same input prints the same JSON."""
    del db, mail
    if approve and strict:
        raise CommandFailed("usage", "--approve and --check: one at a time")
    try:
        chosen = flow_under_test(flow, scenario, registry)
        file = approval.approved_file(chosen.source, approved)
        if strict:
            _check(chosen.source, chosen.scenario, file)
            return
        found = generate_paths(chosen.target, chosen.scenario, registry=chosen.names)
    except (DefinitionError, ScenarioError) as exc:
        for fault in exc.faults:
            click.echo(fault, err=True)
        raise CommandFailed(exc.message_id, f"{len(exc.faults)} fault(s); no paths generated") from exc
    line = found.coverage.line(found.flow)
    if approve:
        document = approval.approve(found)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(approval.dumps(document), encoding="utf-8")
        steps = sum(len(p["steps"]) for p in document["paths"])
        click.echo(f"{line}\napproved {len(document['paths'])} paths ({steps} steps) in {file}; "
                   "review the diff before committing it")
        return
    if summary:
        click.echo(line)
    else:
        click.echo(found.to_json())
        click.echo(line, err=True)


def _check(source: FlowSource, scenario: Scenario, file: Path) -> None:
    """Replay the approved paths; exit 1 with the differences, naming the re-approval."""
    if not file.is_file():
        command = approval.approve_command(source)
        raise CommandFailed("paths_not_approved",
                            f"no approved paths at {file}: run `{command}`, review the file and commit it")
    try:
        document = approval.load(file)
    except ValueError as exc:
        raise CommandFailed("paths_not_approved", str(exc)) from exc
    problems = approval.check(document, source, scenario)
    steps = sum(len(p["steps"]) for p in document["paths"])
    if not problems:
        click.echo(f"{source.name}: {len(document['paths'])} approved paths ({steps} steps) replayed: "
                   "behaviour as approved")
        return
    for problem in problems:
        click.echo(problem)
    click.echo(f"{source.name}: behaviour differs from the approved paths in {file}. If the change "
               f"is intended, re-approve with `{approval.approve_command(source)}` "
               "and review the diff.", err=True)
    raise SystemExit(1)
