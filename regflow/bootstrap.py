"""The one place that wires adapters to the engine from URLs (SPEC 4.1b)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from regflow.engine import Engine
from regflow.ports import Clock, Mailer, PasswordHasher, Provisioner, Store

MEMORY_URL = "memory://"
MIN_SECRET_BYTES = 32


def open_store(url: str) -> Store:
    """A store from a URL: ``memory://``, ``sqlite:///PATH`` (relative), ``sqlite:////PATH``, or
    ``postgresql://USER@HOST:PORT/DB[?schema=NAME]`` (needs the ``postgres`` extra)."""
    if url in (MEMORY_URL, "memory", "memory:"):
        from regflow.adapters.memory import MemoryStore

        return MemoryStore()
    if url.startswith(("sqlite:", "postgresql:", "postgres:")):
        from regflow.adapters.peewee_store import PeeweeStore

        return PeeweeStore.from_url(url)
    raise ValueError(
        f"unsupported store URL {url!r}: use memory://, sqlite:///PATH or postgresql://...")


def open_mailer(spec: str, clock: Clock | None = None) -> Mailer:
    """A mailer from a spec:

    - ``memory``: kept in the mailer's ``messages`` list;
    - ``outbox:DIR``: one RFC 5322 ``.eml`` file per mail in DIR;
    - ``smtp://[USER:PASSWORD@]HOST[:PORT]``: SMTP without TLS (port 25 by default);
    - ``smtp://[USER:PASSWORD@]HOST[:PORT]?starttls=1``: SMTP upgraded by STARTTLS, required
      (port 587 by default);
    - ``smtps://[USER:PASSWORD@]HOST[:PORT]``: SMTP over implicit TLS (port 465 by default).

    SMTP URLs also take ``timeout=SECONDS`` (default 10), the longest one send may take. USER and
    PASSWORD are percent-encoded in the URL; each one absent from it is read from the environment
    variables ``REGFLOW_SMTP_USER`` and ``REGFLOW_SMTP_PASSWORD`` (which keeps the password out of
    command lines). TLS checks the server's certificate against the system's CAs (OpenSSL's
    ``SSL_CERT_FILE`` names another bundle). See ``regflow.adapters.smtp`` and docs/mail.md.
    """
    if spec == "memory":
        from regflow.adapters.mailers import MemoryMailer

        return MemoryMailer()
    if spec.startswith("outbox:") and spec[len("outbox:"):]:
        from regflow.adapters.mailers import OutboxDirMailer

        return OutboxDirMailer(Path(spec[len("outbox:"):]), clock=clock)
    from regflow.adapters.smtp import SmtpMailer, redact_url

    if spec.startswith(("smtp://", "smtps://")):
        return SmtpMailer.from_url(spec)
    raise ValueError(f"unsupported mail spec {redact_url(spec)!r}: use memory, outbox:DIR, "
                     "smtp://HOST:PORT (?starttls=1) or smtps://HOST:PORT")


def make_hasher(kind: str | PasswordHasher) -> PasswordHasher:
    """``"argon2"`` (argon2id, OWASP parameters) or ``"fast"`` (tests only), or a hasher."""
    if not isinstance(kind, str):
        return kind
    from regflow.adapters.argon2_hasher import Argon2Hasher

    if kind == "argon2":
        return Argon2Hasher()
    if kind == "fast":
        return Argon2Hasher.fast()
    raise ValueError(f"unknown hasher {kind!r}: use 'argon2' or 'fast'")


def build_engine(
    db: str = MEMORY_URL,
    mail: str = "memory",
    *,
    hasher: str | PasswordHasher = "argon2",
    clock: Clock | None = None,
    provisioner: Provisioner | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    template_dirs: Sequence[str | Path] = (),
    product: str = "regflow",
    echo_mail: bool = False,
    mail_from: str | None = None,
    **engine_options: Any,
) -> Engine:
    """An engine on the store at ``db`` with the mailer of ``mail`` (also printing every mail
    on stdout when ``echo_mail``, as the demo does).

    ``mail_from=`` (or ``REGFLOW_MAIL_FROM``) is the From of every mail.
    ``secret=`` (or the environment's ``REGFLOW_SECRET``, at least 32 bytes) keys code digests,
    request hashes and the subjects of limits; every process of a deployment needs the same.
    Without one, the engine uses the store's shared secret, made on first use and kept in the
    database — fine on one machine, but then a copy of the database holds the key to its code
    digests (``regflow serve`` refuses a non-loopback host without ``REGFLOW_SECRET``).
    """
    from regflow.mail import MailComposer

    secret = engine_options.pop("secret", None) or os.environ.get("REGFLOW_SECRET")
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if secret is not None and len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the secret (REGFLOW_SECRET) must be at least {MIN_SECRET_BYTES} bytes; "
                         f"it is {len(secret)}: make one with `python -c \"import secrets; "
                         f"print(secrets.token_urlsafe(32))\"`")
    mailer = open_mailer(mail, clock)
    if echo_mail:
        from regflow.adapters.console import ConsoleEchoMailer

        mailer = ConsoleEchoMailer(mailer)
    sender = mail_from or os.environ.get("REGFLOW_MAIL_FROM")
    composer = (MailComposer(sender=sender, template_dirs=template_dirs) if sender
                else MailComposer(template_dirs=template_dirs))
    return Engine(
        open_store(db), mailer, hasher=make_hasher(hasher), clock=clock,
        provisioner=provisioner, settings=settings, secret=secret,
        composer=composer, product=product, **engine_options,
    )
