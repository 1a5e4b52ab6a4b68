"""``regflow migrate``: bring a database's schema to this release's version.

It prints the versions (from -> to) and each migration it applies, one line each, and exits 0;
an empty database gets its tables, at the latest version. ``--dry-run`` prints the same without
changing anything. A database newer than this regflow (``schema_newer``) or a failed migration
(``schema_migration_failed``, rolled back, the version unchanged) ends it with one error line,
exit code 2. Stores can also migrate on first use: ``REGFLOW_MIGRATE=1`` or ``?migrate=1``.
"""

from __future__ import annotations

import click

from regflow.bootstrap import open_store
from regflow.cli.base import DEFAULT_DB, CommandFailed, main


@main.command("migrate")
@click.option("--db", default=DEFAULT_DB, show_default=True, metavar="URL", envvar="REGFLOW_DB",
              help="Store: sqlite:///PATH (relative to the current folder) or "
                   "postgresql://USER@HOST/DB[?schema=NAME].")
@click.option("--dry-run", is_flag=True, help="Print what would be applied; change nothing.")
def migrate(db: str, dry_run: bool) -> None:
    """Apply the schema migrations the database misses (SQLite or PostgreSQL)."""
    from regflow.adapters.peewee_store import PeeweeStore

    try:
        store = open_store(db)
    except (ValueError, OSError) as exc:
        raise CommandFailed("config_invalid", str(exc)) from exc
    if not isinstance(store, PeeweeStore):
        click.echo("memory store: nothing to migrate (it keeps no schema)")
        return
    try:
        report = store.migrate(dry_run=dry_run)
    finally:
        store.close()
    would = "would " if dry_run else ""
    if report.before is None:
        done = "would create" if dry_run else "created"
        click.echo(f"empty database: {done} the tables at schema version {report.after}")
    elif not report.steps:
        by_other = "" if report.before == report.after else " (another process migrated it)"
        click.echo(f"schema version {report.after}: up to date{by_other}")
    else:
        click.echo(f"schema version {report.before} -> {report.after}"
                   f"{' (dry run: nothing changed)' if dry_run else ''}")
        for step in report.steps:
            click.echo(f"  {would}apply {step.number}: {step.description}")
