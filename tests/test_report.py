"""Reports read back from the journal (issue 17): scripted traffic through a real engine on
every store, the report's figures checked against the numbers the script declares (per path
people, the registration's timer settings, the thinking times the script plays), the range
and customer filters, and the ``regflow report`` command's formats with no personal data."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from pg import drop_schema, postgres_url

import regflow
from regflow.adapters.memory_report import nearest_rank
from regflow.ground.clock import ManualClock
from regflow.reports import traffic
from regflow.reports.funnel import (
    FlowReport,
    ReportRangeInvalid,
    ReportUnavailable,
    flow_report,
)
from regflow.reports.traffic import TrafficScript, run_traffic

DAY_A = datetime(2026, 1, 5, tzinfo=UTC)
DAY_B = DAY_A + timedelta(days=1)
SCRIPT_A = TrafficScript(day=DAY_A, customer="281001", full_customer="281099", tag="a", people={
    "finish": 5, "wrong_code": 3, "contract_mismatch": 2, "license_full": 2, "cancel_at_email": 3,
    "cancel_at_code": 2, "cancel_at_details": 1, "code_expires": 2, "abandon_at_details": 1})
SCRIPT_B = TrafficScript(day=DAY_B, customer="281002", full_customer="281098", tag="b", people={
    "finish": 3, "cancel_at_email": 1, "code_expires": 1, "license_full": 1})
REGISTRATION_FINALS = ("handed_over", "ready", "cancelled", "expired", "failed")


@attrs.frozen
class Played:
    engine: regflow.Engine
    url: str
    a: traffic.TrafficResult
    b: traffic.TrafficResult


@pytest.fixture
def played(store_kind: str, tmp_path: Path) -> Iterator[Played]:
    """Scripts A (day A) and B (day B) played into one engine on the test's store."""
    url = {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path / 'report.db'}"}.get(store_kind)
    url = url or postgres_url()
    clock = ManualClock(DAY_A)
    engine = regflow.Engine.from_url(url, mail="memory", hasher="fast", clock=clock)
    try:
        a = run_traffic(engine, clock, SCRIPT_A)
        b = run_traffic(engine, clock, SCRIPT_B)
        yield Played(engine, url, a, b)
    finally:
        engine.store.close()
        if store_kind == "postgresql":
            drop_schema(url)


