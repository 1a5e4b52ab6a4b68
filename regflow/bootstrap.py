"""The one place that wires adapters to the engine from URLs."""

from __future__ import annotations

import email.utils
import os
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from regflow.ground.ports import Clock, Mailer, PasswordHasher, Provisioner, Store

MEMORY_URL = "memory://"
MIN_SECRET_BYTES = 32
DEFAULT_PRODUCT = "regflow"
DEFAULT_MAIL_ADDRESS = "no-reply@regflow.invalid"
MAX_PRODUCT_CHARS = 100


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


def check_product(product: str) -> str:
    """The product name shown on pages and in mail: 1 to 100 printable characters, else
    ``ValueError`` (a control character, or a line break, could break a header or a page)."""
    bad = [char for char in product
           if unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp")]
    if bad:
        problem = f"holds the unprintable character {bad[0]!r}"
    elif not product.strip():
        problem = "is empty" if not product else "is only spaces"
    elif len(product) > MAX_PRODUCT_CHARS:
        problem = f"is {len(product)} characters long"
    else:
        return product
    raise ValueError(f"the product name (--product, REGFLOW_PRODUCT) must be 1 to "
                     f"{MAX_PRODUCT_CHARS} printable characters; {product!r} {problem}")


def check_mail_from(mail_from: str) -> str:
    """The From of every mail: an address (``no-reply@example.jp``) or a name and an address
    (``Example <no-reply@example.jp>``), else ``ValueError``."""
    _, address = email.utils.parseaddr(mail_from)
    if ("@" not in address or address.startswith("@") or address.endswith("@")
            or len(email.utils.getaddresses([mail_from])) != 1  # one sender, not a list
            or any(unicodedata.category(char)[0] == "C" for char in mail_from)):
        raise ValueError(
            f"the sender (--mail-from, REGFLOW_MAIL_FROM) must be a mail address such as "
            f"'no-reply@example.jp' or 'Example <no-reply@example.jp>', not {mail_from!r}")
    return mail_from


def default_sender(product: str) -> str:
    """The From when none is set: the product's name on ``no-reply@regflow.invalid``."""
    from email.headerregistry import Address

    return str(Address(display_name=product, addr_spec=DEFAULT_MAIL_ADDRESS))


def engine_arguments(
    db: str = MEMORY_URL,
    mail: str = "memory",
    *,
    hasher: str | PasswordHasher = "argon2",
    clock: Clock | None = None,
    provisioner: Provisioner | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    template_dirs: Sequence[str | Path] = (),
    product: str | None = None,
    echo_mail: bool = False,
    mail_from: str | None = None,
    **engine_options: Any,
) -> dict[str, Any]:
    """The arguments of ``Engine`` for the store at ``db`` and the mailer of ``mail`` (also
    printing every mail on stdout when ``echo_mail``, as the demo does): what
    ``Engine.from_url`` builds its engine from.

    ``product=`` (or ``REGFLOW_PRODUCT``, else ``regflow``) is the product name the pages and
    mails show, 1 to 100 printable characters. ``mail_from=`` (or ``REGFLOW_MAIL_FROM``) is the
    From of every mail; without one it is the product name on ``no-reply@regflow.invalid``
    (``regflow <no-reply@regflow.invalid>``). Both are checked here (``ValueError``); every
    process that runs steps (pages, API, terminal, the relay and workers applying timers) needs
    the same values.
    ``secret=`` (or the environment's ``REGFLOW_SECRET``, at least 32 bytes) keys code digests,
    request hashes and the subjects of limits; every process of a deployment needs the same.
    Without one, the engine uses the store's shared secret, made on first use and kept in the
    database — fine on one machine, but then a copy of the database holds the key to its code
    digests (``regflow serve`` refuses a non-loopback host without ``REGFLOW_SECRET``).
    """
    from regflow.mail.composer import MailComposer

    secret = engine_options.pop("secret", None) or os.environ.get("REGFLOW_SECRET")
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if secret is not None and len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the secret (REGFLOW_SECRET) must be at least {MIN_SECRET_BYTES} bytes; "
                         f"it is {len(secret)}: make one with `python -c \"import secrets; "
                         f"print(secrets.token_urlsafe(32))\"`")
    # An argument, else the environment (empty there counts as unset), else the default.
    product = check_product(product if product is not None
                            else os.environ.get("REGFLOW_PRODUCT") or DEFAULT_PRODUCT)
    sender = mail_from if mail_from is not None else os.environ.get("REGFLOW_MAIL_FROM") or None
    sender = default_sender(product) if sender is None else check_mail_from(sender)
    mailer = open_mailer(mail, clock)
    if echo_mail:
        from regflow.adapters.console import ConsoleEchoMailer

        mailer = ConsoleEchoMailer(mailer)
    return dict(
        store=open_store(db), mailer=mailer, hasher=make_hasher(hasher), clock=clock,
        provisioner=provisioner, settings=settings, secret=secret,
        composer=MailComposer(sender=sender, template_dirs=template_dirs), product=product,
        **engine_options,
    )
