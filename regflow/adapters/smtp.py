"""SMTP delivery with smtplib: plain, upgraded by STARTTLS, or implicit TLS, with optional AUTH.

Every failure is sorted for the outbox relay: a 4xx reply, a dropped or refused connection, a
timeout or a TLS failure raises ``regflow.TransientError`` (retried with backoff); a 5xx reply
raises ``MailRejected`` (final, never retried). Errors carry the reply code and text, never the
message: its body holds one-time codes.
"""

from __future__ import annotations

import logging
import math
import os
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from regflow.ground.exceptions import RegflowError, TransientError

log = logging.getLogger("regflow.mail.composer")

SECURITY = ("none", "starttls", "tls")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}
USER_ENV = "REGFLOW_SMTP_USER"
PASSWORD_ENV = "REGFLOW_SMTP_PASSWORD"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_CREDENTIALS = re.compile(r"(?<=://)[^/@?#]*@")


class MailRejected(RegflowError):
    """The SMTP server refused the mail for good (a 5xx reply); ``code`` is the reply code."""

    message_id = "mail_rejected"

    def __init__(self, code: int | None, text: str) -> None:
        self.code = code
        super().__init__(f"SMTP {code} {text}" if code is not None else text)


def redact_url(url: str) -> str:
    """The URL with any ``user:password@`` replaced by ``***@``, fit to print or log."""
    return _CREDENTIALS.sub("***@", url)


