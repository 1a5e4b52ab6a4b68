"""A real ``regflow serve`` for the attack tests (the fixture is in conftest.py): a subprocess
on a free loopback port, on a SQLite file or a fresh PostgreSQL schema, with mail in an outbox
folder and ``REGFLOW_SECRET`` set, and HTTP clients that each speak from their own loopback
address (127.0.0.2, 127.0.0.3, …), so that "another client" is another IP address as the server
sees it, without believing any proxy header."""

from __future__ import annotations

import email
import email.policy
import http.client
import json
import os
import re
import secrets
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
from live_server import serve_process
from pg import drop_schema, postgres_url

import regflow
from regflow.definitions.validation import email_key
from regflow.ground.records import Login
from regflow.runtime.context import new_id

SECRET = secrets.token_urlsafe(32)
PASSWORD = "Kx7#mPq2wZ"
CONTRACT: dict[str, Any] = {"customer_id": "281234", "phone": "03-1234-5678", "licenses": 3,
                            "accounts": ["abcd8-01", "abcd8-02", "abcd8-03"]}
_CODE = re.compile(r"(?<![0-9])[0-9]{8}(?![0-9])")


@attrs.frozen
class Answer:
    """An HTTP answer: status, headers (lower-case names) and the JSON body."""

    status: int
    headers: dict[str, str]
    body: Any

    def __getitem__(self, key: str) -> Any:
        return self.body[key]


class Client:
    """An HTTP client speaking from its own loopback address (its own "IP")."""

    def __init__(self, base: str, source: str) -> None:
        self.host, _, port = base.removeprefix("http://").partition(":")
        self.port = int(port)
        self.source = source

    def request(self, method: str, path: str, body: Any = None, **headers: str) -> Answer:
        """Send one request on a fresh connection; the JSON answer (or the raw text)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60,
                                          source_address=(self.source, 0))
        data = None if body is None else json.dumps(body).encode()
        sent = {"Content-Type": "application/json"} if data is not None else {}
        sent.update({k.replace("_", "-"): v for k, v in headers.items()})
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            raw = response.read().decode("utf-8")
            found = {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw
        return Answer(response.status, found, parsed)

    def start(self, flow: str, **context: str) -> Answer:
        """Start a flow (201 with its flow token, or the refusal)."""
        return self.request("POST", "/api/flows", {"flow": flow, "context": context})

    def send(self, flow_id: str, event: str, data: dict[str, Any] | None = None,
             token: str | None = None, **headers: str) -> Answer:
        """Send an event, with the flow token when given."""
        if token is not None:
            headers["Regflow_Flow_Token"] = token
        return self.request("POST", f"/api/flows/{flow_id}/events/{event}", {"data": data or {}},
                            **headers)

    def get(self, flow_id: str, token: str | None = None) -> Answer:
        """Read a flow, with the flow token when given."""
        headers = {"Regflow_Flow_Token": token} if token is not None else {}
        return self.request("GET", f"/api/flows/{flow_id}", **headers)


@attrs.define
class Server:
    """A running ``regflow serve`` and what it works on."""

    base: str
    db: str
    outbox: Path
    process: subprocess.Popen[bytes]
    _next_client: int = 2

    def client(self) -> Client:
        """A client from a loopback address no other client of this server used."""
        number = self._next_client
        self._next_client += 1
        return Client(self.base, f"127.0.{number // 250}.{number % 250 + 2}")

    def mails(self) -> list[EmailMessage]:
        """Every mail the server wrote to its outbox folder, oldest first."""
        deadline = time.monotonic() + 10
        found: list[EmailMessage] = []
        files = sorted(self.outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
        for path in files:
            while True:  # a file may be in the middle of being written
                message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                if message.get_body(("plain",)) is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert isinstance(message, EmailMessage)
            found.append(message)
        return found

    def mails_to(self, address: str) -> list[EmailMessage]:
        """The mails to one address."""
        return [m for m in self.mails() if address in str(m["To"])]

    def wait_for_mails(self, address: str, count: int) -> list[EmailMessage]:
        """The mails to an address once there are ``count`` (delivery follows the answer)."""
        deadline = time.monotonic() + 20
        while True:
            mails = self.mails_to(address)
            if len(mails) >= count or time.monotonic() > deadline:
                return mails
            time.sleep(0.05)

    def code_for(self, address: str, count: int) -> str:
        """The code of the ``count``-th mail to ``address``."""
        mails = self.wait_for_mails(address, count)
        assert len(mails) >= count, f"{len(mails)} mail(s) to {address}, expected {count}"
        body = mails[count - 1].get_body(("plain",))
        assert body is not None
        found = _CODE.findall(str(body.get_content()))  # type: ignore[attr-defined]
        assert len(found) == 1, found
        return found[0]

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """What a copy of the database shows: ``sql`` run straight on the server's tables."""
        if self.db.startswith("sqlite:///"):
            with sqlite3.connect(self.db.removeprefix("sqlite:///")) as conn:
                return [tuple(row) for row in conn.execute(sql)]
        import psycopg

        schema = parse_qs(urlsplit(self.db).query)["schema"][0]
        server = self.db.split("?", 1)[0]
        with psycopg.connect(server, options=f"-c search_path={schema}") as conn:
            return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                    for row in conn.execute(sql)]

    def engine(self) -> regflow.Engine:
        """An engine on the server's store and secret (to seed it, or to look inside)."""
        return regflow.Engine.from_url(self.db, mail="memory", hasher="fast", secret=SECRET)


def seed_login(engine: regflow.Engine, address: str, *, account: str | None = None,
               two_factor: bool = False, role: str = "member") -> Login:
    """A ready login of the demo customer (as a registration 10 minutes ago would leave it)."""
    now = datetime.now(UTC)
    login = Login(id=new_id(), customer_id=CONTRACT["customer_id"], email=address,
                  email_key=email_key(address), password_hash=engine.services.hasher.hash(PASSWORD),
                  display_name=address.split("@")[0], role=role, two_factor=two_factor,
                  ready_at=now - timedelta(minutes=1), account=account,
                  created_at=now - timedelta(minutes=11))
    with engine.store.transaction() as tx:
        tx.logins.insert(login)
    return login


@contextmanager
def serving(kind: str, folder: Path, mail: str | None = None) -> Iterator[Server]:
    """``regflow serve`` on a fresh store of the kind ("sqlite" or "postgresql"), the demo
    contract seeded; mail to an outbox folder unless ``mail`` names another mailer."""
    db = f"sqlite:///{folder / 'regflow.db'}" if kind == "sqlite" else postgres_url()
    outbox = folder / "outbox"
    seeding = regflow.Engine.from_url(db, mail="memory", hasher="fast", secret=SECRET)
    seeding.contracts.add(**CONTRACT)
    seeding.store.close()
    try:
        with serve_process("--db", db, "--mail", mail or f"outbox:{outbox}", "--hasher", "fast",
                           env={**os.environ, "REGFLOW_SECRET": SECRET}) as (base, process):
            yield Server(base=base, db=db, outbox=outbox, process=process)
    finally:
        if kind == "postgresql":
            drop_schema(db)
