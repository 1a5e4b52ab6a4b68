"""Crashes: a process killed (SIGKILL) between commit and delivery, or inside a Provisioner
call. After a restart the mail goes out, exactly once, and no login, seat or admin is orphaned."""

from __future__ import annotations

import contextlib
import email
import email.policy
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from flows import PASSWORD, codes_in, details

import regflow
from regflow.adapters.argon2_hasher import Argon2Hasher
from regflow.adapters.mailers import MemoryMailer
from regflow.adapters.peewee_store import PeeweeStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

CHILD_PRELUDE = """
import os, re, signal, sys
from regflow import Engine
from regflow.adapters.argon2_hasher import Argon2Hasher
from regflow.adapters.mailers import MemoryMailer
from regflow.adapters.peewee_store import PeeweeStore

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

def code_of(mailer):
    body = mailer.messages[-1].get_body(("plain",)).get_content()
    return re.search(r"\\b[0-9]{8}\\b", body).group()

store = PeeweeStore.from_url(sys.argv[1])
"""


def run_child(script: str, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run a child Python process on the store at ``url``; it is expected to die by SIGKILL."""
    code = CHILD_PRELUDE + textwrap.dedent(script)
    return subprocess.run([sys.executable, "-c", code, url, *extra], capture_output=True,
                          text=True, timeout=60, check=False)


def seeded(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    store = PeeweeStore.from_url(url)
    engine = regflow.Engine(store, MemoryMailer(), hasher=Argon2Hasher.fast())
    engine.contracts.add(customer_id="281234", phone="03-1234-5678", licenses=3,
                         accounts=["abcd8-01", "abcd8-02", "abcd8-03"])
    store.close()
    return url


def restarted(url: str, *, later: timedelta = timedelta(0)) -> regflow.Engine:
    """A new engine on the same file, as after a restart, its clock ``later`` than now."""
    clock = regflow.ManualClock(datetime.now(UTC) + later)
    return regflow.Engine(PeeweeStore.from_url(url), MemoryMailer(), hasher=Argon2Hasher.fast(),
                          clock=clock)


def lease_lapsed(url: str, later: timedelta = timedelta(seconds=61)) -> None:
    """Move every mail lease ``later`` back, as if that time had passed on the database's clock
    (leases follow the database's clock, which no test clock moves)."""
    with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db, db:
        db.execute("UPDATE outbox SET next_attempt_at = next_attempt_at - ? "
                   "WHERE status = 'sending'", (later // timedelta(microseconds=1),))


def sent(engine: regflow.Engine) -> list[EmailMessage]:
    mailer = engine.mailer
    assert isinstance(mailer, MemoryMailer)
    return mailer.messages


def test_killed_between_commit_and_delivery(tmp_path: Path) -> None:
    """The code mail committed but not delivered goes out once after the restart; the code works."""
    url = seeded(tmp_path)
    child = run_child("""
        class Dying:
            def send(self, message):
                die()
        engine = Engine(store, Dying(), hasher=Argon2Hasher.fast())
        snap = engine.start("registration", {"account": "abcd8-01"})
        print(snap.id, snap.flow_token, flush=True)
        engine.send(snap, "submit", {"email": "taro@example.jp"})
    """, url)
    assert child.returncode == -9, child.stderr
    flow_id, token = child.stdout.split()[:2]  # the child's flow: its id and its token

    early = restarted(url)
    assert early.get(flow_id, token=token).state == "enter_code"  # the step committed before the crash
    assert early.deliver() == 0  # the claim's lease still holds
    ahead = restarted(url, later=timedelta(seconds=61))
    assert ahead.deliver() == 0  # also for a clock 61 s ahead: leases follow the database's
    ahead.store.close()
    lease_lapsed(url)
    engine = restarted(url, later=timedelta(seconds=61))
    assert engine.deliver() == 1
    assert engine.deliver() == 0
    assert len(sent(engine)) == 1
    code = codes_in(sent(engine)[0])[0]
    assert engine.send(flow_id, "submit", {"code": code}, token=token).state == "details"


def test_killed_after_sending_before_marking(tmp_path: Path) -> None:
    """A crash after the SMTP hand-off but before it was marked: sent again with the same
    Message-ID (at-least-once; receivers can drop the duplicate), never a third time."""
    url = seeded(tmp_path)
    out = tmp_path / "delivered.eml"
    child = run_child("""
        class SendThenDie:
            def send(self, message):
                open(sys.argv[2], "wb").write(bytes(message))
                die()
        engine = Engine(store, SendThenDie(), hasher=Argon2Hasher.fast())
        snap = engine.start("registration", {"account": "abcd8-01"})
        print(snap.id, snap.flow_token, flush=True)
        engine.send(snap, "submit", {"email": "taro@example.jp"})
    """, url, str(out))
    assert child.returncode == -9, child.stderr
    first = email.message_from_bytes(out.read_bytes(), policy=email.policy.default)
    lease_lapsed(url)
    engine = restarted(url, later=timedelta(seconds=61))
    assert engine.deliver() == 1
    assert engine.deliver() == 0
    again = sent(engine)
    assert [m["Message-ID"] for m in again] == [first["Message-ID"]]


def test_killed_inside_the_provisioner(tmp_path: Path) -> None:
    """Killed while provisioning: nothing of the step stays; Next again makes one login, one admin."""
    url = seeded(tmp_path)
    child = run_child("""
        class Dying:
            def provision(self, login, *, key):
                die()
        mailer = MemoryMailer()
        engine = Engine(store, mailer, hasher=Argon2Hasher.fast(), provisioner=Dying())
        snap = engine.start("registration", {"account": "abcd8-01"})
        print(snap.id, snap.flow_token, flush=True)
        snap = engine.send(snap, "submit", {"email": "taro@example.jp"})
        snap = engine.send(snap, "submit", {"code": code_of(mailer)})
        engine.send(snap, "submit", {
            "password": sys.argv[2], "password_confirm": sys.argv[2], "customer_id": "281234",
            "display_name": "Taro", "tel": "03-1234-5678"})
    """, url, PASSWORD)
    assert child.returncode == -9, child.stderr
    flow_id, token = child.stdout.split()[:2]  # the child's flow: its id and its token

    engine = restarted(url)
    with engine.store.transaction() as tx:
        assert tx.logins.count("281234") == 0  # no orphan login, seat or admin
    assert engine.get(flow_id, token=token).state == "details"
    snap = engine.send(flow_id, "submit", details(), token=token)
    assert snap.state == "provisioning"
    with engine.store.transaction() as tx:
        logins = tx.logins.of_customer("281234")
    assert [(login.email, login.role) for login in logins] == [("taro@example.jp", "admin")]
