"""The audit and security logs: every committed step, no password, code or token in any log."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from flows import PASSWORD, codes_in, last_code, register

import regflow

NEW_PASSWORD = "Hz4!rTq9vLm"


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record's message, arguments and structured fields, as one text."""
    parts = []
    for rec in caplog.records:
        parts.append(rec.getMessage())
        parts.append(json.dumps(getattr(rec, "regflow", None), default=str, ensure_ascii=False))
        parts.append(repr(rec.args))
    return "\n".join(parts)


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_full_run_logs_no_secret(store: str, tmp_path: Path,
                                   caplog: pytest.LogCaptureFixture) -> None:
    """Register, sign in with 2FA, reset the password, act as admin: no secret in any log."""
    caplog.set_level(logging.DEBUG)  # every logger, peewee's SQL with its parameters included
    clock = regflow.ManualClock()
    url = "memory://" if store == "memory" else f"sqlite:///{tmp_path / 'r.db'}"
    engine = regflow.Engine.from_url(url, mail="memory", hasher="fast", clock=clock)
    engine.contracts.add(customer_id="281234", phone="03-1234-5678", licenses=3,
                         accounts=["abcd8-01", "abcd8-02", "abcd8-03"])
    secrets_seen: list[str] = [PASSWORD, NEW_PASSWORD]
    register(engine, "abcd8-01", "taro@example.jp")
    register(engine, "abcd8-02", "hana@example.jp")
    secrets_seen += [code for mail in engine.mailer.messages for code in codes_in(mail)]
    clock.advance(600)

    snap = engine.start("sign_in", {"account": "abcd8-01"})
    snap = engine.send(snap, "submit", {"email": "taro@example.jp", "password": "Wrong-pass-1"})
    snap = engine.send(snap, "submit", {"email": "taro@example.jp", "password": PASSWORD})
    snap = engine.send(snap, "submit")
    token = snap.session
    assert token is not None
    secrets_seen.append(token)
    two_factor = engine.start("set_two_factor", session=token)
    engine.send(two_factor, "submit", {"enabled": True}, session=token)
    snap = engine.start("sign_in", {"account": "abcd8-01"})
    snap = engine.send(snap, "submit", {"email": "taro@example.jp", "password": PASSWORD})
    code = last_code(engine)
    secrets_seen.append(code)
    snap = engine.send(snap, "submit", {"code": code}, idempotency_key="k-1")
    assert snap.session is not None
    secrets_seen.append(snap.session)

    reset = engine.start("password_reset")
    reset = engine.send(reset, "submit", {"email": "hana@example.jp"})
    reset_code = last_code(engine)
    secrets_seen.append(reset_code)
    reset = engine.send(reset, "submit", {"code": reset_code})
    reset = engine.send(reset, "submit", {"password": NEW_PASSWORD,
                                             "password_confirm": NEW_PASSWORD})
    assert reset.state == "done"

    hana = next(x for x in engine.admin_logins(snap.session) if x["email"] == "hana@example.jp")
    delete = engine.start("delete_login", {"target": hana["id"]}, session=snap.session)
    assert engine.send(delete, "submit", session=snap.session).state == "done"

    logged = everything_logged(caplog)
    assert logged  # the run did log
    leaked = [s for s in secrets_seen if s in logged]
    assert leaked == []
    for mail in engine.mailer.messages:  # nor any mail body
        body = mail.get_body(("plain",))
        assert body is not None
        assert body.get_content().strip() not in logged


def test_security_records_carry_actor_and_time(caplog: pytest.LogCaptureFixture) -> None:
    """Sign-in failures and admin actions reach regflow.security with their actor and instant."""
    caplog.set_level(logging.INFO, logger="regflow")
    clock = regflow.ManualClock()
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast", clock=clock)
    engine.contracts.add(customer_id="281234", phone="03-1234-5678", licenses=3,
                         accounts=["abcd8-01", "abcd8-02", "abcd8-03"])
    register(engine, "abcd8-01", "taro@example.jp")
    register(engine, "abcd8-02", "hana@example.jp")
    clock.advance(600)
    snap = engine.start("sign_in", {"account": "abcd8-01"})
    engine.send(snap, "submit", {"email": "taro@example.jp", "password": "Wrong-pass-1"})
    snap = engine.send(snap, "submit", {"email": "taro@example.jp", "password": PASSWORD})
    snap = engine.send(snap, "submit")
    assert snap.session is not None
    admin = next(x for x in engine.admin_logins(snap.session) if x["role"] == "admin")
    hana = next(x for x in engine.admin_logins(snap.session) if x["email"] == "hana@example.jp")
    flow = engine.start("transfer_admin", {"target": hana["id"]}, session=snap.session)
    engine.send(flow, "submit", session=snap.session)

    security = [r for r in caplog.records if r.name == "regflow.security"]
    fields = [r.regflow for r in security]  # type: ignore[attr-defined]
    refused = [f for f in fields if f["outcome"] == "credentials_invalid"]
    assert len(refused) == 1
    assert next(r for r in security if r.regflow["outcome"] == "credentials_invalid").levelno \
        == logging.WARNING  # type: ignore[attr-defined]
    assert any(f["flow"] == "sign_in" and f["to"] == "signed_in" for f in fields)
    transfer = [f for f in fields if f["flow"] == "transfer_admin" and f["event"] == "submit"]
    assert len(transfer) == 1
    assert transfer[0]["actor"] == admin["id"]
    assert transfer[0]["at"] == clock.now().isoformat()


def test_a_rolled_back_step_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A step whose transaction rolled back (a transient failure) leaves no journal record."""
    caplog.set_level(logging.INFO, logger="regflow.journal")

    class Down:
        def provision(self, login: object, *, key: str) -> None:
            raise regflow.TransientError("directory down")

    clock = regflow.ManualClock()
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast", clock=clock,
                                     provisioner=Down())
    engine.contracts.add(customer_id="281234", phone="03-1234-5678", licenses=3,
                         accounts=["abcd8-01"])
    snap = register(engine, "abcd8-01", "taro@example.jp")
    assert snap.state == "details"
    logged = [r.regflow for r in caplog.records]  # type: ignore[attr-defined]
    assert [f["outcome"] for f in logged if f["from"] == "details"] == ["transient_error"]
    assert len(logged) == len(engine.history(snap.id))
