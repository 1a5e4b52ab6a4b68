"""Schema migrations of the PeeweeStore (issue 14), on real SQLite files and PostgreSQL schemas.

The old databases are ``tests/data/schema/v1.*.sql``: schema version 1 with real rows, made
by the release before schema versions (commit c564750, see ``make_v1.py``). ``regflow migrate``
runs as a real subprocess; the expected versions and steps are the code's declared
``MIGRATIONS``, and a migrated database must have exactly the columns and indexes of a database
created fresh by this code.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest
from freezegun import freeze_time
from pg import SERVER, drop_schema, postgres_url, schema_of

import regflow
from regflow.adapters import peewee_schema
from regflow.adapters.peewee_schema import Migration
from regflow.adapters.peewee_store import PeeweeStore
from regflow.ground.exceptions import SchemaMigrationFailed, SchemaNewer, SchemaOutdated, SchemaUnknown

DATA = Path(__file__).parent / "data" / "schema"
PASSWORD = "Kx7#mPq2wZ"  # alice's, as make_v1.py registered her
DETAILS = {"password": "Bq4$nRt8vL", "password_confirm": "Bq4$nRt8vL", "customer_id": "281234",
           "display_name": "Bob", "tel": "03-1234-5678"}
AFTER = "2026-03-02 09:20:00"  # the fixtures were made at 09:00-09:10 UTC; bob's code lives 30 min
REGFLOW = Path(sys.executable).with_name("regflow")


class Old:
    """A version-1 database loaded from a fixture, and what its header says."""

    def __init__(self, url: str, header: str) -> None:
        self.url = url
        found = re.search(r"session of alice@example.jp: (\S+)", header)
        bob = re.search(r"flow (\S+) token (\S+) code (\d{8})", header)
        assert found, "fixture header: alice's session"
        assert bob, "fixture header: bob's flow"
        self.session = found.group(1)
        self.bob_flow, self.bob_token, self.bob_code = bob.groups()


@pytest.fixture(params=["sqlite", "postgresql"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_url(kind: str, tmp_path: Path) -> Iterator[Any]:
    """Make store URLs of the test's kind: fresh files, or fresh schemas dropped afterwards."""
    made: list[str] = []

    def make(name: str = "regflow.db") -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / name}"
        url = postgres_url()
        made.append(url)
        return url

    yield make
    for url in made:
        drop_schema(url)


@pytest.fixture
def old(kind: str, new_url: Any) -> Old:
    """A version-1 database of the test's kind, loaded from its fixture."""
    url = new_url("v1.db")
    text = (DATA / f"v1.{kind}.sql").read_text("utf-8")
    if kind == "sqlite":
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.executescript(text)
        conn.close()
    else:
        import psycopg
        with psycopg.connect(SERVER, autocommit=True) as pg:
            pg.execute(text.replace("regflow_v1", schema_of(url)).encode())
    return Old(url, text)


