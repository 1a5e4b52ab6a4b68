"""Secrets at rest (issue 10, attack 6): what is kept, for how long, and the secret that keys it.

Retention is ``regflow.Retention``'s defaults: ended flows 30 days after their last change, used
or expired codes 1 day after they were issued, sessions 1 day after they expired, sent mail 7
days, counted attempts 2 days, the journal 400 days. Each boundary is tried at its exact second
(kept) and one second later (gone), on every store.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flows import EngineFactory, register
from freezegun.api import FrozenDateTimeFactory
from live_server import regflow_command

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the fixtures' frozen start
SECOND, MINUTE, DAY = timedelta(seconds=1), timedelta(minutes=1), timedelta(days=1)
TARO = "taro@example.jp"
PASSWORD = "Kx7#mPq2wZ"  # tests/flows.py's registration password


def test_purge_deletes_each_kind_after_its_retention(make_engine: EngineFactory,
                                                     frozen: FrozenDateTimeFactory) -> None:
    """A registration (code mailed and used at T0, ready at T0+10 min), a sign-in (session from
    T0+10 min, 12 h long) and a cancelled registration: purged kind by kind, to the second."""
    engine = make_engine()
    assert register(engine, "abcd8-01", TARO).state == "provisioning"
    frozen.tick(10 * MINUTE)
    assert engine.sweep() == 1  # the worker's pass: provisioning is over, the flow ends (ready)
    sign_in = engine.start("sign_in", {"account": "abcd8-01"})
    prompt = engine.send(sign_in, "submit", {"email": TARO, "password": PASSWORD})
    assert engine.send(prompt, "submit", {}).state == "signed_in"
    abandoned = engine.start("registration", {"account": "abcd8-02"})
    assert engine.send(abandoned, "cancel", {}).status == "cancelled"
    ended_at = T0 + 10 * MINUTE
    session_expiry = ended_at + timedelta(hours=12)

    def purged_at(instant: datetime) -> dict[str, int]:
        frozen.move_to(instant)
        return {kind: n for kind, n in engine.purge().items() if n}

    assert purged_at(T0 + DAY) == {}
    assert purged_at(T0 + DAY + SECOND) == {"codes": 1}
    assert purged_at(session_expiry + DAY) == {}
    assert purged_at(session_expiry + DAY + SECOND) == {"sessions": 1}
    assert purged_at(T0 + 2 * DAY + SECOND) == {"limits": 1}  # the code mail's count
    assert purged_at(T0 + 7 * DAY) == {}
    assert purged_at(T0 + 7 * DAY + SECOND) == {"mail": 1}
    assert purged_at(ended_at + 30 * DAY) == {}
    assert purged_at(ended_at + 30 * DAY + SECOND) == {"flows": 3}
    assert purged_at(T0 + 400 * DAY) == {}
    journal = purged_at(ended_at + 400 * DAY + SECOND)
    assert set(journal) == {"journal"}
    assert journal["journal"] >= 8  # every step of the three flows, kept to the last day


def test_a_sent_mail_keeps_no_body(make_engine: EngineFactory) -> None:
    """The code mail, once delivered, is only a row without its body (the code) in the outbox."""
    engine = make_engine()
    started = engine.start("registration", {"account": "abcd8-01"})
    engine.send(started, "submit", {"email": TARO})
    delivered = engine.mailer.messages[-1]  # type: ignore[attr-defined]
    mail_id = str(delivered["Message-ID"]).strip("<>").split("@")[0]  # <outbox id@regflow.invalid>
    with engine.store.transaction() as tx:
        row = tx.outbox.get(mail_id)
    assert row is not None
    assert (row.status, row.message) == ("sent", b"")


def _run(*args: str, secret: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "REGFLOW_SECRET"}
    if secret is not None:
        env["REGFLOW_SECRET"] = secret
    return subprocess.run([regflow_command(), *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_serve_beyond_loopback_needs_a_secret(tmp_path: Path) -> None:
    """``regflow serve --host 0.0.0.0`` without REGFLOW_SECRET refuses to start (one line)."""
    done = _run("serve", "--host", "0.0.0.0", "--port", "0", "--db", f"sqlite:///{tmp_path}/r.db",
                secret=None)
    assert done.returncode == 2
    assert done.stderr.startswith("regflow: secret_required: ")
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("length", [1, 31])
def test_a_short_secret_is_refused(tmp_path: Path, length: int) -> None:
    """REGFLOW_SECRET shorter than 32 bytes is refused by every command, with its length."""
    done = _run("purge", "--db", f"sqlite:///{tmp_path}/r.db", secret="s" * length)
    assert done.returncode == 2
    assert done.stderr.startswith("regflow: config_invalid: ")
    assert "at least 32 bytes" in done.stderr
    assert f"it is {length}" in done.stderr


def test_purge_command_reports_what_went(tmp_path: Path) -> None:
    """``regflow purge`` on a fresh database: every kind named, nothing to delete."""
    done = _run("purge", "--db", f"sqlite:///{tmp_path}/r.db", secret="s" * 32)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("purged 0 flows, 0 codes, 0 sessions, 0 mail, 0 idempotency, "
                                   "0 limits, 0 journal")


def test_a_worker_on_a_database_beyond_this_machine_needs_a_secret() -> None:
    """``regflow worker`` on a PostgreSQL host other than loopback refuses to start without
    REGFLOW_SECRET, before it connects to anything (one line, exit 2)."""
    done = _run("worker", "--once", "--db", "postgresql://regflow@db.example/regflow", secret=None)
    assert done.returncode == 2
    assert done.stderr.startswith("regflow: secret_required: ")
    assert len(done.stderr.strip().splitlines()) == 1


def test_logs_name_flows_by_ref_not_by_id(make_engine: EngineFactory,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """The journal and security logs carry ``flow_ref`` (a one-way digest of the id), never the
    flow id itself: a log shipped elsewhere names no flow to the API."""
    import logging

    from regflow.runtime.audit import flow_ref

    engine = make_engine()
    with caplog.at_level(logging.DEBUG, logger="regflow"):
        started = engine.start("sign_in", {"account": "abcd8-01"})
        engine.send(started, "submit", {"email": TARO, "password": "Wrong-pass-1"})
    records = [r for r in caplog.records if r.name in ("regflow.journal", "regflow.security")]
    assert records
    assert all(started.id not in r.getMessage() and started.id not in str(r.__dict__) for r in records)
    assert {r.regflow["flow_ref"] for r in records} == {flow_ref(started.id)}  # type: ignore[attr-defined]
