"""Make the schema-version-1 fixtures (``v1.sqlite.sql``, ``v1.postgresql.sql``) with the code
of the release before schema versions (commit c564750), never with the current code:

    git archive c564750 | tar -x -C /tmp/regflow-v1
    PYTHONPATH=/tmp/regflow-v1 .venv/bin/python tests/data/schema/make_v1.py sqlite /tmp/v1.db
    sqlite3 /tmp/v1.db .dump > tests/data/schema/v1.sqlite.sql    # then the header (see below)
    PYTHONPATH=/tmp/regflow-v1 .venv/bin/python tests/data/schema/make_v1.py \\
        postgresql 'postgresql://postgres@127.0.0.1:5432/test?schema=regflow_v1'
    pg_dump -h 127.0.0.1 -U postgres -d test -n regflow_v1 --no-owner --no-privileges --inserts

It runs, at 2026-03-02 09:00 UTC (frozen), with the demo contract 281234: alice@example.jp
registers on abcd8-01 (argon2 password ``Kx7#mPq2wZ``), becomes ready, signs in (a session);
bob@example.jp starts a registration on abcd8-02 and stops at the code screen (his code is in
the outbox). It prints the header lines each dump starts with: the tokens and the code a test
needs to resume those (the database keeps only their digests).
"""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from typing import Any

from freezegun import freeze_time

import regflow

PASSWORD = "Kx7#mPq2wZ"
CONTRACT: dict[str, Any] = {"customer_id": "281234", "phone": "03-1234-5678", "licenses": 3,
            "accounts": ["abcd8-01", "abcd8-02", "abcd8-03"]}
DETAILS = {"password": PASSWORD, "password_confirm": PASSWORD, "customer_id": "281234",
           "display_name": "山田 太郎", "tel": "03-1234-5678"}


def _last_code(engine: regflow.Engine) -> str:
    """The 8-digit code of the newest mail the memory mailer holds."""
    mailer: Any = engine.mailer
    found = re.findall(r"(?<![0-9])[0-9]{8}(?![0-9])", mailer.messages[-1].get_body(("plain",)).get_content())
    assert len(found) == 1, found
    return str(found[0])


def main(kind: str, where: str) -> None:
    """Fill a version-1 store at ``where`` (a SQLite file or a PostgreSQL URL)."""
    url = f"sqlite:///{where}" if kind == "sqlite" else where
    with freeze_time("2026-03-02 09:00:00", tz_offset=0) as frozen:
        engine = regflow.Engine.from_url(url, mail="memory", hasher="argon2")
        engine.contracts.add(**CONTRACT)
        snap = engine.start("registration", {"account": "abcd8-01"})
        snap = engine.send(snap, "submit", {"email": "alice@example.jp"})
        snap = engine.send(snap, "submit", {"code": _last_code(engine)})
        snap = engine.send(snap, "submit", DETAILS)
        assert snap.state == "provisioning", snap
        frozen.tick(timedelta(minutes=10))
        engine.sweep()
        snap = engine.start("sign_in", {"account": "abcd8-01"})
        snap = engine.send(snap, "submit", {"email": "alice@example.jp", "password": PASSWORD})
        if snap.state == "link_prompt":
            snap = engine.send(snap, "submit")
        assert snap.state == "signed_in", snap
        assert snap.session, snap
        session = snap.session
        bob = engine.start("registration", {"account": "abcd8-02"})
        bob = engine.send(bob, "submit", {"email": "bob@example.jp"})
        assert bob.state == "enter_code", bob
        bob_code = _last_code(engine)
        engine.store.close()
    print(f"-- session of alice@example.jp: {session}")
    print(f"-- bob's registration, at enter_code: flow {bob.id} token {bob.flow_token} code {bob_code}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