class _TimedSMTP(smtplib.SMTP):
    """An SMTP client whose every socket operation waits only for what is left of a deadline
    (a ``time.monotonic()`` instant); it connects (and greets) when made."""

    def __init__(self, deadline: float, host: str, port: int, **options: Any) -> None:
        self.deadline = deadline
        super().__init__(host, port, timeout=self.left(), **options)

    def left(self) -> float:
        """Seconds left before the deadline; TimeoutError once it has passed."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the SMTP conversation took longer than its timeout")
        return left

    def send(self, s: Any) -> None:
        """Send a command, waiting at most until the deadline."""
        if self.sock is not None:
            self.sock.settimeout(self.left())
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        """Read a reply, waiting at most until the deadline."""
        if self.sock is not None:
            self.sock.settimeout(self.left())
        return super().getreply()


class _TimedSMTPS(_TimedSMTP, smtplib.SMTP_SSL):
    """``_TimedSMTP`` over implicit TLS."""


class SmtpMailer:
    """Sends each message over its own SMTP connection, to its own From and To.

    ``security``: ``"none"`` (plain), ``"starttls"`` (upgrade required: a server that does not
    offer it gets nothing) or ``"tls"`` (implicit TLS, usually port 465). TLS verifies the
    server's certificate and name with ``ssl_context`` (default: the system's CAs; OpenSSL's
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` add others). ``username``/``password`` log in with AUTH.
    ``timeout`` bounds one whole send (connection, TLS, AUTH, the mail transaction), in seconds;
    the relay keeps its claim on a mail (its lease) at least twice as long.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "none",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        local_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if security not in SECURITY:
            raise ValueError(f"security must be one of {SECURITY}, not {security!r}")
        if not host:
            raise ValueError("an SMTP host is required")
        if not 0 < port < 65536:
            raise ValueError(f"SMTP port {port} is out of range")
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if (username is None) != (password is None):
            raise ValueError("give both a username and a password, or neither")
        if not (username or "").isascii() or not (password or "").isascii():
            raise ValueError("SMTP credentials must be ASCII (what smtplib's AUTH can send)")
        if username is not None and security == "none":
            log.warning("SMTP credentials for %s will be sent without TLS", host)
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self._password = password
        self.timeout = float(timeout)
        self.local_hostname = local_hostname  # what EHLO says; the host's FQDN, found once
        self.ssl_context = ssl_context

    @classmethod
    def from_url(cls, url: str, *, env: Mapping[str, str] | None = None) -> SmtpMailer:
        """A mailer from ``smtp://[USER:PASSWORD@]HOST[:PORT][?starttls=1&timeout=S]`` or
        ``smtps://[USER:PASSWORD@]HOST[:PORT][?timeout=S]`` (implicit TLS).

        USER and PASSWORD are percent-decoded; each one missing from the URL is taken from
        ``REGFLOW_SMTP_USER`` / ``REGFLOW_SMTP_PASSWORD`` in ``env`` (default: the process
        environment). Default ports: 25, 587 with ``starttls=1``, 465 for ``smtps``.
        """
        environ = os.environ if env is None else env
        shown = redact_url(url)
        try:
            parts = urlsplit(url)
            port_given = parts.port
        except ValueError as exc:
            raise ValueError(f"bad SMTP URL {shown!r}: {exc}") from None
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"bad SMTP URL {shown!r}: use smtp:// or smtps://")
        if not parts.hostname or parts.path not in ("", "/") or parts.fragment:
            raise ValueError(f"bad SMTP URL {shown!r}: expected smtp://HOST:PORT")
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted(set(options) - {"starttls", "timeout"})
        if unknown:
            raise ValueError(f"bad SMTP URL {shown!r}: unknown option(s) {unknown}; "
                             "use starttls= and timeout=")
        security = "tls" if parts.scheme == "smtps" else "none"
        if "starttls" in options:
            flag = options["starttls"].strip().lower()
            if flag not in _TRUE | _FALSE:
                raise ValueError(f"bad SMTP URL {shown!r}: starttls= takes 1 or 0")
            if flag in _TRUE:
                if security == "tls":
                    raise ValueError(f"bad SMTP URL {shown!r}: smtps:// is TLS already; "
                                     "starttls=1 is for smtp://")
                security = "starttls"
        timeout = 10.0
        if "timeout" in options:
            try:
                timeout = float(options["timeout"])
            except ValueError:
                raise ValueError(f"bad SMTP URL {shown!r}: timeout= takes seconds") from None
        username = unquote(parts.username) if parts.username else environ.get(USER_ENV) or None
        password = (unquote(parts.password) if parts.password is not None
                    else environ.get(PASSWORD_ENV))
        if username is None and password is not None and parts.password is None:
            password = None  # a password in the environment alone: no AUTH wanted here
        if (username is None) != (password is None):
            raise ValueError(f"SMTP URL {shown!r}: give a user and a password (in the URL or in "
                             f"{USER_ENV} / {PASSWORD_ENV}), or neither")
        try:
            return cls(parts.hostname, port_given or DEFAULT_PORTS[security], security=security,
                       username=username, password=password, timeout=timeout)
        except ValueError as exc:
            raise ValueError(f"bad SMTP URL {shown!r}: {exc}") from None

    def __repr__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"SmtpMailer({self.security}: {user}{self.host}:{self.port})"

    def send(self, message: EmailMessage) -> None:
        """Deliver the message; TransientError for what may pass, MailRejected for a 5xx."""
        try:
            self._send(message)
        except (TransientError, MailRejected):
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            text = "; ".join(f"{code} {_text(reply)}" for code, reply in exc.recipients.values())
            if codes and all(500 <= code < 600 for code in codes):
                raise MailRejected(codes[0], f"recipient refused: {text}") from exc
            raise TransientError(f"SMTP recipient refused: {text}") from exc
        except smtplib.SMTPResponseException as exc:
            code, text = exc.smtp_code, _text(exc.smtp_error)
            if 500 <= code < 600:
                raise MailRejected(code, f"{text} ({type(exc).__name__})") from exc
            raise TransientError(f"SMTP {code} {text} ({type(exc).__name__})") from exc
        except smtplib.SMTPNotSupportedError as exc:
            # Only send_message raises it here (STARTTLS and AUTH are checked first): the
            # addresses need SMTPUTF8 and the server lacks it; trying again will not help.
            raise MailRejected(None, f"{exc} (SMTPNotSupportedError)") from exc
        except OSError as exc:  # refused, reset, dropped, timed out, TLS, other SMTP trouble
            raise TransientError(f"SMTP {self.host}:{self.port}: {type(exc).__name__}: {exc}") from exc

    def _send(self, message: EmailMessage) -> None:
        """One connection: connect, secure, log in, send, quit."""
        context = self.ssl_context
        if context is None and self.security != "none":
            context = ssl.create_default_context()
        if self.local_hostname is None:
            self.local_hostname = socket.getfqdn()  # smtplib would look it up on every send
        deadline = time.monotonic() + self.timeout
        smtp = (_TimedSMTPS(deadline, self.host, self.port, local_hostname=self.local_hostname,
                            context=context)
                if self.security == "tls" else
                _TimedSMTP(deadline, self.host, self.port, local_hostname=self.local_hostname))
        try:
            smtp.ehlo_or_helo_if_needed()
            if self.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise TransientError(f"SMTP {self.host}:{self.port} does not offer STARTTLS; "
                                         "nothing is sent without it")
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.username is not None and self._password is not None:
                if not smtp.has_extn("auth"):
                    raise TransientError(f"SMTP {self.host}:{self.port} does not offer AUTH")
                smtp.login(self.username, self._password)
            refused = smtp.send_message(message)
            if refused:  # accepted for some recipients: sent; say who (by domain) did not get it
                log.warning("mail %s refused for some recipients: %s", message.get("Message-ID"),
                            ", ".join(f"*@{address.rpartition('@')[2]} {code}"
                                      for address, (code, _) in refused.items()))
        except BaseException:
            smtp.close()
            raise
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()  # the mail was accepted already; a failing goodbye changes nothing


def _text(reply: bytes | str) -> str:
    """An SMTP reply's text on one line, at most 200 characters."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:200]