def drop_zero(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


def expected(s: TrafficScript) -> dict[str, Any]:
    """The figures of a script's day, written from its paths (see ``regflow.reports.traffic``)."""
    n = s.count
    to_code = s.total - n("cancel_at_email")
    to_details = to_code - n("cancel_at_code", "code_expires")
    done = n("finish", "wrong_code", "contract_mismatch")
    cancelled = n("cancel_at_email", "cancel_at_code", "cancel_at_details", "license_full")
    expired = n("code_expires", "abandon_at_details")
    return {
        "started": s.total,
        "finals": {"handed_over": 0, "ready": done, "cancelled": cancelled, "expired": expired,
                   "failed": 0},
        "enter_email": (s.total, drop_zero({"submit": to_code, "cancel": n("cancel_at_email")}), {},
                        drop_zero({"cancelled": n("cancel_at_email")})),
        "enter_code": (to_code,
                       drop_zero({"submit": to_details, "cancel": n("cancel_at_code"),
                                  "expire": n("code_expires")}),
                       drop_zero({"submit": n("wrong_code"), "code_timeout": n("code_expires")}),
                       drop_zero({"cancelled": n("cancel_at_code"), "expired": n("code_expires")})),
        "details": (to_details,
                    drop_zero({"submit": done, "cancel": n("cancel_at_details", "license_full"),
                               "expire": n("abandon_at_details")}),
                    drop_zero({"submit": n("contract_mismatch", "license_full")}),
                    drop_zero({"cancelled": n("cancel_at_details", "license_full"),
                               "expired": n("abandon_at_details")})),
        "provisioning": (done, drop_zero({"provisioned": done}), {}, drop_zero({"completed": done})),
        "messages": drop_zero({"code_invalid": n("wrong_code"),
                               "contract_mismatch": n("contract_mismatch"),
                               "license_full": n("license_full"), "code_expired": n("code_expires"),
                               "expired": expired}),
    }


def percentile(values: list[int], p: int) -> float:
    """Nearest rank, written here from its definition: the ceil(p·n/100)-th smallest."""
    ordered = sorted(values)
    return float(ordered[math.ceil(p * len(ordered) / 100) - 1])


def check_counts(report: FlowReport, script: TrafficScript) -> None:
    want = expected(script)
    assert report.started == want["started"]
    assert report.finals == want["finals"]
    assert report.conversion == {k: v / want["started"] for k, v in want["finals"].items()}
    for state in ("enter_email", "enter_code", "details", "provisioning"):
        got = report.state(state)
        assert (got.entered, got.left, got.stayed, got.ended) == want[state], state
    for final, count in want["finals"].items():
        status = {"ready": "completed", "handed_over": "completed"}.get(final, final)
        assert report.state(final).ended == ({status: count} if count else {})
    assert report.messages == want["messages"]


def test_report_counts_what_the_script_declared(played: Played) -> None:
    definition = played.engine.flows.latest("registration")
    day_a = flow_report(played.engine.store, definition, since=DAY_A, until=DAY_B)
    check_counts(day_a, SCRIPT_A)
    edges = {(e.source, e.event, e.target): e.count for e in day_a.edges}
    assert edges[("enter_code", "submit", "enter_code")] == 3  # wrong codes
    assert edges[("provisioning", "provisioned", "ready")] == 10
    assert sum(edges.values()) + day_a.started == (
        sum(s.entered for s in day_a.states) + sum(sum(s.stayed.values()) for s in day_a.states))
    for state in ("enter_email", "enter_code", "details", "provisioning"):
        planned = played.a.spent[state]
        got = day_a.state(state)
        assert (got.median_s, got.p90_s) == (percentile(planned, 50), percentile(planned, 90)), state
    assert day_a.state("provisioning").median_s == 600.0  # provisioning_delay = "10m"
    assert day_a.state("ready").median_s is None  # a final state is never left
    check_counts(flow_report(played.engine.store, definition, since=DAY_B), SCRIPT_B)
    whole = flow_report(played.engine.store, definition)
    assert whole.started == SCRIPT_A.total + SCRIPT_B.total
    assert whole.messages["license_full"] == 3


def test_customer_filter_keeps_that_customers_flows(played: Played) -> None:
    store, definition = played.engine.store, played.engine.flows.latest("registration")
    own = flow_report(store, definition, customer="281001")
    check_counts(own, attrs.evolve(SCRIPT_A, people={**SCRIPT_A.people, "license_full": 0}))
    full = flow_report(store, definition, customer="281099")
    check_counts(full, attrs.evolve(SCRIPT_A, people={"license_full": 2}))
    assert flow_report(store, definition, customer="281002", until=DAY_B).started == 0
    assert flow_report(store, definition, customer="999999").started == 0


def test_visits_open_at_the_end_of_the_range(store_kind: str, tmp_path: Path) -> None:
    """Three people let their code expire, starting at 08:00, 12:00 and 16:00 (spread over
    08:00-20:00); at 16:10 the third is still on the code screen."""
    url = {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path / 'open.db'}"}.get(store_kind)
    url = url or postgres_url()
    clock = ManualClock(DAY_A)
    engine = regflow.Engine.from_url(url, mail="memory", hasher="fast", clock=clock)
    try:
        run_traffic(engine, clock, TrafficScript(day=DAY_A, people={"code_expires": 3}))
        report = flow_report(engine.store, "registration", since=DAY_A,
                             until=DAY_A + timedelta(hours=16, minutes=10))
        code = report.state("enter_code")
        assert (code.entered, code.ended, code.stayed) == (3, {"expired": 2, "active": 1},
                                                           {"code_timeout": 2})
        assert (code.median_s, code.p90_s) == (3600.0, 3600.0)  # flow_expiry = "60m"
        assert report.messages == {"code_expired": 2, "expired": 2}
        later = flow_report(engine.store, "registration", since=DAY_A + timedelta(hours=16))
        assert later.started == 1
        assert later.state("enter_code").ended == {"expired": 1}
    finally:
        engine.store.close()
        if store_kind == "postgresql":
            drop_schema(url)


def test_bad_bounds_and_stores_are_refused() -> None:
    store = regflow.Engine.from_url("memory://", mail="memory", hasher="fast").store
    with pytest.raises(ReportRangeInvalid, match="timezone-aware"):
        flow_report(store, "registration", since=datetime(2026, 1, 5))
    with pytest.raises(ReportRangeInvalid, match="not before"):
        flow_report(store, "registration", since=DAY_B, until=DAY_A)
    with pytest.raises(ReportUnavailable):
        flow_report(object(), "registration")
    assert ReportRangeInvalid.message_id == "report_range_invalid"
    assert flow_report(store, "registration").started == 0


def test_nearest_rank() -> None:
    assert nearest_rank([], 50) is None
    assert nearest_rank([7], 90) == 7
    assert nearest_rank([1, 2, 3, 4], 50) == 2
    assert nearest_rank(list(range(1, 11)), 90) == 9
    assert nearest_rank(list(range(1, 12)), 90) == 10


def _regflow(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "regflow"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "REGFLOW_LANG": ""})


