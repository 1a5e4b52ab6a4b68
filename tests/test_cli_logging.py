"""Issue 14: every command logs to stderr (--log-level, REGFLOW_LOG_LEVEL, JSON lines), and
failed or dead mail shows in ``regflow sweep``'s summary and exit status.

The SMTP servers are real: a loopback port nobody listens on (connection refused), and an
aiosmtpd server that answers 550 to every mail. The commands run as real processes through the
installed ``regflow`` entry point.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from flows import enqueue_into

from regflow.bootstrap import open_store

REGFLOW = str(Path(sys.executable).with_name("regflow"))
PARTIAL = 3  # docs/operations.md: the pass ran, but something was set aside or failed


def closed_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def regflow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed ``regflow`` command, with a clean REGFLOW_* environment plus ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REGFLOW_")}
    return subprocess.run([REGFLOW, *args], capture_output=True, text=True, timeout=120,
                          env={**clean, **(env or {})}, check=False)


@pytest.fixture
def queued(tmp_path: Path) -> str:
    """A SQLite database with two mails queued and due now; its URL."""
    url = f"sqlite:///{tmp_path}/regflow.db"
    store = open_store(url)
    try:
        enqueue_into(store, 2)
    finally:
        store.close()
    return url


def test_sweep_reports_failed_delivery_on_unreachable_smtp(queued: str) -> None:
    """Connection refused: the summary counts the failed attempts, each is a warning on
    stderr (as docs/mail.md promises), and the exit status is 3."""
    port = closed_port()
    result = regflow("sweep", "--db", queued, "--mail", f"smtp://127.0.0.1:{port}")
    assert result.returncode == PARTIAL, result.stderr
    assert result.stdout == ("Applied due timers to 0 flow(s); delivered 0 mail(s); "
                             "2 delivery attempt(s) failed (retried later).\n")
    warnings = [line for line in result.stderr.splitlines() if " WARNING regflow.mail.composer: " in line]
    assert len(warnings) == 2, result.stderr
    for line in warnings:
        assert "attempt 1 of 10 failed, next at" in line
        assert "*@example.jp" in line
        assert "user000@example.jp" not in line
        assert "user001@example.jp" not in line


def test_log_json_lines_parse(queued: str) -> None:
    """--log-json: every stderr line is one JSON object with time, level, logger, message."""
    port = closed_port()
    result = regflow("sweep", "--db", queued, "--mail", f"smtp://127.0.0.1:{port}", "--log-json")
    assert result.returncode == PARTIAL
    records = [json.loads(line) for line in result.stderr.splitlines()]
    mail = [r for r in records if r["logger"] == "regflow.mail.composer"]
    assert len(mail) == 2
    for record in mail:
        assert set(record) == {"time", "level", "logger", "message"}
        assert record["level"] == "warning"
        assert record["time"].endswith("Z")
        assert "failed, next at" in record["message"]


def test_log_level_from_environment(queued: str) -> None:
    """REGFLOW_LOG_LEVEL=error hides the warnings of failed attempts, not the summary."""
    port = closed_port()
    quiet = regflow("sweep", "--db", queued, "--mail", f"smtp://127.0.0.1:{port}",
                    env={"REGFLOW_LOG_LEVEL": "error"})
    assert quiet.returncode == PARTIAL
    assert quiet.stderr == ""
    assert "2 delivery attempt(s) failed" in quiet.stdout


class Refusing:
    """An SMTP server that refuses every mail for good (550)."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "550 5.7.1 message refused"


@pytest.fixture
def refusing_server() -> Iterator[int]:
    controller = Controller(Refusing(), hostname="127.0.0.1", port=closed_port())
    controller.start()
    try:
        yield int(controller.port)
    finally:
        controller.stop()


def test_sweep_reports_dead_mail(queued: str, refusing_server: int) -> None:
    """A 550: the mails fail for good, counted as such, logged as errors; exit status 3."""
    result = regflow("sweep", "--db", queued, "--mail", f"smtp://127.0.0.1:{refusing_server}",
                     "--log-json")
    assert result.returncode == PARTIAL, result.stderr
    assert result.stdout == ("Applied due timers to 0 flow(s); delivered 0 mail(s); "
                             "2 mail(s) failed for good.\n")
    records: list[dict[str, Any]] = [json.loads(line) for line in result.stderr.splitlines()]
    errors = [r for r in records if r["logger"] == "regflow.mail.composer" and r["level"] == "error"]
    assert len(errors) == 2
    assert all("failed for good at attempt 1 of 10 (permanent)" in r["message"] for r in errors)


def test_worker_once_reports_failures(queued: str) -> None:
    """regflow worker --once: the pass's line counts the failed attempts; exit status 3."""
    port = closed_port()
    result = regflow("worker", "--once", "--purge-every", "0", "--db", queued,
                     "--mail", f"smtp://127.0.0.1:{port}")
    assert result.returncode == PARTIAL, result.stderr
    assert result.stdout == ("timers applied to 0 flow(s); 0 mail(s) delivered; "
                             "2 delivery attempt(s) failed (retried later)\n")
    assert result.stderr.count(" WARNING regflow.mail.composer: ") == 2


def test_sweep_nothing_failed_exits_zero(queued: str, tmp_path: Path) -> None:
    """Delivered to an outbox folder: nothing failed, exit status 0, nothing on stderr."""
    result = regflow("sweep", "--db", queued, "--mail", f"outbox:{tmp_path}/out")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "Applied due timers to 0 flow(s); delivered 2 mail(s).\n"
    assert len(list((tmp_path / "out").glob("*.eml"))) == 2
