"""Schema versions of the PeeweeStore: the version a database is at, and the ordered
migrations that bring an older database up to the code's.

(Not to be confused with ``regflow.runtime.migrations``, which moves *flows* between versions of a
flow definition.)

The version is kept in ``regflow_meta`` under the key ``schema_version``. A database made by
this code is created at the latest version and stamped; a database with regflow's tables but
no stamp was made by the release before schema versions existed: that schema is version 1.
A store opening a database

- at the latest version uses it;
- that is empty creates the tables (one transaction) and stamps the latest version;
- at an older version refuses it (``SchemaOutdated``: run ``regflow migrate``), unless it was
  opened with ``migrate=True`` (``?migrate=1`` in its URL, or ``REGFLOW_MIGRATE=1``): then it
  applies the missing migrations first;
- at a newer version than the code knows always refuses it (``SchemaNewer``).

Each migration runs in its own transaction (``BEGIN IMMEDIATE`` on SQLite; on PostgreSQL under
the same advisory lock that serialises the creation of the tables), which re-reads the version
first, so that processes starting together apply each migration once; its DDL and the new stamp
commit together, or neither does (``SchemaMigrationFailed``, the version unchanged). SQLite and
PostgreSQL both roll DDL back.

How to add a migration (say number 3)
-------------------------------------
1. Change the models in ``peewee_models.build_tables`` to the new shape (a fresh database is
   created from them, at the latest version, without running any migration).
2. Write ``def _m3_short_name(migrator: SchemaMigrator, db: pw.Database, tables: Tables) ->
   None`` below, bringing a version-2 database to exactly that shape, with peewee's
   ``playhouse.migrate`` operations run through ``migrator.migrate(...)`` (``add_column``,
   ``add_index``, ``drop_index``, ``rename_column``…) or ``db.execute_sql`` for data. Name
   tables and columns by their SQL names: ``tables`` holds the *latest* models, whose shape a
   later migration may have changed again. A column added to filled tables needs ``null=True``
   or a ``default``. Do not commit or open transactions: the step runs inside one. On SQLite,
   column changes other than ``add_column``/``rename_column`` rebuild the table, with foreign
   keys on: avoid them on ``customers`` (``accounts`` refers to it).
3. Append ``Migration(3, "what it does, for the operator", _m3_short_name)`` to ``MIGRATIONS``
   (numbers consecutive from 2; never change or remove a released migration).
4. ``tests/test_schema_migrations.py`` checks that a version-1 database migrated to the latest
   version has the same columns and indexes as a fresh one, on SQLite and PostgreSQL; add a
   test of what the migration does to existing rows if it moves data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import peewee as pw
from playhouse.migrate import SchemaMigrator

from regflow.adapters.peewee_errors import translated
from regflow.adapters.peewee_models import Tables
from regflow.ground.exceptions import (
    SchemaMigrationFailed,
    SchemaNewer,
    SchemaOutdated,
    SchemaUnknown,
)

VERSION_KEY = "schema_version"
V1_TABLES = frozenset({
    "flows", "journal", "idempotency_keys", "customers", "accounts", "logins", "sessions",
    "codes", "outbox", "limit_hits", "regflow_meta",
})  # the tables of version 1, the schema before versions were kept


@attrs.frozen
class Migration:
    """One step: the version it brings the database to, what it does, and how."""

    number: int
    description: str
    apply: Callable[[SchemaMigrator, pw.Database, Tables], None]


def _m2_codes_latest_index(migrator: SchemaMigrator, db: pw.Database, tables: Tables) -> None:
    """The codes of a flow and purpose indexed in issue order: ``Codes.latest`` (ORDER BY seq
    DESC LIMIT 1) and ``Codes.insert`` (MAX(seq)) read one index entry instead of sorting."""
    migrator.migrate(
        migrator.drop_index("codes", "codes_flow_id_purpose"),
        migrator.add_index("codes", ("flow_id", "purpose", "seq"), name="codes_flow_id_purpose_seq"),
    )


def _m3_flows_customer_id(migrator: SchemaMigrator, db: pw.Database, tables: Tables) -> None:
    """Flows keep the customer they belong to (``FlowRecord.customer`` of their data),
    for reports of one customer (issue 17); filled in for the flows already there."""
    import json

    from regflow.ground.records import customer_of

    migrator.migrate(migrator.add_column("flows", "customer_id", pw.TextField(null=True)))
    run: Any = db.execute_sql  # peewee is untyped
    p = db.param
    for flow_id, data in list(run('SELECT "id", "data" FROM "flows"')):
        customer = customer_of(json.loads(data)) if data else None
        if customer is not None:
            run(f'UPDATE "flows" SET "customer_id" = {p} WHERE "id" = {p}', (customer, flow_id))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(2, "index codes by (flow_id, purpose, seq): the latest code without a sort",
              _m2_codes_latest_index),
    Migration(3, "flows.customer_id: the customer of each flow, for reports by customer",
              _m3_flows_customer_id),
)


def latest() -> int:
    """The schema version of this code (read at call time, so tests may extend ``MIGRATIONS``)."""
    return MIGRATIONS[-1].number if MIGRATIONS else 1


def pending(version: int) -> list[Migration]:
    """The migrations a database at ``version`` misses, in order."""
    return [step for step in MIGRATIONS if step.number > version]


@attrs.frozen
class Report:
    """What ``PeeweeStore.migrate`` found and did (or, dry, would do)."""

    before: int | None  # None: an empty database, created at ``after``
    after: int
    steps: tuple[Migration, ...]
    dry_run: bool = False


def found_tables(db: pw.Database, schema: str | None) -> set[str]:
    """The names of the tables in the store's schema (a catalogue read, no locks)."""
    if isinstance(db, pw.PostgresqlDatabase):
        return set(db.get_tables(schema=schema or "public"))
    return set(db.get_tables())


