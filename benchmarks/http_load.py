"""Load over HTTP: ``regflow serve`` processes on PostgreSQL, driven through the JSON API.

Clients (threads of this process, each with its own keep-alive ``http.client`` connection) do
whole registrations: ``POST /api/flows`` (registration, a seat), the e-mail, the code read from
the mail the server wrote to an outbox folder, the details — until the time box closes or the
seats run out. Each registration comes "from" a client address of its own
(``X-Forwarded-For``, the servers trusting one proxy), as real users behind a proxy would, so
the per-client limits on starts and events count each user and none is reached.

The HTTP floor is the same client against a tiny WSGI app on waitress with regflow's thread
count (``benchmarks.http_floor``), answering a constant JSON on the same routes: what HTTP,
JSON and waitress cost with no work behind them.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import fixtures
from benchmarks.harness import cpu_delta, cpu_snapshot, percentile

CLIENTS = 16
SERVER_THREADS = 8  # regflow.web.server.serve's default; the floor gets the same
REGFLOW = Path(sys.executable).with_name("regflow")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} not listening after {timeout} s")


@contextlib.contextmanager
def processes(commands: list[list[str]], ports: list[int]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start the commands (servers on ``ports``, then any others), wait until the servers
    listen; stop them all afterwards (SIGTERM, then SIGKILL)."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for command in commands:
            started.append(subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL))
        for port, process in zip(ports, started, strict=False):
            _wait_listening(port, process)
        yield started
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def serve_command(url: str, port: int, hasher: str, outbox: Path) -> list[str]:
    return [str(REGFLOW), "serve", "--db", url, "--mail", f"outbox:{outbox}", "--hasher", hasher,
            "--port", str(port), "--no-relay", "--trusted-proxies", "1"]


def worker_command(url: str, hasher: str, outbox: Path) -> list[str]:
    return [str(REGFLOW), "worker", "--db", url, "--mail", f"outbox:{outbox}", "--hasher", hasher,
            "--interval", "1", "--purge-every", "0"]


def floor_command(port: int) -> list[str]:
    return [sys.executable, "-m", "benchmarks.http_floor", str(port), str(SERVER_THREADS)]


class Outbox:
    """Reads the codes out of the mail the servers write: one thread scans the folder, parses
    each new ``.eml`` (its ``To`` and the code), removes it and wakes the client waiting."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.codes: dict[str, str] = {}
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)

    def __enter__(self) -> Outbox:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def code_for(self, address: str, timeout: float = 30.0) -> str:
        with self._ready:
            if not self._ready.wait_for(lambda: address in self.codes, timeout):
                raise TimeoutError(f"no mail to {address} within {timeout} s")
            return self.codes.pop(address)

    def _run(self) -> None:
        while not self._stop.is_set():
            found = False
            with os.scandir(self.folder) as entries:
                names = [e.path for e in entries if e.name.endswith(".eml")]
            for path in names:
                with open(path, "rb") as file:
                    message = email.message_from_bytes(file.read(), policy=email.policy.default)
                os.unlink(path)
                address = str(message["To"]).strip()
                with self._ready:
                    self.codes[address] = fixtures.code_in(message)
                    self._ready.notify_all()
                found = True
            if not found:
                time.sleep(0.002)