@pytest.mark.parametrize("store_kind", ["sqlite"])
def test_cli_formats_hold_no_personal_data(played: Played) -> None:
    db = ["--db", played.url, "--hasher", "fast", "--mail", "memory"]
    day = ["--since", "2026-01-05", "--until", "2026-01-06"]
    as_json = _regflow("report", "registration", *db, *day, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["started"] == SCRIPT_A.total
    assert document["since"] == "2026-01-05T00:00:00Z"
    as_csv = _regflow("report", "registration", *db, *day, "--format", "csv")
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows[0] == ["kind", "state", "event", "target", "key", "value"]
    assert ["message", "", "", "", "license_full", "2"] in rows
    assert ["left", "enter_email", "cancel", "", "", "3"] in rows
    as_text = _regflow("report", "registration", *db, "--customer", "281001", "--lang", "ja")
    assert as_text.returncode == 0, as_text.stderr
    assert "顧客: 281001" in as_text.stdout
    assert "enter_code" in as_text.stdout
    flow_ids = list(played.engine.store.iter_flow_ids())
    assert len(flow_ids) == SCRIPT_A.total + SCRIPT_B.total
    for output in (as_json.stdout, as_csv.stdout, as_text.stdout):
        assert "@" not in output
        assert "example.jp" not in output
        assert "Person" not in output
        assert traffic.PHONE not in output
        assert traffic.PASSWORD not in output
        assert not any(flow_id in output for flow_id in flow_ids)


def test_cli_refuses_a_bad_range(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    reversed_ = _regflow("report", "registration", "--db", db, "--since", "2026-01-06",
                         "--until", "2026-01-05")
    assert reversed_.returncode == 2
    assert reversed_.stderr.startswith("regflow: report_range_invalid: ")
    assert len(reversed_.stderr.strip().splitlines()) == 1
    bad = _regflow("report", "registration", "--db", db, "--since", "yesterday")
    assert bad.returncode == 2
    assert "report_range_invalid" in bad.stderr
    unknown = _regflow("report", "nope", "--db", db)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("regflow: flow_not_found: ")


def test_migration_3_fills_in_the_customers_of_existing_flows(tmp_path: Path) -> None:
    """A version-2 database (flows without ``customer_id``) migrated: the flows played before
    the upgrade are reported by customer as if they had been played after it."""
    import sqlite3

    from regflow.adapters.peewee_store import PeeweeStore

    path = tmp_path / "v2.db"
    clock = ManualClock(DAY_A)
    engine = regflow.Engine.from_url(f"sqlite:///{path}", mail="memory", hasher="fast", clock=clock)
    run_traffic(engine, clock, SCRIPT_A)
    engine.store.close()
    with sqlite3.connect(path) as conn:
        conn.execute('ALTER TABLE "flows" DROP COLUMN "customer_id"')
        conn.execute("UPDATE regflow_meta SET value = '2' WHERE key = 'schema_version'")
    store = PeeweeStore.from_url(f"sqlite:///{path}", migrate=True)
    try:
        own = flow_report(store, "registration", customer="281001")
        check_counts(own, attrs.evolve(SCRIPT_A, people={**SCRIPT_A.people, "license_full": 0}))
        full = flow_report(store, "registration", customer="281099")
        check_counts(full, attrs.evolve(SCRIPT_A, people={"license_full": 2}))
    finally:
        store.close()


def test_an_admin_flow_belongs_to_the_admins_customer() -> None:
    """Flows started from a session (here require_two_factor, by the admin of 281099 that the
    script's contracts hold) are reported under the customer of that login."""
    from regflow.ground.records import Session
    from regflow.runtime import sessions

    clock = ManualClock(DAY_A)
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast", clock=clock)
    run_traffic(engine, clock, attrs.evolve(SCRIPT_A, people={"license_full": 1}))
    token = "session-token-of-the-admin"
    with engine.store.transaction() as tx:
        admin = tx.logins.by_email("admin.281099@example.jp")
        assert admin is not None
        tx.sessions.insert(Session(id="s1", login_id=admin.id, digest=sessions.digest(token),
                                   created_at=clock.now(), expires_at=clock.now() + timedelta(hours=1)))
    engine.start("require_two_factor", {}, session=token)
    assert flow_report(engine.store, "require_two_factor", customer="281099").started == 1
    assert flow_report(engine.store, "require_two_factor", customer="281001").started == 0


def test_traffic_refuses_a_database_with_contracts_of_its_own(tmp_path: Path) -> None:
    """``regflow traffic`` on a deployment's database (a contract that is not the script's):
    one error line, exit 2, and not one flow or login written."""
    url = f"sqlite:///{tmp_path / 'deployment.db'}"
    engine = regflow.Engine.from_url(url, mail="memory", hasher="fast")
    engine.contracts.add(customer_id="280001", phone="0312345678", licenses=3, accounts=["a1"])
    engine.store.close()
    done = _regflow("traffic", "--db", url)
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("regflow: traffic_refused: ")
    with sqlite3.connect(tmp_path / "deployment.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM flows").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM logins").fetchone() == (0,)
