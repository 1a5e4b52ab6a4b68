"""``regflow report FLOW``: how many who start a flow finish, where they stop, how long each
screen takes and which messages they see, read back from the journal (issue 17); and
``regflow traffic``, which fills a database with a scripted day of registrations to report on.

Usage::

    regflow report registration --db sqlite:///regflow.db
    regflow report registration --since 2026-01-05 --until 2026-01-06 --format json
    regflow report registration --customer 281234 --format csv --lang ja
    regflow traffic --db sqlite:///demo.db [--day 2026-01-05] [--scale 2]

``--since`` and ``--until`` take a date (``2026-01-05``, midnight UTC) or an ISO 8601 instant
(``2026-01-05T09:00:00+09:00``; without an offset, UTC); the range is ``since <= at < until``.
``--customer`` limits the report to the flows of one customer (the command line is the
operator's). ``--format text`` prints a table (``--lang ja|en`` for its labels), ``json`` the
report's ``to_json()``, ``csv`` one row per figure (``regflow.reports.formats``).
A report holds counts and durations only: no flow id, no address, nothing a person typed.
What each figure counts is defined in ``regflow.reports.funnel``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from regflow.cli import errors
from regflow.cli.base import DEFAULT_DB, CommandFailed, engine_options, main, open_engine
from regflow.ground.catalog import Catalog
from regflow.reports.formats import as_csv, as_text
from regflow.reports.funnel import flow_report


def parse_instant(text: str, option: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 instant (UTC when it has no offset)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandFailed("report_range_invalid", Catalog(errors.language()).text(
            "report.error.instant", option=option, value=text)) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@main.command("report")
@click.argument("flow")
@engine_options
@click.option("--since", metavar="DATE", help="From this date or instant (UTC unless given).")
@click.option("--until", metavar="DATE", help="Before this date or instant (UTC unless given).")
@click.option("--customer", metavar="ID", help="Only the flows of this customer.")
@click.option("--format", "form", type=click.Choice(["text", "json", "csv"]), default="text",
              show_default=True, envvar="REGFLOW_REPORT_FORMAT",
              help="A table, the report as JSON, or one CSV row per figure.")
@click.option("--lang", type=click.Choice(["ja", "en"]), default="en", show_default=True,
              envvar="REGFLOW_LANG", help="Language of the table's labels and of errors.")
def report(flow: str, db: str, mail: str, hasher: str, since: str | None, until: str | None,
           customer: str | None, form: str, lang: str) -> None:
    """Funnel and drop-off of FLOW from its journal: per state, entries, exits by event,
    where flows stopped and time spent (median, p90); final states and conversion; messages
    shown. Counts and durations only."""
    start = parse_instant(since, "--since") if since else None
    end = parse_instant(until, "--until") if until else None
    if start is not None and end is not None and start >= end:
        raise CommandFailed("report_range_invalid", Catalog(errors.language()).text(
            "report.error.range", since=start.isoformat(), until=end.isoformat()))
    with open_engine(db, mail, hasher) as engine:
        found = flow_report(engine.store, engine.flows.latest(flow), since=start, until=end,
                            customer=customer)
    if form == "json":
        click.echo(json.dumps(found.to_json(), ensure_ascii=False, indent=2))
    elif form == "csv":
        click.echo(as_csv(found), nl=False)
    else:
        click.echo(as_text(found, lang))


@main.command("traffic")
@click.option("--db", default=DEFAULT_DB, show_default=True, metavar="URL", envvar="REGFLOW_DB",
              help="Store: sqlite:///PATH or postgresql://USER@HOST/DB.")
@click.option("--day", metavar="DATE", help="The day of the traffic (UTC; default 2026-01-05).")
@click.option("--scale", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="People on every path of the demo day, times N.")
def traffic(db: str, day: str | None, scale: int) -> None:
    """Fill a database with a scripted day of registrations (regflow.reports.traffic.DEMO_DAY) driven
    through the engine on a moving clock, to try ``regflow report`` and the admin pages on."""
    from regflow.reports import traffic as scripted

    when = parse_instant(day, "--day") if day else scripted.DEMO_DAY.day
    try:
        result = scripted.fill(db, scripted.demo_script(when, scale))
    except ValueError as exc:
        raise CommandFailed("config_invalid", str(exc)) from exc
    click.echo(f"{sum(result.people.values())} registrations on {when:%Y-%m-%d}: "
               + ", ".join(f"{path} {n}" for path, n in result.people.items()))