class DatabaseWaits:
    """What the servers' PostgreSQL connections (``application_name``) do while a load runs,
    sampled from ``pg_stat_activity`` every 20 ms by a thread of its own: on average how many
    run a statement, and how many of those wait on a lock (advisory, row, transaction id)."""

    def __init__(self, application: str) -> None:
        self.application = application
        self.samples = 0
        self.active = 0
        self.locked = 0
        self.events: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-waits", daemon=True)

    def __enter__(self) -> DatabaseWaits:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        with fixtures.postgres_connection() as conn:
            while not self._stop.wait(0.02):
                rows = conn.execute("SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                                    "WHERE application_name = %s", (self.application,)).fetchall()
                self.samples += 1
                for state, kind, event in rows:
                    self.active += state == "active"
                    if kind == "Lock":
                        self.locked += 1
                        self.events[str(event)] += 1

    def summary(self) -> dict[str, Any]:
        per = max(1, self.samples)
        return {"samples": self.samples, "statements_running": round(self.active / per, 2),
                "waiting_on_locks": round(self.locked / per, 2),
                "lock_waits_by_kind": {k: round(v / per, 2) for k, v in self.events.most_common()}}


class _Client:
    """One keep-alive connection; every request timed."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.latencies: list[float] = []

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        began = time.perf_counter()
        self.conn.request("POST", path, body=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json", **headers})
        reply = self.conn.getresponse()
        data = json.loads(reply.read() or b"{}")
        self.latencies.append((time.perf_counter() - began) * 1000)
        return reply.status, data


def _register(client: _Client, outbox: Outbox | None, n: int, tag: str) -> None:
    """One registration through the API (``outbox`` None: the floor, no mail to read)."""
    number, seat = divmod(n, fixtures.SEATS_PER_CUSTOMER)
    address = f"{tag}-{n}@example.jp"
    forwarded = {"X-Forwarded-For": f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"}
    status, snap = client.post("/api/flows", {"flow": "registration",
                                              "context": {"account": fixtures.seats_of(number)[seat]}},
                               forwarded)
    _expect(status, 201, snap, "start")
    headers = forwarded | {"Regflow-Flow-Token": str(snap.get("flow_token", ""))}
    path = f"/api/flows/{snap['id']}/events/submit"
    status, snap = client.post(path, {"data": {"email": address}}, headers)
    _expect(status, 200, snap, "e-mail", "enter_code", outbox)
    code = outbox.code_for(address) if outbox is not None else "00000000"
    status, snap = client.post(path, {"data": {"code": code}}, headers)
    _expect(status, 200, snap, "code", "details", outbox)
    status, snap = client.post(path, {"data": {
        "password": fixtures.PASSWORD, "password_confirm": fixtures.PASSWORD,
        "customer_id": fixtures.customer_id(number), "display_name": "山田 太郎",
        "tel": fixtures.PHONE}}, headers)
    _expect(status, 200, snap, "details", "provisioning", outbox)


def _expect(status: int, wanted: int, snap: Any, step: str, state: str | None = None,
            outbox: Outbox | None = None) -> None:
    if status != wanted or (outbox is not None and state is not None and snap.get("state") != state):
        raise RuntimeError(f"{step}: HTTP {status}, {str(snap)[:200]}")


def spread(seats: range) -> list[int]:
    """``seats`` in an order where consecutive ones belong to different customers: concurrent
    registrations of one customer wait for each other (its licences are counted under a lock,
    by design), so the load spreads over customers as real sign-ups mostly would."""
    per = fixtures.SEATS_PER_CUSTOMER
    first = seats.start - seats.start % per + (per if seats.start % per else 0)
    customers = range(first // per, (seats.stop - seats.stop % per) // per)
    order = [n for n in (c * per + seat for seat in range(per) for c in customers) if n in seats]
    placed = set(order)
    return order + [n for n in seats if n not in placed]


def drive(ports: list[int], *, seconds: float, seats: range, tag: str, outbox: Outbox | None,
          server_pids: list[int], clients: int = CLIENTS) -> dict[str, Any]:
    """``clients`` threads registering on ``seats`` (seat ``n`` is seat ``n % 10`` of customer
    ``n // 10``) for about ``seconds``, client ``i`` talking to ``ports[i % len(ports)]``:
    rates, per-request latency, errors, CPU."""
    lock = threading.Lock()
    taken = iter(spread(seats))
    errors: list[str] = []
    done = [0]
    workers = [_Client(ports[i % len(ports)]) for i in range(clients)]
    go = threading.Event()
    deadline = [0.0]

    def run(client: _Client) -> None:
        go.wait()
        while time.perf_counter() < deadline[0]:
            with lock:
                n = next(taken, None)
            if n is None:
                return
            try:
                _register(client, outbox, n, tag)
            except Exception as exc:  # counted: none may happen
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:300])
                client.conn.close()
                continue
            with lock:
                done[0] += 1

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in workers]
    for thread in threads:
        thread.start()
    before, own, servers = cpu_snapshot(), time.process_time(), _cpu_of(server_pids)
    began = time.perf_counter()
    deadline[0] = began + seconds
    go.set()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    elapsed = time.perf_counter() - began
    used = cpu_delta(before, cpu_snapshot())
    server_cpu = _cpu_of(server_pids) - servers
    client_cpu = time.process_time() - own
    for client in workers:
        client.conn.close()
    latencies = sorted(v for c in workers for v in c.latencies)
    count = done[0]
    run_result: dict[str, Any] = {
        "registrations": count, "seconds": round(elapsed, 2),
        "registrations_per_s": round(count / elapsed, 1), "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": _pct(latencies, 50), "p95_ms": _pct(latencies, 95), "p99_ms": _pct(latencies, 99),
        "errors": len(errors), "first_errors": errors[:3], "clients": clients,
        "seats_ran_out": count + len(errors) >= len(seats),
    }
    if used and count:
        per = 1000 / count
        run_result["cpu_ms_per_registration"] = {
            "servers": round(server_cpu * per, 2),  # regflow serve + worker
            "postgres": round(used["postgres"] * per, 2),
            "client": round(client_cpu * per, 2),
            "other": round(max(0.0, used["machine_busy"] - server_cpu - used["postgres"]
                               - client_cpu) * per, 2),
            "machine": round(used["machine_busy"] * per, 2),
        }
        run_result["machine_busy_pct"] = round(used["machine_busy"] / used["machine_all"] * 100, 1)
        # What this machine's cores allow at the CPU this run spent per registration.
        run_result["cpu_ceiling_per_s"] = round(
            (os.cpu_count() or 1) * 1000 / (run_result["cpu_ms_per_registration"]["machine"]
                                             - run_result["cpu_ms_per_registration"]["other"]), 1)
    return run_result


def _pct(ordered: list[float], q: float) -> float | None:
    return round(percentile(ordered, q), 2) if ordered else None


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pids: list[int]) -> float:
    """CPU seconds used so far by ``pids`` (user + system)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            text = stat.read()
            total += sum(int(v) for v in text[text.rfind(")") + 2:].split()[11:13]) / _TICK
    return total


def _warm(ports: list[int], outbox: Outbox, seats: range, tag: str) -> None:
    """One registration through each server first (connections, caches), not counted."""
    for port, n in zip(ports, seats, strict=False):
        client = _Client(port)
        try:
            _register(client, outbox, n, f"{tag}-warm")
        finally:
            client.conn.close()


def regflow_run(url: str, *, servers: int, hasher: str, seconds: float, seats: range,
                tag: str, solo: float = 0.0) -> dict[str, Any]:
    """``servers`` ``regflow serve`` processes and one ``regflow worker`` on ``url``; one load
    run on ``seats`` (the first ``servers`` of them warm the servers up). With ``solo``, a run
    of one client alone for that many seconds first, on the last 100 seats (``found["solo"]``)."""
    application = f"regflow-bench-{tag}"  # names the servers' connections in pg_stat_activity
    served = f"{url}{'&' if '?' in url else '?'}application_name={application}"
    with fixtures.scratch_dir() as folder:
        outbox = folder / "outbox"
        outbox.mkdir()
        ports = [free_port() for _ in range(servers)]
        commands = [serve_command(served, port, hasher, outbox) for port in ports]
        commands.append(worker_command(served, hasher, outbox))
        with processes(commands, ports) as started, Outbox(outbox) as reader:
            _warm(ports, reader, seats[:servers], tag)
            alone = drive(ports, seconds=solo, seats=seats[-100:], tag=f"{tag}s", outbox=reader,
                          server_pids=[p.pid for p in started], clients=1) if solo else None
            with DatabaseWaits(application) as waits:
                found = drive(ports, seconds=seconds, seats=seats[servers:-100 if solo else None],
                              tag=tag, outbox=reader, server_pids=[p.pid for p in started])
    found["database_waits"] = waits.summary()
    found["servers"] = servers
    found["warm_up_registrations"] = servers + (alone["registrations"] if alone else 0)
    if alone is not None:
        found["solo"] = alone
    return found


def floor_run(seconds: float, seats: range) -> dict[str, Any]:
    """The same clients against the constant-JSON app on waitress (nothing stored)."""
    port = free_port()
    with processes([floor_command(port)], [port]) as started:
        drive([port], seconds=seconds / 4, seats=seats, tag="floor", outbox=None,
              server_pids=[])  # warm-up
        found = drive([port], seconds=seconds, seats=seats, tag="floor", outbox=None,
                      server_pids=[started[0].pid])
    found["servers"] = 1
    return found
