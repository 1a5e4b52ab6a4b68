"""Logging for the ``regflow`` commands: one handler on stderr, plain lines or JSON lines.

The library itself only logs (``regflow.*`` loggers, a ``NullHandler`` by default); a command
runs inside :func:`to_stderr`, set from ``--log-level`` / ``REGFLOW_LOG_LEVEL`` and ``--log-json`` /
``REGFLOW_LOG_JSON``. Plain lines read
``2026-12-05T12:00:00Z WARNING regflow.mail.composer: mail 4f… to *@example.jp: attempt 1 of 8 failed…``;
JSON lines hold ``time``, ``level``, ``logger`` and ``message`` (and ``regflow``, the structured
fields some records carry, and ``exception`` with a traceback), one object per line, for log
shippers.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

LEVELS = ("debug", "info", "warning", "error")
DEFAULT_LEVEL = "warning"
# The loggers a command shows: regflow's own and the WSGI server's.
LOGGERS = ("regflow", "waitress")


def _utc(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


class PlainFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER: message`` in UTC, a traceback (if any) on the following lines."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_utc(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time``, ``level``, ``logger``, ``message`` (``exception``)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {"time": _utc(record), "level": record.levelname.lower(),
                                "logger": record.name, "message": record.getMessage()}
        fields = getattr(record, "regflow", None)  # structured fields some records carry
        if isinstance(fields, dict):
            data["regflow"] = fields
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to whatever ``sys.stderr`` is when a record is emitted (so a test
    runner that swaps it, or a daemon that reopens it, still gets the lines)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        del value  # always the current sys.stderr


def level_number(level: str) -> int:
    """The ``logging`` level of a name in ``LEVELS`` (any case); ``ValueError`` otherwise."""
    name = level.strip().lower()
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}")
    return int(getattr(logging, name.upper()))


@contextmanager
def to_stderr(level: str = DEFAULT_LEVEL, *, json_lines: bool = False) -> Iterator[logging.Handler]:
    """While the block runs, ``regflow.*`` (and waitress) records at ``level`` and above go to
    stderr, plain or as JSON lines; afterwards the loggers are as they were (so commands run
    in-process, as tests do, leave nothing behind)."""
    number = level_number(level)
    handler = StderrHandler()
    handler.setLevel(number)
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter())
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > number:
            logger.setLevel(number)
    try:
        yield handler
    finally:
        for logger, before in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(before)
