"""``regflow diagram FLOW --traffic``: the flow's diagram with the traffic its journal holds
(issue 17): counts on the arrows, drop-off states marked, states nobody reached greyed
(``regflow.diagrams.traffic``).

``--since`` and ``--until`` (a date, ``2026-01-05``, or an instant, ``2026-01-05T08:30``; UTC
unless an offset is given; read as ``regflow report`` reads them) bound the journal rows
counted, ``--customer ID`` keeps one customer's flows, ``--db URL`` names the database (as every
command's). A report holds counts and durations only: no flow id, address or anything a person
typed reaches the drawing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from regflow.bootstrap import open_store
from regflow.cli import errors
from regflow.cli.base import DEFAULT_DB, CommandFailed
from regflow.cli.report_command import parse_instant
from regflow.definitions.model import FlowDefinition
from regflow.diagrams.traffic import traffic_dot, traffic_mermaid, traffic_svg
from regflow.ground.catalog import Catalog
from regflow.reports.funnel import flow_report

F = TypeVar("F", bound=Callable[..., Any])
TRAFFIC_KEYS = ("traffic", "since", "until", "customer", "db")


def traffic_options(command: F) -> F:
    """``--traffic``, ``--since``, ``--until``, ``--customer`` and ``--db`` of ``regflow diagram``."""
    for option in reversed((
        click.option("--traffic", is_flag=True,
                     help="Draw the traffic the journal holds: counts on the arrows, drop-offs marked."),
        click.option("--since", metavar="DATE", help="With --traffic: count rows from DATE (UTC)."),
        click.option("--until", metavar="DATE", help="With --traffic: count rows before DATE (UTC)."),
        click.option("--customer", metavar="ID", help="With --traffic: only this customer's flows."),
        click.option("--db", default=DEFAULT_DB, show_default=True, metavar="URL",
                     envvar="REGFLOW_DB", help="With --traffic: the store whose journal is counted."),
    )):
        command = option(command)
    return command


def traffic_data(defn: FlowDefinition | None, fmt: str, lang: str, options: dict[str, Any]) -> bytes | None:
    """The traffic diagram of ``defn`` in ``fmt`` when ``--traffic`` was given, else None (a
    usage error when a traffic option comes without it, or with ``--overview``)."""
    if not options.get("traffic"):
        given = [f"--{key}" for key in TRAFFIC_KEYS[1:4] if options.get(key) is not None]
        if given:
            raise click.UsageError(f"{', '.join(given)} only with --traffic")
        return None
    if defn is None:
        raise click.UsageError("--traffic draws one FLOW, not --overview")
    since = parse_instant(options["since"], "--since") if options.get("since") else None
    until = parse_instant(options["until"], "--until") if options.get("until") else None
    if since is not None and until is not None and since >= until:
        raise CommandFailed("report_range_invalid", Catalog(errors.language()).text(
            "report.error.range", since=since.isoformat(), until=until.isoformat()))
    try:
        store = open_store(str(options.get("db") or DEFAULT_DB))
    except (ValueError, OSError) as exc:
        raise CommandFailed("config_invalid", str(exc)) from exc
    try:
        report = flow_report(store, defn, since=since, until=until, customer=options.get("customer"))
    finally:
        store.close()
    if fmt == "svg":
        return traffic_svg(defn, report, lang=lang)
    drawn = traffic_dot(defn, report, lang=lang) if fmt == "dot" else traffic_mermaid(defn, report, lang=lang)
    return drawn.encode()
