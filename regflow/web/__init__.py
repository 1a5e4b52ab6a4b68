"""The web front end: the JSON API and the HTML pages, on Flask.

``create_app(engine)`` returns a Flask application that a user can run as it is or mount
inside an existing WSGI or ASGI application under any prefix (``docs/web.md``, "Mounting"):
every link, form and redirect is made from the request's ``SCRIPT_NAME``, and its cookies are
named ``regflow_*`` with the prefix as their Path, so they never meet the host's.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response
from werkzeug.wsgi import ClosingIterator

from regflow.engine import Engine
from regflow.web.shared import SIGN_IN_COOKIE

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("regflow.web")

# On every answer, pages and API alike (the pages add their Content-Security-Policy).
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "X-Content-Type-Options": "nosniff",
}
HSTS = "max-age=31536000; includeSubDomains"  # only on answers to HTTPS requests
MAIL_EXTENSION = "regflow.mail_after_response"
FLASK_KEY_LABEL = b"regflow.flask"


def create_app(engine: Engine, *, secret_key: str | bytes | None = None,
               trusted_proxies: int = 0, session_cookie: str = "regflow_session",
               page_cookie: str = "regflow_page", **config: Any) -> Flask:
    """A Flask app serving ``engine``: ``/api/...`` (JSON) and the HTML pages.

    Behind ``trusted_proxies`` reverse proxies (TLS terminated there), their
    ``X-Forwarded-*`` headers are believed (``X-Forwarded-Prefix`` too: the mount's prefix),
    so cookies are marked Secure under HTTPS. ``secret_key`` signs forms and the page cookie;
    by default it is derived from the engine's secret (``REGFLOW_SECRET`` or the store's shared
    one), so every process on one database accepts the others' forms. ``session_cookie`` names
    the sign-in cookie, ``page_cookie`` Flask's (CSRF token, language); both have the mount's
    prefix as their Path.
    """
    from regflow.web.api import api
    from regflow.web.client import client
    from regflow.web.manual import manual
    from regflow.web.pages import pages
    from regflow.web.traffic import traffic

    app = Flask("regflow.web", template_folder="../templates/web", static_folder=None)
    app.config.update(
        SECRET_KEY=secret_key if secret_key is not None else flask_key(engine),
        SESSION_COOKIE_NAME=page_cookie,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=64 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.config.update(config)
    app.config[SIGN_IN_COOKIE] = session_cookie
    app.url_map.merge_slashes = False  # "//" is a bad request, not a redirect to guess at
    mail = MailAfterResponse(app.wsgi_app, engine)
    app.wsgi_app = mail  # type: ignore[method-assign]
    app.extensions[MAIL_EXTENSION] = mail
    if trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted_proxies,  # type: ignore[method-assign]
                                x_proto=trusted_proxies, x_host=trusted_proxies,
                                x_prefix=trusted_proxies)
    app.extensions["regflow.engine"] = engine
    app.session_interface = _SessionInterface()

    app.register_blueprint(api)
    app.register_blueprint(pages)
    app.register_blueprint(manual)
    app.register_blueprint(traffic)
    app.register_blueprint(client)
    app.after_request(_security_headers)
    return app


def flask_key(engine: Engine) -> str:
    """The Flask secret of apps serving ``engine``: the same in every process on one database."""
    return hmac.new(engine.services.secret, FLASK_KEY_LABEL, hashlib.sha256).hexdigest()


def _security_headers(response: Response) -> Response:
    """The headers every answer carries; HSTS only over HTTPS (a plain-HTTP answer may be
    a proxy's or a developer's, and browsers ignore it there anyway)."""
    response.headers.update(SECURITY_HEADERS)
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = HSTS
    return response


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie (CSRF token, language), marked Secure whenever the request is HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure

    def get_cookie_path(self, app: Flask) -> str:
        """The mount's prefix (``/`` at the root), unless ``SESSION_COOKIE_PATH`` says otherwise."""
        return str(app.config["SESSION_COOKIE_PATH"] or request.script_root or "/")


def wait_for_mail(app: Flask, timeout: float = 10.0) -> bool:
    """Wait until the mail of every request answered so far was handed to the mailer (or failed
    and stays queued for the relay); whether that happened within ``timeout`` seconds. For
    tests that read the mailer right after an answer, and for a graceful shutdown."""
    mail = app.extensions.get(MAIL_EXTENSION)
    return mail.wait(timeout) if isinstance(mail, MailAfterResponse) else True


class MailAfterResponse:
    """WSGI middleware: mail written while a request runs is delivered after its answer.

    Each request runs inside ``engine.deferred_mail()``; once the server closes the answer's
    body, the mail it wrote goes to a delivery thread. No answer waits for a mail to be
    composed or sent, so the time an answer takes does not tell whether a mail went out (which
    would tell registered addresses from others). The delivery is not done in ``close()``
    itself: waitress calls it before small answers leave its buffers, so delivering there would
    hold the answer back. Mail is in the transactional outbox already: what this thread does
    not deliver (a crash, a mailer failure), ``engine.deliver()`` and the relay do.

    A WSGI server closes every body; Flask's test client closes only what it is told to (``with
    client.post(...) as reply:``, ``reply.close()``, ``buffered=True``), else the mail waits
    until the body is garbage-collected.
    """

    IDLE_SECONDS = 30.0  # the thread ends after this long without mail; the next one starts it

    def __init__(self, app: WSGIApplication, engine: Engine) -> None:
        self.app = app
        self.engine = engine
        self._batches: queue.SimpleQueue[list[str]] = queue.SimpleQueue()
        self._lock = threading.Condition()
        self._open = 0  # requests begun whose mail is not handed over yet
        self._thread: threading.Thread | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        with self._lock:
            self._open += 1
        pending: list[str] = []
        try:
            with self.engine.deferred_mail() as pending:
                body = self.app(environ, start_response)
        except BaseException:
            self._hand_over(pending)
            raise
        done: list[bool] = []

        def after() -> None:
            if not done:  # a server that closes twice, or close() and then the finalizer
                done.append(True)
                self._hand_over(pending)

        answer = ClosingIterator(body, [after])
        dropped = weakref.finalize(answer, after)  # a body never closed (a test client): once it
        dropped.atexit = False  # is garbage-collected, not while the interpreter shuts down
        return answer

    def wait(self, timeout: float = 10.0) -> bool:
        """Whether every request begun so far had its mail delivered (or tried) in ``timeout``."""
        with self._lock:
            return self._lock.wait_for(lambda: self._open == 0, timeout)

    def _hand_over(self, mails: list[str]) -> None:
        with self._lock:
            if not mails:
                self._finished()
                return
            self._batches.put(list(mails))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="regflow-mail", daemon=True)
                self._thread.start()

    def _finished(self) -> None:
        self._open -= 1
        self._lock.notify_all()

    def _run(self) -> None:
        while True:
            try:
                batch = self._batches.get(timeout=self.IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._batches.empty():  # under the lock: no batch can slip in unseen
                        self._thread = None
                        return
                continue
            try:
                self.engine.relay.deliver(batch)
            except Exception:  # the relay keeps what failed queued; the thread must go on
                log.exception("delivering the mail of a request failed; the relay will retry")
            finally:
                with self._lock:
                    self._finished()
