"""``python -m benchmarks.journal_report [--rows N] [--days D]``: the time of ``regflow report``
over a generated journal of N rows (default 1,000,000) on SQLite and PostgreSQL, for the
whole journal and for one day of it, with the database's plan of the report's statement
(the ``journal_at`` index over a range).

The generator (``generate``) writes registrations (9 in 10 flows) and sign-ins spread evenly
over D days (default 30), each taking one of the scripted traffic's paths
(``regflow.reports.traffic.PATHS``) with seeded thinking times, 1,000 customers; the rows go in by
bulk insert (``executemany`` on SQLite, ``COPY`` on PostgreSQL), in time order as a journal
grows. It counts the registrations it starts per day: the benchmark checks each report's
``started`` against that count before it trusts its time.

``journal_report(cfg)`` is the ``make bench`` entry (its ``journal_rows`` setting, else
1,000,000).
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from benchmarks import fixtures
from regflow.adapters import peewee_report
from regflow.adapters.peewee_models import to_micros
from regflow.adapters.peewee_store import PeeweeStore
from regflow.reports.funnel import flow_report
from regflow.reports.traffic import PATHS

DAY0 = datetime(2026, 1, 1, tzinfo=UTC)
WEIGHTS = (60, 12, 6, 4, 10, 8, 5, 7, 4)  # people per path, as traffic.DEMO_DAY
FLOW_COLUMNS = ("id", "flow", "version", "state", "status", "data", "timers", "expires_at",
                "next_due_at", "created_at", "updated_at", "token_digest", "customer_id", "rev")
JOURNAL_COLUMNS = ("flow_id", "from_state", "to_state", "event", "actor", "at", "outcome")
# (from, event, to, outcome, seconds before it) per path, after the start row
_E, _C, _D = ("enter_email", "submit", "enter_code", "ok"), ("enter_code", "submit", "details", "ok"), (
    "details", "submit", "provisioning", "ok")
_PROVISIONED = ("provisioning", "provisioned", "ready", "ok")


def _path_rows(path: str, rng: random.Random) -> list[tuple[str, str, str, str, int]]:
    """The rows of one registration taking ``path`` (with the seconds before each)."""
    e, c, d = rng.randint(15, 90), rng.randint(30, 240), rng.randint(60, 600)
    rows = {
        "finish": [(*_E, e), (*_C, c), (*_D, d), (*_PROVISIONED, 600)],
        "wrong_code": [(*_E, e), ("enter_code", "submit", "enter_code", "code_invalid", c),
                       (*_C, c), (*_D, d), (*_PROVISIONED, 600)],
        "contract_mismatch": [(*_E, e), (*_C, c), ("details", "submit", "details",
                                                   "contract_mismatch", d),
                              (*_D, d), (*_PROVISIONED, 600)],
        "license_full": [(*_E, e), (*_C, c), ("details", "submit", "details", "license_full", d),
                         ("details", "cancel", "cancelled", "ok", d)],
        "cancel_at_email": [("enter_email", "cancel", "cancelled", "ok", e)],
        "cancel_at_code": [(*_E, e), ("enter_code", "cancel", "cancelled", "ok", c)],
        "cancel_at_details": [(*_E, e), (*_C, c), ("details", "cancel", "cancelled", "ok", d)],
        "code_expires": [(*_E, e), ("enter_code", "code_timeout", "enter_code", "code_expired",
                                    1800), ("enter_code", "expire", "expired", "expired", 1800)],
        "abandon_at_details": [(*_E, e), (*_C, c), ("details", "expire", "expired", "expired",
                                                    3600)],
    }
    return rows[path]


@attrs.define
class Generated:
    flows: list[tuple[Any, ...]]
    journal: list[tuple[Any, ...]]
    started_per_day: list[int]  # registrations started, per day


def generate(rows: int, days: int = 30, seed: int = 17) -> Generated:
    """At least ``rows`` journal rows (and their flows) over ``days`` days from ``DAY0``."""
    rng = random.Random(seed)
    flows: list[tuple[Any, ...]] = []
    journal: list[tuple[Any, ...]] = []
    per_day = [0] * days
    span = days * 86400
    number = 0
    while len(journal) < rows:
        number += 1
        flow_id = f"f{number:09d}"
        start = DAY0 + timedelta(seconds=rng.uniform(0, span - 7200))
        customer = f"28{rng.randrange(1000):04d}"
        if rng.random() < 0.9:
            name = "registration"
            path = rng.choices(PATHS, WEIGHTS)[0]
            steps = [("", "start", "enter_email", "ok", 0), *_path_rows(path, rng)]
            per_day[(start - DAY0).days] += 1
        else:
            name = "sign_in"
            steps = [("", "start", "credentials", "ok", 0),
                     ("credentials", "submit", "signed_in", "ok", rng.randint(5, 60))]
        at = start
        for source, event, target, outcome, seconds in steps:
            at += timedelta(seconds=seconds)
            actor = "timer" if event in ("expire", "code_timeout", "provisioned") else "user"
            journal.append((flow_id, source, target, event, actor, to_micros(at), outcome))
        last = steps[-1][2]
        status = {"ready": "completed", "signed_in": "completed"}.get(last, last)
        flows.append((flow_id, name, 1, last, status, json.dumps({"_customer": customer}), "[]",
                      None, None, to_micros(start), to_micros(at), "", customer, 1))
    journal.sort(key=lambda row: row[5])
    return Generated(flows, journal, per_day)


def _load_sqlite(path: str, data: Generated) -> None:
    with sqlite3.connect(path) as conn:
        for table, columns, rows in (("flows", FLOW_COLUMNS, data.flows),
                                     ("journal", JOURNAL_COLUMNS, data.journal)):
            names = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            conn.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)
        conn.execute("ANALYZE")


def _load_postgres(url: str, data: Generated) -> None:
    with fixtures.postgres_connection() as conn:
        conn.execute(f'SET search_path TO "{fixtures.schema_of(url)}"')
        for table, columns, rows in (("flows", FLOW_COLUMNS, data.flows),
                                     ("journal", JOURNAL_COLUMNS, data.journal)):
            names = ", ".join(f'"{c}"' for c in columns)
            with conn.cursor() as cursor, cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
        conn.execute("ANALYZE")


def _measure(store: PeeweeStore, data: Generated, days: int) -> dict[str, Any]:
    """Report times over the whole journal and over one day, checked against the generator."""
    whole_begun, whole_cpu = time.perf_counter(), time.process_time()
    whole = flow_report(store, "registration")
    whole_s, whole_cpu = time.perf_counter() - whole_begun, time.process_time() - whole_cpu
    if whole.started != sum(data.started_per_day):
        raise AssertionError(f"started {whole.started} != generated {sum(data.started_per_day)}")
    day = days // 2
    since = DAY0 + timedelta(days=day)
    begun, day_cpu = time.perf_counter(), time.process_time()
    one = flow_report(store, "registration", since=since, until=since + timedelta(days=1))
    day_s, day_cpu = time.perf_counter() - begun, time.process_time() - day_cpu
    if one.started != data.started_per_day[day]:
        raise AssertionError(f"day started {one.started} != generated {data.started_per_day[day]}")
    with store.transaction(write=False):
        plan = peewee_report.explain(store._db, "registration", since=since,
                                     until=since + timedelta(days=1))
    # cpu_s: this process's CPU time, the whole of SQLite's work (it runs in the process), only
    # the client's for PostgreSQL; wall-clock time on a loaded machine counts the others too.
    return {"whole_s": round(whole_s, 3), "whole_cpu_s": round(whole_cpu, 3),
            "day_s": round(day_s, 3), "day_cpu_s": round(day_cpu, 3),
            "day_rows_share": round(1 / days, 4), "started": whole.started, "plan": plan}


def _runs(rows: int, days: int) -> Iterator[tuple[str, dict[str, Any]]]:
    begun = time.perf_counter()
    data = generate(rows, days)
    yield "generated", {"rows": len(data.journal), "flows": len(data.flows),
                        "seconds": round(time.perf_counter() - begun, 1)}
    with fixtures.scratch_dir() as folder:
        url = fixtures.sqlite_url(folder, "journal.db")
        store = PeeweeStore.from_url(url)
        with store.transaction():
            pass  # the tables
        begun = time.perf_counter()
        _load_sqlite(url.removeprefix("sqlite:///"), data)
        loaded = round(time.perf_counter() - begun, 1)
        yield "sqlite", {"load_s": loaded, **_measure(store, data, days)}
        store.close()
    if fixtures.postgres_unavailable() is not None:
        yield "postgresql", {"skipped": fixtures.postgres_unavailable()}
        return
    with fixtures.postgres_schema("journal") as url:
        store = PeeweeStore.from_url(url)
        with store.transaction():
            pass
        begun = time.perf_counter()
        _load_postgres(url, data)
        loaded = round(time.perf_counter() - begun, 1)
        yield "postgresql", {"load_s": loaded, **_measure(store, data, days)}
        store.close()


def journal_report(cfg: Any) -> dict[str, Any]:
    """The ``make bench`` row: report times on SQLite and PostgreSQL over the generated journal."""
    rows = int(getattr(cfg, "journal_rows", 1_000_000))
    return dict(_runs(rows, 30))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.journal_report",
                                     description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="journal rows to generate")
    parser.add_argument("--days", type=int, default=30, help="days they spread over")
    args = parser.parse_args(argv)
    for name, found in _runs(args.rows, args.days):
        plan = found.pop("plan", None)
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in found.items()), flush=True)
        for line in plan or ():
            print(f"    plan: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
