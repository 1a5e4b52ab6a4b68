"""Mailers that keep what they are given: a list in memory, or a folder of ``.eml`` files."""

from __future__ import annotations

import contextlib
import email.policy
import itertools
import os
import re
import tempfile
from datetime import UTC
from email.message import EmailMessage
from pathlib import Path

from regflow.ground.clock import SystemClock
from regflow.ground.exceptions import TransientError
from regflow.ground.ports import Clock

_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+|\.{2,}")


class MemoryMailer:
    """Collects every message sent, in order, in ``messages``."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> None:
        """Append the message."""
        self.messages.append(message)


class OutboxDirMailer:
    """Writes each message as an RFC 5322 ``.eml`` file (CRLF line ends) into ``directory``.

    A file is named ``<UTC time>-<sequence>-<Message-ID>.eml``, so names sort by the time of
    sending and never collide; it is written to a hidden temporary file first and renamed, so a
    reader never sees half a message.
    """

    def __init__(self, directory: str | os.PathLike[str], clock: Clock | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._clock: Clock = clock if clock is not None else SystemClock()
        # Orders messages sent within one clock tick (a frozen test clock sends many per tick).
        self._sequence = itertools.count(1)

    def send(self, message: EmailMessage) -> None:
        """Write the message; a failing disk raises ``TransientError`` so the relay retries."""
        path = self.directory / self._file_name(message)
        data = message.as_bytes(policy=email.policy.SMTP)
        try:
            fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".eml.tmp")
        except OSError as exc:
            raise TransientError(f"cannot write to {self.directory}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise TransientError(f"cannot write {path}: {exc}") from exc

    def files(self) -> list[Path]:
        """The ``.eml`` files written so far, oldest first."""
        return sorted(self.directory.glob("*.eml"))

    def _file_name(self, message: EmailMessage) -> str:
        """``20260105T000000.000000Z-000001-<sanitized Message-ID>.eml``."""
        stamp = self._clock.now().astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        message_id = str(message.get("Message-ID", "")).strip().strip("<>")
        safe = _UNSAFE.sub("_", message_id).strip("._-")[:100] or "no-message-id"
        return f"{stamp}-{next(self._sequence):06d}-{safe}.eml"
