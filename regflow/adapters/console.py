"""A mailer that also shows every mail on a console: the demo prints the codes it sends."""

from __future__ import annotations

import sys
from email.message import EmailMessage
from typing import TextIO

from regflow.ground.ports import Mailer


class ConsoleEchoMailer:
    """Delivers through ``inner``, then prints the mail's envelope and plain text to ``stream``."""

    def __init__(self, inner: Mailer, stream: TextIO | None = None) -> None:
        self.inner = inner
        self.stream = stream if stream is not None else sys.stdout

    def send(self, message: EmailMessage) -> None:
        """Deliver, then echo."""
        self.inner.send(message)
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        lines = [f"── mail to {message['To']}: {message['Subject']}", *text.rstrip().splitlines(), "──"]
        print("\n".join(lines), file=self.stream, flush=True)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)  # e.g. ``directory`` / ``files()`` of an outbox mailer
