"""``regflow serve --trusted-proxies N`` behind a reverse proxy, over real HTTP (waitress).

The per-client limits count the address the proxies saw (the last ``X-Forwarded-For`` entry
with one proxy), and ``X-Forwarded-Proto: https`` makes the answer carry HSTS; without trusted
proxies both headers are ignored and every request is the loopback peer's. (The Flask test
client never goes through waitress, which removes these headers unless told not to.)
"""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from live_server import serve_process
from test_pages import CONTRACT, SEAT

import regflow
from regflow.runtime import limits

ADDRESSES = ("203.0.113.9", "198.51.100.7")  # what the proxy appends: the clients it saw
SPOOFED = "192.0.2.66"  # what a client wrote into the header itself: never believed


@contextmanager
def _serve(db: str, folder: Path, trusted: int) -> Iterator[str]:
    """``regflow serve --trusted-proxies trusted`` on ``db``; its base URL."""
    with serve_process("--db", db, "--mail", f"outbox:{folder / 'outbox'}", "--hasher", "fast",
                       "--no-relay", "--trusted-proxies", str(trusted)) as (base, _):
        yield base


def _start(base: str, address: str) -> tuple[int, str | None]:
    """Start a sign-in through the API as the proxy would forward it: status, HSTS header."""
    request = urllib.request.Request(
        f"{base}/api/flows", method="POST",
        data=json.dumps({"flow": "sign_in", "context": {"account": SEAT}}).encode(),
        headers={"Content-Type": "application/json", "X-Forwarded-Proto": "https",
                 "X-Forwarded-For": f"{SPOOFED}, {address}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.status, reply.headers.get("Strict-Transport-Security")


def _counted_clients(db_file: Path) -> set[str]:
    """The clients the store counted flow starts for (keyed digests)."""
    with sqlite3.connect(db_file) as conn:
        rows = conn.execute("SELECT DISTINCT client FROM limit_hits WHERE kind = 'start'").fetchall()
    return {str(row[0]) for row in rows}


@pytest.mark.parametrize("trusted", [0, 1])
def test_serve_counts_the_address_the_trusted_proxy_saw(trusted: int, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """With one trusted proxy each forwarded client is counted as itself (not the spoofed entry,
    not the proxy) and HTTPS is believed; with none, both are the loopback peer's."""
    monkeypatch.delenv("REGFLOW_SECRET", raising=False)  # the store's shared secret, here too
    db_file = tmp_path / "regflow.db"
    db = f"sqlite:///{db_file}"
    seeding = regflow.Engine.from_url(db, mail="memory", hasher="fast")
    seeding.contracts.add(**CONTRACT)
    secret = seeding.services.secret
    seeding.store.close()
    with _serve(db, tmp_path, trusted) as base:
        answers = [_start(base, address) for address in ADDRESSES]
    assert [status for status, _ in answers] == [201, 201]
    assert all((hsts is not None) == bool(trusted) for _, hsts in answers)
    seen = ADDRESSES if trusted else ("127.0.0.1",)
    assert _counted_clients(db_file) == {limits.digest(secret, f"client:{a}") for a in seen}