def run_migrate(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``regflow migrate --db URL ARGS`` as a subprocess."""
    return subprocess.run([str(REGFLOW), "migrate", "--db", url, *args], capture_output=True,
                          text=True, timeout=120, check=False)


def sql(url: str, query: str) -> list[tuple[Any, ...]]:
    """Rows of a query on the store's database, through a connection of its own."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///").split("?")[0]) as conn:
            rows = conn.execute(query).fetchall()
        conn.close()
        return rows
    import psycopg
    with psycopg.connect(SERVER, autocommit=True) as pg:
        pg.execute(f'SET search_path = "{schema_of(url)}"')
        cursor = pg.execute(query.encode())
        return list(cursor.fetchall()) if cursor.description else []


def version_in(url: str) -> int | None:
    rows = sql(url, "SELECT value FROM regflow_meta WHERE key = 'schema_version'")
    return int(rows[0][0]) if rows else None


def shape(url: str) -> dict[str, Any]:
    """Every table's columns and indexes (names, types, nullability, keys), order aside."""
    if url.startswith("sqlite:///"):
        tables = [t for (t,) in sql(url, "SELECT name FROM sqlite_master WHERE type = 'table'")]
        out: dict[str, Any] = {}
        for table in tables:
            columns = {tuple(c[1:]) for c in sql(url, f'PRAGMA table_info("{table}")')}
            indexes = {(i[1], i[2], i[3], i[4], tuple(c[2] for c in sql(url, f'PRAGMA index_info("{i[1]}")')))
                       for i in sql(url, f'PRAGMA index_list("{table}")')}
            out[table] = (columns, indexes)
        return out
    schema = schema_of(url)
    column_rows = sql(url, "SELECT table_name, column_name, data_type, is_nullable, column_default "
                           f"FROM information_schema.columns WHERE table_schema = '{schema}'")
    index_rows = sql(url, "SELECT tablename, indexname, indexdef FROM pg_indexes "
                          f"WHERE schemaname = '{schema}'")
    return {"columns": {tuple(str(v).replace(schema, "S") for v in row) for row in column_rows},
            "indexes": {tuple(str(v).replace(schema, "S") for v in row) for row in index_rows}}


def fresh_shape(url: str) -> dict[str, Any]:
    """The shape of a database this code creates at ``url``."""
    store = PeeweeStore.from_url(url)
    report = store.migrate()
    store.close()
    assert (report.before, report.after, report.steps) == (None, peewee_schema.latest(), ())
    return shape(url)


def test_the_migrations_are_numbered_from_2_without_gaps() -> None:
    """Version 1 is the schema before versions; each migration is the next number."""
    numbers = [step.number for step in peewee_schema.MIGRATIONS]
    assert numbers == list(range(2, 2 + len(numbers)))
    assert peewee_schema.latest() == 1 + len(numbers) >= 2


def test_regflow_migrate_upgrades_a_version_1_database(old: Old, new_url: Any) -> None:
    """The old database: refused as it is, previewed by --dry-run (nothing changed), migrated
    by ``regflow migrate``; then its logins, sessions and unfinished flows still work."""
    latest = peewee_schema.latest()
    steps = [f"  apply {m.number}: {m.description}" for m in peewee_schema.MIGRATIONS]
    before = shape(old.url)
    dry = run_migrate(old.url, "--dry-run")
    assert (dry.returncode, dry.stderr) == (0, "")
    assert dry.stdout.splitlines() == [f"schema version 1 -> {latest} (dry run: nothing changed)",
                                       *[f"  would {line.lstrip()}" for line in steps]]
    assert shape(old.url) == before
    assert version_in(old.url) is None
    with pytest.raises(SchemaOutdated, match=rf"schema version 1, this regflow needs {latest}.*"
                                             r"regflow migrate"):
        regflow.Engine.from_url(old.url, mail="memory").start("sign_in", {"account": "abcd8-01"})

    done = run_migrate(old.url)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [f"schema version 1 -> {latest}", *steps]
    assert version_in(old.url) == latest
    assert shape(old.url) == fresh_shape(new_url("fresh.db"))
    again = run_migrate(old.url)
    assert (again.returncode, again.stdout) == (0, f"schema version {latest}: up to date\n")

    with freeze_time(AFTER, tz_offset=0):
        engine = regflow.Engine.from_url(old.url, mail="memory", hasher="argon2")
        try:
            snap = engine.start("sign_in", {"account": "abcd8-01"})
            snap = engine.send(snap, "submit", {"email": "alice@example.jp", "password": PASSWORD})
            assert (snap.state, snap.status) == ("signed_in", "completed")
            assert snap.session
            logins = engine.admin_logins(old.session)  # her session of version 1
            assert [login["email"] for login in logins] == ["alice@example.jp"]
            bob = engine.send(old.bob_flow, "submit", {"code": old.bob_code}, token=old.bob_token)
            assert bob.state == "details"
            bob = engine.send(bob, "submit", DETAILS)
            assert (bob.state, bob.status) == ("provisioning", "active")
        finally:
            engine.store.close()


def test_the_new_codes_index_spares_the_sort_of_the_latest_code(tmp_path: Path) -> None:
    """Migration 2's reason: on version 1, the latest code of a flow and purpose needed a
    temporary B-tree for ORDER BY seq; migrated, it is read from the index in order."""
    url = f"sqlite:///{tmp_path / 'v1.db'}"
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        conn.executescript((DATA / "v1.sqlite.sql").read_text("utf-8"))
    conn.close()
    query = ("EXPLAIN QUERY PLAN SELECT * FROM codes WHERE flow_id = 'f' AND purpose = 'p' "
             "ORDER BY seq DESC LIMIT 1")
    plan_v1 = " | ".join(row[-1] for row in sql(url, query))
    assert "USE TEMP B-TREE FOR ORDER BY" in plan_v1
    assert run_migrate(url).returncode == 0
    plan = " | ".join(row[-1] for row in sql(url, query))
    assert "codes_flow_id_purpose_seq" in plan
    assert "TEMP B-TREE" not in plan


@pytest.mark.parametrize("how", ["url", "env"])
def test_a_store_asked_to_migrate_at_start_upgrades_first(old: Old, how: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``?migrate=1`` in the URL, or ``REGFLOW_MIGRATE=1``: the first use migrates."""
    url = old.url
    if how == "url":
        url += "&migrate=1" if "?" in url else "?migrate=1"
    else:
        monkeypatch.setenv("REGFLOW_MIGRATE", "1")
    with freeze_time(AFTER, tz_offset=0):
        engine = regflow.Engine.from_url(url, mail="memory", hasher="argon2")
        try:
            assert [login["email"] for login in engine.admin_logins(old.session)] == ["alice@example.jp"]
        finally:
            engine.store.close()
    assert version_in(old.url) == peewee_schema.latest()


def test_a_bad_migrate_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="migrate= must be 1 or 0"):
        PeeweeStore.from_url("sqlite:///x.db?migrate=maybe")


def test_a_database_newer_than_the_code_is_refused(new_url: Any) -> None:
    """Opened, asked to migrate at start, or by ``regflow migrate``: refused, both versions named."""
    url = new_url()
    fresh_shape(url)
    newer = peewee_schema.latest() + 1
    store = PeeweeStore.from_url(url)
    with store.transaction() as tx:  # a store at the latest version works
        assert tx.flows.load("no-such-flow") is None
    store.close()
    sql(url, f"UPDATE regflow_meta SET value = '{newer}' WHERE key = 'schema_version'")
    message = rf"schema version {newer}, newer than this regflow's {peewee_schema.latest()}"
    for store in (PeeweeStore.from_url(url), PeeweeStore.from_url(url, migrate=True)):
        with pytest.raises(SchemaNewer, match=message), store.transaction():
            pass
        store.close()
    done = run_migrate(url)
    assert done.returncode == 2
    assert done.stdout == ""
    assert re.fullmatch(rf"regflow: schema_newer: .*{message}.*\n", done.stderr)
    assert version_in(url) == newer


def test_a_failed_migration_rolls_back_and_keeps_the_version(old: Old,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A step whose DDL succeeded but whose next statement failed leaves no trace: the
    column it added is gone and the version is the one before it (earlier steps, each in their
    own transaction, stay)."""
    latest = peewee_schema.latest()

    def add_then_fail(migrator: Any, db: Any, tables: Any) -> None:
        migrator.migrate(migrator.add_column("flows", "doomed", peewee.TextField(null=True)))
        db.execute_sql("SELECT no_such_column FROM flows")

    doomed = Migration(latest + 1, "a column, then a failure", add_then_fail)
    monkeypatch.setattr(peewee_schema, "MIGRATIONS", (*peewee_schema.MIGRATIONS, doomed))
    store = PeeweeStore.from_url(old.url)
    with pytest.raises(SchemaMigrationFailed,
                       match=rf"migration {latest + 1} \(a column, then a failure\) failed.*"
                             rf"stays at schema version {latest}"):
        store.migrate()
    store.close()
    assert version_in(old.url) == latest
    if old.url.startswith("sqlite:///"):
        columns = [row[1] for row in sql(old.url, "PRAGMA table_info(flows)")]
    else:
        columns = [row[0] for row in sql(old.url, "SELECT column_name FROM information_schema.columns "
                                                  f"WHERE table_schema = '{schema_of(old.url)}' "
                                                  "AND table_name = 'flows'")]
    assert "doomed" not in columns
    assert "state" in columns


def test_two_stores_starting_together_migrate_once() -> None:
    """PostgreSQL: two stores asked to migrate at the same moment: each step is applied by
    exactly one of them (the advisory lock), and both then work."""
    url = postgres_url()
    try:
        import psycopg

        text = (DATA / "v1.postgresql.sql").read_text("utf-8")
        with psycopg.connect(SERVER, autocommit=True) as pg:
            pg.execute(text.replace("regflow_v1", schema_of(url)).encode())
        stores = [PeeweeStore.from_url(url) for _ in range(2)]
        barrier = threading.Barrier(2)
        reports: list[Any] = []
        errors: list[BaseException] = []

        def migrate(store: PeeweeStore) -> None:
            barrier.wait()
            try:
                reports.append(store.migrate())
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=migrate, args=(store,)) for store in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        applied = sorted(step.number for report in reports for step in report.steps)
        assert applied == [step.number for step in peewee_schema.MIGRATIONS]
        assert [report.after for report in reports] == [peewee_schema.latest()] * 2
        for store in stores:
            with store.transaction() as tx:
                assert tx.logins.by_email("alice@example.jp") is not None
            store.close()
        assert version_in(url) == peewee_schema.latest()
    finally:
        drop_schema(url)


def test_tables_no_release_made_are_refused(tmp_path: Path) -> None:
    """Some of regflow's table names but no version: not guessed at, refused."""
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE flows (id TEXT PRIMARY KEY)")
    conn.close()
    store = PeeweeStore.from_url(f"sqlite:///{path}", migrate=True)
    with pytest.raises(SchemaUnknown, match="no schema version"), store.transaction():
        pass
    store.close()
