"""``oracle_gap``: does the answer's time tell a registered address from another?

The password reset's "send me a code" answered in 9.4 ms for a registered address and 2.7 ms
for another (median of 30 each), before decoy mail and delivery after the answer. This row
measures the same over real HTTP: ``regflow.web.create_app`` on waitress, a SQLite file, mail
written to an outbox folder (a real delivery, after the answer), the default limits. Each
sample is one POST of the address on a fresh reset flow; registered and unregistered addresses
alternate, each address used once (so no limit is reached). Reported: the medians, the p90s and
the gap between the medians, in milliseconds — noise on a shared 2-core machine is a few
tenths of a millisecond, so a gap of that size says nothing either way.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from typing import Any

from waitress.server import create_server

import regflow
from benchmarks import fixtures
from regflow.definitions.validation import email_key
from regflow.ground.records import Customer, Login
from regflow.runtime.context import new_id


def _post(port: int, path: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Regflow-Flow-Token"] = token
    try:
        conn.request("POST", path, body=json.dumps(body), headers=headers)
        reply = conn.getresponse()
        data = json.loads(reply.read() or b"{}")
    finally:
        conn.close()
    if reply.status >= 400:
        raise RuntimeError(f"{path}: HTTP {reply.status} {data}")
    return dict(data)


def _seed_logins(engine: regflow.Engine, count: int) -> list[str]:
    now = engine.clock.now()
    addresses = [f"known{n:04d}@example.jp" for n in range(count)]
    hashed = engine.services.hasher.hash("Kx7#mPq2wZ")
    with engine.store.transaction() as tx:
        tx.contracts.put_customer(Customer("289999", "0312345678", 1, ["oracle-01"]))
        for address in addresses:
            tx.logins.insert(Login(
                id=new_id(), customer_id="289999", email=address, email_key=email_key(address),
                password_hash=hashed, display_name="k", role="member", two_factor=False,
                ready_at=now, account=None, created_at=now))
    return addresses


def oracle_gap(cfg: Any) -> dict[str, Any]:
    samples = 30 if cfg.rounds < 9 else 120
    from regflow.web import create_app, wait_for_mail

    with fixtures.scratch_dir() as folder:
        engine = regflow.Engine.from_url(fixtures.sqlite_url(folder, "oracle.db"),
                                         mail=f"outbox:{folder / 'outbox'}", hasher="fast")
        known = _seed_logins(engine, samples)
        unknown = [f"nobody{n:04d}@example.jp" for n in range(samples)]
        app = create_app(engine)
        server = create_server(app, host="127.0.0.1", port=0, threads=4)
        port = server.socket.getsockname()[1]
        stop = threading.Event()

        def run() -> None:  # in slices, so it can stop before its sockets close
            while not stop.is_set():
                server.asyncore.loop(timeout=0.05, map=server._map, count=1)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        times: dict[str, list[float]] = {"registered": [], "unregistered": []}
        try:
            for warm in range(5):  # connections, templates, statements: not counted
                started = _post(port, "/api/flows", {"flow": "password_reset"})
                _post(port, f"/api/flows/{started['id']}/events/submit",
                      {"data": {"email": f"warm{warm}@example.jp"}}, started["flow_token"])
            for number in range(samples):
                order = [("registered", known[number]), ("unregistered", unknown[number])]
                for kind, address in order if number % 2 else reversed(order):
                    started = _post(port, "/api/flows", {"flow": "password_reset"})
                    begun = time.perf_counter()
                    answer = _post(port, f"/api/flows/{started['id']}/events/submit",
                                   {"data": {"email": address}}, started["flow_token"])
                    times[kind].append((time.perf_counter() - begun) * 1000)
                    assert answer["state"] == "enter_code", answer
        finally:
            wait_for_mail(app, timeout=10)  # mail goes out after the answer: not into a folder being removed
            stop.set()
            thread.join(timeout=5)
            server.close()
            engine.store.close()
    result: dict[str, Any] = {"samples": samples}
    for kind, values in times.items():
        values.sort()
        result[kind] = {"median_ms": round(statistics.median(values), 2),
                        "p90_ms": round(values[int(0.9 * (len(values) - 1))], 2)}
    result["gap_ms"] = round(result["registered"]["median_ms"]
                             - result["unregistered"]["median_ms"], 2)
    result["before"] = {"registered_median_ms": 9.4, "unregistered_median_ms": 2.7,
                        "gap_ms": 6.7, "note": "issue 10's measurement of the previous release"}
    return result