def read_version(db: pw.Database, tables: Tables, found: set[str]) -> int | None:
    """The database's schema version, given the tables ``found``; None when it has none of
    regflow's tables. Raises SchemaUnknown for a database no release of regflow made."""
    if not found & V1_TABLES:
        return None
    stamp = None
    if "regflow_meta" in found:
        meta = tables.meta
        stamp = meta.select(meta.value).where(meta.key == VERSION_KEY).scalar()
    if stamp is None:
        missing = sorted(V1_TABLES - found)
        if missing:
            raise SchemaUnknown(
                f"the database holds some of regflow's tables but not {', '.join(missing)}, and "
                f"no schema version: it was not made by a release of regflow")
        return 1
    if not str(stamp).isdigit():
        raise SchemaUnknown(f"the database's schema version {stamp!r} is not a number")
    return int(stamp)


def check(version: int, *, migrate: bool) -> None:
    """Refuse a database newer than the code, and an older one unless migrating."""
    if version > latest():
        raise SchemaNewer(
            f"the database is at schema version {version}, newer than this regflow's "
            f"{latest()}: upgrade regflow (a newer release migrated it)")
    if version < latest() and not migrate:
        raise SchemaOutdated(
            f"the database is at schema version {version}, this regflow needs {latest()}: "
            f"run `regflow migrate --db URL` (or migrate at start: REGFLOW_MIGRATE=1 or "
            f"?migrate=1 in the store URL)")


def lock(db: pw.Database, schema: str | None) -> None:
    """PostgreSQL: hold the store's advisory lock until the transaction ends, so that stores
    starting together create or migrate the schema one after the other (SQLite: ``BEGIN
    IMMEDIATE`` already does)."""
    if isinstance(db, pw.PostgresqlDatabase):
        run: Any = db.execute_sql  # peewee is untyped
        run("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"regflow:{schema}",))


def stamp(tables: Tables, version: int) -> None:
    """Record ``version`` as the database's schema version."""
    meta = tables.meta
    meta.insert(key=VERSION_KEY, value=str(version)).on_conflict(
        conflict_target=[meta.key], update={meta.value: str(version)}).execute()


def create(db: pw.Database, tables: Tables, schema: str | None) -> int | None:
    """Inside a locked transaction: create the tables at the latest version if the database is
    still empty; the version found otherwise (None when it created them)."""
    version = read_version(db, tables, found_tables(db, schema))
    if version is not None:
        return version
    db.create_tables(tables.all(), safe=True)
    stamp(tables, latest())
    return None


def upgrade(db: pw.Database, tables: Tables, schema: str | None,
            transaction: Callable[[], Any], steps: Sequence[Migration]) -> list[Migration]:
    """Apply ``steps``, each in its own ``transaction()`` (a context manager) that takes the
    lock and re-reads the version; the ones applied here (others may have applied some)."""
    done: list[Migration] = []
    for step in steps:
        with transaction():
            lock(db, schema)
            version = read_version(db, tables, found_tables(db, schema)) or latest()
            check(version, migrate=True)
            if version >= step.number:
                continue  # another process applied it meanwhile
            try:
                with translated():
                    step.apply(SchemaMigrator.from_database(db, schema=schema), db, tables)
                    stamp(tables, step.number)
            except Exception as exc:  # any failure of the step: rolled back
                why = " ".join(str(exc).split())  # one line: drivers quote the SQL on several
                raise SchemaMigrationFailed(
                    f"migration {step.number} ({step.description}) failed: {why}; the database "
                    f"stays at schema version {version}") from exc
            done.append(step)
    return done
